"""Opening a dataset in object storage (``s3://``, ``gs://``, ``az://``, ``http(s)://``).

The small files a dataset names (``manifest.json``, the index, codec resources such as a
zstd dictionary) are fetched into a local mirror folder under the cache directory, each
checked against the manifest's checksums as a local dataset's are; the chunk files stay in
the store and are read by the ``remote`` storage, one ranged GET per sample (or per run of
nearby samples in a batch). The manifest is fetched at every open (it is the commit point:
a dataset rewritten in place is seen); the index is fetched again only when its checksum
in that manifest differs from the mirrored copy's.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from acumen.errors import (
    CorruptDatasetError,
    DatasetNotFoundError,
    IncompleteDatasetError,
    quote,
)
from acumen.files.cache_dir import url_folder
from acumen.files.claim import WRITING_MARKER
from acumen.files.local import write_atomically
from acumen.files.remote import RemoteStore
from acumen.format.checksums import CHECKSUM, bytes_checksum, file_checksum
from acumen.format.layout import MANIFEST_FILE, MAX_NAME_LENGTH, ORIGINAL_INDEX_FILE
from acumen.format.manifest import Manifest
from acumen.format.version_files import parse_version
from acumen.format.versions import VERSIONS_DIR, version_file, version_number
from acumen.read.overrides import OpenOverrides


@dataclass
class RemoteMirror:
    """A remote dataset's small files in a local folder, and where its chunks are."""

    url: str
    store: RemoteStore
    root: Path  # the local mirror folder
    manifest: Manifest | None

    @classmethod
    def fetch(
        cls,
        url: str,
        storage_options: dict[str, Any] | None,
        cache: str | os.PathLike[str] | None,
        asked: OpenOverrides,
        version: int | None = None,
    ) -> RemoteMirror:
        """``version``: which version of a changed dataset (None: the newest)."""
        url = _dataset_url(url)
        store = RemoteStore(url, storage_options)
        root = _mirror_folder(url, cache)
        if version is not None:
            mirror = cls._version(url, store, root, version)
            if mirror is not None:
                return mirror
        manifest_url = store.url_of(MANIFEST_FILE)
        try:
            data = store.read_bytes(manifest_url, "manifest")
        except FileNotFoundError:
            data = None
        if data is None and store.size(store.url_of(WRITING_MARKER)) is not None:
            raise IncompleteDatasetError(
                f"{url}: incomplete: a writer's marker ({WRITING_MARKER}) is there and no "
                f"{MANIFEST_FILE}: a write or upload was interrupted or is still running "
                f"(the marker says: {_marker_text(store)}); if no writer is running, remove "
                f"what it left with `acumen clean {url}` and write it again"
            )
        if data is None:  # an original acumenindexer dataset: its index, always fetched
            name = asked.original_index_format().filename
            _fetch(store, root, name, None, "index file", original=True)
            _remove(root / MANIFEST_FILE)  # a stale manifest must not make it look written
            return cls(url, store, root, None)
        write_atomically(root / MANIFEST_FILE, data, root)
        manifest = Manifest.load(root / MANIFEST_FILE)  # checked and its seal verified
        if manifest.versioned is not None:  # changed: a newer version than manifest.json?
            newest = _newest_version(store)
            if newest is not None and newest > manifest.versioned.version:
                mirror = cls._version(url, store, root, newest)
                if mirror is not None:
                    return mirror
        return cls._mirrored(url, store, root, manifest)

    @classmethod
    def _version(
        cls, url: str, store: RemoteStore, root: Path, version: int
    ) -> RemoteMirror | None:
        """Version ``version``'s manifest (its own file: never the mirror's manifest.json,
        which another process may be opening at another version), then its files; None
        for version 1 of a dataset that never changed (its manifest.json is that)."""
        relative = version_file(version)
        try:
            data = store.read_bytes(store.url_of(relative), "version manifest")
        except FileNotFoundError:
            if version == 1:
                return None
            raise DatasetNotFoundError(f"{url}: no version {version} ({relative})") from None
        manifest = parse_version(data, store.url_of(relative), version)
        return cls._mirrored(url, store, root, manifest)

    @classmethod
    def _mirrored(
        cls, url: str, store: RemoteStore, root: Path, manifest: Manifest
    ) -> RemoteMirror:
        """The files ``manifest`` names, mirrored under ``root``."""
        index = manifest.index["file"]
        if manifest.versioned is None:
            _fetch(store, root, index, manifest.files.get(index), "index file")
        # A changed dataset's index is its segments and deletion vector: all in ``files``.
        index_files = set(manifest.versioned.index_files()) if manifest.versioned else set()
        for name, checksum in manifest.files.items():
            if name != index or manifest.versioned is not None:
                what = "index segment" if name in index_files else "codec resource"
                _fetch(store, root, name, checksum, what)
        return cls(url, store, root, manifest)

    def locate_chunks(self, names: list[str]) -> tuple[list[str], np.ndarray]:
        """Each chunk's URL and size: the manifest's sizes (sealed), or, for an original
        dataset, the store's (one request per chunk, concurrent)."""
        urls = [self.store.url_of(_relative(self.url, name, "chunk file")) for name in names]
        if self.manifest is not None:
            declared = {c.file: c.size_bytes for c in self.manifest.chunks}
            sizes = [declared.get(name, -1) for name in names]
        else:
            sizes = [-1 if s is None else s for s in self.store.sizes(urls)]
        return urls, np.asarray(sizes, dtype=np.int64)


