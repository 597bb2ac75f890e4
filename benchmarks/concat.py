"""What joining datasets costs: ``acumen.open_many`` (a view) and ``acumen.concat`` (links).

    .venv/bin/python benchmarks/concat.py [--quick] [--samples N] [--parts K]

Writes K datasets of N raw float32 samples of shape (16,) (64 bytes, 1 MiB chunks, the
arrow index, an int and a str metadata column) into a temporary folder, then prints the
median of a few runs of: opening the parts one by one, ``open_many`` over them (the joined
index built once), ``concat`` with hard links and with ``link=False`` (copies), and
opening the concatenation; then single-sample reads (random order) and 256-sample
``read_batch`` calls on the view against the same reads on one part (microseconds per
sample). ``--quick``: N = 100,000 (under a minute); default N = 1,000,000.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import acumen


def timed(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def write(path: Path, k: int, n: int) -> None:
    rows = np.arange(n, dtype=np.float32)[:, None] + np.zeros(16, np.float32) + k * n
    with acumen.Writer(
        path, codec="raw", index_format="arrow", chunk_size_bytes=1 << 20, durable=False
    ) as writer:
        for i in range(n):
            writer.add(rows[i], label=i, split="train")


def per_sample(ds: acumen.Dataset, order: np.ndarray) -> float:
    read = ds.read
    began = time.perf_counter()
    for i in order.tolist():
        read(i)
    return (time.perf_counter() - began) / len(order) * 1e6


def per_batch(ds: acumen.Dataset, order: np.ndarray) -> float:
    out = np.empty((256, 16), np.float32)
    began = time.perf_counter()
    for at in range(0, len(order) - 255, 256):
        ds.read_batch(order[at : at + 256], out=out, threads=1)
    return (time.perf_counter() - began) / (len(order) // 256 * 256) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--parts", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.samples or (100_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        paths = [root / f"part{k}" for k in range(args.parts)]
        began = time.perf_counter()
        for k, path in enumerate(paths):
            write(path, k, n)
        print(f"{args.parts} parts of {n:,} samples written in {time.perf_counter() - began:.1f} s")

        def show(label: str, run: Callable[[], object]) -> None:
            print(f"{label:21s}{timed(run, args.repeats) * 1e3:8.1f} ms")

        def concat(link: bool) -> None:
            out = root / "out"
            shutil.rmtree(out, ignore_errors=True)
            acumen.concat(paths, out, link=link)

        show("open each part:", lambda: [acumen.open(p) for p in paths])
        show("open_many:", lambda: acumen.open_many(paths))
        show("concat (links):", lambda: concat(True))
        show("concat (link=False):", lambda: concat(False))
        show("open the concat:", lambda: acumen.open(root / "out"))
        view, one = acumen.open_many(paths), acumen.open(paths[0])
        joined = acumen.open(root / "out")  # the same samples as the view, one dataset
        rng = np.random.default_rng(0)
        count = min(200_000, n)
        for name, ds in (("one part", one), ("concat dataset", joined), ("open_many view", view)):
            order = rng.integers(0, len(ds), count)
            per_sample(ds, order[:1000])  # first touches: maps, index checks
            ds.check_index()
            print(
                f"{name:15s} read(i): {per_sample(ds, order):6.2f} us/sample   "
                f"read_batch(256): {per_batch(ds, order):6.3f} us/sample"
            )


if __name__ == "__main__":
    main()
