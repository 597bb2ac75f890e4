"""Shuffle quality against window size, from the index alone (``acumen.shuffle_report``).

    .venv/bin/python benchmarks/shuffle_quality.py [--quick] [--out docs/shuffle_quality.png]

Two datasets stored in class order, as a conversion of an image folder (one folder per class)
leaves them, so a window of few chunks holds few classes:

- **digits**: scikit-learn's bundled handwritten digits (1,797 real 8x8 images, 10 classes),
  written as uint8 arrays with ``acumen.Writer``, 16 images (1 KiB) to a chunk file: 113
  chunks, batches of 32, each figure the mean over 50 epochs. Real data, but small: a class
  is 11 chunks and an epoch 56 batches.
- **imagenet-shaped**: an index shaped like ImageNet-1k's training set (about 1.28 M
  encoded JPEGs, 1,000 classes of 1,300 images, one in ten classes of 732 to 1,299, sizes
  log-normal around 110 KB) in 64 MiB chunk files, batches of 256; written straight as an
  index with sparse chunk files (no payload: the report never reads one). ``--quick``: 100
  classes. The same index stored in a random order (labels shuffled before writing) shows
  what shuffling at conversion buys.

For each window (chunks), the report's figures are printed as a table and drawn into
``--out`` (a PNG, drawn with Pillow by ``shuffle_plot.py``). Then the time of one report on
10,000,000 samples (``--quick``: 1,000,000), its index written as ``open_index.py`` writes
one, against the target of a few seconds.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from direct_dataset import sparse_chunks, write_direct
from open_index import CHUNK_BYTES as TIMING_CHUNK_BYTES
from open_index import make_table
from shuffle_plot import draw

import acumen
from acumen.format.index_table import IndexTable
from acumen.format.manifest import ChunkEntry
from acumen.format.metadata import ColumnSpec, MetadataTable
from acumen.format.shapes import ShapeColumn

ROOT = Path(__file__).resolve().parents[1]
CHUNK_BYTES = 64 << 20
#: The figures of a row: (title, how to read it from a report's JSON).
COLUMNS = (
    ("chunks/batch", lambda r: r["chunks_per_batch"]["mean"]),
    ("ahead/window", lambda r: r["bytes_read_ahead"]["mean"]),
    ("TV", lambda r: r["label_tv_distance"]["mean"]),
    ("TV p95", lambda r: r["label_tv_distance"]["p95"]),
    ("TV full", lambda r: r["label_tv_distance"]["full_shuffle"]["mean"]),
    ("pos. corr.", lambda r: r["position_correlation"]["mean"]),
    ("displacement", lambda r: r["displacement"]["mean"]),
)


def digits(folder: Path) -> Path:
    """scikit-learn's digits in class order, 16 images to a chunk file."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    order = np.argsort(labels, kind="stable")  # class by class, as an image folder is
    path = folder / "digits"
    with acumen.Writer(path, chunk_size_bytes=16 * 64, index_format="arrow") as writer:
        for i in order:
            writer.add(images[i].reshape(8, 8).astype(np.uint8), label=int(labels[i]))
    return path


def imagenet_shaped(folder: Path, classes: int, shuffled: bool) -> Path:
    """An index of encoded images shaped like ImageNet-1k's, in class order (or in a random
    order: ``shuffled``)."""
    rng = np.random.default_rng(0)
    per_class = np.where(rng.random(classes) < 0.1, rng.integers(732, 1300, classes), 1300)
    labels = np.repeat(np.arange(classes), per_class)
    n = len(labels)
    sizes = np.clip(rng.lognormal(np.log(110e3), 0.6, n), 2e3, 4e6).astype(np.int64)
    if shuffled:
        labels = labels[rng.permutation(n)]
    name = "imagenet-shuffled" if shuffled else "imagenet"
    return _direct(folder / name, sizes, labels, CHUNK_BYTES)


