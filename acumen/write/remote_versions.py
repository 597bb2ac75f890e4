"""Commits to a changed dataset in object storage, as :mod:`acumen.write.versioning` makes
them locally.

The change is made in a local staging folder that holds what the store's newest version
names and the change needs (its manifest, codec resources, the segments a merge reads);
its new files (chunk files, a segment) are uploaded first, then the version file is
created **only if absent** (S3's ``If-None-Match: *``, which AWS S3 and the S3-compatible
stores the tests run honour): the commit point, as the exclusive local link is. When
another writer created it first, the change is built again on theirs, as locally. Then
``manifest.json`` follows the newest version (a reader through HTTP, which cannot list,
reads that), and a csv dataset's ``index.csv``.

What a change killed before its commit uploaded is named by no version (orphan objects,
which never change what a reader sees).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from pathlib import PurePosixPath
from typing import Any

from acumen.errors import (
    CorruptDatasetError,
    DatasetNotFoundError,
    IncompleteDatasetError,
)
from acumen.files.cache_dir import url_folder
from acumen.files.claim import WRITING_MARKER
from acumen.files.local import write_atomically
from acumen.files.remote import RemoteStore
from acumen.files.remote_write import RemoteWriter
from acumen.format.checksums import bytes_checksum, file_checksum
from acumen.format.layout import MANIFEST_FILE, ORIGINAL_INDEX_FILE
from acumen.format.manifest import Manifest
from acumen.format.version_files import parse_version
from acumen.format.versions import (
    SEGMENTS_DIR,
    VERSIONS_DIR,
    Segment,
    VersionInfo,
    new_token,
    version_file,
    version_number,
)
from acumen.index_formats.segments import read_index_file, read_version_table


class RemoteVersions:
    """The versions of the dataset at ``url``, and a staging folder to change it in."""

    def __init__(
        self, url: str, storage_options: dict[str, Any] | None, cache: Any, plugin_of: Any
    ) -> None:
        """``plugin_of(manifest, root)``: the index format a manifest names."""
        self.url = url.rstrip("/")
        self.store = RemoteStore(self.url, storage_options)
        self.writer = RemoteWriter(self.store)
        self.staging = url_folder(self.url, cache, "staging") / f"change-{new_token()}"
        self.staging.mkdir(parents=True)
        self._plugin_of = plugin_of
        self._remote: set[str] = set()  # staging files that are the store's (fetched)
        self._uploaded: set[str] = set()

    # --- reading the store -----------------------------------------------------------------
    def numbers(self) -> list[int]:
        found = map(version_number, self.store.names_in(VERSIONS_DIR))
        return sorted(n for n in found if n is not None)

    def newest(self) -> Manifest:
        """The store's newest version (version 1 committed first if it never changed),
        mirrored into the staging folder as the local machinery expects it."""
        numbers = self.numbers()
        manifest = self._load(numbers[-1]) if numbers else self._version_one()
        text = manifest.text()
        number = manifest.versioned.version  # type: ignore[union-attr]
        (self.staging / VERSIONS_DIR).mkdir(exist_ok=True)
        write_atomically(self.staging / version_file(number), text)
        write_atomically(self.staging / MANIFEST_FILE, text)
        index_files = set(manifest.versioned.index_files())  # type: ignore[union-attr]
        resources = [name for name in manifest.files if name not in index_files]
        self.fetch(manifest, resources)
        return manifest

    def fetch(self, manifest: Manifest, names: list[str]) -> None:
        """Files ``manifest`` names, into the staging folder (checked by their checksums)."""
        for name in names:
            path = self.staging.joinpath(*PurePosixPath(name).parts)
            if name in self._remote or name in self._uploaded:
                continue
            data = self._read(name, "file")
            expected = manifest.files.get(name)
            if expected is not None and bytes_checksum(data) != expected:
                raise CorruptDatasetError(
                    f"{self.store.url_of(name)}: checksum {bytes_checksum(data)} differs from "
                    f"the manifest's {expected}"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data)
            self._remote.add(name)

    def _read(self, name: str, what: str) -> bytes:
        try:
            return self.store.read_bytes(self.store.url_of(name), what)
        except FileNotFoundError:
            raise CorruptDatasetError(f"{self.store.url_of(name)}: {what} is missing") from None

    def _load(self, number: int) -> Manifest:
        data = self._read(version_file(number), "version manifest")
        return parse_version(data, self.store.url_of(version_file(number)), number)

    def _version_one(self) -> Manifest:
        """Version 1 of a dataset written once, committed to the store (its index file is
        its segment; a csv index is copied, since index.csv will follow later versions)."""
        try:
            data = self.store.read_bytes(self.store.url_of(MANIFEST_FILE), "manifest")
        except FileNotFoundError:
            if self.store.size(self.store.url_of(WRITING_MARKER)) is not None:
                raise IncompleteDatasetError(
                    f"{self.url}: incomplete: a writer's marker is there and no manifest"
                ) from None
            raise DatasetNotFoundError(f"{self.url}: no dataset to change") from None
        manifest = Manifest.parse(data, self.store.url_of(MANIFEST_FILE))
        if manifest.versioned is not None:
            return manifest  # listed nothing, yet versioned: a store that cannot list
        index_file = manifest.index["file"]
        self.fetch(manifest, [index_file])
        plugin = self._plugin_of(manifest, self.staging)
        table = read_index_file(plugin, self.staging / index_file, manifest.metadata)
        files, segment = dict(manifest.files), index_file
        if index_file == ORIGINAL_INDEX_FILE:
            segment = f"{SEGMENTS_DIR}/{new_token()}.csv"
            self.writer.put_file(self.staging / index_file, segment, "index segment")
            checksum = files.pop(index_file, None) or file_checksum(self.staging / index_file)
            files[segment] = checksum
        info = VersionInfo(
            1,
            None,
            "write",
            [Segment(segment, len(table), len(manifest.metadata))],
            sample_checksums=table.checksums is not None,
        )
        first = dataclasses.replace(manifest, versioned=info, files=files)
        with contextlib.suppress(FileExistsError):  # another writer made it: theirs counts
            self.writer.put_bytes(version_file(1), first.text(), "version 1", create=True)
        return self._load(1)

    # --- committing ----------------------------------------------------------------------
    def create(self, manifest: Manifest) -> bool:
        """Upload the change's new files, then create its version file if absent: False
        when another writer created it first."""
        ours = [
            name
            for name in sorted(manifest.named_files())
            if name not in self._remote
            and self.staging.joinpath(*PurePosixPath(name).parts).is_file()
        ]
        for _ in range(2):  # uploaded, then checked: a vacuum past its grace may remove
            for name in ours:  # what a long upload sent first (then it is sent again)
                if name not in self._uploaded:
                    path = self.staging.joinpath(*PurePosixPath(name).parts)
                    self.writer.put_file(path, name, "new file")
                    self._uploaded.add(name)
            sizes = self.store.sizes([self.store.url_of(name) for name in ours])
            missing = {name for name, size in zip(ours, sizes, strict=True) if size is None}
            if not missing:
                break
            self._uploaded -= missing
        number = manifest.versioned.version  # type: ignore[union-attr]
        try:
            self.writer.put_bytes(version_file(number), manifest.text(), "version", create=True)
        except FileExistsError:
            return False
        return True

    def after(self, manifest: Manifest, index_plugin: Any) -> None:
        """``manifest.json`` (and a csv dataset's ``index.csv``) follow the new version,
        unless a newer one exists by then (its writer updates them)."""
        if self.numbers()[-1] != manifest.versioned.version:  # type: ignore[union-attr]
            return
        self.writer.put_bytes(MANIFEST_FILE, manifest.text(), "manifest")
        if manifest.index.get("name") == "csv" and manifest.index["file"] == ORIGINAL_INDEX_FILE:
            self.fetch(manifest, manifest.versioned.index_files())  # type: ignore[union-attr]
            view = self.staging / f".{ORIGINAL_INDEX_FILE}.view"
            index_plugin.write(read_version_table(self.staging, manifest, index_plugin), view)
            self.writer.put_file(view, ORIGINAL_INDEX_FILE, "index for the original reader")

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
