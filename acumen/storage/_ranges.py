"""What the built-in storages share: the error for a range past a chunk's end, and the
``read`` of the storages that hold each chunk as one memoryview (mmap, memory)."""

from __future__ import annotations

from acumen.abc.codec import Buffer
from acumen.abc.storage import Storage
from acumen.errors import CorruptDatasetError


def past_end(path: str, offset: int, size: int, file_size: int) -> CorruptDatasetError:
    return CorruptDatasetError(
        f"{path}: bytes {offset}..{offset + size} are past the end of the file "
        f"({file_size} bytes): the chunk file is truncated or the index is wrong"
    )


class ViewStorage(Storage):
    """A storage whose handle of a chunk is the chunk's bytes as one memoryview: a read is
    a slice of it (zero-copy)."""

    zero_copy = True

    def _chunk_view(self, handle: memoryview) -> memoryview:
        return handle

    def read(self, chunk_id: int, offset: int, size: int) -> Buffer:
        view = self._handles[chunk_id]
        if view is None:
            view = self.handle(chunk_id)
        end = offset + size
        if end > len(view):
            raise past_end(self.paths[chunk_id], offset, size, len(view))
        return view[offset:end]
