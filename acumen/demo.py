"""``acumen demo``: convert a generated dataset with every codec, read it back, print figures.

Everything printed is measured in this run on this machine; nothing is quoted.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import acumen

CODECS = ("raw", "gzip", "zstd", "lz4")
STORAGES = ("mmap", "seek", "memory")


def generate(n: int, seed: int = 0) -> list[tuple[np.ndarray, dict]]:
    """Skeleton-like sequences: float32 (L, 17, 2) with smooth motion, plus metadata."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        length = int(rng.integers(16, 64))
        base = rng.normal(size=(1, 17, 2)).astype(np.float32)
        motion = np.cumsum(rng.normal(scale=0.01, size=(length, 17, 2)), axis=0)
        array = np.round(base + motion, 3).astype(np.float32)
        samples.append((array, {"label": i % 10, "subject": f"s{i % 97:03d}", "score": i / n}))
    return samples


def median_us(call: Callable[[int], object], indices: np.ndarray) -> float:
    times = []
    for i in indices.tolist():
        start = time.perf_counter_ns()
        call(i)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(n_samples: int = 20_000, output: Path | None = None) -> None:
    workdir = Path(output) if output else Path(tempfile.mkdtemp(prefix="acumen-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    samples = generate(n_samples)
    source_bytes = sum(a.nbytes for a, _ in samples)
    rng = np.random.default_rng(1)
    probe = rng.integers(0, n_samples, size=min(n_samples, 20_000))
    print(
        f"acumen {acumen.__version__} demo: {n_samples:,} samples, float32 (L,17,2), "
        f"L in 16..63, {source_bytes / 1e6:.1f} MB of arrays, in {workdir}\n"
    )
    print(
        f"{'codec':<6} {'index':<8} {'write/s':>10} {'on disk':>10} {'ratio':>6}  "
        f"{'ds[i] median µs by storage':<34} check"
    )
    raw_csv = None
    for codec in CODECS:
        for index in ("csv", "parquet"):
            path = workdir / f"{codec}-{index}"
            start = time.perf_counter()
            with acumen.Writer(path, codec=codec, index_format=index) as writer:
                for array, metadata in samples:
                    writer.add(array, **metadata)
            write_rate = n_samples / (time.perf_counter() - start)
            size = folder_bytes(path)
            timings = []
            for storage in STORAGES:
                with acumen.open(path, storage=storage) as ds:
                    timings.append(f"{storage} {median_us(ds.__getitem__, probe):5.1f}")
            with acumen.open(path) as ds:
                ok = all(
                    np.array_equal(ds.read(i), a) and ds.metadata(i) == m
                    for i, (a, m) in enumerate(samples)
                )
            print(
                f"{codec:<6} {index:<8} {write_rate:>10,.0f} {size / 1e6:>8.1f}MB "
                f"{source_bytes / size:>6.2f}  {'  '.join(timings):<34} "
                f"{'all equal' if ok else 'MISMATCH'}"
            )
            if not ok:
                raise SystemExit(f"read-back mismatch in {path}")
            if codec == "raw" and index == "csv":
                raw_csv = path
    _compare_with_original(raw_csv, probe)
    if output is None:
        shutil.rmtree(workdir)


def _compare_with_original(path: Path | None, probe: np.ndarray) -> None:
    try:
        import acumenindexer
    except ImportError:
        print("\n(acumenindexer is not installed: no comparison with the original reader)")
        return
    index = acumenindexer.load_index(str(path / "index.csv"))
    print(f"\nThe original acumenindexer reading acumen's raw/csv output ({path.name}):")
    with acumen.open(path, storage="mmap") as ds:
        for in_memory, ours in ((False, "seek"), (True, "mmap")):
            read = acumenindexer.read_from_index(
                index, dtype=np.float32, chunk_paths=str(path), in_memory=in_memory
            )
            same = all(np.array_equal(read(i)[0], ds.read(i)) for i in probe[:500].tolist())
            with acumen.open(path, storage=ours) as mine:
                theirs_us = median_us(read, probe[:5000])
                ours_us = median_us(mine.__getitem__, probe[:5000])
            print(
                f"  in_memory={in_memory!s:<5}: original {theirs_us:6.1f} µs/sample, acumen "
                f"({ours}) {ours_us:5.1f} µs: {theirs_us / ours_us:4.0f}x faster; "
                f"same arrays: {same}"
            )
