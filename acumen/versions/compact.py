"""``acumen compact``: a version whose index is one segment of live rows only.

The new version names no deletion vector. Chunk files whose live samples fill less than
``min_live`` of them are rewritten: their live payloads copied as they are (no decoding)
into ``chunks/<token>/`` after the source file's checksum is confirmed (a damaged chunk is
never laundered into a fresh checksum). The other chunk files are referenced as they are,
deleted bytes and all; a chunk file with no live sample is no longer referenced. ``acumen
vacuum`` then removes what no kept version names.

Chunk files smaller than a quarter of the dataset's chunk size (what small appends leave)
are rewritten together into full-size ones when there are several.

With no deletions at all, a compaction still merges the index segments (one per append)
into one. If another writer commits first, the compaction is not built again (it may have
read gigabytes): only versions that appended are kept, their segments after the compacted
one (their rows come after every row the compaction read, so every position holds);
anything else is a :class:`~acumen.errors.CommitConflictError`.
"""

from __future__ import annotations

import dataclasses
import itertools
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xxhash

from acumen.errors import CorruptDatasetError
from acumen.files.local import fsync_directory, open_for_reading, write_failed
from acumen.format.index_table import IndexTable
from acumen.format.layout import resolve_inside
from acumen.format.manifest import ChunkEntry, Manifest
from acumen.format.versions import Segment, live_positions
from acumen.index_formats.segments import deleted_rows, read_segments
from acumen.progress import BatchedReporter, Callback, ProgressArg, as_callback
from acumen.versions.change import Operation, dataset_root, require_only_appends
from acumen.write.chunk_writer import ChunkWriter
from acumen.write.versioning import commit_change, newest_manifest, next_version


@dataclass(frozen=True)
class Compacted:
    """What a compaction did (``manifest`` unchanged when there was nothing to do)."""

    manifest: Manifest
    before: int
    segments_merged: int
    rows_dropped: int
    chunks_rewritten: int
    chunks_dropped: int
    bytes_before: int  # of the chunk files the version named
    bytes_after: int

    @property
    def changed(self) -> bool:
        return (
            self.manifest.versioned is not None and self.manifest.versioned.version != self.before
        )

    def __str__(self) -> str:
        if not self.changed:
            return (
                f"nothing to compact: version {self.before} has one index segment, no deleted "
                "samples and no chunk file below the live threshold"
            )
        info = self.manifest.versioned
        assert info is not None
        return (
            f"compacted version {self.before} into version {info.version}: "
            f"{_segments(self.segments_merged)}, {self.rows_dropped:,} deleted "
            f"rows dropped, {self.chunks_rewritten} chunk files rewritten, "
            f"{self.chunks_dropped} no longer referenced; chunk bytes "
            f"{self.bytes_before:,} -> {self.bytes_after:,} (`acumen vacuum` frees the rest)"
        )


def _segments(count: int) -> str:
    return "the index rewritten" if count == 1 else f"{count} index segments made one"


#: A chunk file below ``chunk_size_bytes / SMALL_CHUNK`` is small: merged with the others.
SMALL_CHUNK = 4


def compact(
    path: str | os.PathLike[str], *, min_live: float = 0.5, progress: ProgressArg = None
) -> Manifest:
    """Compact the dataset at ``path`` into a new version (its manifest returned; the
    newest unchanged when there is nothing to do): one index segment of the live rows, and
    the chunk files whose live bytes are below ``min_live`` of their size rewritten.

    ``progress``: ``True`` shows acumen's line, or an :class:`acumen.progress.Callback` is
    told the bytes copied (sized once known), from this thread, and closed at the end."""
    return compact_dataset(path, min_live=min_live, progress=progress).manifest


def compact_dataset(
    path: str | os.PathLike[str], *, min_live: float = 0.5, progress: ProgressArg = None
) -> Compacted:
    """:func:`compact`, saying what it did (what ``acumen compact`` prints)."""
    with as_callback(progress, f"compact {Path(path).name}", unit="bytes") as bar:
        return _compact_dataset(path, min_live, bar)


