"""Datasets that grow (issue 16): what an append costs, and what opening costs after many.

    .venv/bin/python benchmarks/versions.py [--quick]

Printed in one run, next to the issue's targets:

(a) Appending 1,000 samples (4-byte int32 samples) to a 10-million-sample dataset, arrow and
    parquet index: the median time of ``Writer(path, mode="append")`` + 1,000 ``add`` +
    ``close`` over a few appends, minus the same 1,000 samples written by a plain ``Writer``
    to a new folder (the bytes, a chunk file, an index of 1,000 rows and a manifest).
    Target: <= 50 ms beyond the baseline. The 10-million-sample dataset is made without
    payload: its index written by the format's plugin, its chunk files sparse files of the
    right sizes (``truncate``); the appends are real.
(b) Opening a dataset after 1,000 appends (of 100 samples each, to a dataset of 1 million
    written by a ``Writer``) against the same samples written at once by one ``Writer``:
    median ``acumen.open`` time, and the segments the newest version has (appends merge
    their segments in tiers: acumen/write/tiers.py). Target: <= 2x. "one segment": the
    grown dataset with its whole index in one file and its chunk files as they are (one per
    append): what is left of the cost once the index is not in segments; "compacted": after
    ``acumen compact``, which also merges the appends' small chunk files.
(c) A 100-million-sample arrow index built by 100 appends of 1 million rows (``--quick``: 10
    million by 10): each append is the real commit (``Append.start`` / ``finish``: segment,
    tier merges, version file) of a synthetic index whose chunk files are sparse; then the
    open time of versions along the way against their number of segments and samples, and
    of the same 100 million rows written as one segment.

Memory: (c) holds at most a few 100-million-row index columns at once (~1.6 GB each copy);
sized for a machine of 23 GB and 2 cores. Figures are noisy on shared cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from direct_dataset import median_ms, sparse_chunks, write_direct

import acumen
from acumen import plugins
from acumen.format.checksums import file_checksum
from acumen.format.index_table import IndexTable
from acumen.format.layout import chunk_file_name
from acumen.format.manifest import ChunkEntry
from acumen.format.metadata import MetadataTable
from acumen.format.shapes import ShapeColumn
from acumen.write.append import Append

CHUNK_BYTES = 10 << 20
SAMPLE = np.zeros(1, np.int32)  # 4 bytes


def synthetic_table(n: int, folder: str = "chunks") -> tuple[IndexTable, list[ChunkEntry]]:
    """``n`` 4-byte samples laid out in 10 MiB chunk files as a writer would (no payload)."""
    per_chunk = CHUNK_BYTES // 4
    count = -(-n // per_chunk)
    rows = np.arange(n, dtype=np.int64)
    names = [chunk_file_name(c, folder) for c in range(count)]
    table = IndexTable(
        names,
        (rows // per_chunk).astype(np.int32),
        (rows % per_chunk) * 4,
        np.full(n, 4, np.int32),
        ShapeColumn(n, fixed=(1,)),
        MetadataTable.empty(n),
    )
    sizes = [min(per_chunk, n - c * per_chunk) for c in range(count)]
    return table, [ChunkEntry(name, s * 4, s) for name, s in zip(names, sizes, strict=True)]


def synthetic_dataset(root: Path, n: int, fmt: str) -> None:
    """A dataset of ``n`` 4-byte int32 samples, written at once, without payload."""
    table, chunks = synthetic_table(n)
    sparse_chunks(root, chunks)
    write_direct(root, table, chunks, dtype="<i4", chunk_size_bytes=CHUNK_BYTES, index=fmt)


def write_samples(root: Path, n: int, **options: object) -> None:
    with acumen.Writer(root, **options) as writer:
        for _ in range(n):
            writer.add(SAMPLE)


def bench_append(tmp: Path, quick: bool) -> None:
    n, added, repeats = 10_000_000, 1_000, 3 if quick else 7
    print(f"(a) appending {added:,} samples to {n:,} (4-byte samples); target <= 50 ms beyond")
    print(
        f"    {'index':8} {'append ms':>10} {'max ms':>8} {'new folder ms':>14} {'beyond ms':>10}"
    )
    for fmt in ("arrow", "parquet"):
        root = tmp / f"a-{fmt}"
        synthetic_dataset(root, n, fmt)
        appends = []
        for _ in range(repeats):
            start = time.perf_counter()
            write_samples(root, added, mode="append")
            appends.append((time.perf_counter() - start) * 1000)
        fresh = []
        for k in range(repeats):
            start = time.perf_counter()
            write_samples(tmp / f"a-{fmt}-new-{k}", added, index_format=fmt, dtype="int32")
            fresh.append((time.perf_counter() - start) * 1000)
        append_ms, fresh_ms = statistics.median(appends), statistics.median(fresh)
        print(
            f"    {fmt:8} {append_ms:>10.1f} {max(appends):>8.1f} {fresh_ms:>14.1f} "
            f"{append_ms - fresh_ms:>10.1f}",
            flush=True,
        )
        with acumen.open(root) as ds:
            assert len(ds) == n + repeats * added


def bench_open_after_appends(tmp: Path, quick: bool) -> None:
    base, appends, each = 1_000_000, 200 if quick else 1_000, 100
    print(
        f"(b) opening after {appends:,} appends of {each} samples to {base:,} vs the same "
        "samples written at once; target <= 2x"
    )
    print(
        f"    {'index':8} {'segments':>8} {'appended ms':>12} {'one segment ms':>15} "
        f"{'at once ms':>11} {'ratio':>6} {'compacted ms':>13} {'ratio':>6}"
    )
    for fmt in ("arrow", "parquet"):
        grown, once = tmp / f"b-{fmt}", tmp / f"b-{fmt}-once"
        write_samples(grown, base, index_format=fmt, dtype="int32")
        for _ in range(appends):
            write_samples(grown, each, mode="append")
        write_samples(once, base + appends * each, index_format=fmt, dtype="int32")
        with acumen.open(grown) as ds:
            segments = len(ds.manifest.versioned.segments)
            assert len(ds) == base + appends * each
        single = one_segment_copy(grown, tmp / f"b-{fmt}-single")
        grown_ms = median_ms(lambda g=grown: acumen.open(g), 7)
        single_ms = median_ms(lambda o=single: acumen.open(o), 7)
        once_ms = median_ms(lambda o=once: acumen.open(o), 7)
        acumen.compact(grown)  # one segment, the appends' small chunk files merged
        compacted_ms = median_ms(lambda g=grown: acumen.open(g), 7)
        print(
            f"    {fmt:8} {segments:>8} {grown_ms:>12.1f} {single_ms:>15.1f} {once_ms:>11.1f} "
            f"{grown_ms / once_ms:>6.2f} {compacted_ms:>13.1f} {compacted_ms / once_ms:>6.2f}",
            flush=True,
        )


def one_segment_copy(grown: Path, root: Path) -> Path:
    """The grown dataset's newest version with its index as one file (its chunk files hard
    links): what opening it would cost if every segment were merged, chunk files as they are."""
    with acumen.open(grown) as ds:
        table, manifest = ds.table, ds.manifest
    for chunk in manifest.chunks:
        (root / chunk.file).parent.mkdir(parents=True, exist_ok=True)
        os.link(grown / chunk.file, root / chunk.file)
    index_format = plugins.index_format(manifest.index)
    index_format.write(table, root / index_format.filename)
    dataclasses.replace(
        manifest,
        versioned=None,
        index={**manifest.index, "file": index_format.filename},
        files={index_format.filename: file_checksum(root / index_format.filename)},
    ).write(root)
    return root


def bench_big_index(tmp: Path, quick: bool) -> None:
    appends, rows = (10, 1_000_000) if quick else (100, 1_000_000)
    total = rows * (appends + 1)
    print(
        f"(c) an arrow index of {total:,} samples built by {appends} appends of {rows:,} "
        "(synthetic rows, sparse chunk files): open time against segments"
    )
    root = tmp / "c"
    synthetic_dataset(root, rows, "arrow")
    start = time.perf_counter()
    slowest = 0.0
    for _ in range(appends):
        began = time.perf_counter()
        append = Append.start(root, "benchmark")
        table, chunks = synthetic_table(rows, append.chunk_folder)
        sparse_chunks(root, chunks)
        append.finish(table, chunks)
        slowest = max(slowest, time.perf_counter() - began)
    built = time.perf_counter() - start
    print(f"    built in {built:.1f} s (slowest append, with its tier merges: {slowest:.2f} s)")
    print(f"    {'version':>8} {'samples':>13} {'segments':>8} {'open ms':>9}")
    versions = sorted({2, 3, 5, 9, 17, 33, 65, appends + 1} & set(range(2, appends + 2)))
    for version in [1, *versions]:
        with acumen.open(root, version=version) as ds:
            n, segments = len(ds), len(ds.manifest.versioned.segments)
        ms = median_ms(lambda v=version: acumen.open(root, version=v), 3)
        print(f"    {version:>8} {n:>13,} {segments:>8} {ms:>9.1f}", flush=True)
    once = tmp / "c-once"
    synthetic_dataset(once, total, "arrow")
    ms = median_ms(lambda: acumen.open(once), 3)
    print(f"    {'at once':>8} {total:>13,} {1:>8} {ms:>9.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, under a minute")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        bench_append(tmp, args.quick)
        bench_open_after_appends(tmp, args.quick)
        bench_big_index(tmp, args.quick)


if __name__ == "__main__":
    main()
