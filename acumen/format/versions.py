"""Versions of a dataset that changes: where they live and what each records.

A dataset written once is version 1 and has none of this (format version 1). Its first
change (an append, a delete, a compaction) makes it versioned (format version 2)::

    DIR/_versions/00000000000000000001.json   version 1: the first write's manifest
    DIR/_versions/00000000000000000002.json   each commit: a new file, created exclusively
    DIR/_index/<token>.<ext>                  index segments: the rows one commit added
    DIR/_deletions/<token>.npy                deletion vectors: rows no longer live
    DIR/chunks/<token>/chunk_N.chnk           chunk files a later commit wrote

The commit point of version N is the exclusive creation of its file: two writers that
both want N cannot both succeed. Nothing is ever rewritten in place: a version names the
segments (in order) and the deletion vector that make its index, so a reader that opened
version N reads it for as long as its files are kept (``acumen vacuum`` removes only what
no kept version names).
"""

from __future__ import annotations

import io
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acumen.errors import CorruptDatasetError, ManifestError, quote

VERSIONS_DIR = "_versions"
SEGMENTS_DIR = "_index"
DELETIONS_DIR = "_deletions"
OPERATIONS = ("write", "append", "delete", "compact", "concat")
_VERSION_NAME = re.compile(r"(\d{20})\.json")


def version_file(number: int) -> str:
    """The file of version ``number``, relative to the dataset (zero-padded: names sort)."""
    return f"{VERSIONS_DIR}/{number:020d}.json"


#: What :func:`new_token` makes, found in a file's name (whose change wrote it).
TOKEN = re.compile(r"\d{8}T\d{6}-[0-9a-f]{12}")


def new_token() -> str:
    """A name no other writer picks: the time (sortable, readable) and 48 random bits."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(6)


def version_number(name: str) -> int | None:
    """The number of a version file's name (``00000000000000000002.json``), else None."""
    match = _VERSION_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def list_versions(root: Path) -> list[int]:
    """The committed version numbers of a dataset folder, ascending (empty: not versioned)."""
    try:
        names = os.listdir(root / VERSIONS_DIR)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for n in map(version_number, names) if n is not None)


@dataclass(frozen=True)
class Segment:
    """An index file holding ``n_rows`` consecutive rows of the version's index, with the
    first ``n_columns`` of the version's metadata columns (later ones were added after it:
    its rows read them as missing)."""

    file: str
    n_rows: int
    n_columns: int


@dataclass(frozen=True)
class Deletions:
    """A deletion vector: ``count`` row positions (of the segments' rows) not live."""

    file: str
    count: int