def _dataset_url(url: str) -> str:
    """The dataset's root URL: a URL naming its manifest or index file stands for its
    folder, as a local path does."""
    url = url.rstrip("/")
    head, _, tail = url.rpartition("/")
    if "://" in head and (
        tail in (MANIFEST_FILE, ORIGINAL_INDEX_FILE) or tail.startswith("index.")
    ):
        return head
    return url


def _mirror_folder(url: str, cache: str | os.PathLike[str] | None) -> Path:
    return url_folder(url, cache, "remote")


def _relative(url: str, name: str, what: str) -> str:
    """A name the manifest or index gives, as a path inside the dataset (no ``..``, not
    absolute, no scheme): the store is never asked for an object outside the dataset."""
    if not isinstance(name, str) or "\0" in name or len(name) > MAX_NAME_LENGTH:
        raise CorruptDatasetError(f"{url}: {what} {quote(name)} is not a file name")
    pure = PurePosixPath(name.replace("\\", "/"))
    if not name or pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0]:
        raise CorruptDatasetError(f"{url}: {what} {quote(name)} is not a path inside the dataset")
    return "/".join(pure.parts)


def _fetch(
    store: RemoteStore,
    root: Path,
    name: str,
    checksum: str | None,
    what: str,
    original: bool = False,
) -> None:
    """Mirror one small file, unless the mirrored copy already has the manifest's checksum.
    The copy is checked again when the dataset is opened (as a local dataset's files are)."""
    relative = _relative(store.url, name, what)
    path = root.joinpath(*relative.split("/"))
    mirrored = checksum is not None and CHECKSUM.fullmatch(checksum) and path.is_file()
    if mirrored and file_checksum(path, what) == checksum:
        return
    remote = store.url_of(relative)
    try:
        data = store.read_bytes(remote, what)
    except FileNotFoundError:
        if original:
            raise DatasetNotFoundError(
                f"{store.url}: no such dataset (neither {MANIFEST_FILE} nor "
                f"{relative} exists there)"
            ) from None
        raise CorruptDatasetError(f"{remote}: {what} is missing") from None
    if checksum is not None and bytes_checksum(data) != checksum:
        raise CorruptDatasetError(
            f"{remote}: {what} checksum {bytes_checksum(data)} differs from the manifest's "
            f"{checksum}: the file changed"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data, root)


def _newest_version(store: RemoteStore) -> int | None:
    """The newest version of a changed dataset, listed (one request, made only for a
    dataset whose manifest.json says it changed: a dataset written once opens with no
    listing), or None when the store cannot list (an HTTP server: then manifest.json, which
    follows the newest version, possibly one behind after a writer's crash, is read)."""
    try:
        names = store.names_in(VERSIONS_DIR)
    except Exception:  # no listing (HTTP), a refusal: manifest.json decides
        return None
    numbers = [version_number(name) for name in names]
    return max((n for n in numbers if n is not None), default=None)


def _marker_text(store: RemoteStore) -> str:
    try:
        text = store.read_bytes(store.url_of(WRITING_MARKER), "writing marker")
    except Exception:  # the message only loses who wrote it
        return "?"
    return quote(text.decode("utf-8", "replace").strip()[:200])


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
