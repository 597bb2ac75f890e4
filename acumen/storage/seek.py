"""``seek``: positional reads (``os.pread``) on file descriptors kept open.

No open/close per sample and no shared file position, so threads may read at once.
Suits datasets larger than RAM, filesystems where mmap is slow or unavailable, and files
that may change while they are read (a truncated file is an error here, SIGBUS under mmap).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from acumen.abc.codec import Buffer
from acumen.abc.storage import Storage
from acumen.files.local import open_regular
from acumen.storage._ranges import past_end

_pread = getattr(os, "pread", None)
_preadv = getattr(os, "preadv", None)
# At most this many buffers per preadv call (the system's IOV_MAX; POSIX guarantees 16).
_IOV_MAX = 1024
if _preadv is not None:
    try:
        _IOV_MAX = max(16, min(_IOV_MAX, os.sysconf("SC_IOV_MAX")))
    except (AttributeError, ValueError, OSError):
        _IOV_MAX = 16


class _Descriptor(int):
    """A file descriptor closed when the last reference to it goes, not before.

    A read holds the descriptor in a local variable for the length of its system call, so
    ``close()`` in another thread cannot close it underneath the read, and its number
    cannot be reused by another open and read from as if it were this file.
    """

    __slots__ = ()

    def __del__(self) -> None:
        # No contextlib here: __del__ may run while the interpreter shuts down.
        try:  # noqa: SIM105
            os.close(self)
        except OSError:
            pass


class SeekStorage(Storage):
    name = "seek"

    def _open_chunk(self, path: str) -> int:
        return _Descriptor(open_regular(path, "chunk file"))

    def read(self, chunk_id: int, offset: int, size: int) -> Buffer:
        fd = self._handles[chunk_id]
        if fd is None:
            fd = self.handle(chunk_id)
        if _pread is not None:
            data = _pread(fd, size, offset)
        else:  # Windows: no pread; one lock keeps seek+read atomic
            with self._lock:
                os.lseek(fd, offset, os.SEEK_SET)
                data = os.read(fd, size)
        if len(data) != size or (size == 0 and offset and offset > os.fstat(fd).st_size):
            raise past_end(self.paths[chunk_id], offset, size, os.fstat(fd).st_size)
        return data

    def read_runs(
        self,
        chunk_ids: Sequence[int],
        offsets: Sequence[int],
        sizes: Sequence[int],
        buffers: Iterable[Sequence[memoryview]],
    ) -> None:
        if _preadv is None:
            super().read_runs(chunk_ids, offsets, sizes, buffers)
            return
        buffers = buffers if isinstance(buffers, list) else list(buffers)
        handles = self._handles
        fds = list(map(handles.__getitem__, chunk_ids))
        if None in fds:
            for chunk_id in set(chunk_ids):
                self.handle(chunk_id)
            fds = list(map(handles.__getitem__, chunk_ids))
            if None in fds:  # closed meanwhile: one run at a time, each reopening
                super().read_runs(chunk_ids, offsets, sizes, buffers)
                return
        if max(map(len, buffers), default=0) > _IOV_MAX:
            super().read_runs(chunk_ids, offsets, sizes, buffers)
            return
        # One preadv per run, the loop in C (map): the GIL is held only between the calls.
        got = np.fromiter(map(_preadv, fds, buffers, offsets), np.int64, len(fds))
        short = np.flatnonzero(got != np.asarray(sizes, dtype=np.int64))
        for k in short.tolist():  # the end of the file, or a signal: finish (or raise)
            self.read_into(chunk_ids[k], offsets[k], buffers[k])

    def read_into(self, chunk_id: int, offset: int, buffers: Sequence[memoryview]) -> None:
        if _preadv is None:
            super().read_into(chunk_id, offset, buffers)
            return
        fd = self._handles[chunk_id]
        if fd is None:
            fd = self.handle(chunk_id)
        if len(buffers) == 1 and _preadv(fd, buffers, offset) == len(buffers[0]):
            return  # the common case: one whole range at once
        # Several buffers, or a short read (end of file, or a signal): go on until done.
        pending = [buffer for buffer in buffers if len(buffer)]
        first, position = 0, offset
        while first < len(pending):
            got = _preadv(fd, pending[first : first + _IOV_MAX], position)
            if got == 0:
                wanted = sum(len(b) for b in buffers)
                raise past_end(self.paths[chunk_id], offset, wanted, os.fstat(fd).st_size)
            position += got
            while first < len(pending) and got >= len(pending[first]):
                got -= len(pending[first])
                first += 1
            if got:
                pending[first] = pending[first][got:]
