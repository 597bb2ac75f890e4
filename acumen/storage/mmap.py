"""``mmap``: chunk files mapped into memory; a raw sample is a zero-copy read-only view.

A mapping is never unmapped by acumen: closing the dataset drops its references, and the
memory goes when the last array viewing it does (as numpy's own ``memmap``). An array read
before ``close()`` stays valid, and a read racing ``close()`` in another thread completes.
"""

from __future__ import annotations

import mmap

from acumen.files.local import open_for_reading
from acumen.storage._ranges import ViewStorage

_EMPTY = memoryview(b"")


def _map_file(path: str) -> memoryview:
    """The whole file as a read-only memoryview whose ``obj`` is the mapping.

    numpy arrays built on a slice of it reference the mapping itself (``array.base``), so
    they keep it mapped however long they live.
    """
    with open_for_reading(path, "chunk file") as file:
        size = file.seek(0, 2)
        # An empty file cannot be mapped; it can only hold empty samples.
        if not size:
            return _EMPTY
        return memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))


class MmapStorage(ViewStorage):
    name = "mmap"

    def _open_chunk(self, path: str) -> memoryview:
        return _map_file(path)
