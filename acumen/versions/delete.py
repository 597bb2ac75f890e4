"""``acumen delete``: samples marked deleted in a new version, nothing rewritten.

The new version names a new deletion vector (``_deletions/<token>.npy``): the physical rows
its parent had deleted and the new ones. Readers leave those rows out, so the samples of
the new version are numbered densely again; chunk files and index segments stay as they
are (``acumen compact`` rewrites what is mostly deleted, ``acumen vacuum`` removes what no
kept version names).

If another writer commits first, a ``where`` delete is evaluated again on the newer version
(the condition still means what it meant); an ``indices`` delete holds only if every
version since only appended (the positions it named are unchanged), else
:class:`~acumen.errors.CommitConflictError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acumen.errors import SampleError
from acumen.format.manifest import Manifest
from acumen.format.versions import Deletions, VersionInfo, deletion_bytes, live_positions
from acumen.index_formats.segments import deleted_rows
from acumen.read.opening import open_dataset
from acumen.versions.change import Operation, dataset_root, require_only_appends
from acumen.write.versioning import commit_change, newest_manifest, next_version


@dataclass(frozen=True)
class Deleted:
    """What a delete did: how many samples went, from which version to which (the same
    number when nothing matched: no version was made)."""

    manifest: Manifest
    n_deleted: int
    before: int  # the version the samples were deleted from
    n_before: int  # its samples
    what: str = ""  # the condition, or the sample numbers

    @property
    def version(self) -> int:
        info = self.manifest.versioned
        return info.version if info is not None else 1

    def __str__(self) -> str:
        if not self.n_deleted:
            return (
                f"nothing deleted: no sample matched {self.what}; the dataset stays at "
                f"version {self.before}"
            )
        return (
            f"deleted {self.n_deleted:,} of {self.n_before:,} samples ({self.what}): "
            f"version {self.version} "
            f"(from version {self.before}) has {self.manifest.n_samples:,} samples"
        )


def delete(
    path: str | os.PathLike[str], *, where: str | None = None, indices: Iterable[int] | None = None
) -> Manifest:
    """Delete samples from the dataset at ``path`` in a new version; its manifest returned
    (the newest one unchanged when nothing matched). ``where`` is a condition on the
    metadata as :meth:`Dataset.filter` takes it (``"label == -1"``); ``indices`` are sample
    numbers of the newest version. Give exactly one of them. Nothing is rewritten: the
    deleted samples' bytes stay until ``acumen compact`` and ``acumen vacuum``."""
    return delete_samples(path, where=where, indices=indices).manifest


def delete_samples(
    path: str | os.PathLike[str], *, where: str | None = None, indices: Iterable[int] | None = None
) -> Deleted:
    """:func:`delete`, saying how many samples went (what ``acumen delete`` prints)."""
    if (where is None) == (indices is None):
        raise ValueError("give exactly one of where= (a condition) and indices= (sample numbers)")
    root = dataset_root(path, "delete")
    if indices is not None:
        chosen = _indices(indices)
        selection: _Selection = _ByIndices(root, chosen)
        what = f"samples {_shown(chosen)}"
    else:
        if not isinstance(where, str) or not where.strip():
            raise ValueError(f'where= must be a condition such as "label == -1", got {where!r}')
        selection = _ByCondition(root, where)
        what = f"where {where}"
    newest = newest_manifest(root)
    rows = selection.rows(newest)
    if not len(rows):
        return Deleted(newest, 0, _version(newest), newest.n_samples, what)
    operation = Operation.start(root, "delete", newest)
    try:
        first = operation.base
        if _version(first) != _version(newest):  # another commit landed before the claim
            rows = selection.rows(first)
        made: dict[str, Deleted] = {}

        def build(newer: Manifest) -> Manifest:
            nonlocal rows
            if _version(newer) != selection.version:
                rows = selection.rows(newer)
            if not len(rows):
                raise _NothingLeft(newer)
            deleted = np.union1d(deleted_rows(root, newer), rows).astype(np.int64)
            checksum = operation.write_bytes(operation.deletion_file, deletion_bytes(deleted))
            info = newer.versioned
            assert info is not None
            files = {k: v for k, v in newer.files.items() if not _is_deletions(info, k)}
            manifest = next_version(
                newer,
                "delete",
                deletions=Deletions(operation.deletion_file, len(deleted)),
                files={**files, operation.deletion_file: checksum},
                n_samples=info.n_rows - len(deleted),
            )
            made["result"] = Deleted(manifest, len(rows), info.version, newer.n_samples, what)
            return manifest

        commit_change(root, build, operation.index_format)
    except _NothingLeft as nothing:
        operation.fail()
        newest = nothing.newest
        return Deleted(newest, 0, _version(newest), newest.n_samples, what)
    except BaseException:
        operation.fail()
        raise
    operation.finish()
    return made["result"]


