"""Small-sample benchmark: write, open and random/sequential/batch reads, acumen vs the original.

    .venv/bin/python benchmarks/read_write.py [--samples 100000] [--images 2000]

Samples are float16 (32, 16) arrays (1 KiB) with two metadata columns. Every figure is
measured in this run: median microseconds per random read over the same random indices
(warm page cache, one thread), samples per second for writing (``add`` per sample, the
final ``close`` included) and iterating, and GB/s of array bytes for ``read_batch`` of 256
random samples (median of 50 batches; a numpy memmap's fancy index of the same rows
beside it).

Writing images (``--images``, uint8 224x224x3, raw) is measured with ``durable=True`` (the
default: every chunk fsynced) and ``durable=False``, next to what this disk takes when a
file is written and fsynced (256 MiB), since the durable figure cannot exceed that.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import acumen

CODECS = ("raw", "gzip", "zstd", "lz4")
BATCH = 256
STORAGES = ("mmap", "seek", "memory")


def median_us(call: Callable[[Any], object], arguments: list) -> float:
    """Median µs of ``call(a)`` over ``arguments`` (indices, or batches of them)."""
    times = []
    clock = time.perf_counter_ns
    for i in arguments:
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
    parser.add_argument("--images", type=int, default=0, help="also time writing N images")
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
        for name, options in (
            ("write raw, durable=False", {"durable": False}),
            ("write raw, arrow index", {"index_format": "arrow"}),
        ):
            start = time.perf_counter()
            with acumen.Writer(root / name, chunk_size_bytes=64 << 20, **options) as writer:
                for array, metadata in samples:
                    writer.add(array, **metadata)
            rows.append((name, "samples/s", args.samples / (time.perf_counter() - start)))
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
        rows += batch_rows(root, samples)
        rows += original_rows(root, samples, probe)
        if args.images:
            rows += image_write_rows(root, args.images)
    width = max(len(name) for name, _, _ in rows)
    print(f"{args.samples:,} samples of float16 (32, 16); {len(probe):,} random reads\n")
    for name, unit, value in rows:
        print(f"{name:<{width}}  {value:>12,.1f} {unit}")


def batch_rows(root: Path, samples: list) -> list[tuple[str, str, float]]:
    """read_batch of BATCH random distinct samples, in GB/s of array bytes."""
    rng = np.random.default_rng(2)
    batches = [rng.choice(len(samples), BATCH, replace=False) for _ in range(50)]
    nbytes = BATCH * samples[0][0].nbytes
    rows = []
    for storage in STORAGES:
        with acumen.open(root / "raw", storage=storage) as ds:
            seconds = median_us(ds.read_batch, batches) / 1e6
            rows.append((f"read_batch({BATCH}) raw {storage}", "GB/s", nbytes / seconds / 1e9))
    for codec in CODECS[1:]:
        with acumen.open(root / codec) as ds:
            seconds = median_us(ds.read_batch, batches) / 1e6
            rows.append((f"read_batch({BATCH}) {codec} mmap", "GB/s", nbytes / seconds / 1e9))
    memmap_path = root / "memmap.npy"
    stacked = np.stack([array for array, _ in samples])
    np.save(memmap_path, stacked)
    memmap = np.load(memmap_path, mmap_mode="r")
    np.asarray(memmap).sum()  # page it in, as the chunk files are
    seconds = median_us(lambda idx: memmap[idx], batches) / 1e6
    rows.append((f"numpy memmap[idx] ({BATCH})", "GB/s", nbytes / seconds / 1e9))
    return rows


def image_write_rows(root: Path, count: int) -> list[tuple[str, str, float]]:
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(16)]
    total = count * images[0].nbytes
    rows = []
    for durable in (True, False):
        start = time.perf_counter()
        with acumen.Writer(root / f"images-{durable}", durable=durable) as writer:
            for k in range(count):
                writer.add(images[k % len(images)], label=k)
        seconds = time.perf_counter() - start
        rows.append((f"write images raw, durable={durable}", "MB/s", total / seconds / 1e6))
    block = rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    start = time.perf_counter()
    with open(root / "disk-probe", "wb") as file:
        for _ in range(256):
            file.write(block)
        file.flush()
        os.fsync(file.fileno())
    rows.append(
        ("disk: 256 MiB written + fsync", "MB/s", 256 * 2**20 / 1e6 / (time.perf_counter() - start))
    )
    return rows


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
