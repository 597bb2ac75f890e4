"""Delete, read after a delete, compact: issue 16's targets at 10 million samples.

    .venv/bin/python benchmarks/versions_ops.py [--quick] [--samples N] [--reads 100000]

Builds a dataset of ``N`` (default 10,000,000; ``--quick``: 1,000,000) raw int32 samples
of shape (1,) (sample ``i`` holds ``i``), an ``arrow`` index with one int metadata column
(``label = i % 100``), 4 MiB chunk files, written directly (chunk bytes with numpy, the
index with the format's ``write``, checksums recorded) so the build takes seconds. Then:

- ``delete 1% (first change)``: ``acumen.delete(indices=...)`` of 1% random samples on the
  write-once dataset (includes making it version 1, which reads its index once);
- ``delete 1% (versioned)``: another 1% on the versioned dataset; ``delete 1% (where)``:
  ``where="label == 7"`` (then 8, then 9: opens the dataset to evaluate the condition);
- reads after the deletes, against a plain dataset of the same live samples written at
  once: the open (median of 3), ``ds.read(i)`` at random indices (per-read mean) and
  ``read_batch`` of 256 random indices (per-batch mean), medians of 7 passes that
  alternate between the two datasets (so that a shared machine's noise falls on both);
- ``compact`` (default ``min_live=0.5``: the index made one segment, no chunk rewritten),
  ``compact min_live=1.0`` (every chunk holding a deleted sample rewritten), and
  ``vacuum``.

Before timing, ``--warm GiB`` of memory (default 2; 0 to skip) is touched once and freed:
in a virtual machine the first touch of guest memory is slow (seconds per GiB) and would
otherwise land at random on whichever step first needs fresh pages (deletes by condition
measured 0.3 to 3 s without it, 0.24 to 0.41 s with it).

Every figure is printed next to its target (issue 16: delete 1% of 10M <= 1 s; reads after
it <= 1.2x a plain read). The machine may be shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from direct_dataset import write_direct

import acumen
from acumen.format.checksums import bytes_checksum
from acumen.format.index_table import IndexTable
from acumen.format.manifest import ChunkEntry
from acumen.format.metadata import ColumnSpec, MetadataTable
from acumen.format.shapes import ShapeColumn

CHUNK_BYTES = 4 << 20
SPECS = [ColumnSpec("label", "int")]


def build(root: Path, values: np.ndarray) -> float:
    """A dataset of raw int32 samples ``values`` (shape (1,)); the seconds it took."""
    start = time.perf_counter()
    n = len(values)
    per_chunk = CHUNK_BYTES // 4
    chunk_ids = (np.arange(n) // per_chunk).astype(np.int32)
    offsets = (np.arange(n) % per_chunk).astype(np.int64) * 4
    names = [f"chunks/chunk_{c}.chnk" for c in range((n + per_chunk - 1) // per_chunk)]
    (root / "chunks").mkdir(parents=True)
    data = values.astype("<i4")
    chunks = []
    for c, name in enumerate(names):
        payload = data[c * per_chunk : (c + 1) * per_chunk].tobytes()
        (root / name).write_bytes(payload)
        chunks.append(ChunkEntry(name, len(payload), len(payload) // 4, bytes_checksum(payload)))
    metadata = MetadataTable(n, {"label": (values % 100).astype(np.int64)}, SPECS)
    table = IndexTable(
        names, chunk_ids, offsets, np.full(n, 4), ShapeColumn(n, fixed=(1,)), metadata
    )
    write_direct(root, table, chunks, dtype="<i4", chunk_size_bytes=CHUNK_BYTES)
    return time.perf_counter() - start


def seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def compared(
    roots: list[Path], indices: list[int], batches: list[np.ndarray], passes: int = 7
) -> list[dict[str, float]]:
    """Open time, per-read and per-batch means of each dataset: the passes alternate
    between the datasets (a shared machine's noise falls on both), medians kept."""
    figures: list[dict[str, list[float]]] = [{} for _ in roots]
    for _ in range(3):
        for root, figure in zip(roots, figures, strict=True):
            start = time.perf_counter()
            acumen.open(root).close()
            figure.setdefault("open", []).append(time.perf_counter() - start)
    datasets = [acumen.open(root) for root in roots]
    for ds in datasets:  # first use checks index blocks and maps chunks: not compared
        for batch in batches:
            ds.read_batch(batch)
        for i in indices:
            ds.read(i)
    for _ in range(passes):
        for ds, figure in zip(datasets, figures, strict=True):
            read, read_batch = ds.read, ds.read_batch
            start = time.perf_counter()
            for i in indices:
                read(i)
            middle = time.perf_counter()
            for batch in batches:
                read_batch(batch)
            end = time.perf_counter()
            figure.setdefault("read", []).append((middle - start) / len(indices))
            figure.setdefault("read_batch", []).append((end - middle) / len(batches))
    for ds in datasets:
        ds.close()
    return [{k: statistics.median(v) for k, v in figure.items()} for figure in figures]


def line(name: str, value: str, target: str = "", verdict: str = "") -> None:
    print(f"{name:34} {value:>16} {target:>16} {verdict}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000,000 samples")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--reads", type=int, default=100_000)
    parser.add_argument("--warm", type=float, default=2.0, help="GiB of memory touched first")
    args = parser.parse_args()
    if args.warm > 0:
        start = time.perf_counter()
        touched = np.ones(int(args.warm * 2**30) // 8)
        del touched
        print(f"{args.warm:g} GiB of memory touched first in {time.perf_counter() - start:.1f} s")
    n = args.samples or (1_000_000 if args.quick else 10_000_000)
    rng = np.random.default_rng(16)
    with tempfile.TemporaryDirectory() as tmp:
        root, plain = Path(tmp) / "changed", Path(tmp) / "plain"
        print(f"{n:,} raw int32 samples, arrow index, {CHUNK_BYTES >> 20} MiB chunks")
        line("figure", "measured", "target")
        line("build (direct, not a target)", f"{build(root, np.arange(n)):.2f} s")
        model = np.arange(n)
        first = np.sort(rng.choice(n, n // 100, replace=False))
        took = seconds(lambda: acumen.delete(root, indices=first))
        line("delete 1% (first change)", f"{took:.3f} s", "<= 1 s", _ok(took <= 1))
        model = np.delete(model, first)
        second = np.sort(rng.choice(len(model), n // 100, replace=False))
        took = seconds(lambda: acumen.delete(root, indices=second))
        line("delete 1% (versioned)", f"{took:.3f} s", "<= 1 s", _ok(took <= 1))
        model = np.delete(model, second)
        for label in (7, 8, 9):  # three: the first touches of fresh memory vary (VMs)
            took = seconds(lambda label=label: acumen.delete(root, where=f"label == {label}"))
            line(f"delete 1% (where label == {label})", f"{took:.3f} s", "<= 1 s", _ok(took <= 1))
            model = model[model % 100 != label]
        build(plain, model)
        with acumen.open(root) as ds:  # the changed dataset reads the model's samples
            probe = rng.integers(0, len(model), 1000)
            assert np.array_equal(ds.read_batch(probe)[:, 0], model[probe])
        indices = rng.integers(0, len(model), args.reads).tolist()
        batches = [rng.integers(0, len(model), 256) for _ in range(max(1, args.reads // 256))]
        after, before = compared([root, plain], indices, batches)
        for name, unit, scale in (("open", "ms", 1e3), ("read", "us", 1e6)):
            ratio = after[name] / before[name]
            shown = f"{after[name] * scale:.2f} {unit} ({ratio:.2f}x)"
            target = "<= 1.2x" if name != "open" else ""
            line(f"{name} after deletes (vs plain)", shown, target, _ok(ratio <= 1.2, target))
        ratio = after["read_batch"] / before["read_batch"]
        shown = f"{after['read_batch'] * 1e6:.1f} us ({ratio:.2f}x)"
        line("read_batch(256) after deletes", shown, "<= 1.2x", _ok(ratio <= 1.2))
        line(
            "  plain read / read_batch(256)",
            f"{before['read'] * 1e6:.2f} / {before['read_batch'] * 1e6:.1f} us",
        )
        took = seconds(lambda: acumen.compact(root))
        line("compact (min_live 0.5)", f"{took:.3f} s")
        took = seconds(lambda: acumen.compact(root, min_live=1.0))
        line("compact (min_live 1.0: rewrite)", f"{took:.3f} s")
        with acumen.open(root) as ds:
            assert len(ds) == len(model)
            probe = rng.integers(0, len(model), 1000)
            assert np.array_equal(ds.read_batch(probe)[:, 0], model[probe])
        vacuumed = []
        took = seconds(lambda: vacuumed.append(acumen.vacuum(root)))
        line("vacuum", f"{took:.3f} s ({vacuumed[0].bytes_freed / 2**20:.0f} MiB)")


def _ok(good: bool, target: str = "x") -> str:
    return "" if not target else ("ok" if good else "MISSED")


if __name__ == "__main__":
    main()
