"""Finding, loading and committing a dataset's versions (see :mod:`acumen.format.versions`).

The commit of version N is the exclusive creation of ``_versions/<N>.json``: the file is
written and fsynced under a temporary name, then hard-linked to its final name, which fails
if another writer created it first (``link`` never replaces, and is atomic on POSIX file
systems). ``manifest.json`` is then replaced by a copy of the newest version, so that tools
that read it see the dataset as it now is; readers list ``_versions/`` and never rely on it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from acumen.errors import DatasetNotFoundError, ManifestError
from acumen.files.local import fsync_directory, read_regular_bytes, write_atomically
from acumen.format.layout import MANIFEST_FILE
from acumen.format.manifest import Manifest
from acumen.format.versions import VERSIONS_DIR, list_versions, version_file


def version_path(root: Path, version: int | None) -> Path:
    """The manifest file of ``version`` (None: the newest), for a versioned dataset or not:
    a dataset that never changed has only version 1, its ``manifest.json``."""
    versions = list_versions(root)
    if not versions:
        if version not in (None, 1):
            raise DatasetNotFoundError(
                f"{root}: no version {version}: the dataset never changed (it has version 1)"
            )
        return root / MANIFEST_FILE
    number = versions[-1] if version is None else version
    if number not in versions:
        raise DatasetNotFoundError(
            f"{root}: no version {number}; it has versions {_ranges(versions)}"
        )
    return root / version_file(number)


def load_version(root: Path, version: int | None = None, path: Path | None = None) -> Manifest:
    """The manifest of ``version`` (None: the newest), checked to be that version;
    ``path``: its file, when the caller has found it already (:func:`version_path`)."""
    path = path if path is not None else version_path(root, version)
    if path.name == MANIFEST_FILE:
        return Manifest.load(path)
    return parse_version(read_regular_bytes(path, "manifest"), path, int(path.stem))


def parse_version(data: bytes, where: Path | str, number: int) -> Manifest:
    """The manifest of version ``number`` from its file's bytes (local, or an object in a
    store), checked to be that version: a file renamed or copied under another number is
    refused, never read as the version its name says."""
    manifest = Manifest.parse(data, where)
    if manifest.versioned is None or manifest.versioned.version != number:
        raise ManifestError(where, "version", f"must be {number}, as the file's name says")
    return manifest


def commit_version(root: Path, manifest: Manifest) -> bool:
    """Create the file of ``manifest``'s version, only if no writer did: False when one did
    (a conflict: nothing was changed). Then ``manifest.json`` follows it (best effort: a
    crash there leaves it one version behind, which readers never use)."""
    info = manifest.versioned
    assert info is not None
    final = root / version_file(info.version)
    final.parent.mkdir(exist_ok=True)
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    write_atomically(temporary, manifest.text())
    try:
        os.link(temporary, final)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    fsync_directory(final.parent)
    if list_versions(root)[-1] == info.version:  # a newer one's writer updates it itself
        write_atomically(root / MANIFEST_FILE, manifest.text())
        fsync_directory(root)
    return True


def _ranges(numbers: list[int]) -> str:
    """``1-4, 7`` for [1, 2, 3, 4, 7]."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


__all__ = ["VERSIONS_DIR", "commit_version", "load_version", "parse_version", "version_path"]
