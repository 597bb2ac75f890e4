"""The rows of a :class:`~acumen.files.cache.SpanCache` a process has found, kept in memory
so that a hit on a span read before asks the database nothing.

Per object (URL and version) the rows ``(start, end, id, name, sums)`` are sorted by start,
and none lies inside another (a range inside both is served by the outer one), so their ends
grow with their starts: the last row starting at or before a range covers it, or none does.
A row may be stale (another process evicted its span): reading its file then fails, or
gives the right bytes from a file still mapped; the cache forgets it when its file is gone.
"""

from __future__ import annotations

import bisect

import numpy as np


def _first(row: tuple) -> int:
    return row[0]


class KnownRows:
    """Rows found, per ``(url, version)`` (see the module's docstring)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], list[tuple]] = {}
        # Per object, its rows' starts and ends as arrays (made on demand, dropped on change).
        self._arrays: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def covering(self, key: tuple[str, str], start: int, size: int) -> tuple | None:
        """A row ``(id, start, end, name, sums)`` covering the range, or None."""
        rows = self._rows.get(key)
        if rows:
            at = bisect.bisect_right(rows, start, key=_first) - 1
            if at >= 0 and rows[at][1] >= start + size:
                first, end, rowid, name, sums = rows[at]
                return rowid, first, end, name, sums
        return None

    def covering_many(
        self, key: tuple[str, str], starts: np.ndarray, size: int
    ) -> tuple[np.ndarray, list[tuple]]:
        """For each of the ranges ``starts[k] .. starts[k] + size``, which row covers it (an
        index into the rows returned, ``(start, end, id, name, sums)``; -1: none)."""
        rows = self._rows.get(key, [])
        arrays = self._arrays.get(key)
        if arrays is None:
            arrays = self._arrays[key] = (
                np.array([row[0] for row in rows], dtype=np.int64),
                np.array([row[1] for row in rows], dtype=np.int64),
            )
        firsts, ends = arrays
        if not len(firsts):
            return np.full(len(starts), -1, dtype=np.int64), []
        at = np.searchsorted(firsts, starts, side="right") - 1
        found = (at >= 0) & (ends[np.maximum(at, 0)] >= starts + size)
        return np.where(found, at, -1), list(rows)  # a copy: adds change the list in place

    def add(self, key: tuple[str, str], *found: tuple) -> None:
        """Remember rows ``(id, start, end, name, sums)``, keeping none inside another."""
        rows = self._rows.setdefault(key, [])
        self._arrays.pop(key, None)
        for rowid, first, end, name, sums in found:
            at = bisect.bisect_right(rows, first, key=_first)
            if at and rows[at - 1][1] >= end:
                continue  # inside the one starting before (or the same)
            if at and rows[at - 1][0] == first:
                at -= 1  # the same start, ending before: inside this one
            inner = at
            while inner < len(rows) and rows[inner][1] <= end:
                inner += 1  # those starting after it and ending before its end: inside
            rows[at:inner] = [(first, end, rowid, name, sums)]

    def forget(self, names: set[str]) -> None:
        """Forget the rows of these span files (dropped or evicted)."""
        for key, rows in list(self._rows.items()):
            kept = [row for row in rows if row[3] not in names]
            if len(kept) != len(rows):
                self._arrays.pop(key, None)
                if kept:
                    self._rows[key] = kept
                else:
                    del self._rows[key]
