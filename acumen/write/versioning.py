"""Commits to a dataset that changes: each one a new version (see acumen.format.versions).

A write-once dataset becomes version 1 at its first change, without rewriting anything
(its index is the first segment; a ``csv`` index is hard-linked, because ``index.csv`` is
rewritten for the original reader). A change is then built on the newest version and
committed as the next one; when another writer committed that number first, the change is
built again on theirs (an append always can) or refused with
:class:`~acumen.errors.CommitConflictError`. Never a version that lost a commit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acumen import plugins
from acumen._version import __version__
from acumen.errors import CommitConflictError, DatasetNotFoundError, IncompleteDatasetError
from acumen.files.claim import owner_of
from acumen.files.local import fsync_directory, replace_durably, write_atomically
from acumen.format.checksums import file_checksum
from acumen.format.layout import MANIFEST_FILE, ORIGINAL_INDEX_FILE, WRITING_MARKER
from acumen.format.manifest import ChunkEntry, Manifest
from acumen.format.version_files import commit_version, load_version
from acumen.format.versions import (
    SEGMENTS_DIR,
    Deletions,
    Segment,
    VersionInfo,
    list_versions,
    new_token,
    utc_text,
)
from acumen.index_formats.segments import read_index_file, read_version_table

#: How many times a change is built again on a newer version before giving up.
MAX_ATTEMPTS = 64


def newest_manifest(root: Path) -> Manifest:
    """The newest version of the acumen dataset at ``root`` (a change's starting point)."""
    if not (root / MANIFEST_FILE).exists() and not list_versions(root):
        if (root / WRITING_MARKER).exists():
            raise IncompleteDatasetError(
                f"{root}: incomplete dataset ({WRITING_MARKER} is present, {MANIFEST_FILE} is "
                "not): its write did not finish; nothing can be added to it"
            )
        if (root / ORIGINAL_INDEX_FILE).exists():
            raise DatasetNotFoundError(
                f"{root}: an original acumenindexer dataset records no dtype or codec; give it "
                f"a manifest first (`acumen recode {root} NEW_PATH`), then change that"
            )
        raise DatasetNotFoundError(f"{root}: no dataset to change (no {MANIFEST_FILE})")
    if owner_of(root) is not None:
        raise IncompleteDatasetError(
            f"{root}: a writer is still writing this dataset ({WRITING_MARKER} is present)"
        )
    return load_version(root)


def index_plugin_of(manifest: Manifest, root: Path) -> Any:
    """The index format of the dataset at ``root`` whose manifest is ``manifest``."""
    return plugins.named_by(manifest, "index", root / MANIFEST_FILE)


def as_versioned(root: Path, manifest: Manifest, index_plugin: Any) -> Manifest:
    """``manifest`` if it is a version already; else version 1 is committed from it (the
    dataset's files untouched) and returned."""
    if manifest.versioned is not None:
        return manifest
    index_file = manifest.index["file"]
    table = read_index_file(index_plugin, root / index_file, manifest.metadata)
    files = dict(manifest.files)
    segment = index_file
    if has_view(manifest):  # index.csv will follow the newest version: keep these bytes
        segment = f"{SEGMENTS_DIR}/{new_token()}.csv"
        (root / SEGMENTS_DIR).mkdir(exist_ok=True)
        try:
            os.link(root / index_file, root / segment)
        except OSError:  # a file system without hard links
            shutil.copyfile(root / index_file, root / segment)
        files[segment] = files.pop(index_file, None) or file_checksum(root / segment)
    written = utc_text(_mtime(root / MANIFEST_FILE))
    info = VersionInfo(
        1,
        None,
        "concat" if manifest.concat_of is not None else "write",
        [Segment(segment, len(table), len(manifest.metadata))],
        committed_at=written,
        sample_checksums=table.checksums is not None,
    )
    committed = commit_version(root, dataclasses.replace(manifest, versioned=info, files=files))
    if not committed and segment != index_file:  # another writer made version 1 first
        with contextlib.suppress(OSError):
            os.unlink(root / segment)
    return load_version(root)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def has_view(manifest: Manifest) -> bool:
    """Whether the dataset keeps ``index.csv`` for the original reader (a ``csv`` index):
    rewritten at each commit to hold every live sample of the newest version."""
    return manifest.index.get("name") == "csv" and manifest.index["file"] == ORIGINAL_INDEX_FILE


def next_version(
    base: Manifest,
    operation: str,
    *,
    segments: list[Segment] | None = None,
    deletions: Deletions | bool | None = False,
    chunks: list[ChunkEntry] | None = None,
    files: dict[str, str] | None = None,
    **changes: Any,
) -> Manifest:
    """The manifest of the version after ``base`` (versioned): what ``changes`` say, the
    rest as it was. ``deletions=False`` keeps ``base``'s deletion vector."""
    info = base.versioned
    assert info is not None
    new_info = VersionInfo(
        info.version + 1,
        info.version,
        operation,
        list(info.segments) if segments is None else segments,
        info.deletions if deletions is False else deletions,  # type: ignore[arg-type]
        sample_checksums=info.sample_checksums,
    )
    return dataclasses.replace(
        base,
        versioned=new_info,
        chunks=list(base.chunks) if chunks is None else chunks,
        files=dict(base.files) if files is None else files,
        acumen_version=__version__,
        **{"concat_of": None, **changes},  # where the samples came from: version 1 says
    )


def commit_change(
    root: Path,
    build: Callable[[Manifest], Manifest],
    index_plugin: Any | None = None,
    remote: Any = None,
) -> Manifest:
    """Commit ``build(newest version)`` as the next version. If another writer committed
    that number first, ``build`` runs again on the newer version: it raises
    :class:`CommitConflictError` when the change does not hold there. ``remote``: a
    dataset in a store (``RemoteVersions``), changed through the staging folder ``root``."""
    for _ in range(MAX_ATTEMPTS):
        if remote is not None:
            base = remote.newest()
            plugin = index_plugin or index_plugin_of(base, root)
        else:
            newest = newest_manifest(root)
            plugin = index_plugin or index_plugin_of(newest, root)
            base = as_versioned(root, newest, plugin)
        manifest = build(base)
        if remote is not None and remote.create(manifest):
            remote.after(manifest, plugin)
            return manifest
        if remote is None and commit_version(root, manifest):
            refresh_view(root, manifest, plugin)
            return manifest
    raise CommitConflictError(
        f"{root}: {MAX_ATTEMPTS} other commits landed while this one was being made; "
        "nothing of it was committed: try again"
    )


def refresh_view(root: Path, manifest: Manifest, index_plugin: Any) -> None:
    """``index.csv`` rewritten with every live sample of ``manifest``'s version, unless a
    newer version exists by then (its writer rewrites it)."""
    if not has_view(manifest):
        return
    table = read_version_table(root, manifest, index_plugin)
    temporary = root / f".{ORIGINAL_INDEX_FILE}.tmp-{os.getpid()}"
    try:
        index_plugin.write(table, temporary)
        if list_versions(root)[-1] != manifest.versioned.version:  # type: ignore[union-attr]
            return
        replace_durably(temporary, root / ORIGINAL_INDEX_FILE)
        fsync_directory(root)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def follow_newest(root: Path) -> list[str]:
    """Make ``manifest.json`` (and a csv dataset's ``index.csv``) follow the newest version
    again after a writer died between its commit and those copies; the files rewritten."""
    versions = list_versions(root)
    if not versions:
        return []
    newest = load_version(root, versions[-1])
    rewritten = []
    if (root / MANIFEST_FILE).read_bytes() != newest.text():
        write_atomically(root / MANIFEST_FILE, newest.text())
        rewritten.append(MANIFEST_FILE)
    if has_view(newest):
        plugin = index_plugin_of(newest, root)
        current = read_index_file(plugin, root / ORIGINAL_INDEX_FILE, newest.metadata)
        if current != read_version_table(root, newest, plugin):
            refresh_view(root, newest, plugin)
            rewritten.append(ORIGINAL_INDEX_FILE)
    return rewritten
