"""A remote ``read_batch`` of raw samples of one shape gathers the rows it holds at once,
span by span (from the memory of prefetched spans, or from the mapped disk cache), and
fetches only the others: the same bytes as a local read, whichever path each row takes,
and a damaged cache file is never served."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.files.cache_writes import BackgroundWrites
from tests.test_remote_open import serve_http
from tests.test_remote_reads import _GatedCache


def write(root: Path, shape: tuple[int, ...], n: int, chunk: int) -> Path:
    with acumen.Writer(root, chunk_size_bytes=chunk, durable=False) as writer:
        for i in range(n):
            writer.add(
                np.full(shape, i % 251, dtype=np.uint8) + np.arange(shape[0], dtype=np.uint8)
            )
    return root


# small rows (one take per span) and rows of 9000 bytes (one copy each)
CASES = [((16,), 400, 1600), ((9000,), 24, 4 * 9000)]


@pytest.mark.parametrize("shape, n, chunk", CASES)
def test_a_batch_is_the_local_batch_from_memory_disk_and_the_store(
    tmp_path: Path, http_server, shape, n, chunk
) -> None:
    local = write(tmp_path / "local", shape, n, chunk)
    url = serve_http(local, http_server)
    order = np.random.default_rng(0).permutation(np.concatenate([np.arange(n), [3, 3, n - 1]]))
    with acumen.open(local) as ds:
        expected = ds.read_batch(order)
    log = http_server.log
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        ds.prefetch(order[: len(order) // 3]).result()  # a third held in memory
        assert np.array_equal(ds.read_batch(order), expected)  # the rest fetched
        log.reset()
        assert np.array_equal(ds.read_batch(order[::-1]), expected[::-1])  # all in memory
        assert log.count("GET") == 0
    with acumen.open(url, cache=tmp_path / "cache") as ds:  # memory empty: the disk cache
        log.reset()
        assert np.array_equal(ds.read_batch(order), expected)
        assert np.array_equal(ds.read_batch(order[5:9]), expected[5:9])
        assert log.count("GET") == 0
        ds.storage.load_cached(ds.table.ranges(order[:40]))  # some brought into memory
        assert np.array_equal(ds.read_batch(order), expected)
        assert log.count("GET") == 0


def test_a_damaged_cache_file_is_not_served_to_a_batch(tmp_path: Path, http_server) -> None:
    local = write(tmp_path / "local", (16,), 400, 1600)
    url = serve_http(local, http_server)
    every = np.arange(400)
    with acumen.open(local) as ds:
        expected = ds.read_batch(every)
    cache = tmp_path / "cache"
    with acumen.open(url, cache=cache) as ds:
        ds.read_batch(every)
    spans = sorted((cache / "chunks" / "spans").iterdir(), key=lambda p: p.stat().st_size)
    damaged = spans[-1]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x10
    damaged.write_bytes(bytes(data))
    log = http_server.log
    with acumen.open(url, cache=cache) as ds:
        log.reset()
        assert np.array_equal(ds.read_batch(every), expected)
        assert log.count("GET") >= 1  # the damaged span's samples, fetched again
        assert not damaged.exists()
    with acumen.open(url, cache=cache) as ds:  # kept again, whole
        log.reset()
        assert np.array_equal(ds.read_batch(every), expected)
        assert log.count("GET") == 0


def test_wait_written_waits_for_the_spans_queued_before_it_only(tmp_path: Path) -> None:
    cache = _GatedCache(tmp_path / "c", 1 << 30)
    writes = BackgroundWrites(cache, threads=1)
    writes.put("u", 0, b"a" * 100, "v")
    count = writes.queued()
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (writes.wait_written(count), done.set()))
    waiter.start()
    assert not done.wait(0.05)  # the write waits for the gate: so does wait_written
    cache.gate.set()
    waiter.join(20)
    assert done.is_set() and bytes(cache.get("u", 10, 5, "v")) == b"aaaaa"
    writes.flush()
