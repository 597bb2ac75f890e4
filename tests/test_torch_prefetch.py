"""A DataLoader epoch over a remote dataset: ChunkShuffleSampler fetches each window of chunk
files ahead, in large GETs, before handing out its samples; the workers read them from the
disk cache. Same samples as a local copy; no request from the reads; a failed fetch raised
at the read; nothing done for a local dataset."""

from __future__ import annotations

import multiprocessing
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

import acumen  # noqa: E402
from acumen.errors import CorruptDatasetError  # noqa: E402
from acumen.read.ahead import blocks, spans  # noqa: E402
from acumen.torch import ChunkShuffleSampler, TorchDataset  # noqa: E402

N = 300
CHUNK = 16 * 4 * 25  # 25 samples of float32 (16,) per chunk file: 12 chunks


@pytest.fixture(scope="module")
def local_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("torch-remote") / "ds"
    with acumen.Writer(path, chunk_size_bytes=CHUNK, durable=False) as writer:
        for i in range(N):
            writer.add(np.full(16, i, dtype=np.float32), label=i % 7)
    return path


def serve(local_path: Path, server) -> str:
    root = getattr(server, "root", None) or server.upstream.root
    shutil.copytree(local_path, root / "ds")
    return server.url("ds")


def epoch(data: TorchDataset, workers: int = 0, method: str | None = None, **options) -> list:
    sampler = ChunkShuffleSampler(data, window=2, seed=3, **options)
    loader = DataLoader(
        data,
        batch_size=16,
        sampler=sampler,
        num_workers=workers,
        multiprocessing_context=method if workers else None,
    )
    return [(x.tolist(), y.tolist()) for x, y in loader]


def chunk_extents(local_path: Path) -> set[tuple[str, str]]:
    """Each chunk file's name and the Range header of one GET of all of it."""
    with acumen.open(local_path) as ds:
        table = ds.table
        out = set()
        for c, name in enumerate(table.chunk_names):
            rows = table.chunk_ids == c
            first = int(table.offsets[rows].min())
            end = int((table.offsets[rows] + table.sizes[rows]).max())
            out.add((name.rsplit("/", 1)[-1], f"bytes={first}-{end - 1}"))
        return out


@pytest.mark.parametrize("workers, method", [(0, None), (2, "fork"), (2, "spawn")])
def test_an_epoch_over_http_is_the_local_epoch_fetched_ahead_in_whole_chunks(
    tmp_path: Path, local_path: Path, http_server, workers: int, method: str | None
) -> None:
    if method and method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    url = serve(local_path, http_server)
    expected = epoch(TorchDataset(local_path, target="label"))
    assert sorted(v for x, _ in expected for v in np.asarray(x)[:, 0]) == list(range(N))
    remote = TorchDataset(url, target="label", cache=tmp_path / "cache")
    http_server.log.reset()
    assert epoch(remote, workers, method) == expected
    # Every chunk byte came from one GET of its whole chunk, made by the sampler's prefetch
    # before the samples were handed out: the reads (here or in the workers) made none.
    gets = [(r.path.rsplit("/", 1)[-1], r.range) for r in http_server.log.records]
    assert sorted(gets) == sorted(chunk_extents(local_path))
    if method == "spawn":
        return  # (each spawned worker imports torch: one epoch is enough)
    # Again, from the disk cache: no request at all (after the open's manifest).
    again = TorchDataset(url, target="label", cache=tmp_path / "cache")
    http_server.log.reset()
    assert epoch(again, workers, method) == expected
    assert http_server.log.requests == 0


