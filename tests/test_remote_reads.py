"""How fast remote reads are made, and that they stay right: which GETs a batch becomes
(coalescing by the batch's density), the iteration's read-ahead (several blocks in flight),
the disk cache's hits (mapped, checked) and its background writes."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.files import cache as cache_module
from acumen.files.cache import SpanCache
from acumen.files.cache_writes import BackgroundWrites
from acumen.files.remote import RemoteStore
from acumen.storage import _coalesce
from acumen.storage._costs import DEFAULT, Costs, Learned, predict
from acumen.storage.remote import RemoteStorage


def _object(http_server, name: str, size: int) -> tuple[str, bytes]:
    data = np.random.default_rng(len(name)).integers(0, 256, size, dtype=np.uint8).tobytes()
    (http_server.root / name).write_bytes(data)
    return http_server.url(name), data


def _sparse(count: int, size: int = 100) -> list[tuple[int, int, int]]:
    """``count`` ranges of ``size`` bytes, the k-th gap 5000 + 100 k bytes (all distinct)."""
    requests, at = [], 0
    for k in range(count):
        requests.append((0, at, size))
        at += size + 5000 + 100 * k
    return requests


# --- coalescing -----------------------------------------------------------------------------
#: A fast server on a slow link, and a slow server with a long round trip.
FAST = Costs(rtt=0.001, rate=1e5, bandwidth=1e7)
SLOW = Costs(rtt=0.05, rate=100.0, bandwidth=1e8)


def _gets_and_bytes(spans) -> tuple[int, int]:
    return len(spans), sum(end - start for _, start, end, _ in spans)


def test_the_gets_of_a_batch_follow_what_requests_cost() -> None:
    """The smallest gaps merge while the predicted time falls: a slow server (few GETs per
    second, long round trips) merges more, a fast one on a slow link less; the plan's
    predicted time is the least of every choice of how many smallest gaps to merge."""
    requests = _sparse(40, 1000)[::-1]
    gaps = [5000 + 100 * k for k in range(39)]
    every = range(len(requests))
    counts = {}
    medium = Costs(rtt=0.03, rate=1e5, bandwidth=2e6)
    for name, costs in {"fast": FAST, "medium": medium, "slow": SLOW}.items():
        for max_requests in (4, 64):
            gets, nbytes = _gets_and_bytes(
                _coalesce.plan(requests, every, max_requests, costs=costs)
            )
            options = [
                predict(costs, 40 - k, 40_000 + sum(gaps[:k]), max_requests) for k in range(40)
            ]
            assert nbytes == 40_000 + sum(gaps[: 40 - gets])  # the smallest gaps merged
            assert predict(costs, gets, nbytes, max_requests) == min(options)
            counts[name, max_requests] = gets
    assert counts["fast", 4] == counts["fast", 64] == 40  # a gap's bytes cost more than a GET
    assert counts["slow", 4] == counts["slow", 64] == 1
    # Fewer requests in flight: more waves of round trips, more merged.
    assert 1 < counts["medium", 4] < counts["medium", 64] == 40
    # A round trip of 1 s buys at most 1 s of bytes: merging stops there, however slow.
    slow_trip = Costs(rtt=1.0, rate=1e5, bandwidth=100_000)
    gets, nbytes = _gets_and_bytes(_coalesce.plan(requests, every, 4, costs=slow_trip))
    assert 1 < gets < 40
    assert (nbytes - 40_000) / 100_000 <= (10 - -(-gets // 4)) * 1.0 + (40 - gets) / 1e5


def test_plan_keeps_its_limits_whatever_the_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges 4 KiB apart always share a GET; never across MAX_GAP; a long run in parts;
    a fixed gap overrides the costs."""
    close = [(0, 300_000 + 1100 * k, 100) for k in range(10)]
    assert len(_coalesce.plan(close, range(10), 64, costs=FAST)) == 1
    far = [(0, k * (9 << 20), 100) for k in range(5)]  # 9 MiB apart
    assert len(_coalesce.plan(far, range(5), 1, costs=Costs(5.0, 10.0, 20e9))) == 5
    requests = _sparse(40)
    for gap, gets in ((0, 40), (1 << 20, 1)):
        for costs in (FAST, SLOW):
            assert len(_coalesce.plan(requests, range(40), 4, gap, costs=costs)) == gets
    monkeypatch.setattr(_coalesce, "PART", 2000)
    run = [(0, 500_000 + 100 * k, 100) for k in range(50)]
    assert [(s, e) for _, s, e, _ in _coalesce.plan(run, range(50), 64, costs=FAST)] == [
        (500_000, 502_000),
        (502_000, 504_000),
        (504_000, 505_000),
    ]


