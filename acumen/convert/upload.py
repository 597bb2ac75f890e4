"""A conversion to a URL: the workers upload their parts' chunk files straight to the store.

The chunk files of a dataset are numbered in part order (``chunks/chunk_N.chnk``, as the
merge of a local conversion names them), so a part's numbers are known once every part
before it is written: the first chunk of part ``k`` is numbered after all the chunks of
parts ``0..k-1``.

1. A worker writes its part into a folder of its own, ``<cache>/staging/<hash>/parts/``
   (its cache, on its machine: not the driver's staging folder), and returns how many chunk
   files it made.
2. The driver (:class:`Placement`) gives each part, in order, its first chunk number;
   the part's upload (:func:`upload_part`, on the worker that wrote it) puts each chunk file
   at its final name under the URL, checks every object's size there, and sends back the
   part's index, manifest and summary (small), then removes its folder.
3. The driver records the part in its state (``.acumen-convert/parts/part-N/``: the
   index, manifest and summary, and ``uploaded.json`` with its first chunk number): that
   record is what a resumed conversion reuses. A part whose chunks were uploaded but that
   was not recorded is written and uploaded again (to the same names, with the same bytes).
4. Once every part is recorded, the driver builds the index from the records, commits it
   in its staging folder, and publishes: resources, report, index, manifest last.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acumen import plugins
from acumen.convert.parts import SUMMARY_FILE, ConversionError, PartResult, WriterSettings
from acumen.errors import RemoteError, quote
from acumen.files.cache_dir import url_folder
from acumen.files.claim import inspect
from acumen.files.local import write_atomically
from acumen.files.remote import RemoteStore
from acumen.files.remote_objects import shared_store
from acumen.files.remote_write import RemoteWriter
from acumen.format.layout import MANIFEST_FILE, chunk_file_name
from acumen.format.manifest import Manifest

logger = logging.getLogger(__name__)

SCRATCH = "parts"  # beside the staging folder "convert": where parts are written
UPLOADED_FILE = "uploaded.json"  # in a part's record: its first chunk number
UPLOADS = 8  # chunk files one part uploads at once


class PartLost(ConversionError):
    """A written part's folder is gone before its upload (its worker left): write it again."""


@dataclass(frozen=True)
class UploadTarget:
    url: str
    storage_options: Mapping[str, Any] | None = None
    cache: str | None = None  # the config's output.cache (None: each machine's own)
    # The codecs' trained resources (zstd dictionaries), carried to the workers: they need
    # not see the driver's staging folder.
    resources: Mapping[str, bytes] | None = None

    def carrying(self, settings: WriterSettings) -> UploadTarget:
        """This target with the resources of ``settings`` (read from the driver's folder)."""
        root = Path(settings.resources_root)
        found: dict[str, bytes] = {}
        specs = [settings.codec, *[f["codec"] for f in (settings.fields or {}).values()]]
        for spec in specs:
            codec = plugins.codec(spec)
            codec.open_resources(root)
            found.update(codec.resources())
        return dataclasses.replace(self, resources=found)

    def settings_here(self, settings: WriterSettings) -> WriterSettings:
        """``settings`` with the resources in this machine's scratch folder."""
        if not self.resources:
            return settings
        root = self.scratch() / "resources"
        for name, data in self.resources.items():
            path = root.joinpath(*name.split("/"))
            if not path.is_file() or path.read_bytes() != data:
                # (a temporary name of its own: parts in other threads may write it too)
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
                temporary.write_bytes(data)
                os.replace(temporary, path)
        return dataclasses.replace(settings, resources_root=str(root))

    @classmethod
    def of(cls, output: Any) -> UploadTarget:
        """The target of a config's ``[output]`` (an OutputConfig with a URL)."""
        return cls(output.url, output.storage_options, output.cache)

    def store(self) -> RemoteStore:
        """The output's store, with this process's shared filesystem for its root."""
        return shared_store(self.url, self.storage_options)

    def scratch(self) -> Path:
        """Where this machine writes parts: beside the staging folder, never in it."""
        return url_folder(self.url, self.cache, "staging") / SCRATCH

    def attempt(self, number: int) -> Path:
        return self.scratch() / f"part-{number:06d}.attempt-{uuid.uuid4().hex[:12]}"


def uploaded_first(record: Path) -> int | None:
    """The first chunk number a recorded part was uploaded with (None: not uploaded)."""
    saved = record / UPLOADED_FILE
    if not saved.is_file():
        return None
    return int(json.loads(saved.read_text(encoding="utf-8"))["first"])


def upload_part(attempt: str, first: int, target: UploadTarget) -> dict[str, Any]:
    """On the worker that wrote the part: its chunk files to their final names under the
    URL (several at once), each checked there by size; then the part's small files are
    returned for the driver's record and its folder is removed."""
    root = Path(attempt)
    if not (root / MANIFEST_FILE).is_file():
        raise PartLost(
            f"{root}: the written part is not on this machine (the worker that wrote it "
            "left before uploading it): run the conversion again, the part is written anew"
        )
    manifest = Manifest.load(root / MANIFEST_FILE)
    writer = RemoteWriter(target.store())
    names = [chunk_file_name(first + n) for n in range(len(manifest.chunks))]

    def put(pair: tuple[Any, str]) -> None:
        entry, name = pair
        writer.put_file(root / entry.file, name, quote(name))

    with ThreadPoolExecutor(UPLOADS) as pool:
        list(pool.map(put, zip(manifest.chunks, names, strict=True)))
    urls = [writer.url_of(name) for name in names]
    for url, entry, size in zip(urls, manifest.chunks, writer.store.sizes(urls), strict=True):
        if size != entry.size_bytes:
            raise RemoteError(
                f"{url}: uploaded, but the store has {size} bytes where the part's chunk "
                f"file has {entry.size_bytes}"
            )
    index = manifest.index["file"]
    files = {name: (root / name).read_bytes() for name in (MANIFEST_FILE, index, SUMMARY_FILE)}
    shutil.rmtree(root, ignore_errors=True)
    logger.info("%s: %d chunk file(s) uploaded by %s", target.url, len(names), _uploader())
    return {"files": files, "first": first, "chunks": len(names)}


