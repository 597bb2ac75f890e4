"""``seek``: positional reads (``os.pread``) on file descriptors kept open.

No open/close per sample and no shared file position, so threads may read at once.
Suits datasets larger than RAM and filesystems where mmap is slow or unavailable.
"""

from __future__ import annotations

import os

from acumen.abc.codec import Buffer
from acumen.abc.storage import Storage
from acumen.storage._ranges import past_end

_pread = getattr(os, "pread", None)


class SeekStorage(Storage):
    name = "seek"

    def _open_chunk(self, path: str) -> int:
        return os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))

    def _close_handle(self, handle: int) -> None:
        os.close(handle)

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
