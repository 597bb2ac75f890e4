"""``acumen clean URL``: remove what an interrupted upload left in object storage.

A writer killed while publishing (:mod:`acumen.write.publish`) leaves its marker
``.acumen-writing`` and some objects, but no ``manifest.json``: the URL opens as an
``IncompleteDatasetError`` and new writers refuse it. ``clean`` removes every object under
the URL, the marker last (a clean that is itself interrupted can be run again), and only:

- when there is no ``manifest.json``: a committed dataset is never removed (a marker left
  next to a manifest, by a writer killed just after its commit, is removed alone);
- when the marker is there: objects with no marker are not an acumen upload;
- when the marker's writer is not running on this host (one on another host cannot be
  asked: the marker's start time is shown).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acumen.errors import AcumenError, DatasetExistsError, quote
from acumen.files.claim import WRITING_MARKER, pid_alive, this_host
from acumen.files.remote import RemoteStore, is_url
from acumen.files.remote_write import RemoteWriter
from acumen.format.layout import MANIFEST_FILE


class CleanRefusedError(AcumenError, ValueError):
    """What is at the URL is not an interrupted upload acumen may remove."""


@dataclass
class CleanReport:
    url: str
    removed: list[str] = field(default_factory=list)
    marker: str = ""  # what the marker said
    dry_run: bool = False

    def __str__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        lines = [f"{self.url}/{name}" for name in self.removed]
        if self.marker:
            lines.append(f"the interrupted writer's marker said: {self.marker}")
        lines.append(f"{self.url}: {verb} {len(self.removed)} object(s)")
        return "\n".join(lines)


def clean(
    url: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    dry_run: bool = False,
) -> CleanReport:
    """Remove an interrupted upload at ``url`` (see the module's docstring); ``dry_run``:
    only list what would go."""
    if not is_url(url):
        raise CleanRefusedError(
            f"{url}: acumen clean is for URLs (s3://...); a local folder left by an "
            "interrupted writer is taken over or refused by the next writer, naming it"
        )
    target = RemoteWriter(RemoteStore(str(url).rstrip("/"), storage_options))
    report = CleanReport(target.url, dry_run=dry_run)
    marker = target.read(WRITING_MARKER, "writing marker")
    if target.exists(MANIFEST_FILE):
        if marker is None:
            raise DatasetExistsError(
                f"{target.url} holds a committed dataset ({MANIFEST_FILE}): acumen clean "
                "removes only an interrupted upload; nothing was removed"
            )
        report.removed = [WRITING_MARKER]  # left by a writer killed after its commit
    else:
        names = target.names()
        if marker is None:
            if not names:
                return report  # nothing there
            raise CleanRefusedError(
                f"{target.url}: {len(names)} object(s) but no writer's marker "
                f"({WRITING_MARKER}) and no {MANIFEST_FILE}: not an upload acumen left; "
                "nothing was removed"
            )
        _refuse_a_running_writer(target.url, marker)
        report.removed = [n for n in names if n != WRITING_MARKER] + [WRITING_MARKER]
    report.marker = _said(marker)
    if not dry_run:
        *objects, last = report.removed
        target.delete_many(objects, "an interrupted upload's objects")
        target.delete(last, "writing marker")
    return report


def _said(marker: bytes | None) -> str:
    if marker is None:
        return ""
    try:
        found = json.loads(marker)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(found["started"])))
        return (
            f"{found.get('kind', '?')} writer, pid {found.get('pid', '?')} on host "
            f"{found.get('host', '?')}, started {started}"
        )
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        return quote(marker.decode("utf-8", "replace").strip()[:200])


def _refuse_a_running_writer(url: str, marker: bytes) -> None:
    try:
        found = json.loads(marker)
        pid = int(found["pid"]) if found.get("host") == this_host() else None
        identity = found.get("process")
    except (ValueError, TypeError, KeyError, AttributeError):
        return  # a damaged marker: removed with the rest
    if pid is None or pid == os.getpid():
        return
    alive, why = pid_alive(pid, identity if isinstance(identity, str) else None)
    if alive:
        raise CleanRefusedError(
            f"{url}: the writer that left {WRITING_MARKER} ({_said(marker)}) may still be "
            f"running on this host ({why}): nothing was removed; stop it first"
        )