def test_a_store_learns_its_costs_and_merges_more_on_a_slow_link(
    http_server, http_fault_proxy
) -> None:
    """A storage that guesses a fast server learns, from its own GETs' timings, that each
    takes 0.15 s (the proxy's delay): the next batch takes fewer GETs, its bytes right."""
    _, data = _object(http_server, "c0", 4 << 20)
    proxy = http_fault_proxy
    proxy.delay = 0.15
    storage = RemoteStorage([proxy.url("c0")], max_requests=4)
    storage.costs = Learned(Costs(rtt=0.001, rate=1e5, bandwidth=1e7))
    batches = [[(0, k * 200_000 + j * 1000, 1000) for k in range(16)] for j in (0, 7, 13)]
    gets = []
    for batch in batches:
        proxy.log.reset()
        assert [bytes(g) for g in storage.read_many(batch)] == [
            data[o : o + s] for _, o, s in batch
        ]
        gets.append(proxy.log.count("GET"))
    assert gets[0] == 16  # guessed: a gap of 200 kB costs more than a round trip
    assert storage.costs.costs.rtt >= 0.15  # learned
    assert gets[2] <= gets[1] < 16
    assert sum(len(b) for b in batches) == 48


def test_costs_are_learned_from_timings() -> None:
    """The round trip from the fastest small GET; the request rate and the bandwidth fitted
    to batches' wall times, told apart by batches of different shapes."""
    trips = Learned(DEFAULT)
    for seconds in (0.02, 0.2, 0.2):  # the mean of the first samples (log space)
        trips.observe(seconds, [(seconds, 100)], 64)
    assert trips.costs.rtt == pytest.approx((0.02 * 0.2 * 0.2) ** (1 / 3))
    trips.observe(0.02, [(0.02, 100)], 64)  # then each moves it by its share
    assert trips.costs.rtt == pytest.approx((0.02 * 0.2 * 0.2) ** (0.7 / 3) * 0.02**0.3)
    before = trips.costs.rtt
    trips.observe(0.5, [(0.3, 100), (0.5, 64 << 20)], 64)  # waited for the other's bytes
    assert trips.costs.rtt == before
    # A server of 20 ms, 300 GETs/s and 400 MB/s, read by batches of several shapes.
    true = Costs(rtt=0.02, rate=300.0, bandwidth=400e6)
    learned = Learned(DEFAULT)
    shapes = [(256, 1024), (24, 2_000_000), (64, 100_000), (4, 8_000_000)] * 3
    for gets, size in shapes:
        seconds = predict(true, gets, 100 + (gets - 1) * size, 64)
        learned.observe(seconds, [(0.02, 100)] + [(seconds, size)] * (gets - 1), 64)
    assert learned.costs.rtt == pytest.approx(0.02)  # from the batches of small GETs
    assert learned.costs.rate == pytest.approx(300, rel=0.05)
    assert learned.costs.bandwidth == pytest.approx(400e6, rel=0.05)
    # Batches of one shape: the prediction of that shape comes right.
    same = Learned(DEFAULT)
    for _ in range(5):
        same.observe(predict(true, 64, 64e5, 64), [(0.02, 100)] + [(0.1, 100_000)] * 63, 64)
    assert predict(same.costs, 64, 64e5, 64) == pytest.approx(predict(true, 64, 64e5, 64), 0.1)


