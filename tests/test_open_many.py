"""``acumen.open_many``: several datasets read as one view, nothing written.

Reads (one, a batch, into ``out=``, in batches, iteration), metadata and the index come back
in the parts' order; the view pickles; ``ChunkShuffleSampler`` hands out every sample once
per epoch with chunk windows spanning the parts (and DDP shares that cover the epoch);
``TorchDataset`` over it works with a DataLoader in the main process and in workers.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.errors import CorruptDatasetError

SIZES = (7, 5, 9)


def write(path: Path, k: int, n: int, shape=(3,), codec: str = "raw", **columns) -> Path:
    with acumen.Writer(
        path, codec=codec, dtype="float32", chunk_size_bytes=40, durable=False
    ) as writer:
        for i in range(n):
            writer.add(np.full(shape, k * 100 + i, np.float32), label=i, part=k, **columns)
    return path


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    codecs = ("raw", "zstd", "raw")
    return [write(tmp_path / f"p{k}", k, n, codec=codecs[k]) for k, n in enumerate(SIZES)]


def value(position: int) -> float:
    """The value of the view's sample at ``position`` (part k's sample i holds k*100+i)."""
    for k, n in enumerate(SIZES):
        if position < n:
            return k * 100 + position
        position -= n
    raise IndexError(position)


def test_reads_in_the_parts_order(parts: list[Path]) -> None:
    with pytest.raises(ValueError, match=r"part 1 \(.*p1\) is compressed with"):
        acumen.open_many(parts)  # raw and zstd parts: one codec decodes a view
    parts[1] = write(parts[1].with_name("q1"), 1, SIZES[1])
    ds = acumen.open_many(parts, storage="seek")
    n = sum(SIZES)
    assert len(ds) == n and ds.shape == (3,) and ds.columns == ["label", "part"]
    assert [ds.read(i)[0] for i in range(n)] == [value(i) for i in range(n)]
    assert ds.locate(8) == (1, 1) and ds.locate(-1) == (2, 8)
    array, metadata = ds[8]
    assert array[0] == 101 and metadata == {"label": 1, "part": 1}
    order = np.array([20, 0, 7, 12, 6, 11])
    batch = ds.read_batch(order, threads=2)
    assert batch[:, 0].tolist() == [value(i) for i in order]
    out = np.empty((len(order), 3), np.float32)
    assert ds.read_batch(order, out=out) is out and np.array_equal(out, batch)
    seen = np.concatenate([b[:, 0] for b, _ in ds.batches(4, order=order[::-1], target="label")])
    assert seen.tolist() == [value(i) for i in order[::-1]]
    assert [a[0] for a, _ in ds] == [value(i) for i in range(n)]
    frame = ds.index
    assert frame["part"].tolist() == [0] * 7 + [1] * 5 + [2] * 9
    assert frame["ai:chunk_name"].iloc[7].startswith("chunks/1/")
    subset = ds.filter("part == 1 and label >= 3")
    assert [subset.read(i)[0] for i in range(len(subset))] == [103, 104]
    again = pickle.loads(pickle.dumps(ds))
    assert again.read_batch(order)[:, 0].tolist() == batch[:, 0].tolist()
    assert again.locate(8) == (1, 1) and again.versions == [1, 1, 1] and again.version is None
    assert "3 datasets" in repr(again)


def test_parts_may_differ_in_shape_and_optional_columns(tmp_path: Path) -> None:
    first = write(tmp_path / "a", 0, 3, shape=(2,))
    second = write(tmp_path / "b", 1, 2, shape=(4,), score=0.5)
    ds = acumen.open_many([first, second])
    assert ds.shape is None
    batch = ds.read_batch([4, 0])
    assert [b.shape for b in batch] == [(4,), (2,)]
    with pytest.raises(ValueError, match="one shape"):
        ds.read_batch([0, 4], out=np.empty((2, 2), np.float32))
    assert np.isnan(ds.metadata(0)["score"]) and ds.metadata(4)["score"] == 0.5
    with pytest.raises(ValueError, match=r"part 1 \(.*c\) holds float64"):
        with acumen.Writer(tmp_path / "c", dtype="float64", durable=False) as writer:
            writer.add(np.zeros(2), label=0, part=2)
        acumen.open_many([first, tmp_path / "c"])


def test_verify_chunk_checks_every_parts_chunk_files(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"p{k}", k, 4) for k in range(2)]
    ds = acumen.open_many(paths, verify="chunk")
    assert ds.read(5)[0] == 101
    chunk = paths[1] / "chunks" / "chunk_1.chnk"
    data = bytearray(chunk.read_bytes())
    data[0] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(CorruptDatasetError, match="checksum"):
        ds.read(7)


def _epochs(sampler, epochs: int = 2) -> list[list[int]]:
    out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


def test_sampler_and_torch_dataset(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from acumen.torch import ChunkShuffleSampler, TorchDataset

    paths = [write(tmp_path / f"p{k}", k, n) for k, n in enumerate(SIZES)]
    view = acumen.open_many(paths)
    n = len(view)
    sampler = ChunkShuffleSampler(view, window=2, seed=3)
    # chunk ids are global: every part's chunks are distinct chunks of the sampler
    assert len(np.unique(sampler.chunk_ids)) == sum(
        len(acumen.open(p).table.chunk_names) for p in paths
    )
    first, second = _epochs(sampler)
    assert sorted(first) == list(range(n)) == sorted(second) and first != second
    windows = [first[i : i + 6] for i in range(0, n, 6)]
    assert any(len({value(i) // 100 for i in w}) > 1 for w in windows)  # parts mixed
    shares = [ChunkShuffleSampler(view, num_replicas=2, rank=r, seed=3) for r in range(2)]
    handed = [list(s) for s in shares]
    assert len(handed[0]) == len(handed[1]) == -(-n // 2)
    assert set(handed[0]) | set(handed[1]) == set(range(n))

    data = TorchDataset(paths, target="label")  # a list of paths: open_many
    for workers in (0, 2):
        loader = DataLoader(
            data,
            batch_size=None,
            sampler=ChunkShuffleSampler(data, seed=1).batches(4),
            num_workers=workers,
        )
        got = {}
        for samples, labels in loader:
            assert isinstance(samples, torch.Tensor) and samples.shape[1:] == (3,)
            for row, label in zip(samples[:, 0].tolist(), labels.tolist(), strict=True):
                got[row] = label
        assert sorted(got) == sorted(value(i) for i in range(n))
        assert all(got[v] == v % 100 for v in got)


def test_remote_parts_read_through_one_storage(http_server, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from acumen.torch import ChunkShuffleSampler

    for k, n in enumerate(SIZES[:2]):
        write(http_server.root / f"p{k}", k, n)
    urls = [http_server.url(f"p{k}") for k in range(2)]
    ds = acumen.open_many(urls, cache=tmp_path / "cache")
    assert ds.storage.name == "remote" and ds.storage.batched_reads
    n = len(ds)
    assert ds.read_batch(np.arange(n))[:, 0].tolist() == [value(i) for i in range(n)]
    # the sampler prefetches the view's windows (blocks of global chunk ids) ahead
    order = list(ChunkShuffleSampler(ds, window=2, seed=5))
    assert sorted(order) == list(range(n))
    fresh = acumen.open_many(urls, cache=tmp_path / "cache")  # from the disk cache
    assert [fresh.read(i)[0] for i in order] == [value(i) for i in order]
    local = write(tmp_path / "local", 2, 3)
    with pytest.raises(ValueError, match="local and remote parts cannot be mixed"):
        acumen.open_many([acumen.open(urls[0], cache=tmp_path / "cache"), acumen.open(local)])
