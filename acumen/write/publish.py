"""Publishing a dataset written locally to object storage: the remote writer's commit.

A dataset for a URL is written as any other into a staging folder under the cache, and
committed there; then it is published, in this order:

1. the destination is checked: a ``manifest.json`` there is a dataset (refused, as a local
   writer never writes over one), and so is an original ``index.csv``; a writing marker
   there is another writer's upload or an interrupted one (refused, unless it is this
   staging folder's own earlier attempt: a resumed conversion);
2. the marker object ``.acumen-writing`` is created (conditionally: ``If-None-Match: *``
   on S3, so two writers cannot both start), naming host, pid, kind and staging folder;
3. every chunk file, then the codec resources, then the index are uploaded (a
   conversion's workers upload its chunk files themselves, under their final names, after
   the marker: those are checked in the store by size instead);
4. ``manifest.json`` is created LAST, conditionally where the store can (S3's
   ``If-None-Match``; elsewhere a check then a put): **this is the commit point**. A
   reader loads the manifest first, so it sees the dataset whole or not at all; without a
   manifest, the marker makes an open an ``IncompleteDatasetError``;
5. the marker is deleted, then the staging folder.

A process killed before step 4 leaves the marker (and some objects): the URL never opens
as a dataset, and a new writer is refused there until the leftover is removed. Killed
after step 4, the dataset is complete (a stale marker is harmless, and a resumed
conversion removes it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from acumen.errors import DatasetExistsError, RemoteError, quote
from acumen.files.cache_dir import url_folder
from acumen.files.claim import WRITING_MARKER, process_identity, this_host
from acumen.files.remote import RemoteStore
from acumen.files.remote_write import RemoteWriter
from acumen.format.layout import MANIFEST_FILE, ORIGINAL_INDEX_FILE
from acumen.format.manifest import Manifest
from acumen.progress import Callback, NoProgress

logger = logging.getLogger(__name__)

#: Chunk files uploaded at once.
UPLOADS = 8


class Destination:
    """A URL a dataset is published to, and the local staging folder it is written in.

    ``resumable``: the staging folder is the same for every run writing to this URL (a
    conversion resumes there); otherwise each writer gets a fresh one of its own.
    """

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None,
        cache: str | os.PathLike[str] | None,
        kind: str,
        *,
        resumable: bool = False,
    ) -> None:
        self.url = str(url).rstrip("/")
        self.kind = kind
        self.target = RemoteWriter(RemoteStore(self.url, storage_options))
        self.progress: Callback = NoProgress()  # the publication's (told the bytes uploaded)
        base = url_folder(self.url, cache, "staging")
        name = kind if resumable else f"{kind}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.staging = base / name
        committed = self.staging / MANIFEST_FILE  # a resumed run's earlier commit
        self.check_free(committed.read_bytes() if committed.is_file() else None)

    # --- what is at the URL ----------------------------------------------------------
    def _marker(self) -> bytes:
        return json.dumps(
            {
                "pid": os.getpid(),
                "process": process_identity(os.getpid()),  # a reused pid is not taken for it
                "host": this_host(),
                "started": time.time(),
                "kind": self.kind,
                "staging": str(self.staging),
            }
        ).encode()

    def _ours(self, marker: bytes) -> bool:
        """The marker of an earlier attempt from this staging folder on this host."""
        try:
            found = json.loads(marker)
        except ValueError:
            return False
        return (
            isinstance(found, dict)
            and found.get("host") == this_host()
            and found.get("staging") == str(self.staging)
        )

    def check_free(self, manifest: bytes | None = None) -> bool:
        """Refuse a URL that holds a dataset or another writer's upload. Returns True when
        it holds exactly ``manifest`` already (an earlier attempt of ours committed)."""
        found = self.target.read(MANIFEST_FILE, "manifest")
        if found is not None:
            if manifest is not None and found == manifest:
                return True
            raise DatasetExistsError(
                f"{self.url} already holds a dataset ({MANIFEST_FILE}); acumen never writes "
                "over data: write to another URL, or remove that one first"
            )
        marker = self.target.read(WRITING_MARKER, "writing marker")
        if marker is not None:
            if not self._ours(marker):
                raise self._refusal(marker)
            return False  # our own earlier upload (its index.csv is no original dataset)
        if self.target.exists(ORIGINAL_INDEX_FILE):
            raise DatasetExistsError(
                f"{self.url} already holds an original acumenindexer dataset "
                f"({ORIGINAL_INDEX_FILE}); acumen never writes over data"
            )
        return False

    def _refusal(self, marker: bytes) -> DatasetExistsError:
        said = quote(marker.decode("utf-8", "replace").strip()[:300])
        return DatasetExistsError(
            f"{self.url}: another writer's upload is there ({WRITING_MARKER}: {said}) and no "
            f"{MANIFEST_FILE}: it is still running, or it was interrupted. If no writer is "
            f"running, remove what it left with `acumen clean {self.url}` (it removes an "
            "upload with no manifest, never a dataset), then write again"
        )

    # --- the publication ---------------------------------------------------------------
    def begin(self) -> None:
        """Create the marker object (ours may be there already: a resumed conversion's), so
        that nothing is uploaded under the URL without it."""
        try:
            self.target.put_bytes(WRITING_MARKER, self._marker(), "writing marker", create=True)
        except FileExistsError:
            found = self.target.read(WRITING_MARKER, "writing marker") or b""
            if not self._ours(found):
                raise self._refusal(found) from None

    def publish(
        self,
        root: Path,
        manifest: Manifest,
        extra: Sequence[str] = (),
        progress: Callback | None = None,
    ) -> None:
        """Upload the committed dataset at ``root`` (the staging folder), manifest last;
        ``extra``: more files of ``root`` to upload before the manifest (a report).
        ``progress`` is told the bytes uploaded, file by file (its owner closes it).

        Chunk files not in ``root`` must be in the store already (a conversion's workers
        uploaded them): each is checked there by size before the manifest is written."""
        data = (root / MANIFEST_FILE).read_bytes()
        if not self.check_free(data):
            self.begin()
            index = manifest.index["file"]
            resources = [name for name in manifest.files if name != index]
            here = {c.file for c in manifest.chunks if root.joinpath(*c.file.split("/")).is_file()}
            self._check_uploaded([c for c in manifest.chunks if c.file not in here])
            chunks = [c.file for c in manifest.chunks if c.file in here]
            self.progress = progress or NoProgress()
            self._upload(root, chunks, [*resources, *extra, index])
            try:
                self.target.put_bytes(MANIFEST_FILE, data, "manifest", create=True)
            except FileExistsError:
                if self.target.read(MANIFEST_FILE, "manifest") != data:
                    raise DatasetExistsError(
                        f"{self.url}: another writer committed a dataset there while this "
                        f"one was uploading; its objects may now mix with this upload's: "
                        f"remove {self.url} and write again"
                    ) from None
        self.target.delete(WRITING_MARKER, "writing marker")
        logger.info("published %s to %s", root, self.url)
        shutil.rmtree(self.staging, ignore_errors=True)
        if [p.name for p in self.staging.parent.iterdir()] == ["url"]:  # nothing else staged
            shutil.rmtree(self.staging.parent, ignore_errors=True)

    def _check_uploaded(self, chunks: Sequence[Any]) -> None:
        """Each of ``chunks`` (manifest entries) is in the store with its size."""
        urls = [self.target.url_of(c.file) for c in chunks]
        for url, chunk, size in zip(urls, chunks, self.target.store.sizes(urls), strict=True):
            if size != chunk.size_bytes:
                found = "no such object" if size is None else f"{size:,} bytes"
                raise RemoteError(
                    f"{url}: {found} where the dataset's chunk file has {chunk.size_bytes:,} "
                    f"bytes (removed from the store while the dataset was written?); nothing "
                    f"was committed (no {MANIFEST_FILE}): remove every object under "
                    f"{self.url}/ and the staging folder {self.staging}, then write again"
                )

    def _upload(self, root: Path, chunks: list[str], rest: list[str]) -> None:
        """The chunk files (several at once), then ``rest`` one by one, in order; progress
        told here, as each upload ends (not from the pool's threads)."""
        progress = self.progress
        paths = {name: root.joinpath(*name.split("/")) for name in [*chunks, *rest]}
        sizes = {name: path.stat().st_size for name, path in paths.items() if path.is_file()}
        progress.set_size(sum(sizes.values()), "bytes")
        with ThreadPoolExecutor(UPLOADS) as pool:
            for name in pool.map(lambda name: self._put(paths[name], name), chunks):
                progress.update(sizes.get(name, 0))
        for name in rest:
            progress.update(sizes.get(self._put(paths[name], name), 0))

    def _put(self, path: Path, name: str) -> str:
        self.target.put_file(path, name, quote(name))
        return name