def test_prefetch_zero_reads_batch_by_batch_and_resume_works(
    tmp_path: Path, local_path: Path, http_server
) -> None:
    url = serve(local_path, http_server)
    remote = TorchDataset(url, target="label", cache=tmp_path / "cache")
    http_server.log.reset()
    expected = epoch(TorchDataset(local_path, target="label"))
    assert epoch(remote, prefetch=0) == expected
    # Each batch fetched its own ranges when read: chunks in several GETs, some twice.
    assert http_server.log.count("GET") > len(chunk_extents(local_path))

    # Resuming mid-epoch over a prefetching sampler hands out the rest of the same order.
    fresh = TorchDataset(url, target="label", cache=tmp_path / "other")
    sampler = ChunkShuffleSampler(fresh, window=2, seed=3)
    sampler.set_epoch(1)
    order = list(sampler)
    taken = []
    for position in sampler:
        taken.append(position)
        if len(taken) == 111:
            break
    resumed = ChunkShuffleSampler(fresh, window=2, seed=3)
    resumed.load_state_dict(sampler.state_dict())
    assert taken + list(resumed) == order


def test_a_failed_fetch_is_raised_at_the_read_naming_the_chunk(
    tmp_path: Path, local_path: Path, http_server
) -> None:
    url = serve(local_path, http_server)
    remote = TorchDataset(url, target="label", cache=tmp_path / "cache")
    name = remote.dataset.table.chunk_names[5]
    (http_server.root / "ds" / name).unlink()  # the store loses a chunk after the open
    with pytest.raises(CorruptDatasetError, match=f"{name}: chunk file is missing"):
        epoch(remote)


def test_a_local_dataset_gets_no_prefetch_thread(local_path: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    data = TorchDataset(local_path, target="label")
    sampler = ChunkShuffleSampler(data, window=2, seed=3)
    assert epoch(data) and not data.chunk_local
    assert list(sampler) == sampler.epoch_order().tolist()
    assert {t.ident for t in threading.enumerate()} <= before


def test_blocks_keep_windows_whole_and_spans_merge_a_window() -> None:
    sizes = np.full(10, 100)
    assert blocks(sizes, [3, 6], 400) == [(0, 3), (3, 6), (6, 10)]
    assert blocks(sizes, [3, 6], 650) == [(0, 6), (6, 10)]
    assert blocks(sizes, [4], 250) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert blocks(sizes[:0], [], 100) == []


def test_spans_merge_touching_samples_per_chunk(local_path: Path) -> None:
    with acumen.open(local_path) as ds:
        window = np.random.default_rng(0).permutation(np.arange(25, 75))  # chunks 1 and 2
        assert spans(ds, window) == [(1, 0, 1600), (2, 0, 1600)]
        assert spans(ds, np.array([0, 2, 1])) == [(0, 0, 192)]
        assert spans(ds, np.array([0, 2])) == [(0, 0, 64), (0, 128, 64)]


def test_batch_loader_over_http_is_the_local_epoch(
    tmp_path: Path, local_path: Path, http_server
) -> None:
    from acumen.torch import BatchLoader

    url = serve(local_path, http_server)
    expected = epoch(TorchDataset(local_path, target="label"))
    remote = TorchDataset(url, target="label", cache=tmp_path / "cache")
    sampler = ChunkShuffleSampler(remote, window=2, seed=3)
    got = [(x.tolist(), y.tolist()) for x, y in BatchLoader(remote, 16, sampler=sampler)]
    assert got == expected


def test_batches_of_a_prefetching_sampler_cut_its_order_and_resume(
    tmp_path: Path, local_path: Path, http_server
) -> None:
    url = serve(local_path, http_server)
    remote = TorchDataset(url, target="label", cache=tmp_path / "cache")
    sampler = ChunkShuffleSampler(remote, window=2, seed=3)
    sampler.set_epoch(2)
    order = sampler.epoch_order()
    got = list(sampler.batches(16))
    assert all(len(b) == 16 for b in got[:-1]) and 0 < len(got[-1]) <= 16
    assert np.concatenate(got).tolist() == order.tolist()
    assert sampler.start == 0  # a finished pass
    taken = []
    for batch in sampler.batches(16, drop_last=True):
        taken.append(batch)
        if len(taken) == 3:
            break
    assert sampler.state_dict()["consumed"] == 48
    resumed = ChunkShuffleSampler(remote, window=2, seed=3)
    resumed.load_state_dict(sampler.state_dict())
    rest = list(resumed.batches(16, drop_last=True))
    assert np.concatenate(taken + rest).tolist() == order[: len(order) // 16 * 16].tolist()
