"""``acumen history``: one line per version of a dataset, newest last."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from acumen.errors import DatasetNotFoundError
from acumen.files.remote import is_url, local_path
from acumen.format.layout import MANIFEST_FILE
from acumen.format.manifest import Manifest
from acumen.format.version_files import load_version, parse_version
from acumen.format.versions import (
    VERSIONS_DIR,
    list_versions,
    utc_text,
    version_file,
    version_number,
)


@dataclass(frozen=True)
class VersionEntry:
    """One commit: its number, parent, time (UTC, ISO 8601), operation and live samples."""

    version: int
    parent: int | None
    committed_at: str
    operation: str
    n_samples: int
    n_deleted: int


def history(
    path: str | os.PathLike[str], *, storage_options: dict | None = None
) -> list[VersionEntry]:
    """Every version of the dataset at ``path`` (a folder, or a URL of a store that lists
    objects: S3, GCS, Azure), oldest first. A dataset that never changed has one, version 1
    (its write)."""
    if is_url(path):
        return _remote_history(str(path), storage_options)
    root = Path(local_path(path))
    if root.is_file() and root.name == MANIFEST_FILE:
        root = root.parent
    if not (root / MANIFEST_FILE).is_file() and not list_versions(root):
        raise DatasetNotFoundError(f"{root}: not an acumen dataset (no {MANIFEST_FILE})")
    numbers = list_versions(root)
    if not numbers:
        manifest = Manifest.load(root / MANIFEST_FILE)
        when = _written_at(root / MANIFEST_FILE)
        operation = "concat" if manifest.concat_of is not None else "write"
        return [VersionEntry(1, None, when, operation, manifest.n_samples, 0)]
    return [_entry(load_version(root, n)) for n in numbers]


def _remote_history(url: str, storage_options: dict | None) -> list[VersionEntry]:
    from acumen.files.remote import RemoteStore  # fsspec: only for a URL

    store = RemoteStore(url.rstrip("/"), storage_options)
    numbers = sorted(n for n in map(version_number, store.names_in(VERSIONS_DIR)) if n)
    if not numbers:
        where = store.url_of(MANIFEST_FILE)
        try:
            manifest = Manifest.parse(store.read_bytes(where, "manifest"), where)
        except FileNotFoundError:
            raise DatasetNotFoundError(
                f"{url}: not an acumen dataset (no {MANIFEST_FILE})"
            ) from None
        if manifest.versioned is None:
            return [VersionEntry(1, None, "", "write", manifest.n_samples, 0)]
        return [_entry(manifest)]  # a store that cannot list: the newest, as manifest.json says
    entries = []
    for number in numbers:
        where = store.url_of(version_file(number))
        entries.append(_entry(parse_version(store.read_bytes(where, "version"), where, number)))
    return entries


def _entry(manifest: Manifest) -> VersionEntry:
    info = manifest.versioned
    assert info is not None
    return VersionEntry(
        info.version,
        info.parent,
        info.committed_at,
        info.operation,
        manifest.n_samples,
        info.n_deleted,
    )


def _written_at(path: Path) -> str:
    return utc_text(path.stat().st_mtime)


def format_history(entries: list[VersionEntry], as_json: bool = False) -> str:
    """The command's output: aligned lines, or JSON (a list of objects) for scripts."""
    if as_json:
        return json.dumps([asdict(e) for e in entries], indent=1)
    lines = [f"{'version':>7}  {'committed (UTC)':<20}  {'operation':<9}  {'samples':>12}"]
    for e in entries:
        deleted = f"  ({e.n_deleted:,} deleted rows kept)" if e.n_deleted else ""
        lines.append(
            f"{e.version:>7}  {e.committed_at:<20}  {e.operation:<9}  {e.n_samples:>12,}{deleted}"
        )
    return "\n".join(lines)
