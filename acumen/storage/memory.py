"""``memory``: whole chunk files read into RAM, for datasets that fit and slow disks."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from os import PathLike

from acumen.files.local import open_for_reading
from acumen.storage._ranges import ViewStorage


class MemoryStorage(ViewStorage):
    """Reads each chunk into memory on first use, or all of them at once with ``preload``."""

    name = "memory"

    def __init__(self, paths: Sequence[str | PathLike[str]], preload: bool = False) -> None:
        super().__init__(paths)
        self.preload = bool(preload)
        if self.preload:
            for chunk_id in range(len(self.paths)):
                self.handle(chunk_id)

    @property
    def configuration(self) -> dict:
        return {"preload": self.preload}

    def _open_chunk(self, path: str) -> memoryview:
        with open_for_reading(path, "chunk file") as file:
            return memoryview(file.read())

    def _after_fork(self) -> None:
        # Bytes in RAM are private to the process: a forked child keeps them as they are.
        self._lock = threading.Lock()