def _compact_dataset(
    path: str | os.PathLike[str], min_live: float, progress: Callback
) -> Compacted:
    if isinstance(min_live, bool) or not isinstance(min_live, (int, float)):
        raise TypeError(f"min_live must be a number from 0 to 1, got {min_live!r}")
    if not 0 <= min_live <= 1:
        raise ValueError(
            f"min_live must be from 0 to 1 (a share of a chunk's bytes), got {min_live}"
        )
    root = dataset_root(path, "compact")
    newest = newest_manifest(root)
    if newest.versioned is None:  # written once: one index, nothing deleted
        return _nothing(newest, 1)
    operation = Operation.start(root, "compact", newest)
    try:
        result = _compact(operation, min_live, progress)
    except BaseException:
        operation.fail()
        raise
    operation.finish()
    return result


def _nothing(manifest: Manifest, version: int) -> Compacted:
    size = sum(c.size_bytes for c in manifest.chunks)
    return Compacted(manifest, version, 0, 0, 0, 0, size, size)


def _compact(operation: Operation, min_live: float, progress: Callback) -> Compacted:
    root, base = operation.root, operation.base
    info = base.versioned
    assert info is not None
    table = read_segments(root, base, operation.index_format)
    deleted = deleted_rows(root, base)
    if len(deleted):
        table = table.take(live_positions(len(table), deleted))
    declared = {c.file: c for c in base.chunks}
    names = table.chunk_names
    sizes = np.array([declared[name].size_bytes for name in names], dtype=np.float64)
    live_bytes = np.bincount(table.chunk_ids, weights=table.sizes, minlength=len(names))
    live_rows = np.bincount(table.chunk_ids, minlength=len(names))
    rewrite = (live_bytes < min_live * sizes) & (live_rows > 0)
    # Small chunk files (one per small append) are rewritten together into full ones: a
    # thousand appends of a few samples would otherwise leave a thousand files to open.
    small = (sizes < base.chunk_size_bytes / SMALL_CHUNK) & (live_rows > 0)
    if small.sum() > 1:
        rewrite |= small
    if len(info.segments) == 1 and not len(deleted) and not rewrite.any():
        return _nothing(base, info.version)
    table, chunks = _rewrite(operation, table, rewrite, live_rows, declared, progress)
    segment, checksum = operation.write_segment(table)
    entry = Segment(segment, len(table), len(base.metadata))
    named = set(info.index_files())
    files = {k: v for k, v in base.files.items() if k not in named}
    files[segment] = checksum

    def build(newer: Manifest) -> Manifest:
        newer_info = newer.versioned
        assert newer_info is not None
        if newer_info.version != info.version:
            require_only_appends(root, "this compaction", info.version, newer)
        appended = newer_info.segments[len(info.segments) :]
        return next_version(
            newer,
            "compact",
            segments=[entry, *appended],
            deletions=None,
            chunks=[*chunks, *newer.chunks[len(base.chunks) :]],
            files={**files, **{s.file: newer.files[s.file] for s in appended}},
            n_samples=len(table) + sum(s.n_rows for s in appended),
        )

    manifest = commit_change(root, build, operation.index_format)
    return Compacted(
        manifest,
        info.version,
        len(info.segments),
        len(deleted),
        int(rewrite.sum()),
        int((live_rows == 0).sum()) + len(declared) - len(names),  # unreferenced ones too
        int(sum(c.size_bytes for c in base.chunks)),
        int(sum(c.size_bytes for c in chunks)),
    )


def _rewrite(
    operation: Operation,
    table: IndexTable,
    rewrite: np.ndarray,
    live_rows: np.ndarray,
    declared: dict[str, ChunkEntry],
    progress: Callback,
) -> tuple[IndexTable, list[ChunkEntry]]:
    """The live rows' table pointing at the chunk files kept and the ones rewritten, and
    the version's chunk list (kept ones first, in their order, then the new ones)."""
    root, names = operation.root, table.chunk_names
    kept = [k for k in range(len(names)) if live_rows[k] and not rewrite[k]]
    new_ids = np.full(len(names), -1, dtype=np.int64)
    new_ids[kept] = np.arange(len(kept))
    chunks = [dataclasses.replace(declared[names[k]], n_samples=int(live_rows[k])) for k in kept]
    chunk_ids = new_ids[table.chunk_ids]
    offsets = table.offsets.copy()
    moved = np.flatnonzero(rewrite[table.chunk_ids])
    new_names = [names[k] for k in kept]
    if len(moved):
        writer = ChunkWriter(root, operation.base.chunk_size_bytes, folder=operation.chunk_folder)
        try:
            progress.set_size(int(table.sizes[moved].sum()), "bytes")
            told = BatchedReporter(progress.update, every=0.1)
            positions = _copy(root, writer, table, moved, names, declared, offsets, told)
            told.flush()
            counts = np.bincount(positions)  # a run is one append: the writer counts runs
            written = [
                dataclasses.replace(c, n_samples=int(counts[k]))
                for k, c in enumerate(writer.close())
            ]
        except BaseException:
            writer.abandon()
            raise
        fsync_directory(root / operation.chunk_folder)
        chunk_ids[moved] = positions + len(kept)
        chunks += written
        new_names += [c.file for c in written]
    compacted = dataclasses.replace(
        table, chunk_names=new_names, chunk_ids=chunk_ids.astype(np.int32), offsets=offsets
    )
    return compacted, chunks