class _NothingLeft(Exception):
    """A newer version left nothing for the condition to delete: no version is made."""

    def __init__(self, newest: Manifest) -> None:
        super().__init__()
        self.newest = newest


def _version(manifest: Manifest) -> int:
    return manifest.versioned.version if manifest.versioned is not None else 1


def _is_deletions(info: VersionInfo, name: str) -> bool:
    return info.deletions is not None and name == info.deletions.file


def _indices(indices: Iterable[int]) -> np.ndarray:
    """The sample numbers asked for, as int64, without duplicates (a duplicate is refused)."""
    chosen = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if chosen.ndim != 1 or (len(chosen) and chosen.dtype.kind not in "iu"):
        raise TypeError(f"indices= must be whole sample numbers, got {chosen.dtype} {chosen.shape}")
    chosen = chosen.astype(np.int64)
    values, counts = np.unique(chosen, return_counts=True)
    if len(values) != len(chosen):
        twice = values[counts > 1][:10].tolist()
        raise ValueError(f"indices= names samples {twice} more than once: name each once")
    return chosen


class _Selection:
    """Which physical rows of a version go; ``version`` is the one last evaluated."""

    root: Path
    version: int = 0

    def rows(self, manifest: Manifest) -> np.ndarray:
        raise NotImplementedError


class _ByCondition(_Selection):
    def __init__(self, root: Path, where: str) -> None:
        self.root, self.where = root, where

    def rows(self, manifest: Manifest) -> np.ndarray:
        """The condition evaluated on ``manifest``'s version, opened as a reader opens it."""
        self.version = _version(manifest)
        with open_dataset(self.root, version=self.version) as ds:  # 1: a write-once dataset
            logical = ds.filter(self.where).positions
        return _physical(self.root, manifest, np.asarray(logical, dtype=np.int64))


class _ByIndices(_Selection):
    def __init__(self, root: Path, indices: np.ndarray) -> None:
        self.root, self.indices = root, indices
        self.found: np.ndarray | None = None

    def rows(self, manifest: Manifest) -> np.ndarray:
        """The indices' rows in the version they were given for; in a later one only if
        every version since only appended."""
        if self.found is None:
            self.version = _version(manifest)
            n = manifest.n_samples
            outside = self.indices[(self.indices < 0) | (self.indices >= n)]
            if len(outside):
                raise SampleError(
                    f"{self.root}: samples {outside[:10].tolist()} are out of range: version "
                    f"{self.version} has {n:,} samples (0 to {n - 1:,}); nothing was deleted"
                )
            self.found = _physical(self.root, manifest, self.indices)
        elif _version(manifest) != self.version:
            require_only_appends(
                self.root,
                f"deleting samples by number {_shown(self.indices)}",
                self.version,
                manifest,
            )
        return self.found


def _shown(indices: np.ndarray) -> str:
    listed = ",".join(str(i) for i in indices[:5].tolist())
    return listed + (f",... ({len(indices)} samples)" if len(indices) > 5 else "")


def _physical(root: Path, manifest: Manifest, logical: np.ndarray) -> np.ndarray:
    """The physical rows (positions in the segments) of samples ``logical`` of a version."""
    if manifest.versioned is None or manifest.versioned.deletions is None:
        return np.sort(logical)
    live = live_positions(manifest.versioned.n_rows, deleted_rows(root, manifest))
    return np.sort(live[logical])
