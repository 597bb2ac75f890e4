"""Small-sample benchmark: write, open and random/sequential reads, acumen vs the original.

    .venv/bin/python benchmarks/read_write.py [--samples 100000]

Samples are float16 (32, 16) arrays (1 KiB) with two metadata columns. Every figure is
measured in this run: median microseconds per random read over the same random indices
(warm page cache, one thread), and samples per second for writing and iterating.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import acumen

CODECS = ("raw", "gzip", "zstd", "lz4")
STORAGES = ("mmap", "seek", "memory")


def median_us(call: Callable[[int], object], indices: list[int]) -> float:
    times = []
    clock = time.perf_counter_ns
    for i in indices:
        start = clock()
        call(i)
        times.append(clock() - start)
    return statistics.median(times) / 1000


def make_samples(n: int) -> list[tuple[np.ndarray, dict]]:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(n, 32, 16)).astype(np.float16)
    return [(data[i], {"label": i % 10, "split": "train" if i % 5 else "val"}) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=20_000)
    args = parser.parse_args()
    samples = make_samples(args.samples)
    probe = np.random.default_rng(1).integers(0, args.samples, args.reads).tolist()
    rows: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for codec in CODECS:
            path = root / codec
            start = time.perf_counter()
            with acumen.Writer(path, codec=codec, chunk_size_bytes=64 << 20) as writer:
                for array, metadata in samples:
                    writer.add(array, **metadata)
            rows.append(
                (f"write {codec}", "samples/s", args.samples / (time.perf_counter() - start))
            )
        start = time.perf_counter()
        acumen.open(root / "raw").close()
        rows.append(("open raw/csv", "ms", (time.perf_counter() - start) * 1000))
        for storage in STORAGES:
            with acumen.open(root / "raw", storage=storage) as ds:
                rows.append((f"ds[i] raw {storage}", "µs", median_us(ds.__getitem__, probe)))
                rows.append((f"ds.read(i) raw {storage}", "µs", median_us(ds.read, probe)))
        with acumen.open(root / "raw") as ds:
            start = time.perf_counter()
            for _ in ds:
                pass
            rows.append(("iterate raw mmap", "samples/s", len(ds) / (time.perf_counter() - start)))
        for codec in CODECS[1:]:
            with acumen.open(root / codec) as ds:
                rows.append((f"ds[i] {codec} mmap", "µs", median_us(ds.__getitem__, probe)))
        rows += original_rows(root, samples, probe)
    width = max(len(name) for name, _, _ in rows)
    print(f"{args.samples:,} samples of float16 (32, 16); {len(probe):,} random reads\n")
    for name, unit, value in rows:
        print(f"{name:<{width}}  {value:>12,.1f} {unit}")


def original_rows(root: Path, samples: list, probe: list[int]) -> list[tuple[str, str, float]]:
    try:
        import acumenindexer
    except ImportError:
        return []
    rows = []
    path = root / "original"
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        acumenindexer.split_into_chunks(samples, str(path), n_jobs=1, chunk_size_bytes=64 << 20)
    rows.append(
        ("original write (n_jobs=1)", "samples/s", len(samples) / (time.perf_counter() - start))
    )
    start = time.perf_counter()
    index = acumenindexer.load_index(str(path / "index.csv"))
    rows.append(("original open", "ms", (time.perf_counter() - start) * 1000))
    for in_memory in (False, True):
        read = acumenindexer.read_from_index(index, chunk_paths=str(path), in_memory=in_memory)
        rows.append((f"original read in_memory={in_memory}", "µs", median_us(read, probe[:5000])))
    return rows


if __name__ == "__main__":
    main()
