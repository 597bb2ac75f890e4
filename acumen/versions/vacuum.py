"""``acumen vacuum``: remove the files no kept version names.

Kept: the newest ``keep`` versions, every file they name (chunk files, index segments,
deletion vectors, codec resources), and always ``manifest.json``, ``index.csv``, every
``_versions/*.json`` (the history stays complete: opening a version whose files were
removed fails, naming the missing file) and ``codecs/``. A running writer's files (its
token, claimed in ``_writers/<token>/``) are never touched; a dead writer's claim and its
token's files go. Only acumen's own places are looked at (``chunks/``, ``_index/``,
``_deletions/``, ``_writers/``, temporary files beside the manifest and versions, and the
first write's index once no kept version names it): a file of yours in the folder stays.

Why readers are safe: a reader of a kept version reads only files that version names,
and none of them is removed. The order of the looks makes a writer's new files safe too:
the files are listed first, then the claims, then the versions. A file listed was created
by a writer whose claim existed before it; if the claim is gone at the second look, that
writer had already committed (then the third look finds its version) or died.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from acumen.errors import DatasetNotFoundError, IncompleteDatasetError
from acumen.files.claim import WRITING_MARKER, inspect, owner_of, pid_alive
from acumen.files.remote import is_url
from acumen.format.layout import MANIFEST_FILE, ORIGINAL_INDEX_FILE
from acumen.format.version_files import load_version
from acumen.format.versions import (
    DELETIONS_DIR,
    SEGMENTS_DIR,
    TOKEN,
    VERSIONS_DIR,
    list_versions,
)
from acumen.versions.change import dataset_root
from acumen.write.append import WRITERS_DIR
from acumen.write.versioning import follow_newest

#: A temporary file of :func:`acumen.files.local.write_atomically` (``.NAME.tmp-PID``).
_TEMPORARY = re.compile(r"\..+\.tmp(?:-(\d+))?")
#: An empty claim folder younger than this may be a writer between mkdir and its marker.
_YOUNG_SECONDS = 600.0


@dataclass
class VacuumReport:
    """What a vacuum removed (or, with ``dry_run``, would remove), and what it kept."""

    root: Path
    kept_versions: list[int] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # paths relative to the dataset
    bytes_freed: int = 0
    running_writers: list[str] = field(default_factory=list)  # tokens left alone
    dry_run: bool = False
    #: manifest.json / index.csv rewritten to follow the newest version (a writer had died
    #: after its commit, before it updated them)
    refreshed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.kept_versions:
            return f"{self.root}: written once, never changed: nothing to vacuum"
        verb = "would remove" if self.dry_run else "removed"
        kept = _span(self.kept_versions)
        lines = [f"  {name}" for name in self.removed]
        if self.running_writers:
            lines.append(
                f"left alone: the files of {len(self.running_writers)} writer(s) that may be "
                f"running ({', '.join(self.running_writers)})"
            )
        if self.refreshed:
            lines.append(f"rewritten to follow the newest version: {', '.join(self.refreshed)}")
        lines.append(
            f"{self.root}: {verb} {len(self.removed)} files, {_size(self.bytes_freed)} freed; "
            f"kept versions {kept}"
        )
        return "\n".join(lines)


def vacuum(
    path: str | os.PathLike[str],
    *,
    keep: int = 1,
    dry_run: bool = False,
    storage_options: dict | None = None,
    grace: float | None = None,
) -> VacuumReport:
    """Remove the files of the dataset at ``path`` that none of its newest ``keep``
    versions names (``dry_run``: list them, remove nothing). Readers of kept versions are
    unaffected; older versions stay listed by ``acumen history`` but no longer open.

    ``path`` may be a URL (S3, GCS, Azure: a store that lists): objects modified within
    ``grace`` seconds (default an hour) are left alone, since a store keeps no claim of a
    writer still uploading (see :mod:`acumen.versions.vacuum_remote`)."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be a whole number of versions, at least 1, got {keep!r}")
    if is_url(path):
        from acumen.versions.vacuum_remote import GRACE_SECONDS, vacuum_remote

        report = VacuumReport(str(path).rstrip("/"), dry_run=dry_run)  # type: ignore[arg-type]
        return vacuum_remote(
            str(path),
            report,
            keep=keep,
            dry_run=dry_run,
            storage_options=storage_options,
            grace=GRACE_SECONDS if grace is None else grace,
        )
    if storage_options is not None or grace is not None:
        raise ValueError(f"storage_options= and grace= are for a URL, not {path}")
    root = dataset_root(path, "vacuum")
    report = VacuumReport(root, dry_run=dry_run)
    if owner_of(root) is not None:
        raise IncompleteDatasetError(
            f"{root}: a writer is still writing this dataset ({WRITING_MARKER} is present): "
            "nothing to vacuum until it finishes"
        )
    if not list_versions(root):
        if not (root / MANIFEST_FILE).is_file():
            raise DatasetNotFoundError(f"{root}: not an acumen dataset (no {MANIFEST_FILE})")
        return report  # written once: every file is the one version's
    found = _candidates(root)  # 1. the files
    running, dead = _claims(root)  # 2. the claims
    versions = list_versions(root)  # 3. the versions
    report.kept_versions = versions[-keep:]
    named = _named(root, report.kept_versions)
    report.running_writers = sorted(running)
    doomed = []
    for name in found:
        tokens = set(TOKEN.findall(name))
        if name in named or tokens & running or not _removable_temporary(name):
            continue
        doomed.append(name)
    for token in sorted(dead):  # the claim last: a vacuum killed mid-way is run again
        folder = root / WRITERS_DIR / token
        with contextlib.suppress(OSError):
            doomed += [
                f"{WRITERS_DIR}/{token}/{n}" for n in os.listdir(folder) if n != WRITING_MARKER
            ]
        doomed.append(f"{WRITERS_DIR}/{token}/{WRITING_MARKER}")
    for name in doomed:
        path_ = root / name
        try:
            size = path_.lstat().st_size
        except FileNotFoundError:
            continue
        if not dry_run:
            try:
                path_.unlink()
            except FileNotFoundError:
                continue
        report.removed.append(name)
        report.bytes_freed += size
    if not dry_run:
        _remove_empty_folders(root, running)
        report.refreshed = follow_newest(root)
    return report


