"""The span files of a :class:`~acumen.files.cache.SpanCache` a process keeps mapped, and
which of their blocks it has checked.

A span file is mapped read-only on its first hit and stays mapped while it is among the
last ``keep`` read (then unmapped once no array views it). Each 32 KiB block is checked
against its xxh3-64 checksum the first time a read through this mapping touches it, and
not again while the mapping lives: a listed span file is never written again (acumen writes
it under a temporary name, renames it, and later only unlinks it), so what a mapping showed
once it shows again. A new mapping (another process, a later open, a span mapped again after
``keep`` others) checks again. A file damaged in place while mapped (by something other than
acumen) is seen by a process only at its blocks not yet checked, or once the mapping goes.
"""

from __future__ import annotations

import mmap
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import xxhash

#: Bytes covered by one checksum: a hit reads and checks only the blocks it touches.
BLOCK = 1 << 15
#: A read of fewer bytes is a copy, one of more a view of the mapped span file (an array
#: viewing it keeps the file mapped, and a mapping holds a file descriptor: a process keeping
#: many small samples would run out of them).
COPY_BELOW = 1 << 20
#: Rows this large are gathered one copy each (numpy's take is slower for large rows; as
#: acumen.read.batches does for local chunks).
ROW_COPY_BYTES = 8 << 10


class MappedSpans:
    """Span files of ``folder`` mapped read-only, with the blocks checked per mapping."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # file name -> (its map, one flag per block: checked through this map; the last
        # block's flag is 2 once all are)
        self._maps: OrderedDict[str, tuple[mmap.mmap, np.ndarray]] = OrderedDict()

    def forget(self, names: set[str]) -> None:
        for name in names:
            self._maps.pop(name, None)  # unmapped when no array views it any more

    def _map(self, name: str, length: int, keep: int) -> tuple[mmap.mmap, np.ndarray] | None:
        """The span file mapped (kept among the last ``keep``), or None when it is missing
        or not ``length`` bytes long."""
        entry = self._maps.get(name)
        if entry is not None:
            self._maps.move_to_end(name)
            return entry
        try:
            fd = os.open(self.folder / name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            return None  # evicted meanwhile, or its writer was killed
        try:
            if os.fstat(fd).st_size != length or not length:
                return None
            mapped = mmap.mmap(fd, length, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        entry = self._maps[name] = (mapped, np.zeros(-(-length // BLOCK), dtype=np.uint8))
        while len(self._maps) > keep:
            self._maps.popitem(last=False)  # unmapped when no array views it any more
        return entry

    @staticmethod
    def _check(mapped: mmap.mmap, checked: np.ndarray, blocks, sums: bytes) -> bool:
        """Check the ``blocks`` not checked yet through this mapping; False at a mismatch."""
        view = memoryview(mapped)
        try:
            for k in blocks:
                if not checked[k]:
                    at = k * BLOCK
                    if xxhash.xxh3_64_digest(view[at : at + BLOCK]) != sums[8 * k : 8 * k + 8]:
                        return False
                    checked[k] = 1
        finally:
            view.release()
        return True

    def _checked_map(
        self, name: str, length: int, sums: bytes, keep: int
    ) -> tuple[mmap.mmap, np.ndarray] | None:
        """The span file's mapping and its checked flags; None when the listing's
        checksums do not fit its length, or the file is missing or of the wrong size."""
        if len(sums) != 8 * max(1, -(-length // BLOCK)):
            return None
        return self._map(name, length, keep)

    def read(
        self, name: str, length: int, offset: int, size: int, sums: bytes, keep: int
    ) -> memoryview | None:
        """``size`` bytes at ``offset`` of the span file, its blocks checked; None: missing,
        of the wrong size or damaged (then forgotten here)."""
        entry = self._checked_map(name, length, sums, keep)
        if entry is None:
            return None
        mapped, checked = entry
        first, last = offset // BLOCK, max(offset // BLOCK, (offset + size - 1) // BLOCK)
        if not self._check(mapped, checked, range(first, last + 1), sums):
            self.forget({name})
            return None
        if size < COPY_BELOW:  # a private copy
            return memoryview(mapped[offset : offset + size])
        return memoryview(mapped)[offset : offset + size]  # a view of the mapped file

    def array(
        self, name: str, length: int, offsets: np.ndarray, size: int, sums: bytes, keep: int
    ) -> np.ndarray | None:
        """The whole span file as a read-only uint8 array, once every block the ranges
        ``offsets[k] .. + size`` touch is checked; None as :meth:`read`."""
        entry = self._checked_map(name, length, sums, keep)
        if entry is None:
            return None
        mapped, checked = entry
        if checked[-1] < 2:  # (the last flag is 2 once every block is checked)
            firsts = offsets // BLOCK
            lasts = (offsets + max(size, 1) - 1) // BLOCK
            touched = np.zeros(len(checked) + 1, dtype=np.int64)
            if size <= BLOCK:  # each range touches its first block and maybe the next
                touched[firsts] = 1
                touched[lasts] = 1
            else:
                np.add.at(touched, firsts, 1)
                np.add.at(touched, lasts + 1, -1)
                touched = np.cumsum(touched)
            blocks = np.flatnonzero((touched[:-1] != 0) & (checked == 0)).tolist()
            if not self._check(mapped, checked, blocks, sums):
                self.forget({name})
                return None
            if checked.all():
                checked[-1] = 2
        return np.frombuffer(mapped, dtype=np.uint8)


def take_rows(which: np.ndarray, offsets: np.ndarray, out: np.ndarray, arrays: dict) -> None:
    """``out[n] = span[offsets[n] - start : + size]`` for the rows with ``which[n] >= 0``,
    ``arrays[which[n]]`` being ``(span's bytes as a uint8 array, start)``: one ``take`` of
    rows per span where the samples lie at multiples of the size from the span's start."""
    size = out.shape[1]
    keys = list(arrays)
    if not keys:
        return
    starts = np.zeros(max(keys) + 2, dtype=np.int64)
    starts[keys] = [start for _, start in arrays.values()]
    relative = offsets - starts[which]  # (rows with which -1 read a 0 never used)
    if size >= ROW_COPY_BYTES:  # large samples (images): one copy each, into its row
        rows = np.flatnonzero(which >= 0)
        for n, k, at in zip(
            rows.tolist(), which[rows].tolist(), relative[rows].tolist(), strict=True
        ):
            out[n] = arrays[k][0][at : at + size]
        return
    on_grid = not (relative[which >= 0] % size).any()
    if on_grid and len(keys) > 4:  # many spans: rows sorted by span, each span's one take
        rows = np.flatnonzero(which >= 0)
        order = rows[np.argsort(which[rows], kind="stable")]
        spans = which[order]
        cuts = (np.flatnonzero(spans[1:] != spans[:-1]) + 1).tolist()
        at_row = relative[order] // size
        gathered = np.empty((len(order), size), dtype=np.uint8)
        for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True):
            data = arrays[int(spans[a])][0]
            table = data[: len(data) // size * size].reshape(-1, size)
            table.take(at_row[a:b], 0, gathered[a:b], "clip")
        out[order] = gathered  # back in the order asked for
        return
    for k in keys:
        data = arrays[k][0]
        rows = np.flatnonzero(which == k)
        if not on_grid:
            for n, at in zip(rows.tolist(), relative[rows].tolist(), strict=True):
                out[n] = data[at : at + size]
            continue
        table = data[: len(data) // size * size].reshape(-1, size)
        if len(rows) == len(out):  # one span holds the batch: straight into it
            table.take(relative // size, 0, out, "clip")
        else:
            out[rows] = table.take(relative[rows] // size, 0)
