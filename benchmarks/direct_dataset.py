"""Datasets written straight from an IndexTable, no Writer: the index benchmarks open
datasets of sizes a Writer would take minutes to reach, their chunk files sparse (no
payload) or filled by the caller. Also the timing helper they share."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from acumen import plugins
from acumen.format.checksums import file_checksum
from acumen.format.index_table import IndexTable
from acumen.format.manifest import ChunkEntry, Manifest


def sparse_chunks(root: Path, chunks: list[ChunkEntry]) -> None:
    """Each chunk file at its size, holding no bytes on disk (sparse)."""
    for chunk in chunks:
        (root / chunk.file).parent.mkdir(parents=True, exist_ok=True)
        with open(root / chunk.file, "wb") as file:
            file.truncate(chunk.size_bytes)


def write_direct(
    root: Path,
    table: IndexTable,
    chunks: list[ChunkEntry],
    *,
    dtype: str,
    chunk_size_bytes: int,
    index: str = "arrow",
) -> None:
    """The index and the manifest of raw samples of ``dtype`` as a writer leaves them (the
    index's checksum recorded, the manifest sealed); the chunk files are the caller's."""
    root.mkdir(parents=True, exist_ok=True)
    index_format = plugins.index_format(index)
    index_format.write(table, root / index_format.filename)
    Manifest(
        n_samples=len(table),
        dtype=np.dtype(dtype),
        shape=table.shapes.fixed,
        codec=plugins.codec("raw").get_config(),
        index={**index_format.get_config(), "file": index_format.filename},
        chunks=chunks,
        chunk_size_bytes=chunk_size_bytes,
        metadata=table.metadata.specs,
        files={index_format.filename: file_checksum(root / index_format.filename)},
    ).write(root)


def median_ms(call: Callable[[], object], repeats: int) -> float:
    """The median of ``repeats`` timings of ``call()``, in milliseconds (collected first)."""
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
        del result
    return statistics.median(times) * 1000
