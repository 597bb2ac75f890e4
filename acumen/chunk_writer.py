"""Appends payloads to chunk files with the original's rollover rule.

Each chunk file's xxh3-64 checksum is computed as it is written (recorded in the manifest);
a chunk is written under a temporary name, fsynced, then renamed to ``chunk_N.chnk``.
A payload goes into the current chunk unless ``current_size + len(payload) > limit``; then
the next chunk number starts first. So a chunk holds at least one payload and may exceed
the limit, and when the very first payload exceeds it, ``chunk_0`` is never written and
numbering starts at 1: exactly what the original acumenindexer does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import xxhash

from acumen.abc.codec import Buffer
from acumen.layout import chunk_file_name
from acumen.manifest import ChunkEntry

_WRITE_BUFFER = 1 << 20


class ChunkWriter:
    def __init__(self, root: Path, chunk_size_bytes: int, durable: bool = True) -> None:
        if isinstance(chunk_size_bytes, bool) or not isinstance(chunk_size_bytes, int):
            raise TypeError(f"chunk_size_bytes must be an int, got {chunk_size_bytes!r}")
        if chunk_size_bytes <= 0:
            raise ValueError(f"chunk_size_bytes must be positive, got {chunk_size_bytes}")
        self.root = root
        self.limit = chunk_size_bytes
        self.durable = durable
        self.chunks: list[ChunkEntry] = []
        self.bytes_written = 0
        self._number = 0
        self._size = 0
        self._count = 0
        self._file: BinaryIO | None = None

    def write_one(self, payload: Buffer) -> tuple[int, int, int]:
        """Append one payload (a one-array sample); as :meth:`write`, without the list."""
        size = payload.nbytes if type(payload) is memoryview else len(memoryview(payload).cast("B"))
        if self._size + size > self.limit:
            self._finish_chunk()
            self._number += 1
        if self._file is None:
            self._open_chunk()
        self._file.write(payload)  # type: ignore[union-attr]
        self._hash.update(payload)
        offset = self._size
        self._size = offset + size
        self.bytes_written += size
        self._count += 1
        return len(self.chunks), offset, size

    def _open_chunk(self) -> None:
        self._hash = xxhash.xxh3_64()
        (self.root / "chunks").mkdir(exist_ok=True)
        final = self.root / chunk_file_name(self._number)
        if final.exists():
            raise FileExistsError(f"{final} exists already: another writer?")
        # Written under a temporary name, renamed when complete: a chunk file under its
        # real name is always whole.
        self._path = final.with_name(f".{final.name}.tmp")
        self._file = open(self._path, "xb", buffering=_WRITE_BUFFER)  # noqa: SIM115

    def write(self, payloads: list[Buffer]) -> tuple[int, int, int]:
        """Append one record (its fields' payloads, kept together in one chunk); return
        (chunk position, offset, size)."""
        size = (
            sum(memoryview(p).nbytes for p in payloads)
            if len(payloads) > 1
            else (memoryview(payloads[0]).nbytes)
        )
        if self._size + size > self.limit:
            self._finish_chunk()
            self._number += 1
        if self._file is None:
            self._open_chunk()
        for payload in payloads:
            self._file.write(payload)
            self._hash.update(payload)
        offset = self._size
        self._size += size
        self.bytes_written += size
        self._count += 1
        return len(self.chunks), offset, size

    def _finish_chunk(self) -> None:
        if self._file is None:
            return
        self._file.flush()
        if self.durable:
            os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self._path, self.root / chunk_file_name(self._number))
        checksum = f"xxh3_64:{self._hash.hexdigest()}"
        self.chunks.append(
            ChunkEntry(chunk_file_name(self._number), self._size, self._count, checksum)
        )
        self._size = 0
        self._count = 0

    def close(self) -> list[ChunkEntry]:
        """Flush and close the last chunk; return every chunk written."""
        self._finish_chunk()
        return self.chunks

    def abandon(self) -> None:
        """Stop after a failure: the samples written so far are whole, so the open chunk is
        kept under its name (the dataset stays marked incomplete; nothing is deleted)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            os.replace(self._path, self.root / chunk_file_name(self._number))