# --- the iteration's read-ahead -------------------------------------------------------------
def _dataset(tmp_path: Path, http_server, n: int = 200) -> str:
    with acumen.Writer(tmp_path / "local", codec="raw", chunk_size_bytes=16384) as writer:
        for i in range(n):
            writer.add(np.full(64, i, dtype=np.float32), label=i)
    shutil.copytree(tmp_path / "local", http_server.root / "ds")
    return "ds"


def test_iteration_keeps_several_blocks_in_flight(
    tmp_path: Path, http_server, http_fault_proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one block's GET stalls, the blocks after it are being fetched: the read-ahead
    does not wait for one GET before it sends the next. The stalled GET is retried and every
    sample comes out right, in order."""
    import acumen.read.sample

    monkeypatch.setattr(acumen.read.sample, "AHEAD_BLOCK", 2048)
    monkeypatch.setattr(acumen.read.sample, "AHEAD_BYTES", 16384)
    name = _dataset(tmp_path, http_server)
    proxy = http_fault_proxy
    with acumen.open(proxy.url(name), cache=tmp_path / "cache", cache_size=0) as ds:
        proxy.log.reset()
        proxy.inject("stall", method="GET", seconds=30)
        got: list = []
        reader = threading.Thread(
            target=lambda: got.extend((int(a[0]), m["label"]) for a, m in ds), daemon=True
        )
        reader.start()
        deadline = time.monotonic() + 20
        while proxy.log.count("GET") < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        in_flight = proxy.log.count("GET")
        proxy.clear()  # the stalled GET's connection closes: retried
        reader.join(20)
        assert in_flight >= 5, "no GET was sent while the first one stalled"
        assert got == [(i, i) for i in range(200)]


def test_iteration_without_memory_to_read_ahead_reads_runs(tmp_path: Path, http_server) -> None:
    name = _dataset(tmp_path, http_server)
    storage = {"name": "remote", "configuration": {"cache_bytes": 0}}
    with acumen.open(
        http_server.url(name), cache=tmp_path / "cache", cache_size=0, storage=storage
    ) as ds:
        http_server.log.reset()
        assert [int(a[0]) for a, _ in ds] == list(range(200))
        assert http_server.log.count("GET") <= 2 * len(ds.storage.paths)  # not one per sample


def test_iteration_and_batches_are_right_under_faults(
    tmp_path: Path, http_server, http_fault_proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    import acumen.read.sample

    monkeypatch.setattr(acumen.read.sample, "AHEAD_BLOCK", 4096)
    name = _dataset(tmp_path, http_server)
    proxy = http_fault_proxy
    with acumen.open(proxy.url(name), cache=tmp_path / "cache") as ds:
        proxy.inject("short", times=2, method="GET", size=100)
        proxy.inject("reset", times=2, method="GET", size=10)
        proxy.inject("long", times=1, method="GET", size=8)
        assert [(int(a[0]), m["label"]) for a, m in ds] == [(i, i) for i in range(200)]
        proxy.inject("short", times=2, method="GET", size=100)
        batch = ds.read_batch(np.arange(199, 0, -7))
        assert batch[:, 0].tolist() == list(range(199, 0, -7))
    with acumen.open(proxy.url(name), cache=tmp_path / "cache") as ds:  # from the disk cache
        proxy.log.reset()
        assert [int(a[0]) for a, _ in ds] == list(range(200))
        assert proxy.log.count("GET") == 0


# --- the disk cache: hits and background writes ---------------------------------------------
def test_a_hit_on_a_span_read_before_asks_no_query_and_each_block_is_checked_once_per_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "_TOUCH_EVERY", 3600.0)
    data = bytes(range(256)) * 1024  # 256 KiB: 8 blocks
    cache = SpanCache(tmp_path / "c", 1 << 30)
    assert cache.put("u", 1000, data, "v")
    assert bytes(cache.get("u", 1000 + 5, 100, "v")) == data[5:105]
    statements: list[str] = []
    cache.db.set_trace_callback(statements.append)
    for at in range(0, 100_000, 4099):  # blocks 0-3 of the file
        assert bytes(cache.get("u", 1000 + at, 1000, "v")) == data[at : at + 1000]
    assert statements == []
    # The file damaged in place after it was mapped, in a block not read yet (6) and in one
    # read before (2): the first read of block 6 sees it, and the span is dropped; another
    # process (a new mapping) checks block 2 again and sees it.
    (path,) = (tmp_path / "c" / "spans").iterdir()
    other = SpanCache(tmp_path / "c", 1 << 30)
    assert bytes(other.get("u", 1000 + 190_000, 10, "v")) == data[190_000:190_010]  # block 6
    with open(path, "r+b") as handle:
        for at in (70_000, 200_000):
            handle.seek(at)
            handle.write(bytes([data[at - 1000] ^ 1]))
    assert cache.get("u", 1000 + 150_000, 10, "v") is not None  # block 4: still right
    assert cache.get("u", 199_500, 10, "v") is None  # block 6, first read through this map
    assert not path.exists()
    assert cache.get("u", 1000, 10, "v") is None
    assert other.get("u", 69_995, 10, "v") is None  # block 2 through other's map: a miss
    assert other.get("u", 1000 + 190_000, 10, "v") is None  # its row is gone too


def test_a_span_evicted_by_another_process_is_never_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "MAPPED", 1)
    first, second = SpanCache(tmp_path / "c", 1 << 30), SpanCache(tmp_path / "c", 1 << 30)
    a, b = b"a" * 5000, b"b" * 5000
    first.put("u", 0, a, "v")
    first.put("u", 10_000, b, "v")
    assert bytes(first.get("u", 10, 20, "v")) == a[10:30]  # mapped
    second.clear()  # another process evicts both spans
    assert not list((tmp_path / "c" / "spans").iterdir())
    assert bytes(first.get("u", 10, 20, "v")) == a[10:30]  # the mapped file: right bytes
    assert first.get("u", 10_010, 20, "v") is None  # its file gone: a miss
    assert first.put("u", 20_000, b"c" * 5000, "v")
    assert bytes(first.get("u", 20_000, 5, "v")) == b"ccccc"  # mapped, the other one not
    assert first.get("u", 10, 20, "v") is None  # its file gone: a miss
    assert first.total_bytes() == 5000


class _GatedCache(SpanCache):
    """A SpanCache whose writes wait for ``gate``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()

    def put_many(self, *args, **kwargs) -> int:
        assert self.gate.wait(20)
        return super().put_many(*args, **kwargs)


def test_background_writes_serve_what_waits_and_bound_what_waits(tmp_path: Path) -> None:
    cache = _GatedCache(tmp_path / "c", 1 << 30)
    writes = BackgroundWrites(cache, bound=1000, threads=1)
    writes.put("u", 0, b"x" * 600, "v")  # returns at once, not written yet
    assert bytes(writes.get("u", 100, 10, "v")) == b"x" * 10
    assert writes.get("u", 100, 10, "other version") is None
    assert cache.get("u", 100, 10, "v") is None
    second = threading.Thread(target=writes.put, args=("u", 1000, b"y" * 600, "v"))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # 1200 bytes would wait: it waits for room
    cache.gate.set()
    second.join(20)
    writes.flush()
    assert bytes(cache.get("u", 1000, 600, "v")) == b"y" * 600
    assert bytes(cache.get("u", 0, 600, "v")) == b"x" * 600
    assert writes.get("u", 100, 10, "v") is None  # written: nothing waits


def test_s3_has_as_many_requests_in_flight_as_max_requests(s3_fault_proxy) -> None:
    """s3fs's client opens 10 connections unless told: the store asks for max_requests."""
    import fsspec

    from acumen.files.remote import RemoteStore

    proxy = s3_fault_proxy
    url = f"s3://{proxy.bucket}/object"
    data = bytes(range(256)) * 200
    fsspec.filesystem("s3", **proxy.storage_options).pipe_file(url, data)
    store = RemoteStore(f"s3://{proxy.bucket}", proxy.storage_options, max_requests=32)
    proxy.log.reset()
    proxy.inject("stall", times=30, method="GET", seconds=30)
    got: list = []
    starts = [1000 * k for k in range(30)]
    reader = threading.Thread(
        target=lambda: got.append(store.read_ranges([url] * 30, starts, [100] * 30, "x")),
        daemon=True,
    )
    reader.start()
    deadline = time.monotonic() + 20
    while proxy.log.count("GET") < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    in_flight = proxy.log.count("GET")
    proxy.clear()  # the stalled connections close: retried
    reader.join(60)
    assert in_flight == 30
    assert got == [[data[s : s + 100] for s in starts]]


def test_the_rows_a_process_remembers_answer_as_the_database_would() -> None:
    """KnownRows keeps no row inside another, so one bisect answers: compared with every
    row scanned, on random spans."""
    import random

    from acumen.files.cache_rows import KnownRows

    rng = random.Random(0)
    for _ in range(200):
        known, spans = KnownRows(), []
        for rowid in range(rng.randint(1, 30)):
            first = rng.randint(0, 1000)
            spans.append((rowid, first, first + rng.randint(1, 300), f"n{rowid}", b""))
            known.add(("u", "v"), spans[-1])
        for _ in range(50):
            start, size = rng.randint(0, 1200), rng.randint(1, 100)
            row = known.covering(("u", "v"), start, size)
            assert (row is not None) == any(
                a <= start and start + size <= b for _, a, b, *_ in spans
            )
            assert row is None or (row[1] <= start and start + size <= row[2])
        known.forget({name for _, _, _, name, _ in spans})
        assert known.covering(("u", "v"), 0, 1) is None


def test_a_stalled_get_is_cut_at_its_deadline_and_tried_again(http_server, http_fault_proxy):
    """A GET whose connection stalls (no byte for 30 s here) is cut at acumen's deadline
    (timeout + a second per MiB) and sent again: the read returns the right bytes without
    waiting for the stall, and the log shows the second GET."""
    data = bytes(range(256)) * 20
    (http_server.root / "c").write_bytes(data)
    proxy = http_fault_proxy
    proxy.inject("stall", method="GET", seconds=30)
    store = RemoteStore(proxy.base_url, timeout=0.3, backoff=0.001)
    started = time.monotonic()
    got = store.read_range(proxy.url("c"), 100, 50, "chunk file")
    took = time.monotonic() - started
    proxy.clear()
    assert bytes(got) == data[100:150]
    assert took < 10, took
    assert proxy.log.count("GET") == 2


def test_a_batch_never_fetches_more_than_sixteen_times_its_bytes() -> None:
    """However slow requests are, a batch's GETs carry at most MAX_OVERREAD times its own
    bytes (what is fetched also fills the caches and a metered link bills it)."""
    from acumen.storage._coalesce import MAX_OVERREAD, OVERREAD_FLOOR, plan

    rng = np.random.default_rng(0)
    offsets = np.sort(rng.choice(100_000, 256, replace=False)) * 1024
    requests = [(0, int(o), 1024) for o in offsets]
    very_slow = Costs(rtt=0.05, rate=5.0, bandwidth=1e10)  # 5 GETs/s, bytes free
    gets = plan(requests, range(256), 64, costs=very_slow)
    fetched = sum(end - start for _, start, end, _ in gets)
    assert fetched <= max(MAX_OVERREAD * 256 * 1024, OVERREAD_FLOOR)
    assert len(gets) < 256  # it still merged what it could
    assert sorted(n for *_, members in gets for n in members) == list(range(256))
