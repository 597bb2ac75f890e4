"""``Dataset.prefetch(indices)``: a remote dataset's samples fetched in the background, so
that reading them makes no request; index errors at once, fetch errors left to the read; a
no-op for local datasets; at most two fetches outstanding; picklable after use."""

from __future__ import annotations

import itertools
import pickle
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.errors import CorruptDatasetError
from acumen.read.prefetching import Prefetcher
from tests.test_remote_open import N, sample, serve_http, write_local


@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_prefetched_samples_are_read_without_a_request(
    tmp_path: Path, http_server, codec: str
) -> None:
    url = serve_http(write_local(tmp_path / "local", codec, "arrow"), http_server)
    storage = {"name": "remote", "configuration": {"coalesce_gap": 0}}
    with acumen.open(url, cache=tmp_path / "cache", storage=storage) as ds:
        wanted = [41, 3, 17, 58, 0, 30]
        http_server.log.reset()
        future = ds.prefetch(wanted)
        assert future.result(timeout=30) is None
        assert http_server.log.count("GET") >= 1
        http_server.log.reset()
        for i in wanted:
            array, metadata = ds[i]
            assert array.tobytes() == sample(i).tobytes() and metadata["label"] == i
            assert ds.read(i).tobytes() == sample(i).tobytes()
        batch = ds.read_batch(wanted[::-1])
        assert [b.tobytes() for b in batch] == [sample(i).tobytes() for i in wanted[::-1]]
        assert http_server.log.count("GET") == 0
        assert http_server.log.requests == 0
        # Samples not prefetched still cost their own GET (no gap is bridged here).
        assert ds.read(1).tobytes() == sample(1).tobytes()
        assert http_server.log.count("GET") == 1


def test_a_bad_index_is_raised_at_once_and_fetches_nothing(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "parquet"), http_server)
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        http_server.log.reset()
        with pytest.raises(IndexError, match=f"sample {N} is out of range"):
            ds.prefetch([1, N])
        with pytest.raises(IndexError):
            ds.prefetch([-N - 1])
        with pytest.raises(TypeError):
            ds.prefetch([1.5])
        with pytest.raises(IndexError):
            ds.prefetch(np.ones(N + 1, dtype=bool))
        assert http_server.log.requests == 0
        assert ds._prefetcher is None
        # Negative indices and masks are taken as read_batch takes them.
        mask = np.zeros(N, dtype=bool)
        mask[[2, 5]] = True
        ds.prefetch(mask).result(timeout=30)
        ds.prefetch([-1]).result(timeout=30)
        http_server.log.reset()
        assert ds.read(2).tobytes() == sample(2).tobytes()
        assert ds.read(N - 1).tobytes() == sample(N - 1).tobytes()
        assert http_server.log.requests == 0
        assert ds.prefetch([]).done()


def test_a_failed_fetch_is_not_raised_by_prefetch_but_by_the_read(
    tmp_path: Path, http_server
) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "arrow"), http_server)
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        chunk = ds.table.locate(7)[0]
        (http_server.root / "ds" / ds.table.chunk_names[chunk]).unlink()
        future = ds.prefetch([7])  # no error here
        assert isinstance(future.exception(timeout=30), CorruptDatasetError)
        with pytest.raises(CorruptDatasetError, match="missing from the store"):
            ds.read(7)


def test_a_local_dataset_prefetch_does_nothing(tmp_path: Path) -> None:
    ds = acumen.open(write_local(tmp_path / "local", "raw", "csv"))
    future = ds.prefetch([1, 2, 3])
    assert future.done() and future.result() is None
    assert ds._prefetcher is None
    with pytest.raises(IndexError):
        ds.prefetch([N])
    assert ds.read(2).tobytes() == sample(2).tobytes()


def test_a_dataset_pickles_after_a_prefetch(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "lz4", "csv"), http_server)
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        ds.prefetch(range(10)).result(timeout=30)
        copy = pickle.loads(pickle.dumps(ds))
        assert copy._prefetcher is None
        copy.prefetch([4, 5]).result(timeout=30)
        http_server.log.reset()
        assert copy.read(4).tobytes() == sample(4).tobytes()
        assert http_server.log.requests == 0
        copy.close()