def _uploader() -> str:
    """Who uploads: the Dask worker's address, or this host and process."""
    with contextlib.suppress(Exception):  # not in a Dask worker (or no Dask)
        from distributed import get_worker

        return f"Dask worker {get_worker().address}"
    return f"{socket.gethostname()}:{os.getpid()}"


def record_part(record: Path, uploaded: Mapping[str, Any]) -> None:
    """The driver's record of an uploaded part (replacing any earlier one), made whole in a
    folder of its own and renamed into place: a part is recorded or it is not."""
    temporary = record.with_name(f"{record.name}.record-{uuid.uuid4().hex[:8]}")
    temporary.mkdir(parents=True)
    for name, data in uploaded["files"].items():
        path = temporary.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
    info = {"first": uploaded["first"], "chunks": uploaded["chunks"]}
    write_atomically(temporary / UPLOADED_FILE, json.dumps(info).encode("utf-8"))
    if record.exists():
        shutil.rmtree(record)
    os.replace(temporary, record)


class Placement:
    """Gives the parts their first chunk numbers, in part order, as their results come
    (in any order): ``add`` returns the parts now ready to upload, with their numbers."""

    def __init__(self, parts: Path) -> None:
        self.parts = parts  # the records' folder, .acumen-convert/parts
        self.next = 0
        self.offset = 0
        self.waiting: dict[int, PartResult] = {}

    def add(self, result: PartResult) -> list[tuple[PartResult, int]]:
        self.waiting[result.number] = result
        ready = []
        while self.next in self.waiting:
            part = self.waiting.pop(self.next)
            if part.resumed and part.first != self.offset:
                self._stale(part)
            if not part.resumed:
                ready.append((part, self.offset))
            self.offset += part.chunks
            self.next += 1
        return ready

    def _stale(self, part: PartResult) -> None:
        """A recorded part uploaded with other chunk numbers: a part before it was written
        again with another number of chunk files. Its record and those after it go."""
        for record in sorted(self.parts.glob("part-*")):
            if record.name[5:].isdigit() and int(record.name[5:]) >= part.number:
                shutil.rmtree(record, ignore_errors=True)
        raise ConversionError(
            f"part {part.number} was uploaded as chunk files {part.first} onwards, but the "
            f"parts before it now end at chunk {self.offset} (a part was written again with "
            "other items, e.g. under on_error = 'raise' after 'skip'); its record and those "
            "after it are removed: run the conversion again to write them anew"
        )


def clean_scratch(target: UploadTarget) -> None:
    """Remove the folders of parts that no live process is writing (an earlier run's,
    written and never uploaded, or half written), on this machine."""
    scratch = target.scratch()
    if not scratch.is_dir():
        return
    for attempt in scratch.glob("part-*.attempt-*"):
        state = inspect(attempt)
        if state is None or not state.alive:
            shutil.rmtree(attempt, ignore_errors=True)
    shutil.rmtree(scratch / "resources", ignore_errors=True)  # (carried by every task)
    with contextlib.suppress(OSError):  # not empty: another run's part is being written
        scratch.rmdir()


class ThreadUploads:
    """The uploads of the local engine's parts: its workers are a pool of processes on this
    machine that takes one kind of task, so the parts' chunk files (in the workers' scratch
    folder, on this machine) are uploaded by threads of this process, part after part as
    they come in order, at most ``limit`` parts at once (the next part waits for a slot:
    the written parts waiting on disk stay bounded)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.pool = ThreadPoolExecutor(self.limit, thread_name_prefix="acumen-upload")
        self.placement: Placement | None = None
        self.pending: list[tuple[PartResult, int, Path, Any]] = []

    def add(self, result: PartResult, record: str, target: UploadTarget) -> list[PartResult]:
        """Place a part's result (uploading it if it was written now); the parts whose
        upload is done, recorded."""
        if self.placement is None:
            self.placement = Placement(Path(record).parent)
        done = [result] if result.resumed else []
        for part, first in self.placement.add(result):
            future = self.pool.submit(upload_part, part.attempt, first, target)
            self.pending.append((part, first, Path(record), future))
        while self.pending and (len(self.pending) >= self.limit or self.pending[0][3].done()):
            done.append(self._finish(self.pending.pop(0)))
        return done

    def finish(self) -> list[PartResult]:
        done = []
        while self.pending:
            done.append(self._finish(self.pending.pop(0)))
        return done

    def close(self) -> None:
        """Stop: the uploads not started never start; those running finish and, if they
        succeed, their parts are recorded (a resume keeps them)."""
        for *_, future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True)
        for entry in self.pending:
            future = entry[3]
            if not future.cancelled() and future.exception() is None:
                self._finish(entry)
        self.pending = []

    @staticmethod
    def _finish(entry: tuple[PartResult, int, Path, Any]) -> PartResult:
        part, first, record, future = entry
        record_part(record, future.result())
        part.first, part.attempt = first, None
        return part
