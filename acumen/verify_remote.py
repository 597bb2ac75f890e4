"""``acumen verify URL``: a dataset in object storage checked by streaming its chunk objects.

Each chunk object is read whole, in blocks of about 16 MiB (cut between samples, so every
sample lies inside one block) by ranged GETs, several in flight; the next window of blocks
is fetched while the one before is checked, so memory stays at about two windows. Each
chunk's bytes are hashed in order against the manifest's checksum; within each block every
sample is checked against its own checksum (``checksums="sample"``) and decoded from the
block's bytes, with no request of its own. Nothing goes to the disk cache (the dataset is
opened with ``cache_size=0``); the manifest, index and codec resources are mirrored and
checked as any open does.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import xxhash

from acumen.errors import CorruptDatasetError, RemoteError, sample_error
from acumen.progress import Callback
from acumen.read.dataset import Dataset
from acumen.read.verifiers import chunk_checksums

#: Bytes per block (a block grows to hold a larger sample whole).
BLOCK = 16 << 20
#: Blocks per window at most (many small chunk objects: one window of requests).
MAX_BLOCKS = 64


def blocks(dataset: Dataset, block: int = BLOCK) -> list[tuple[int, int, int, np.ndarray]]:
    """``(chunk_id, start, size, samples)`` covering each chunk object whole, in order;
    ``samples``: the positions of the samples that lie inside the block. A block is cut
    only where no sample straddles the cut."""
    table, sizes = dataset.table, dataset.chunk_files.sizes.tolist()
    chunk_ids, offsets, lengths = table.chunk_ids, table.offsets, table.sizes
    order = np.lexsort((offsets, chunk_ids))
    cuts = np.searchsorted(chunk_ids[order], np.arange(len(sizes) + 1))
    out = []
    for chunk, size in enumerate(sizes):
        rows = order[cuts[chunk] : cuts[chunk + 1]]
        ends = offsets[rows] + lengths[rows]
        rows = rows[(offsets[rows] >= 0) & (ends <= size)]  # others: check_index reports them
        starts, stops = offsets[rows].tolist(), (offsets[rows] + lengths[rows]).tolist()
        start = first = reach = 0
        for n in range(len(rows)):
            if reach - start >= block and starts[n] >= reach:
                out.append((chunk, start, reach - start, rows[first:n]))
                start, first = reach, n
            reach = max(reach, stops[n])
        if size > start or start == 0:  # the rest (the whole of an empty object)
            out.append((chunk, start, size - start, rows[first:]))
    return out


def check_streaming(
    dataset: Dataset, report: Any, *, jobs: int, samples: bool, progress: Callback
) -> None:
    """Fill ``report`` (an :class:`acumen.verify.VerifyReport`) for a remote ``dataset``;
    ``progress`` is sized and told the bytes streamed (its owner closes it)."""
    storage, table = dataset.storage, dataset.table
    urls = storage.paths
    expected = chunk_checksums(dataset.manifest, table.chunk_names)
    own = table.checksums.view(np.uint64) if samples and table.checksums is not None else None
    decodes = samples and (bool(dataset.field_readers) or not dataset.codec.is_identity)
    plan = blocks(dataset)
    windows, current, held = [], [], 0
    for item in plan:
        if current and (held + item[2] > jobs * BLOCK or len(current) >= MAX_BLOCKS):
            windows.append(current)
            current, held = [], 0
        current.append(item)
        held += item[2]
    windows.append(current)
    digests: dict[int, Any] = {}
    failed: set[int] = set()
    progress.set_size(sum(size for _, _, size, _ in plan), "bytes")
    with ThreadPoolExecutor(1) as fetcher:
        ahead = fetcher.submit(_fetch, storage, windows[0]) if windows[0] else None
        for n, window in enumerate(windows):
            fetched = ahead.result() if ahead is not None else []
            if n + 1 < len(windows):
                ahead = fetcher.submit(_fetch, storage, windows[n + 1])
            for (chunk, start, size, rows), data in zip(window, fetched, strict=True):
                progress.update(size)
                if chunk in failed:
                    continue
                if isinstance(data, BaseException):
                    failed.add(chunk)
                    report.problems.append(
                        f"{urls[chunk]}: cannot be read: {data} (its samples: unchecked)"
                    )
                    continue
                digest = digests.setdefault(chunk, xxhash.xxh3_64())
                digest.update(data)
                if start + size == int(dataset.chunk_files.sizes[chunk]):
                    report.chunks_checked += 1
                    got = f"xxh3_64:{digests.pop(chunk).hexdigest()}"
                    if expected[chunk] is not None and got != expected[chunk]:
                        report.problems.append(
                            f"{urls[chunk]}: checksum {got} differs from the manifest's "
                            f"{expected[chunk]}: the object changed"
                        )
                if samples:
                    _check_samples(dataset, report, chunk, start, data, rows, own, decodes)
    if samples and not decodes and own is None:
        report.notes.append(
            "raw samples carry no checksum of their own: the chunk checksums cover them"
        )


def _fetch(storage: Any, window: list) -> list:
    """The window's blocks, at once; where that fails, block by block (a failed one is its
    exception), so that each problem is reported for its own chunk."""
    urls = [storage.paths[chunk] for chunk, _, _, _ in window]
    starts = [start for _, start, _, _ in window]
    sizes = [size for _, _, size, _ in window]
    try:
        return storage.store.read_ranges(urls, starts, sizes, "chunk file")
    except (RemoteError, CorruptDatasetError, OSError):
        out: list = []
        for url, start, size in zip(urls, starts, sizes, strict=True):
            try:
                out.append(storage.store.read_range(url, start, size, "chunk file"))
            except (RemoteError, CorruptDatasetError, OSError) as error:
                out.append(error)
        return out


def _check_samples(
    dataset: Dataset,
    report: Any,
    chunk: int,
    start: int,
    data: bytes,
    rows: np.ndarray,
    own: np.ndarray | None,
    decodes: bool,
) -> None:
    table, view = dataset.table, memoryview(data)
    if decodes:
        dataset.storage.hold(chunk, start, data)  # the decodes read from it, no request
    try:
        for i in rows.tolist():
            offset, size = int(table.offsets[i]), int(table.sizes[i])
            if own is not None:
                payload = view[offset - start : offset - start + size]
                if xxhash.xxh3_64_intdigest(payload) != int(own[i]):
                    problem = (
                        "payload checksum differs from the index's "
                        f"({dataset.storage.paths[chunk]}, bytes {offset}..{offset + size})"
                    )
                    report.problems.append(str(sample_error(report.path, i, problem)))
            if decodes:
                try:
                    dataset.read(i)
                except CorruptDatasetError as error:
                    report.problems.append(str(error))
            report.samples_checked += 1
    finally:
        if decodes:
            dataset.storage.drop_held()