def _copy(
    root: Path,
    writer: ChunkWriter,
    table: IndexTable,
    moved: np.ndarray,
    names: list[str],
    declared: dict[str, ChunkEntry],
    offsets: np.ndarray,
    told: BatchedReporter,
) -> np.ndarray:
    """Copy the payloads of rows ``moved`` (in order) into ``writer``; their new offsets go
    into ``offsets``; returns each row's chunk position in the writer's list.

    Rows whose payloads follow one another in the same source file and land in the same new
    chunk are copied as one run (one ``append``): a chunk of ten thousand tiny samples is a
    few copies, not ten thousand. The new chunks are cut where the writer's own rule cuts
    them, payload by payload (:func:`_cuts`), so each run lands whole in its chunk."""
    sources_of = table.chunk_ids[moved].astype(np.int64)
    starts = table.offsets[moved]
    sizes = table.sizes[moved].astype(np.int64)
    cut = _cuts(sizes, writer.limit)
    split = (np.diff(sources_of) != 0) | (starts[1:] != starts[:-1] + sizes[:-1])
    split |= np.isin(np.arange(1, len(moved)), cut)
    bounds = [0, *(np.flatnonzero(split) + 1).tolist(), len(moved)]
    positions = np.empty(len(moved), dtype=np.int64)
    sources: dict[int, memoryview] = {}
    maps: list[mmap.mmap] = []
    try:
        for a, b in itertools.pairwise(bounds):
            cid = int(sources_of[a])
            data = sources.get(cid)
            if data is None:
                data = sources[cid] = _mapped(root, declared[names[cid]], maps)
            first, end = int(starts[a]), int(starts[b - 1] + sizes[b - 1])
            offset = writer.append(data[first:end], end - first)
            offsets[moved[a:b]] = starts[a:b] - first + offset
            positions[a:b] = writer.position
            told(end - first)
    finally:
        for view in sources.values():
            view.release()
        for mapped in maps:
            mapped.close()
    return positions


def _cuts(sizes: np.ndarray, limit: int) -> np.ndarray:
    """Where :class:`ChunkWriter` starts a new chunk for payloads of ``sizes`` in turn: a
    payload goes into the current chunk unless that would take it beyond ``limit``."""
    ends = np.cumsum(sizes)
    cuts, first, before = [], 0, 0
    while first < len(sizes):
        after = int(np.searchsorted(ends, before + limit, side="right"))
        after = max(after, first + 1)  # a payload larger than a chunk: alone in one
        if after < len(sizes):
            cuts.append(after)
        first, before = after, int(ends[after - 1])
    return np.array(cuts, dtype=np.int64)


def _mapped(root: Path, entry: ChunkEntry, maps: list[mmap.mmap]) -> memoryview:
    """A chunk file's bytes, mapped, after its checksum is confirmed (when recorded)."""
    path = resolve_inside(root, entry.file, "chunk file")
    try:
        with open_for_reading(path, "chunk file") as file:
            size = os.fstat(file.fileno()).st_size
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else None
    except FileNotFoundError:
        raise CorruptDatasetError(f"{path}: chunk file is missing; nothing was compacted") from None
    except OSError as error:
        raise write_failed(root, path, error) from error
    if size != entry.size_bytes:
        raise CorruptDatasetError(
            f"{path}: chunk file is {size} bytes, the manifest says {entry.size_bytes}; "
            "nothing was compacted"
        )
    if mapped is None:
        return memoryview(b"")
    maps.append(mapped)
    if entry.checksum is not None:
        actual = f"xxh3_64:{xxhash.xxh3_64_hexdigest(mapped)}"
        if actual != entry.checksum:
            raise CorruptDatasetError(
                f"{path}: checksum {actual} differs from the manifest's {entry.checksum}: the "
                "chunk file is damaged; nothing was compacted (`acumen verify` lists what)"
            )
    return memoryview(mapped)
