"""Open-cost benchmark of the index formats: how reading the index grows with the samples.

    .venv/bin/python benchmarks/open_index.py [--huge] [--repeats 5] [--formats csv,parquet,arrow]

For 10^4, 10^5 and 10^6 samples (10^7 too with ``--huge``) and each index format, an index
is written directly with the format's ``write`` (no payloads are encoded): float16 samples
of shape (32, 16) ("fixed") or (L, 16) with L in 1..64 ("variable"), two metadata columns
(``label`` int, ``split`` str). The chunk files ``acumen.open`` checks are sparse files of
the right sizes (10 MiB chunks), so the folder is a valid dataset without the disk cost.

Printed per format, shape kind and size: the index file size, the median wall time of
``index_format.read(path, specs)`` and of the whole ``acumen.open(path)`` (warm page cache),
the tracemalloc peak of one ``read`` (Python and numpy allocations) and the bytes Arrow's
memory pool still holds for the read table (Arrow allocations are invisible to tracemalloc),
and ``B/sample``: what ``acumen.open`` keeps allocated (tracemalloc plus Arrow's pool, as in
``benchmarks/compare.py``'s "open B/sample" with the pool added) for the same index written
without its metadata columns, divided by the samples: the index's own memory per sample
(the ``arrow`` index's columns are views of its memory map: page cache, not counted).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
from direct_dataset import median_ms, sparse_chunks, write_direct

import acumen
from acumen import plugins
from acumen.format.index_table import IndexTable
from acumen.format.manifest import ChunkEntry
from acumen.format.metadata import ColumnSpec, MetadataTable
from acumen.format.shapes import ShapeColumn

FORMATS = ("csv", "parquet", "arrow")
SIZES = (10_000, 100_000, 1_000_000)
HUGE = 10_000_000
CHUNK_BYTES = 10 << 20
ITEMSIZE = 2  # float16
SPECS = [ColumnSpec("label", "int"), ColumnSpec("split", "str")]


def make_table(
    n: int, variable: bool, with_metadata: bool = True
) -> tuple[IndexTable, list[ChunkEntry]]:
    """An index of ``n`` raw float16 samples laid out in chunks as the writer would."""
    rng = np.random.default_rng(n)
    if variable:
        lengths = rng.integers(1, 65, n)
        shapes = ShapeColumn(n, dims=np.stack([lengths, np.full(n, 16)], axis=1))
    else:
        lengths = np.full(n, 32)
        shapes = ShapeColumn(n, fixed=(32, 16))
    sizes = lengths.astype(np.int64) * 16 * ITEMSIZE
    ends = np.cumsum(sizes)
    chunk_ids = ((ends - 1) // CHUNK_BYTES).astype(np.int32) if n else np.zeros(0, np.int32)
    starts = np.zeros(chunk_ids.max(initial=-1) + 2, dtype=np.int64)
    firsts = np.searchsorted(chunk_ids, np.arange(len(starts) - 1))
    starts[:-1] = np.where(firsts > 0, ends[np.maximum(firsts - 1, 0)], 0)
    offsets = ends - sizes - starts[chunk_ids]
    words = np.array(["train", "val", "test"], dtype=object)
    metadata = MetadataTable(
        n, {"label": rng.integers(0, 1000, n), "split": words[np.arange(n) % 3]}, SPECS
    )
    if not with_metadata:
        metadata = MetadataTable.empty(n)
    names = [f"chunks/chunk_{c}.chnk" for c in range(len(starts) - 1)]
    table = IndexTable(names, chunk_ids, offsets, sizes, shapes, metadata)
    counts = np.bincount(chunk_ids, minlength=len(names))
    chunk_sizes = np.bincount(chunk_ids, weights=sizes, minlength=len(names)).astype(np.int64)
    chunks = [
        ChunkEntry(name, int(size), int(count))
        for name, size, count in zip(names, chunk_sizes, counts, strict=True)
    ]
    return table, chunks


def make_dataset(root: Path, table: IndexTable, chunks: list[ChunkEntry], fmt: str) -> None:
    sparse_chunks(root, chunks)  # no payload bytes written
    write_direct(root, table, chunks, dtype="<f2", chunk_size_bytes=CHUNK_BYTES, index=fmt)


def read_memory(call: Callable[[], object]) -> tuple[float, float]:
    """(tracemalloc peak, Arrow pool bytes held by the result), in MB."""
    gc.collect()
    arrow_before = pa.total_allocated_bytes()
    tracemalloc.start()
    result = call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrow_held = pa.total_allocated_bytes() - arrow_before
    del result
    return peak / 1e6, arrow_held / 1e6


def kept_bytes(call: Callable[[], object]) -> int:
    """Bytes the result of ``call`` keeps allocated: tracemalloc plus Arrow's pool."""
    gc.collect()
    arrow_before = pa.total_allocated_bytes()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = call()
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    kept += pa.total_allocated_bytes() - arrow_before
    del result
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--huge", action="store_true", help="also 10^7 samples")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args()
    sizes = (*SIZES, HUGE) if args.huge else SIZES
    formats = args.formats.split(",")
    header = (
        f"{'format':8} {'shapes':8} {'samples':>10} {'file MB':>8} {'read ms':>9} "
        f"{'open ms':>9} {'read peak MB':>12} {'arrow MB':>9} {'B/sample':>9}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for variable in (False, True):
            kind = "variable" if variable else "fixed"
            for n in sizes:
                table, chunks = make_table(n, variable)
                bare, _ = make_table(n, variable, with_metadata=False)
                for fmt in formats:
                    root = Path(tmp) / f"{fmt}-{kind}-{n}"
                    make_dataset(root, table, chunks, fmt)
                    index_format = plugins.index_format(fmt)
                    index_path = root / index_format.filename
                    repeats = max(1, args.repeats if n <= 1_000_000 else args.repeats // 2)

                    def read(index_format=index_format, index_path=index_path):
                        return index_format.read(index_path, SPECS)

                    def open_(root=root):
                        return acumen.open(root)

                    assert read() == table  # a correct index, not just a fast one
                    read_ms = median_ms(read, repeats)
                    open_ms = median_ms(open_, repeats)
                    peak, held = read_memory(read)
                    size_mb = index_path.stat().st_size / 1e6
                    bare_root = Path(tmp) / f"{fmt}-{kind}-{n}-bare"
                    make_dataset(bare_root, bare, chunks, fmt)
                    per_sample = kept_bytes(lambda r=bare_root: acumen.open(r)) / max(n, 1)
                    print(
                        f"{fmt:8} {kind:8} {n:>10,} {size_mb:>8.1f} {read_ms:>9.2f} "
                        f"{open_ms:>9.2f} {peak:>12.2f} {held:>9.2f} {per_sample:>9.1f}",
                        flush=True,
                    )
                del table, chunks, bare


if __name__ == "__main__":
    main()