def _candidates(root: Path) -> list[str]:
    """Every file in acumen's own places, relative to ``root`` (sorted)."""
    found = []
    for folder in ("chunks", SEGMENTS_DIR, DELETIONS_DIR):
        for dirpath, _, filenames in os.walk(root / folder):
            relative = Path(dirpath).relative_to(root).as_posix()
            found += [f"{relative}/{name}" for name in filenames]
    for folder in ("", VERSIONS_DIR):  # temporary files beside the manifest and versions
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for name in os.listdir(root / folder):
                if _TEMPORARY.fullmatch(name) and (root / folder / name).is_file():
                    found.append(f"{folder}/{name}" if folder else name)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for name in os.listdir(root):  # the first write's index: ours (index.csv never)
            if name.startswith("index.") and name != ORIGINAL_INDEX_FILE:
                found.append(name)
    return sorted(found)


def _claims(root: Path) -> tuple[set[str], set[str]]:
    """The tokens of running writers, and of dead ones (their claim still present)."""
    running: set[str] = set()
    dead: set[str] = set()
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for token in os.listdir(root / WRITERS_DIR):
            folder = root / WRITERS_DIR / token
            state = inspect(folder)
            if state is None:  # no marker: finished, or one that is only starting
                if _young(folder):
                    running.add(token)
                continue
            (running if state.alive else dead).add(token)
    return running, dead


def _young(folder: Path) -> bool:
    try:
        return time.time() - folder.stat().st_mtime < _YOUNG_SECONDS
    except OSError:
        return False


def _named(root: Path, versions: list[int]) -> set[str]:
    """Every file the ``versions`` name."""
    named = set().union(*(load_version(root, number).named_files() for number in versions))
    return {os.path.normpath(name).replace(os.sep, "/") for name in named}


def _removable_temporary(name: str) -> bool:
    """Not a temporary file of a process still running (its pid in the name)."""
    match = _TEMPORARY.fullmatch(name.rsplit("/", 1)[-1])
    if match is None or match.group(1) is None:
        return True
    alive, _ = pid_alive(int(match.group(1)), None)
    return not alive


def _remove_empty_folders(root: Path, running: set[str]) -> None:
    """Token folders left empty (``chunks/<token>/``, dead ``_writers/<token>/``)."""
    for parent in ("chunks", WRITERS_DIR):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for name in os.listdir(root / parent):
                if TOKEN.fullmatch(name) and name not in running:
                    with contextlib.suppress(OSError):  # not empty: left as it is
                        (root / parent / name).rmdir()


def _span(numbers: list[int]) -> str:
    return str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count} bytes"
