"""``acumen vacuum URL``: the objects of a changed dataset in a store that no kept version
names, removed.

A store has no claims a running writer holds (``_writers/<token>/`` is local), so what a
change still uploading has written cannot be told from what a dead one left by name: both
are named by no version yet. Objects modified within ``grace`` seconds (an hour by
default) are therefore left alone; an append that uploads for longer than that while a
vacuum runs would lose its files, and reads of its samples would then fail naming the
missing chunk, never return wrong bytes.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from acumen.errors import DatasetNotFoundError
from acumen.files.remote import RemoteStore
from acumen.files.remote_write import RemoteWriter
from acumen.format.layout import MANIFEST_FILE
from acumen.format.version_files import parse_version
from acumen.format.versions import (
    DELETIONS_DIR,
    SEGMENTS_DIR,
    TOKEN,
    VERSIONS_DIR,
    version_file,
    version_number,
)

#: Objects younger than this (seconds) may be a running writer's: never removed.
GRACE_SECONDS = 3600.0


def vacuum_remote(
    url: str,
    report: Any,
    *,
    keep: int,
    dry_run: bool,
    storage_options: dict[str, Any] | None,
    grace: float = GRACE_SECONDS,
) -> Any:
    """Fill ``report`` (a VacuumReport) for the dataset at ``url``, removing unless
    ``dry_run``."""
    store = RemoteStore(url.rstrip("/"), storage_options)
    fs = store.fs
    base = fs._strip_protocol(store.url).rstrip("/")
    numbers = sorted(n for n in map(version_number, store.names_in(VERSIONS_DIR)) if n)
    if not numbers:
        if store.size(store.url_of(MANIFEST_FILE)) is None:
            raise DatasetNotFoundError(f"{url}: not an acumen dataset (no {MANIFEST_FILE})")
        return report  # written once: every object is the one version's
    report.kept_versions = numbers[-keep:]
    named: set[str] = set()
    for number in report.kept_versions:
        where = store.url_of(version_file(number))
        named |= parse_version(store.read_bytes(where, "version"), where, number).named_files()
    now, recent, doomed = time.time(), set(), []
    for folder in ("chunks", SEGMENTS_DIR, DELETIONS_DIR):
        try:
            found = fs.find(f"{base}/{folder}", detail=True)
        except FileNotFoundError:
            continue
        for path, info in sorted(found.items()):
            name = path[len(base) + 1 :]
            if name in named or info.get("type") == "directory":
                continue
            modified = _modified(info)
            if modified is None or now - modified < grace:
                recent.update(TOKEN.findall(name) or [name])
                continue
            doomed.append(name)
            report.removed.append(name)
            report.bytes_freed += int(info.get("size") or 0)
    report.running_writers = sorted(recent)
    if doomed and not dry_run:
        RemoteWriter(store).delete_many(doomed, "object no kept version names")
    return report


def _modified(info: dict[str, Any]) -> float | None:
    """When an object was last written (seconds since the epoch), as the store says."""
    for key in ("LastModified", "last_modified", "updated", "mtime"):
        value = info.get(key)
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None