def _direct(path: Path, sizes: np.ndarray, labels: np.ndarray, chunk_bytes: int) -> Path:
    """A dataset of raw byte strings of ``sizes`` in chunk files of about ``chunk_bytes``,
    written as an index only (sparse chunk files)."""
    n = len(sizes)
    ends = np.cumsum(sizes)
    chunk_ids = ((ends - 1) // chunk_bytes).astype(np.int32)
    _, chunk_ids = np.unique(chunk_ids, return_inverse=True)  # no empty chunk files
    chunk_ids = chunk_ids.astype(np.int32)
    count = int(chunk_ids[-1]) + 1
    firsts = np.searchsorted(chunk_ids, np.arange(count))
    chunk_starts = np.where(firsts > 0, ends[np.maximum(firsts - 1, 0)], 0)
    offsets = ends - sizes - chunk_starts[chunk_ids]
    names = [f"chunks/chunk_{c}.chnk" for c in range(count)]
    specs = [ColumnSpec("label", "int")]
    table = IndexTable(
        names,
        chunk_ids,
        offsets,
        sizes,
        ShapeColumn(n, dims=sizes[:, None]),
        MetadataTable(n, {"label": labels}, specs),
    )
    chunk_sizes = np.bincount(chunk_ids, weights=sizes, minlength=count).astype(np.int64)
    counts = np.bincount(chunk_ids, minlength=count)
    chunks = [
        ChunkEntry(*entry)
        for entry in zip(names, chunk_sizes.tolist(), counts.tolist(), strict=True)
    ]
    sparse_chunks(path, chunks)
    write_direct(path, table, chunks, dtype="uint8", chunk_size_bytes=chunk_bytes)
    return path


def measure(path: Path, windows: list[int], batch_size: int, epochs: int) -> list[dict]:
    """One report per window (``window`` beyond the chunks: the full shuffle)."""
    with acumen.open(path) as ds:
        return [
            acumen.shuffle_report(
                ds, window=w, batch_size=batch_size, by="label", epochs=epochs
            ).to_json()
            for w in windows
        ]


def table(name: str, reports: list[dict]) -> str:
    first = reports[0]
    lines = [
        f"{name}: {first['samples']:,} samples, {first['chunks']:,} chunks, batches of "
        f"{first['batch_size']}, {first['epochs']} epoch(s); full shuffle: chunks/batch "
        f"{first['chunks_per_batch']['full_shuffle']['mean']:.1f}, ahead "
        f"{_size(first['bytes_read_ahead']['full_shuffle']['mean'])}, pos. corr. "
        f"{first['position_correlation']['full_shuffle']['mean']:.4f}, displacement "
        f"{first['displacement']['full_shuffle']['mean']:.3f}",
        "",
        "| window | " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|---:|" + "---:|" * len(COLUMNS),
    ]
    for report in reports:
        cells = []
        for title, value in COLUMNS:
            figure = value(report)
            cells.append(_size(figure) if title.startswith("ahead") else f"{figure:.3f}")
        lines.append(f"| {report['window']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _size(value: float) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if value >= 1 << shift:
            return f"{value / (1 << shift):.1f} {unit}"
    return f"{value:.0f} B"


def timing(folder: Path, n: int) -> tuple[float, float]:
    """Seconds of one report (open included) on an index of ``n`` samples: with ``--by
    label``, then without."""
    table, chunks = make_table(n, False)
    path = folder / "timing"
    sparse_chunks(path, chunks)
    write_direct(path, table, chunks, dtype="<f2", chunk_size_bytes=TIMING_CHUNK_BYTES)
    import pandas  # noqa: F401  (imported here: --by's first use would time its import)

    start = time.perf_counter()
    report = acumen.shuffle_report(path, window=16, batch_size=256, by="label")
    took = time.perf_counter() - start
    assert report.samples == n
    start = time.perf_counter()
    acumen.shuffle_report(path, window=16, batch_size=256)
    return took, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--out", default=str(ROOT / "docs" / "shuffle_quality.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = measure(digits(folder), [1, 2, 4, 8, 16, 32, 64, 113], 32, 10 if args.quick else 50)
        print(table("digits (scikit-learn, real)", small), end="\n\n")
        classes = 100 if args.quick else 1000
        big_path = imagenet_shaped(folder, classes, shuffled=False)
        with acumen.open(big_path) as ds:
            chunks = len(ds.table.chunk_names)
        windows = [2**k for k in range(int(math.log2(chunks)) + 1)] + [chunks]
        big = measure(big_path, windows, 256, 1)
        print(table("imagenet-shaped (synthetic index), class order", big), end="\n\n")
        mixed = measure(imagenet_shaped(folder, classes, shuffled=True), windows, 256, 1)
        print(table("imagenet-shaped, stored in random order", mixed), end="\n\n")
        draw(
            [
                ("digits (scikit-learn, real)", small, []),
                ("imagenet-shaped index", big, mixed),
            ],
            args.out,
        )
        print(f"drawn: {args.out}")
        n = 1_000_000 if args.quick else 10_000_000
        with_label, without = timing(folder, n)
        print(
            f"one report on {n:,} samples (open + order + full-shuffle reference, window 16, "
            f"batches of 256): {with_label:.2f} s with --by label, {without:.2f} s without "
            "(target: a few seconds at 10 M samples)"
        )


if __name__ == "__main__":
    main()
