"""A versioned dataset's index: its segments read and joined, its deleted rows left out.

Shared by the reader (``acumen.open``) and the writers that need a version's whole index
(the ``index.csv`` an original reader sees, a compaction).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acumen.errors import AcumenError, CorruptDatasetError, shorten
from acumen.files.local import read_regular_bytes, stat_regular
from acumen.format.index_concat import MetadataMismatch, concat_tables
from acumen.format.index_table import IndexTable
from acumen.format.layout import resolve_inside
from acumen.format.manifest import Manifest
from acumen.format.metadata import ColumnSpec
from acumen.format.versions import Segment, live_positions, parse_deletions


def read_index_file(
    index_plugin: Any, index_path: Path, columns: Sequence[ColumnSpec] | None
) -> IndexTable:
    """One index file read by its format's plugin; a parser's own error on a damaged file
    becomes a :class:`CorruptDatasetError` naming the file."""
    with contextlib.suppress(FileNotFoundError):  # each index format words a missing file
        stat_regular(index_path, "index file")  # before a plugin opens it (a FIFO would hang)
    try:
        return index_plugin.read(index_path, columns)
    except AcumenError:
        raise
    except Exception as error:
        raise CorruptDatasetError(
            f"{index_path}: the index does not parse: {type(error).__name__}: "
            f"{shorten(str(error), 400)}"
        ) from None


def read_segment(root: Path, manifest: Manifest, segment: Segment, index_plugin: Any) -> IndexTable:
    """One segment of ``manifest``'s version, checked to hold the rows it says."""
    path = resolve_inside(root, segment.file, "index segment")
    if not path.exists():
        version = manifest.versioned.version if manifest.versioned is not None else 1
        raise CorruptDatasetError(
            f"{path}: index segment of version {version} is missing (removed by `acumen "
            "vacuum`, or the folder was copied in part)"
        )
    table = read_index_file(index_plugin, path, manifest.metadata[: segment.n_columns])
    if len(table) != segment.n_rows:
        raise CorruptDatasetError(
            f"{path}: index segment has {len(table)} rows, the manifest says {segment.n_rows}"
        )
    return table


def read_segments(root: Path, manifest: Manifest, index_plugin: Any) -> IndexTable:
    """Every row of the version's segments, deleted ones included (physical positions)."""
    info = manifest.versioned
    assert info is not None
    tables = [read_segment(root, manifest, segment, index_plugin) for segment in info.segments]
    field_names = [entry["name"] for entry in manifest.fields] if manifest.fields else None
    try:
        return concat_tables(tables, field_names, [s.file for s in info.segments])
    except MetadataMismatch as error:
        raise CorruptDatasetError(f"{root}: version {info.version}: {error}") from None


def deleted_rows(root: Path, manifest: Manifest) -> np.ndarray:
    """The version's deleted rows (sorted physical positions), checked; empty when none."""
    info = manifest.versioned
    if info is None or info.deletions is None:
        return np.zeros(0, np.int64)
    path = resolve_inside(root, info.deletions.file, "deletion vector")
    try:
        data = read_regular_bytes(path, "deletion vector")
    except FileNotFoundError:
        raise CorruptDatasetError(
            f"{path}: deletion vector of version {info.version} is missing"
        ) from None
    return parse_deletions(data, path, info.deletions.count, info.n_rows)


def read_version_table(root: Path, manifest: Manifest, index_plugin: Any) -> IndexTable:
    """The live rows of a versioned dataset, in order: sample ``i`` of this version."""
    table = read_segments(root, manifest, index_plugin)
    deleted = deleted_rows(root, manifest)
    return table.take(live_positions(len(table), deleted)) if len(deleted) else table
