"""Batches into the caller's array, batches decoded on threads, batches read from several
threads at once, and ``ds.batches``: the same samples as one by one, in the order asked for,
each once per pass; errors that say what was expected."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acumen
from acumen.errors import CorruptDatasetError
from tests.conftest import CODECS, STORAGES
from tests.test_remote_open import serve_http

N = 240
SHAPE = (6, 5)
DATA = np.random.default_rng(15).normal(size=(N, *SHAPE)).astype(np.float32)
DATA[::3] = 1.5  # compressible rows too


def write(path: Path, codec: str = "raw", chunk: int = 1500, data: np.ndarray = DATA) -> Path:
    with acumen.Writer(path, codec=codec, chunk_size_bytes=chunk, durable=False) as writer:
        for i, array in enumerate(data):
            writer.add(array, label=i % 7, name=f"s{i}")
    return path


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("read-threads")
    return {codec: write(root / codec, codec) for codec in CODECS}


# --- out= ----------------------------------------------------------------------------------
@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("codec", CODECS)
def test_out_holds_the_batch(datasets, codec: str, storage: str) -> None:
    order = np.random.default_rng(1).integers(0, N, 300)  # repeats, many chunk files
    with acumen.open(datasets[codec], storage=storage) as ds:
        for indices in (order, np.arange(N), [N - 1, 0, 0, 5], []):
            out = np.full((len(indices), *SHAPE), np.nan, np.float32)
            got = ds.read_batch(indices, out=out)
            assert got is out
            assert out.tobytes() == ds.read_batch(indices).tobytes()
            assert out.tobytes() == DATA[np.asarray(indices, dtype=np.int64)].tobytes()
        inner = np.zeros((3, 4, *SHAPE), np.float32)[1]  # a contiguous view of a larger array
        ds.read_batch([7, 8, 9, 10], out=inner)
        assert inner.tobytes() == DATA[7:11].tobytes()


def test_out_errors_say_what_was_expected(datasets, tmp_path: Path) -> None:
    with acumen.open(datasets["raw"]) as ds:
        want = r"\(2, 6, 5\)"
        with pytest.raises(ValueError, match=rf"shape \(3, 6, 5\); a batch of 2 needs {want}"):
            ds.read_batch([0, 1], out=np.empty((3, *SHAPE), np.float32))
        with pytest.raises(TypeError, match="dtype float64; this dataset's samples are float32"):
            ds.read_batch([0, 1], out=np.empty((2, *SHAPE)))
        with pytest.raises(TypeError, match=rf"numpy array of shape {want} .*got list"):
            ds.read_batch([0, 1], out=[[0.0]])
        with pytest.raises(ValueError, match="C-contiguous"):
            ds.read_batch([0, 1], out=np.empty((2, 5, 6), np.float32).transpose(0, 2, 1))
        frozen = np.empty((2, *SHAPE), np.float32)
        frozen.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            ds.read_batch([0, 1], out=frozen)
    variable = tmp_path / "variable"
    with acumen.Writer(variable, durable=False) as writer:
        writer.add(np.zeros(3, np.uint8))
        writer.add(np.zeros(4, np.uint8))
    with acumen.open(variable) as ds, pytest.raises(ValueError, match="samples of one shape"):
        ds.read_batch([0, 1], out=np.empty((2, 3), np.uint8))


# --- threads -------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["zstd", "lz4", "gzip"])
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    indices=st.lists(st.integers(0, N - 1), max_size=80),
    threads=st.sampled_from([None, 1, 2, 3, 7]),
    storage=st.sampled_from(STORAGES),
)
def test_threads_decode_what_one_thread_does(datasets, codec, indices, threads, storage) -> None:
    with acumen.open(datasets[codec], storage=storage) as ds:
        got = ds.read_batch(indices, threads=threads)
        assert got.tobytes() == ds.read_batch(indices, threads=1).tobytes()
        assert got.tobytes() == DATA[np.asarray(indices, dtype=np.int64)].tobytes()


def test_large_samples_decode_on_threads(tmp_path: Path) -> None:
    """Samples past the sizes where decoding changes path (numpy's copy, zstd one frame at
    a time): on threads or not, what was written."""
    rng = np.random.default_rng(6)
    images = rng.integers(0, 4, size=(6, 300, 300), dtype=np.uint8)
    for codec in ("zstd", "lz4", "gzip"):
        path = write(tmp_path / codec, codec, chunk=200_000, data=images)
        with acumen.open(path) as ds:
            for threads in (None, 1, 2, 3):
                got = ds.read_batch([5, 0, 3, 3, 1], threads=threads)
                assert got.tobytes() == images[[5, 0, 3, 3, 1]].tobytes()


@pytest.mark.parametrize("codec", ["zstd", "lz4", "gzip"])
def test_a_damaged_payload_is_named_whatever_the_threads(tmp_path: Path, codec: str) -> None:
    path = write(tmp_path / codec, codec, chunk=10**6)
    with acumen.open(path) as ds:
        sample = 150
        start, size = int(ds.table.offsets[sample]), int(ds.table.sizes[sample])
    chunk = path / "chunks" / "chunk_0.chnk"
    data = bytearray(chunk.read_bytes())
    data[start + size // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    for threads in (1, 2, 4):
        with acumen.open(path) as ds, pytest.raises(CorruptDatasetError, match="sample 150"):
            ds.read_batch(np.arange(N)[::-1], threads=threads)


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_four_threads_on_one_dataset(datasets, codec: str, storage: str) -> None:
    """Threads read batches at once from one dataset opened with nothing checked or open
    yet (the first reads race to check index blocks and open chunk files)."""
    ds = acumen.open(datasets[codec], storage=storage)
    start = threading.Barrier(4, timeout=60)

    def work(seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        start.wait()
        wrong = []
        out = np.empty((64, *SHAPE), np.float32)
        for k in range(40):
            indices = rng.integers(0, N, 64)
            batch = ds.read_batch(indices, out=out if k % 2 else None, threads=1 + k % 3)
            if batch.tobytes() != DATA[indices].tobytes():
                wrong.append(k)
        return wrong

    with ds, ThreadPoolExecutor(4) as pool:
        assert list(pool.map(work, range(4))) == [[], [], [], []]


def test_threads_check_index_blocks_once(tmp_path: Path) -> None:
    """Four index blocks, each first read by several threads at once: each block is
    checked once, and the dataset knows when all are (readers then skip the test)."""
    values = np.arange(50_000, dtype=np.uint32)
    path = tmp_path / "blocks"
    with acumen.Writer(path, chunk_size_bytes=20_000, durable=False) as writer:
        for i in range(len(values)):
            writer.add(values[i : i + 1])
    for storage in ("mmap", "seek"):
        ds = acumen.open(path, storage=storage)
        start = threading.Barrier(4, timeout=60)

        def work(seed: int, ds: acumen.Dataset = ds, start: threading.Barrier = start) -> bool:
            rng = np.random.default_rng(seed)
            start.wait()
            batches = [rng.integers(0, len(values), 256) for _ in range(20)]
            return all(np.array_equal(ds.read_batch(b)[:, 0], values[b]) for b in batches)

        with ds, ThreadPoolExecutor(4) as pool:
            assert all(pool.map(work, range(4)))
            assert ds._checks.clean and ds._checks._unchecked == 0


# --- ds.batches ------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_batches_in_order_each_sample_once(datasets, codec: str) -> None:
    with acumen.open(datasets[codec]) as ds:
        got = list(ds.batches(64))
        assert [len(b) for b in got] == [64, 64, 64, 48]
        assert np.concatenate(got).tobytes() == DATA.tobytes()  # storage order, all once
        order = np.random.default_rng(2).permutation(N)
        got = list(ds.batches(50, order=order, drop_last=True))
        assert [len(b) for b in got] == [50] * 4
        assert np.concatenate(got).tobytes() == DATA[order[:200]].tobytes()
        pairs = list(ds.batches(100, order=order, target="label"))
        assert [len(b) for b, _ in pairs] == [100, 100, 40]
        labels = np.concatenate([values for _, values in pairs])
        assert isinstance(pairs[0][1], np.ndarray) and labels.tolist() == (order % 7).tolist()
        names = next(iter(ds.batches(3, order=[5, 1, 9], target="name")))[1]
        assert names.tolist() == ["s5", "s1", "s9"]
        assert list(ds.batches(10, order=[])) == []
        assert len(list(ds.batches(7, order=[1, 2, 3], drop_last=True))) == 0


def test_batches_errors_and_early_stop(datasets, tmp_path: Path) -> None:
    with acumen.open(datasets["raw"]) as ds:
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            ds.batches(0)
        with pytest.raises(ValueError, match="no metadata column 'nope'; its columns"):
            ds.batches(8, target="nope")
        with pytest.raises(IndexError, match=f"sample {N} is out of range"):
            ds.batches(8, order=[0, N])
        for k, batch in enumerate(ds.batches(16)):
            if k == 2:
                assert batch.tobytes() == DATA[32:48].tobytes()
                break  # the reads ahead are dropped; the dataset still reads
        assert ds.read_batch([1]).tobytes() == DATA[1:2].tobytes()
    variable = tmp_path / "variable"
    with acumen.Writer(variable, durable=False) as writer:
        for i in range(5):
            writer.add(np.full(i + 1, i, np.uint8))
    with acumen.open(variable) as ds:
        got = list(ds.batches(2, order=[4, 0, 2]))
        assert [[a.tolist() for a in batch] for batch in got] == [[[4] * 5, [0]], [[2] * 3]]


def test_batches_of_a_remote_dataset(tmp_path: Path, http_server) -> None:
    local = write(tmp_path / "local", "raw", chunk=1200)
    url = serve_http(local, http_server)
    order = np.random.default_rng(3).permutation(N)
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        pairs = list(ds.batches(64, order=order, target="label"))
    assert np.concatenate([b for b, _ in pairs]).tobytes() == DATA[order].tobytes()
    assert np.concatenate([v for _, v in pairs]).tolist() == (order % 7).tolist()
    url = serve_http(write(tmp_path / "zstd", "zstd", chunk=1200), http_server, "zstd")
    with acumen.open(url) as ds:
        out = np.empty((100, *SHAPE), np.float32)
        assert ds.read_batch(order[:100], out=out, threads=2) is out
        assert out.tobytes() == DATA[order[:100]].tobytes()
        got = list(ds.batches(64, order=order, drop_last=True))
        assert np.concatenate(got).tobytes() == DATA[order[:192]].tobytes()
