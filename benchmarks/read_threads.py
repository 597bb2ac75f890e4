"""read_batch on threads (issue 15): does a second thread add what a second core can?

    .venv/bin/python benchmarks/read_threads.py [--quick] [--repeat 3]

Every figure is measured in this run, next to the limit of the same bytes. Four tables:

1. raw ``read_batch`` of 256 random samples within a window of 4 chunk files, from 1 and
   2 threads (each thread its own batches; both on one dataset object, or each on its
   own opened dataset), 1 KiB samples (float16 (32, 16)) and 147 KiB images (uint8
   224x224x3), storages mmap and seek; beside it a memcpy of the same bytes (a batch's
   worth, from a buffer of the window's size) on 1 and 2 threads;
2. compressed batches (zstd, lz4, gzip), the same batches decoded with ``threads=1``,
   ``threads=2`` and the default (``threads=None``), mmap storage;
3. ``ds.batches(256, order=...)`` against a loop of ``read_batch`` over the same order,
   with no consumer, and with one that waits as long per batch as a read takes (a step on a
   GPU: the host waits, the GIL released), where reading ahead can hide the reads;
4. what ``read_batch(out=...)`` saves over a new array per batch (table 1 also has 1 and
   2 threads with ``out=``, each thread its own array, as a loader into pinned memory).

Samples/s are the best of ``--repeat`` runs (runs alternate between the settings, so load
from other processes hits them alike); ratios are of those best figures.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import acumen
from acumen.read.decoding import cpus

BATCH = 256
WINDOW = 4  # chunk files a batch's samples come from
CHUNK = 16 << 20
SIZES = {"1 KiB": ((32, 16), np.float16), "147 KiB": ((224, 224, 3), np.uint8)}


def make(root: Path, label: str, codec: str, count: int) -> Path:
    """``count`` samples of size ``label``, compressible about 2:1 (smooth plus noise)."""
    shape, dtype = SIZES[label]
    path = root / f"{label.replace(' ', '')}-{codec}"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    base = np.linspace(0, 60, int(np.prod(shape))).reshape(shape)
    with acumen.Writer(path, codec=codec, chunk_size_bytes=CHUNK, durable=False) as writer:
        for i in range(count):
            noise = rng.integers(0, 8, size=shape)
            writer.add((base + noise + i % 50).astype(dtype), label=i % 10)
    return path


def window_batches(ds: acumen.Dataset, count: int, seed: int) -> list[np.ndarray]:
    """Batches of BATCH random samples, each within a window of WINDOW chunk files."""
    rng = np.random.default_rng(seed)
    ids = ds.table.chunk_ids
    chunks = int(ids.max()) + 1
    out = []
    for _ in range(count):
        first = int(rng.integers(0, max(1, chunks - WINDOW + 1)))
        low, high = np.searchsorted(ids, [first, first + WINDOW])
        out.append(rng.integers(low, high, BATCH))
    return out


def rate(work: Callable[[int], int], threads: int, seconds: float) -> float:
    """Units per second of ``work(thread)`` (it returns the units it did) run in a loop on
    ``threads`` threads for ``seconds``."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds
    ready = threading.Barrier(threads + 1)

    def loop(t: int) -> None:
        ready.wait()
        done = 0
        while time.perf_counter() < stop:
            done += work(t)
        counts[t] = done

    pool = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def best(settings: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """The best of ``repeat`` runs of each setting, the runs interleaved."""
    got = {name: 0.0 for name in settings}
    for _ in range(repeat):
        for name, measure in settings.items():
            got[name] = max(got[name], measure())
    return got


def reader(
    datasets: list[acumen.Dataset],
    batches: list[list[np.ndarray]],
    own_out: bool = False,
    **options,
):
    """work(t) for rate(): thread t reads its own batches from datasets[t] (or [0]), into
    an array of its own with ``own_out``."""
    position = [0] * len(batches)
    first = datasets[0]
    outs = [np.empty((BATCH, *first.shape), first.dtype) if own_out else None for _ in batches]

    def work(t: int) -> int:
        ds = datasets[t % len(datasets)]
        mine = batches[t]
        out = options.get("out", outs[t])
        ds.read_batch(mine[position[t] % len(mine)], **{**options, "out": out})
        position[t] += 1
        return BATCH

    return work


def memcpy(nbytes: int, pool_bytes: int):
    """work(t) for rate(): a batch's bytes copied from a buffer of ``pool_bytes``."""
    source = np.random.default_rng(0).integers(0, 255, pool_bytes, dtype=np.uint8)
    targets = [np.empty(nbytes, np.uint8) for _ in range(2)]
    spots = (pool_bytes - nbytes) // 4096

    def work(t: int) -> int:
        start = (t * 7919 + int(time.perf_counter_ns() // 1000)) % max(1, spots) * 4096
        np.copyto(targets[t], source[start : start + nbytes])
        return BATCH

    return work


def hashing(t: int) -> int:
    """work(t) for rate(): CPU-bound work with the GIL released (sha256 of 1 MiB): how
    much a second thread can add on this machine right now."""
    hashlib.sha256(_BLOB).digest()
    return 1


_BLOB = bytes(1 << 20)


def others_busy() -> tuple[float, float]:
    """(CPU seconds used by every process, by this one) since the last call: what other
    processes took from this run (Linux; zeros elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields) - fields[3] - fields[4]) / ticks
    own = sum(os.times()[:2])
    return busy, own


def reference(seconds: float, repeat: int) -> None:
    got = best(
        {"1": lambda: rate(hashing, 1, seconds), "2": lambda: rate(hashing, 2, seconds)}, repeat
    )
    print(
        f"reference: sha256 of 1 MiB (GIL released) on 2 threads: {got['2'] / got['1']:.2f}x "
        "one thread (what a second thread can add here now)"
    )


def raw_table(root: Path, counts: dict[str, int], seconds: float, repeat: int) -> None:
    print("\n## 1. raw read_batch, 1 vs 2 threads (samples/s; 256 random in a window of 4 chunks)")
    print(
        "| size | storage | 1 thread | 2 threads, one dataset | 2 threads, two datasets "
        "| 1 thread, out= | 2 threads, out= | memcpy 1 thread | memcpy 2 threads |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, count in counts.items():
        path = make(root, label, "raw", count)
        for storage in ("mmap", "seek"):
            datasets = [acumen.open(path, storage=storage) for _ in range(2)]
            batches = [window_batches(datasets[0], 32, seed) for seed in range(2)]
            nbytes = BATCH * datasets[0].read(0).nbytes
            for t in range(2):  # warm: chunks open, index blocks checked, pages cached
                for b in batches[t]:
                    datasets[t].read_batch(b)
            copy = memcpy(nbytes, min(WINDOW * CHUNK, 64 << 20))
            got = best(
                {
                    "1": lambda d=datasets, b=batches: rate(reader(d[:1], b), 1, seconds),
                    "2 same": lambda d=datasets, b=batches: rate(reader(d[:1], b), 2, seconds),
                    "2 own": lambda d=datasets, b=batches: rate(reader(d, b), 2, seconds),
                    "1 out": lambda d=datasets, b=batches: rate(reader(d[:1], b, True), 1, seconds),
                    "2 out": lambda d=datasets, b=batches: rate(reader(d[:1], b, True), 2, seconds),
                    "copy 1": lambda c=copy: rate(c, 1, seconds),
                    "copy 2": lambda c=copy: rate(c, 2, seconds),
                },
                repeat,
            )
            one = got["1"]
            print(
                f"| {label} | {storage} | {one:,.0f} | {got['2 same']:,.0f} "
                f"({got['2 same'] / one:.2f}x) | {got['2 own']:,.0f} ({got['2 own'] / one:.2f}x) "
                f"| {got['1 out']:,.0f} | {got['2 out']:,.0f} ({got['2 out'] / got['1 out']:.2f}x) "
                f"| {got['copy 1']:,.0f} | {got['copy 2']:,.0f} "
                f"({got['copy 2'] / got['copy 1']:.2f}x) |"
            )
            for ds in datasets:
                ds.close()


def decode_table(root: Path, counts: dict[str, int], seconds: float, repeat: int) -> None:
    print("\n## 2. compressed read_batch: threads=1, 2 and the default (samples/s, mmap)")
    print("| size | codec | threads=1 | threads=2 | default | default threads |")
    print("|---|---|---:|---:|---:|---:|")
    from acumen.read.decoding import default_threads

    for label, count in counts.items():
        for codec in ("zstd", "lz4", "gzip"):
            path = make(root, label, codec, count)
            ds = acumen.open(path)
            batches = [window_batches(ds, 16, seed) for seed in range(1)]
            for b in batches[0]:
                ds.read_batch(b, threads=1)
            got = best(
                {
                    str(threads): lambda th=threads, ds=ds, b=batches: rate(
                        reader([ds], b, threads=th), 1, seconds
                    )
                    for threads in (1, 2, None)
                },
                repeat,
            )
            default = default_threads(ds.codec, ds.read(0).nbytes, BATCH)
            one = got["1"]
            print(
                f"| {label} | {codec} | {one:,.0f} | {got['2']:,.0f} ({got['2'] / one:.2f}x) "
                f"| {got['None']:,.0f} ({got['None'] / one:.2f}x) | {default} |"
            )
            ds.close()


def consume(seconds: float) -> None:
    """A stand-in for a training step on another device: the host waits (GIL released)."""
    if seconds:
        time.sleep(seconds)


def iterate_table(root: Path, counts: dict[str, int], seconds: float, repeat: int) -> None:
    print("\n## 3. ds.batches vs a loop of read_batch (samples/s, mmap, a random order)")
    print("| size | codec | consumer | loop of read_batch | ds.batches |")
    print("|---|---|---|---:|---:|")
    for label, count in counts.items():
        for codec in ("raw", "zstd"):
            ds = acumen.open(make(root, label, codec, count))
            order = np.random.default_rng(1).permutation(len(ds))
            limit = max(BATCH, int(len(order) * min(1.0, seconds)))
            order = order[: limit - limit % BATCH]
            # A consumer that takes as long as a read (a step on a GPU: the host waits).
            start = time.perf_counter()
            for at in range(0, 20 * BATCH, BATCH):
                ds.read_batch(order[at : at + BATCH])
            read_time = (time.perf_counter() - start) / 20
            for name, work in (("none", 0.0), (f"waits {read_time * 1e3:.2f} ms", read_time)):

                def loop(work: float = work, ds: acumen.Dataset = ds, order=order) -> float:
                    start = time.perf_counter()
                    for at in range(0, len(order), BATCH):
                        ds.read_batch(order[at : at + BATCH])
                        consume(work)
                    return len(order) / (time.perf_counter() - start)

                def ahead(work: float = work, ds: acumen.Dataset = ds, order=order) -> float:
                    start = time.perf_counter()
                    for _batch in ds.batches(BATCH, order=order):
                        consume(work)
                    return len(order) / (time.perf_counter() - start)

                got = best({"loop": loop, "ahead": ahead}, repeat)
                print(
                    f"| {label} | {codec} | {name} | {got['loop']:,.0f} "
                    f"| {got['ahead']:,.0f} ({got['ahead'] / got['loop']:.2f}x) |"
                )
            ds.close()


def out_table(root: Path, counts: dict[str, int], seconds: float, repeat: int) -> None:
    print("\n## 4. read_batch(out=...) vs a new array per batch (samples/s, mmap, raw)")
    print("| size | new array | out= |")
    print("|---|---:|---:|")
    for label, count in counts.items():
        ds = acumen.open(make(root, label, "raw", count))
        batches = [window_batches(ds, 32, 0)]
        out = np.empty((BATCH, *ds.shape), ds.dtype)
        got = best(
            {
                "new": lambda ds=ds, b=batches: rate(reader([ds], b), 1, seconds),
                "out": lambda ds=ds, b=batches, o=out: rate(reader([ds], b, out=o), 1, seconds),
            },
            repeat,
        )
        print(
            f"| {label} | {got['new']:,.0f} | {got['out']:,.0f} ({got['out'] / got['new']:.2f}x) |"
        )
        ds.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data, short runs (< 1 min)")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="keep the datasets here")
    parser.add_argument("--tables", default="1234", help="which tables to print (e.g. 23)")
    args = parser.parse_args()
    if args.quick:
        counts, seconds, repeat = {"1 KiB": 70_000, "147 KiB": 500}, 0.25, args.repeat or 2
    else:
        counts, seconds, repeat = {"1 KiB": 200_000, "147 KiB": 1_500}, 1.0, args.repeat or 3
    print(f"# read_threads: {cpus()} CPUs, repeat {repeat}, {seconds} s per run")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        begun = time.perf_counter()
        start_busy, start_own = others_busy()
        reference(seconds, repeat)
        tables = (raw_table, decode_table, iterate_table, out_table)
        for k, table in enumerate(tables, 1):
            if str(k) in args.tables:
                table(root, counts, seconds, repeat)
        reference(seconds, repeat)
        busy, own = others_busy()
        wall = time.perf_counter() - begun
        print(
            f"\n({wall:.0f} s; CPU used by other processes meanwhile: "
            f"{max(0.0, (busy - start_busy) - (own - start_own)) / wall:.2f} cores on average)"
        )


if __name__ == "__main__":
    main()