@dataclass
class VersionInfo:
    """What a versioned manifest adds to a write-once one."""

    version: int
    parent: int | None
    operation: str
    segments: list[Segment]
    deletions: Deletions | None = None
    committed_at: str = field(default_factory=lambda: utc_text())
    #: Every row of every segment has ``ai:xxh3_64`` (a writer's ``checksums="sample"``).
    sample_checksums: bool = False

    @property
    def n_rows(self) -> int:
        """Rows of the segments, live or deleted: the positions a deletion vector names."""
        return sum(s.n_rows for s in self.segments)

    @property
    def n_deleted(self) -> int:
        return self.deletions.count if self.deletions is not None else 0

    def index_files(self) -> list[str]:
        """The files that make the version's index: its segments, then its deletion vector."""
        files = [segment.file for segment in self.segments]
        return files + ([self.deletions.file] if self.deletions is not None else [])

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "parent": self.parent,
            "operation": self.operation,
            "committed_at": self.committed_at,
            "segments": [
                {"file": s.file, "n_rows": s.n_rows, "n_columns": s.n_columns}
                for s in self.segments
            ],
            "deletions": (
                {"file": self.deletions.file, "count": self.deletions.count}
                if self.deletions is not None
                else None
            ),
            "sample_checksums": self.sample_checksums,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], path: Path | str) -> VersionInfo:
        version = _count(raw, "version", path)
        if version < 1:
            raise ManifestError(path, "version", f"must be at least 1, got {version}")
        parent = raw.get("parent")
        if parent is not None and not (_is_int(parent) and 1 <= parent < version):
            raise ManifestError(
                path, "parent", f"must be null or a version below {version}, got {quote(parent)}"
            )
        operation = raw.get("operation")
        if operation not in OPERATIONS:
            raise ManifestError(path, "operation", f"must be one of {OPERATIONS}")
        segments_raw = raw.get("segments")
        if not isinstance(segments_raw, list):
            raise ManifestError(path, "segments", "must be a list")
        segments = []
        for i, entry in enumerate(segments_raw):
            if not (isinstance(entry, dict) and isinstance(entry.get("file"), str)):
                raise ManifestError(path, f"segments[{i}].file", "must be a string")
            prefix = f"segments[{i}]"
            segments.append(
                Segment(
                    entry["file"],
                    _count(entry, "n_rows", path, prefix),
                    _count(entry, "n_columns", path, prefix),
                )
            )
        deletions = None
        if raw.get("deletions") is not None:
            entry = raw["deletions"]
            if not (isinstance(entry, dict) and isinstance(entry.get("file"), str)):
                raise ManifestError(path, "deletions.file", "must be a string")
            deletions = Deletions(entry["file"], _count(entry, "count", path, "deletions"))
        info = cls(
            version,
            parent,
            operation,
            segments,
            deletions,
            str(raw.get("committed_at", "")),
            raw.get("sample_checksums") is True,
        )
        if info.n_deleted > info.n_rows:
            raise ManifestError(
                path, "deletions.count", f"is {info.n_deleted}, beyond the {info.n_rows} rows"
            )
        return info


def utc_text(seconds: float | None = None) -> str:
    """A time (now when None) as a version records it: UTC, ISO 8601, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(raw: dict, key: str, path: Path | str, prefix: str = "") -> int:
    value = raw.get(key)
    name = f"{prefix}.{key}" if prefix else key
    if not (_is_int(value) and value >= 0):
        raise ManifestError(path, name, f"must be a count (an integer >= 0), got {quote(value)}")
    return value


# --- deletion vectors ---------------------------------------------------------------------
def deletion_bytes(positions: np.ndarray) -> bytes:
    """A deletion vector as stored: a ``.npy`` file of sorted, distinct int64 positions."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(positions, dtype="<i8"), allow_pickle=False)
    return buffer.getvalue()


def parse_deletions(data: bytes, path: Path | str, count: int, n_rows: int) -> np.ndarray:
    """The positions of a deletion vector, checked: ``count`` sorted, distinct positions
    below ``n_rows`` (a damaged vector must not hide or resurrect rows)."""
    try:
        positions = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as error:  # a damaged header: numpy's own words
        raise CorruptDatasetError(f"{path}: deletion vector does not parse: {error}") from None
    if positions.dtype != np.dtype("<i8") or positions.ndim != 1:
        raise CorruptDatasetError(
            f"{path}: deletion vector must be 1-d int64, got {positions.dtype} {positions.shape}"
        )
    if len(positions) != count:
        raise CorruptDatasetError(
            f"{path}: deletion vector holds {len(positions)} positions, the manifest says {count}"
        )
    if count and (
        positions[0] < 0 or positions[-1] >= n_rows or np.any(positions[1:] <= positions[:-1])
    ):
        raise CorruptDatasetError(
            f"{path}: deletion vector must hold sorted, distinct positions below {n_rows}"
        )
    return positions


def live_positions(n_rows: int, deleted: np.ndarray) -> np.ndarray:
    """The rows still live, in order: the physical row of each logical sample."""
    keep = np.ones(n_rows, dtype=bool)
    keep[deleted] = False
    return np.flatnonzero(keep)


__all__ = [
    "DELETIONS_DIR",
    "OPERATIONS",
    "SEGMENTS_DIR",
    "TOKEN",
    "VERSIONS_DIR",
    "Deletions",
    "Segment",
    "VersionInfo",
    "deletion_bytes",
    "list_versions",
    "live_positions",
    "new_token",
    "parse_deletions",
    "utc_text",
    "version_file",
    "version_number",
]
