"""``mmap``: chunk files mapped into memory; a raw sample is a zero-copy read-only view."""

from __future__ import annotations

import mmap

from acumen.abc.codec import Buffer
from acumen.abc.storage import Storage
from acumen.layout import open_for_reading
from acumen.storage._ranges import past_end


class _Mapping:
    __slots__ = ("map", "view")

    def __init__(self, path: str) -> None:
        with open_for_reading(path, "chunk file") as file:
            size = file.seek(0, 2)
            # An empty file cannot be mapped; it can only hold empty samples.
            self.map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        self.view = memoryview(self.map) if self.map is not None else memoryview(b"")

    def close(self) -> None:
        try:
            self.view.release()
            if self.map is not None:
                self.map.close()
        except BufferError:
            # Arrays handed to the caller still view the map: it is unmapped when the
            # last of them is garbage-collected.
            pass


class MmapStorage(Storage):
    name = "mmap"
    zero_copy = True

    def _open_chunk(self, path: str) -> _Mapping:
        return _Mapping(path)

    def _close_handle(self, handle: _Mapping) -> None:
        handle.close()

    def _chunk_view(self, handle: _Mapping) -> memoryview:
        return handle.view

    def read(self, chunk_id: int, offset: int, size: int) -> Buffer:
        mapping = self._handles[chunk_id]
        if mapping is None:
            mapping = self.handle(chunk_id)
        view = mapping.view
        end = offset + size
        if end > len(view):
            raise past_end(self.paths[chunk_id], offset, size, len(view))
        return view[offset:end]