def test_prefetch_and_reads_run_at_once_from_two_threads(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "zstd", "arrow"), http_server)
    storage = {"name": "remote", "configuration": {"cache_bytes": 600, "coalesce_gap": 0}}
    with acumen.open(url, cache=tmp_path / "cache", storage=storage) as ds:
        rng = np.random.default_rng(1)
        futures = []
        for _ in range(30):  # a small cache: spans evicted while others are kept and read
            futures.append(ds.prefetch(rng.choice(N, 12, replace=False)))
            wanted = rng.choice(N, 9, replace=False)
            batch = ds.read_batch(wanted)
            assert [b.tobytes() for b in batch] == [sample(int(i)).tobytes() for i in wanted]
            i = int(rng.integers(N))
            assert ds.read(i).tobytes() == sample(i).tobytes()
        for future in futures:
            assert future.exception(timeout=30) is None


def test_at_most_two_fetches_are_outstanding_and_close_waits_for_the_running_one() -> None:
    release, began = threading.Event(), threading.Event()
    started: list[object] = []

    def fetch(ranges):
        started.append(ranges)
        began.set()
        release.wait(30)

    prefetcher = Prefetcher(fetch)
    first = prefetcher.submit("a")
    second = prefetcher.submit("b")
    third_submitted = threading.Event()
    third: list = []

    def submit_third():
        third.append(prefetcher.submit("c"))
        third_submitted.set()

    thread = threading.Thread(target=submit_third)
    thread.start()
    assert not third_submitted.wait(0.2)  # held while "a" runs and "b" waits
    release.set()
    assert third_submitted.wait(30)
    thread.join(30)
    for future in (first, second, third[0]):
        assert future.result(timeout=30) is None
    assert started == ["a", "b", "c"]

    release.clear()
    began.clear()
    running = prefetcher.submit("d")
    assert began.wait(30)
    queued = prefetcher.submit("e")
    stopped = threading.Event()
    stopper = threading.Thread(target=lambda: (prefetcher.stop(), stopped.set()))
    stopper.start()
    assert not stopped.wait(0.2)  # "d" is still running
    release.set()
    assert stopped.wait(30)
    stopper.join(30)
    assert running.result(timeout=30) is None and queued.cancelled()
    assert started[-1] == "d"


def test_a_failed_fetch_keeps_its_error_in_the_future() -> None:
    def fetch(ranges):
        raise OSError("boom")

    prefetcher = Prefetcher(fetch)
    future = prefetcher.submit("x")
    assert isinstance(future.exception(timeout=30), OSError)
    assert prefetcher.submit("y").exception(timeout=30) is not None


def test_byte_blocks_cover_every_sample_once() -> None:
    from acumen.read.sample import byte_blocks

    assert byte_blocks(np.array([], dtype=np.int64), 10) == []
    assert byte_blocks(np.array([4, 4, 4, 4]), 8) == [(0, 2), (2, 4)]
    assert byte_blocks(np.array([100, 1, 1]), 8) == [(0, 1), (1, 3)]  # a big one alone
    assert byte_blocks(np.array([3, 3, 3]), 100) == [(0, 3)]
    sizes = np.random.default_rng(1).integers(0, 50, 1000)
    blocks = byte_blocks(sizes, 128)
    assert blocks[0][0] == 0 and blocks[-1][1] == 1000
    assert all(a < b for a, b in blocks)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(blocks))


@pytest.mark.parametrize(("codec", "shape"), [("raw", "fixed"), ("zstd", "varying")])
def test_iteration_reads_ahead_in_blocks(
    tmp_path: Path, http_server, monkeypatch: pytest.MonkeyPatch, codec: str, shape: str
) -> None:
    """Iteration fetches each block in coalesced GETs while the one before is read: far
    fewer GETs than samples, the samples in order."""
    import acumen.read.sample

    monkeypatch.setattr(acumen.read.sample, "AHEAD_BYTES", 2000)
    root = tmp_path / "local"
    with acumen.Writer(root, codec=codec, chunk_size_bytes=4096) as writer:
        for i in range(300):
            length = 8 if shape == "fixed" else i % 5 + 1
            writer.add(np.full(length, i, dtype=np.float32), label=i)
    shutil.copytree(root, http_server.root / "ds")
    with acumen.open(http_server.url("ds"), cache=tmp_path / "cache", cache_size=0) as ds:
        http_server.log.reset()
        got = [(int(array[0]), metadata["label"]) for array, metadata in ds]
        assert got == [(i, i) for i in range(300)]
        assert 0 < http_server.log.count("GET") < 60
