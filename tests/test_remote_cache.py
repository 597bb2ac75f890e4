"""The disk cache of fetched chunk bytes (``acumen.files.cache.SpanCache``) and its use by the
``remote`` storage: shared by processes, byte-budgeted with LRU eviction, never serving a
half-written or damaged entry."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.files import cache as cache_module
from acumen.files.cache import BLOCK, SpanCache
from tests.test_remote_open import N, sample, serve_http, write_local


def content(url: str, start: int, size: int) -> bytes:
    """The bytes ``start..start + size`` of a made-up object named ``url``."""
    seed = sum(url.encode()) % 251
    return (
        ((np.arange(start, start + size, dtype=np.int64) * 31 + seed) % 256)
        .astype(np.uint8)
        .tobytes()
    )


def span_files(folder: Path) -> list[Path]:
    return [p for p in (folder / "spans").iterdir() if p.is_file()]


# --- SpanCache ------------------------------------------------------------------------------


def test_a_span_serves_any_range_inside_it_and_only_its_version(tmp_path: Path) -> None:
    cache = SpanCache(tmp_path, 1 << 20)
    data = content("a", 1000, 3 * BLOCK + 17)
    assert cache.put("a", 1000, data, "v1")
    for start, size in ((1000, 10), (1000 + BLOCK - 5, 10), (1000 + 2 * BLOCK, BLOCK + 17)):
        assert bytes(cache.get("a", start, size, "v1")) == content("a", start, size)
    assert cache.get("a", 1000, 10, "v2") is None  # the object was rewritten
    assert cache.get("b", 1000, 10, "v1") is None
    assert cache.get("a", 999, 10, "v1") is None  # not covered
    assert cache.get("a", 1000 + len(data) - 5, 10, "v1") is None  # past its end
    assert not cache.put("a", 2000, content("a", 2000, 100), "v1")  # already covered
    assert not cache.put("a", 0, b"x" * ((1 << 20) + 1), "v1")  # larger than the budget
    assert cache.total_bytes() == len(data) and len(span_files(tmp_path)) == 1


def test_eviction_is_least_recently_used_and_keeps_the_budget(tmp_path: Path) -> None:
    cache = SpanCache(tmp_path, 3000)
    for name in "abc":
        assert cache.put(name, 0, content(name, 0, 1000))
    assert cache.get("a", 0, 10) is not None  # a is now the most recently used
    assert cache.put("d", 0, content("d", 0, 1000))
    assert cache.get("b", 0, 10) is None  # b went first
    assert all(cache.get(n, 0, 1000) is not None for n in "acd")
    assert cache.total_bytes() == 3000 and len(span_files(tmp_path)) == 3
    assert cache.put("e", 0, content("e", 0, 2500))
    assert cache.total_bytes() <= 3000
    assert sum(p.stat().st_size for p in span_files(tmp_path)) == cache.total_bytes()


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove"])
def test_a_damaged_or_missing_file_is_a_miss_and_is_dropped(tmp_path: Path, damage) -> None:
    cache = SpanCache(tmp_path, 1 << 20)
    cache.put("a", 0, content("a", 0, 2 * BLOCK))
    (path,) = span_files(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(data[:-1])
    elif damage == "flip":
        data[BLOCK + 3] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    if damage == "flip":  # only the blocks a read touches are checked: block 0 is whole
        assert bytes(cache.get("a", 0, 10)) == content("a", 0, 10)
    assert cache.get("a", BLOCK, 10) is None
    assert cache.get("a", 0, 10) is None and cache.total_bytes() == 0  # dropped
    assert span_files(tmp_path) == []
    assert cache.put("a", 0, content("a", 0, 100)) and bytes(cache.get("a", 0, 100)) == content(
        "a", 0, 100
    )


def test_leftovers_of_a_killed_writer_are_never_served_and_are_swept(
    tmp_path: Path, monkeypatch
) -> None:
    cache = SpanCache(tmp_path, 1 << 20)
    cache.put("a", 0, content("a", 0, 100))
    spans = tmp_path / "spans"
    (spans / ".tmp-half.span").write_bytes(content("b", 0, 50))  # killed before the rename
    (spans / "unlisted.span").write_bytes(content("c", 0, 50))  # killed before the row
    with sqlite3.connect(tmp_path / "spans.sqlite3") as db:  # a row whose file is gone
        db.execute(
            "INSERT INTO spans (url, version, start, end, name, sums, used) "
            "VALUES ('d', '', 0, 50, 'gone.span', x'00', 0)"
        )
    assert all(cache.get(url, 0, 10) is None for url in "bcd")
    assert bytes(cache.get("a", 0, 100)) == content("a", 0, 100)
    monkeypatch.setattr(cache_module, "_STALE_SECONDS", -1.0)
    with sqlite3.connect(tmp_path / "spans.sqlite3") as db:
        db.execute("UPDATE totals SET swept = 0")
    SpanCache(tmp_path, 1 << 20).has("a", 0, 1)  # a new process's first connection sweeps
    assert [p.name for p in span_files(tmp_path)] == [next(iter(span_files(tmp_path))).name]
    assert bytes(cache.get("a", 0, 100)) == content("a", 0, 100)


def test_a_cache_pickles_and_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    cache = SpanCache(tmp_path, 1 << 20)
    cache.put("a", 0, content("a", 0, 100))
    copy = pickle.loads(pickle.dumps(cache))
    assert bytes(copy.get("a", 10, 20)) == content("a", 10, 20)
    if not hasattr(os, "fork"):
        return
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_put_and_get, (cache, "b", 500)) == content("b", 0, 500)
    assert bytes(cache.get("b", 0, 500)) == content("b", 0, 500)


def _put_and_get(cache: SpanCache, url: str, size: int) -> bytes:
    cache.put(url, 0, content(url, 0, size))
    return bytes(cache.get(url, 0, size))


def _hammer(folder: str, max_bytes: int, seed: int, rounds: int) -> int:
    """Random puts and gets of made-up objects; every byte served is checked."""
    cache = SpanCache(folder, max_bytes)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(rounds):
        url = f"obj{rng.integers(4)}"
        start, size = int(rng.integers(0, 200_000)), int(rng.integers(1, 40_000))
        got = cache.get(url, start, size)
        if got is None:
            cache.put(url, start, content(url, start, size))
        else:
            assert bytes(got) == content(url, start, size)
            hits += 1
    return hits


def test_processes_share_the_cache_and_the_budget_holds(tmp_path: Path) -> None:
    max_bytes = 300_000
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        hits = pool.starmap(_hammer, [(str(tmp_path), max_bytes, seed, 300) for seed in range(4)])
    assert sum(hits) > 0
    cache = SpanCache(tmp_path, max_bytes)
    on_disk = sum(p.stat().st_size for p in span_files(tmp_path))
    assert cache.total_bytes() <= max_bytes and on_disk <= max_bytes + 40_000
    assert on_disk == cache.total_bytes()  # no file left behind, none missing


def _write_forever(folder: str, ready: multiprocessing.Event) -> None:
    cache = SpanCache(folder, 1 << 30)
    rng = np.random.default_rng(0)
    while True:
        url = f"obj{rng.integers(8)}"
        start, size = int(rng.integers(0, 1 << 20)), int(rng.integers(1, 1 << 18))
        cache.put(url, start, content(url, start, size))
        ready.set()


def test_a_writer_killed_mid_write_leaves_nothing_that_is_served(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=_write_forever, args=(str(tmp_path), ready))
    child.start()
    try:
        assert ready.wait(30)
        time.sleep(0.2)  # let it get well into the loop; any moment will do
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    assert child.exitcode == -signal.SIGKILL
    cache = SpanCache(tmp_path, 1 << 30)
    with sqlite3.connect(tmp_path / "spans.sqlite3") as db:
        rows = db.execute("SELECT url, start, end FROM spans").fetchall()
    assert rows
    for url, start, end in rows:
        got = cache.get(url, start, end - start)
        assert got is not None and bytes(got) == content(url, start, end - start)


# --- through acumen.open --------------------------------------------------------------------


def _read_in_child(url: str, cache: str, i: int) -> tuple[bytes, int]:
    with acumen.open(url, cache=cache) as ds:
        return ds.read(i).tobytes(), len(ds.storage.paths)


def test_a_second_open_reads_from_the_disk_cache(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "zstd", "arrow"), http_server)
    cache = tmp_path / "cache"
    with acumen.open(url, cache=cache) as ds:
        assert ds.read(17).tobytes() == sample(17).tobytes()
        ds.read_batch(range(N))
    assert span_files(cache / "chunks")
    log = http_server.log
    log.reset()
    with acumen.open(url, cache=cache) as ds:
        log.reset()
        assert ds.read(17).tobytes() == sample(17).tobytes()
        assert [a.tobytes() for a in ds.read_batch(range(0, N, 3))] == [
            sample(i).tobytes() for i in range(0, N, 3)
        ]
        assert [a.tobytes() for a, _ in ds] == [sample(i).tobytes() for i in range(N)]
        assert log.count("GET") == 0
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got, _ = pool.apply(_read_in_child, (url, str(cache), 23))
    assert got == sample(23).tobytes()
    assert [r.path for r in log.records] == ["/ds/manifest.json"]  # the open's only


def test_a_damaged_cache_file_is_fetched_again(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    cache = tmp_path / "cache"
    with acumen.open(url, cache=cache) as ds:
        ds.read(5)
        (path,) = span_files(cache / "chunks")
        path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 0x40]))
        http_server.log.reset()
        assert ds.read(5).tobytes() == sample(5).tobytes()
        assert http_server.log.count("GET") == 1
        http_server.log.reset()
        assert ds.read(5).tobytes() == sample(5).tobytes()
        assert http_server.log.count("GET") == 0  # kept again, whole


def test_a_rewritten_dataset_is_not_served_from_the_cache(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    cache = tmp_path / "cache"
    with acumen.open(url, cache=cache) as ds:
        [ds.read(i) for i in range(N)]
    # The same dataset written again, other values: new manifest, same chunk names.
    with acumen.Writer(tmp_path / "other", codec="raw", index_format="csv") as writer:
        for i in range(N):
            writer.add(sample(i) + 1, label=i, split=("train", "val", "test")[i % 3])
    shutil.rmtree(http_server.root / "ds")
    shutil.copytree(tmp_path / "other", http_server.root / "ds")
    with acumen.open(url, cache=cache) as ds:
        assert all(ds.read(i).tobytes() == (sample(i) + 1).tobytes() for i in range(N))


def test_cache_size_zero_keeps_nothing_on_disk(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    with acumen.open(url, cache=tmp_path / "cache", cache_size=0) as ds:
        assert ds.storage.disk is None
        ds.read_batch(range(N))
        ds.read(3)
    assert not (tmp_path / "cache" / "chunks").exists()


def test_cache_size_bounds_the_disk_cache(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    with acumen.open(url, cache=tmp_path / "cache", cache_size=200) as ds:
        assert ds.storage.disk.max_bytes == 200
        assert [ds.read(i).tobytes() for i in range(N)] == [sample(i).tobytes() for i in range(N)]
        assert ds.storage.disk.total_bytes() <= 200
