"""Appends payloads to chunk files with the original's rollover rule.

Each chunk file's xxh3-64 checksum is computed as it is written (recorded in the manifest);
a chunk is written under a temporary name, fsynced, then renamed to ``chunk_N.chnk``.
A payload goes into the current chunk unless ``current_size + len(payload) > limit``; then
the next chunk number starts first. So a chunk holds at least one payload and may exceed
the limit, and when the very first payload exceeds it, ``chunk_0`` is never written and
numbering starts at 1: exactly what the original acumenindexer does.

A full chunk is sealed (fsync, close, rename) on a background thread while the next one
is written, so the disk's flush overlaps the encoding instead of adding to it; at most
one chunk is being sealed at a time, and ``close`` waits for it before it returns.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import BinaryIO

import xxhash

from acumen.abc.codec import Buffer
from acumen.files.local import write_failed, writing
from acumen.format.layout import chunk_file_name
from acumen.format.manifest import ChunkEntry

_WRITE_BUFFER = 1 << 20


class ChunkWriter:
    def __init__(
        self, root: Path, chunk_size_bytes: int, durable: bool = True, folder: str = "chunks"
    ) -> None:
        """``folder``: where the chunk files go, relative to ``root`` (an append's own)."""
        if isinstance(chunk_size_bytes, bool) or not isinstance(chunk_size_bytes, int):
            raise TypeError(f"chunk_size_bytes must be an int, got {chunk_size_bytes!r}")
        if chunk_size_bytes <= 0:
            raise ValueError(f"chunk_size_bytes must be positive, got {chunk_size_bytes}")
        self.root = root
        self.folder = folder
        self.limit = chunk_size_bytes
        self.durable = durable
        self.chunks: list[ChunkEntry] = []
        #: Position (in :attr:`chunks`, once finished) of the chunk being written.
        self.position = 0
        self._bytes_before = 0  # payload bytes in finished chunks
        self._number = 0
        self._size = 0
        self._count = 0
        self._file: BinaryIO | None = None
        self._sealer: _Sealer | None = None

    @property
    def bytes_written(self) -> int:
        return self._bytes_before + self._size

    def append(self, payload: Buffer, size: int) -> int:
        """Append one payload of ``size`` bytes to the chunk :attr:`position` names (after
        the call); return its offset there. The hot path of a one-array sample; :meth:`write`
        passes a record's whole size with its first payload and appends the rest."""
        if self._size + size > self.limit:
            self._finish_chunk()
            self._number += 1
        if self._file is None:
            self._open_chunk()
        try:
            self._write(payload)
        except OSError as error:  # a full disk: say which dataset and file
            raise write_failed(self.root, self._path, error) from error
        self._update(payload)
        offset = self._size
        self._size = offset + size
        self._count += 1
        return offset

    def write(self, payloads: list[Buffer]) -> tuple[int, int, int]:
        """Append one record (its fields' payloads, kept together in one chunk); return
        (chunk position, offset, size)."""
        size = sum(memoryview(p).nbytes for p in payloads)
        offset = self.append(payloads[0], size)  # rolls over for the whole record
        for payload in payloads[1:]:
            try:
                self._write(payload)
            except OSError as error:
                raise write_failed(self.root, self._path, error) from error
            self._update(payload)
        return self.position, offset, size

    def _open_chunk(self) -> None:
        hasher = xxhash.xxh3_64()
        self._hash = hasher
        self._update = hasher.update
        final = self.root / chunk_file_name(self._number, self.folder)
        # Written under a temporary name, renamed when complete: a chunk file under its
        # real name is always whole.
        self._path = final.with_name(f".{final.name}.tmp")
        with writing(self.root, self._path):
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                raise FileExistsError(f"{final} exists already: another writer?")
            self._file = open(self._path, "xb", buffering=_WRITE_BUFFER)  # noqa: SIM115
        self._write = self._file.write

    def _finish_chunk(self) -> None:
        if self._file is None:
            return
        with writing(self.root, self._path):
            self._file.flush()
        if self._sealer is not None:
            # At most one chunk sealing at a time; its error surfaces here (this chunk
            # stays open, for abandon() to keep).
            self._sealer.wait()
            self._sealer = None
        file, self._file = self._file, None
        final = self.root / chunk_file_name(self._number, self.folder)
        self._sealer = _Sealer(self.root, file, self._path, final, self.durable)
        checksum = f"xxh3_64:{self._hash.hexdigest()}"
        name = chunk_file_name(self._number, self.folder)
        self.chunks.append(ChunkEntry(name, self._size, self._count, checksum))
        self.position = len(self.chunks)
        self._bytes_before += self._size
        self._size = 0
        self._count = 0

    def close(self) -> list[ChunkEntry]:
        """Flush and seal the last chunk, wait for every seal; return every chunk written."""
        self._finish_chunk()
        if self._sealer is not None:
            self._sealer.wait()
            self._sealer = None
        return self.chunks

    def abandon(self) -> None:
        """Stop after a failure: the open chunk is kept under its name (the dataset stays
        marked incomplete; nothing is deleted). After a full disk its last payload may be
        cut short: the folder never opens as a dataset, so that is never read."""
        if self._sealer is not None:
            # A chunk whose seal failed stays under its temporary name; the marker stays too.
            with contextlib.suppress(OSError):
                self._sealer.wait()
            self._sealer = None
        if self._file is not None:
            with contextlib.suppress(OSError):  # what the disk could not take is lost
                self._file.close()
            self._file = None
            with contextlib.suppress(OSError):  # then it stays under its temporary name
                os.replace(self._path, self.root / chunk_file_name(self._number, self.folder))


class _Sealer:
    """fsync (when durable), close and rename one finished chunk file on its own thread
    (fsync releases the GIL); :meth:`wait` re-raises what went wrong there."""

    def __init__(
        self, root: Path, file: BinaryIO, temporary: Path, final: Path, durable: bool
    ) -> None:
        self._root = root
        self._temporary = temporary
        self._error: BaseException | None = None
        args = (file, temporary, final, durable)
        if not durable:  # nothing slow to overlap: seal right here
            self._thread = None
            self._seal(*args)
            return
        self._thread = threading.Thread(target=self._seal, args=args, name="acumen-seal")
        self._thread.start()

    def _seal(self, file: BinaryIO, temporary: Path, final: Path, durable: bool) -> None:
        try:
            with file:
                if durable:
                    os.fsync(file.fileno())
            os.replace(temporary, final)
        except BaseException as error:  # handed to the writer's thread by wait()
            self._error = error

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if isinstance(self._error, OSError):
            raise write_failed(self._root, self._temporary, self._error) from self._error
        if self._error is not None:
            raise self._error
