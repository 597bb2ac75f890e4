"""The per-sample checks of an index, run block by block when a sample is first read.

Opening a dataset checks what costs O(chunk files): the manifest, the chunk files and their
sizes. The checks of every index row (a chunk that exists, a byte range inside its file,
a shape whose element count fits, a raw size of exactly shape x itemsize, metadata text
read in place lying inside its column's bytes) run over the first
block of :data:`BLOCK` rows at open, and over each other block the first time any of its
samples is read: a ten-million-sample index opens without a pass over its columns, and
damage is still reported before any bytes of it are returned. Past the first block, a
damaged row makes its own sample an error; the rows around it read.

Each block's checks are vectorised and every sum or product is exact: a range is checked as
``offset <= file_size - size`` (no int64 wrap-around) and an element count beyond 2**62 is
refused.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acumen.errors import CorruptDatasetError, quote
from acumen.format.index_table import IndexTable
from acumen.format.shapes import MAX_NDIM, ShapeColumn

BLOCK_SHIFT = 14
BLOCK = 1 << BLOCK_SHIFT  # rows per block: a check of a few tens of microseconds
_UNCHECKED, _CHECKED, _DAMAGED = 1, 0, 2  # block states; the hot path tests truth only
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, eq=False)
class ChunkFiles:
    """What the checks compare the index with: its chunk files and their sizes at open."""

    index_path: Path  # named in messages about index rows
    paths: list[str]
    sizes: np.ndarray  # int64 bytes, one per chunk file

    @classmethod
    def stat(cls, index_path: Path, paths: list[str]) -> ChunkFiles:
        paths = [str(p) for p in paths]
        sizes = np.array([os.stat(p).st_size for p in paths], dtype=np.int64)
        return cls(index_path, paths, sizes)


@dataclass(frozen=True, eq=False)
class PayloadRule:
    """What a record's (or a field's) size must agree with: ``itemsize`` for uncompressed
    payloads (size = elements x itemsize), None when a codec decides the size."""

    label: str  # "" for a one-array dataset, "field 'x' " for a field
    sizes: np.ndarray
    shapes: ShapeColumn
    itemsize: int | None
    dtype_name: str = ""
    hint: str = ""


class IndexChecks:
    """Which blocks of an index are checked, and the checks themselves.

    ``pending[i >> BLOCK_SHIFT]`` is truthy while sample ``i`` may not be read unchecked:
    the hot path tests it and calls :meth:`check` only then.
    """

    def __init__(
        self, files: ChunkFiles, table: IndexTable, rules: list[PayloadRule], fields: bool
    ) -> None:
        self.index_path = files.index_path
        self.table = table
        self.chunk_paths = files.paths
        self.file_sizes = files.sizes
        self.rules = rules
        self.fields = fields  # record sizes are the sums of the rules' field sizes
        self.in_place = _in_place_columns(table)
        self.n = len(table)
        self.pending = bytearray(b"\x01") * (-(-self.n // BLOCK))
        self._pending_array = np.frombuffer(self.pending, np.uint8)  # the same bytes
        self._lock = threading.Lock()  # one thread checks a block; others wait for it
        self._unchecked = len(self.pending)
        self._damaged: dict[int, str] = {}  # row -> message, in damaged blocks only
        self._bad_text: dict[int, str] = {}  # row -> message, rows of damaged metadata
        #: Called once every block is checked and sound (readers then drop the block test).
        self.on_clean: Callable[[], None] | None = None

    # --- asking -----------------------------------------------------------------------------
    @property
    def clean(self) -> bool:
        """Every block is checked and sound: reads need no test."""
        return not self._unchecked and not self._damaged

    def check(self, i: int) -> None:
        """Raise :class:`CorruptDatasetError` if sample ``i``'s index row is damaged."""
        block = i >> BLOCK_SHIFT
        if self.pending[block] == _UNCHECKED:
            self._check_block(block)
        if self.pending[block] == _DAMAGED and i in self._damaged:
            raise CorruptDatasetError(self._damaged[i])

    def check_metadata(self, i: int) -> None:
        """Raise :class:`CorruptDatasetError` if sample ``i``'s metadata cannot be read (its
        text in the index file is damaged); a damaged payload range does not stop it."""
        block = i >> BLOCK_SHIFT
        if self.pending[block] == _UNCHECKED:
            self._check_block(block)
        if self.pending[block] == _DAMAGED and i in self._bad_text:
            raise CorruptDatasetError(self._bad_text[i])

    def check_positions(self, positions: np.ndarray) -> None:
        """:meth:`check` for many samples; the first damaged one in ``positions`` is raised."""
        if self.clean or not len(positions):
            return
        touched = positions >> BLOCK_SHIFT
        if not self._pending_array[touched].any():  # every block checked and sound
            return
        blocks = np.unique(touched).tolist()
        for block in blocks:
            if self.pending[block] == _UNCHECKED:
                self._check_block(block)
        if any(self.pending[block] == _DAMAGED for block in blocks):
            for i in positions.tolist():
                if i in self._damaged:
                    raise CorruptDatasetError(self._damaged[i])

    def check_range(self, start: int, end: int) -> bool:
        """Check the blocks of samples ``start:end``; False if one of them is damaged."""
        clean = True
        for block in range(start >> BLOCK_SHIFT, ((end - 1) >> BLOCK_SHIFT) + 1):
            if self.pending[block] == _UNCHECKED:
                self._check_block(block)
            if self.pending[block] == _DAMAGED:
                clean = clean and not any(start <= i < end for i in self._damaged)
        return clean

    def check_first_block(self) -> None:
        """At open: check the first block now and raise its first damaged row, so a small
        index is checked whole when it opens, and a wrong dtype or a systematic fault in a
        large one is reported at once."""
        if self.n:
            self._check_block(0)
            if self._damaged:
                raise CorruptDatasetError(self._damaged[min(self._damaged)])

    def problems(self) -> list[str]:
        """Every damaged row's message, checking all blocks (``acumen verify``)."""
        for block in range(len(self.pending)):
            if self.pending[block] == _UNCHECKED:
                self._check_block(block)
        return [self._damaged[i] for i in sorted(self._damaged)]

    # --- checking ---------------------------------------------------------------------------
    def _check_block(self, block: int) -> None:
        with self._lock:  # threads reading at once: each block checked (and counted) once
            if self.pending[block] == _UNCHECKED:
                self._check_block_now(block)

    def _check_block_now(self, block: int) -> None:
        start = block << BLOCK_SHIFT
        end = min(self.n, start + BLOCK)
        damaged = self._damaged_rows(start, end)
        self._unchecked -= 1
        if damaged is None:
            self.pending[block] = _CHECKED
            if not self._unchecked and not self._damaged and self.on_clean is not None:
                self.on_clean()
            return
        for row in (np.flatnonzero(damaged) + start).tolist():
            self._damaged[row] = self._describe(row)
            text = self._describe_text(row)
            if text is not None:
                self._bad_text[row] = text
        self.pending[block] = _DAMAGED

    def _damaged_rows(self, start: int, end: int) -> np.ndarray | None:
        """A mask of the damaged rows in ``start:end``, or None when every row is sound."""
        table = self.table
        ids = table.chunk_ids[start:end]
        offsets = table.offsets[start:end]
        sizes = table.sizes[start:end]
        chunks = len(self.file_sizes)
        if not chunks:  # an empty list of chunk files (dictionary): no row names one
            return np.ones(end - start, dtype=np.bool_)
        bad = None
        if ids.min() < 0 or ids.max() >= chunks or offsets.min() < 0 or sizes.min() < 0:
            bad = (ids < 0) | (ids >= chunks) | (offsets < 0) | (sizes < 0)
        limits = self.file_sizes.take(ids, mode="clip")
        limits -= sizes  # both non-negative where it matters: no wrap-around
        past = offsets > limits
        if past.any():
            bad = past if bad is None else bad | past
        for rule in self.rules:
            wrong = _payload_rows(rule, start, end)
            if wrong is not None:
                bad = wrong if bad is None else bad | wrong
        for _, column in self.in_place:
            wrong = column.damaged_rows(start, end)
            if wrong is not None:
                bad = wrong if bad is None else bad | wrong
        if self.fields:  # their sizes add up to the record's
            total = np.zeros(end - start, dtype=np.int64)
            for rule in self.rules:
                total += rule.sizes[start:end]
            wrong = total != sizes
            if wrong.any():
                bad = wrong if bad is None else bad | wrong
        return bad if bad is not None and bad.any() else None

    def _describe(self, i: int) -> str:
        """The message for damaged row ``i`` (the first of its problems)."""
        table = self.table
        chunk, offset, size = table.locate(i)
        source = self.index_path
        if not 0 <= chunk < len(self.file_sizes):
            return f"{source}: sample {i} names no chunk file (chunk number {chunk})"
        if offset < 0 or size < 0:
            return f"{source}: sample {i}: negative offset or size ({offset}, {size})"
        file_size = int(self.file_sizes[chunk])
        if offset > file_size - size:
            return (
                f"{self.chunk_paths[chunk]}: sample {i} needs bytes {offset}..{offset + size} "
                f"but the file has {file_size}: truncated chunk or wrong index"
            )
        for rule in self.rules:
            message = _describe_payload(rule, i, source)
            if message:
                return message
        text = self._describe_text(i)
        if text is not None:
            return text
        total = sum(int(rule.sizes[i]) for rule in self.rules)
        return f"{source}: sample {i}: field sizes add up to {total} bytes, the record has {size}"

    def _describe_text(self, i: int) -> str | None:
        for name, column in self.in_place:
            if column.damaged_rows(i, i + 1) is not None:
                where = f"{self.index_path}: sample {i}: metadata column {quote(name)}"
                return f"{where} {column.describe(i)}"
        return None


def _in_place_columns(table: IndexTable) -> list[tuple[str, Any]]:
    """The metadata columns an index format left in its file to be decoded by row (arrow's
    text): they check their own rows with ``damaged_rows(start, end)`` (a mask or None)
    and ``describe(i)``, and the checks of each block run them."""
    columns = [(name, table.metadata.raw_column(name)) for name in table.metadata.names]
    return [(name, column) for name, column in columns if hasattr(column, "damaged_rows")]


def _payload_rows(rule: PayloadRule, start: int, end: int) -> np.ndarray | None:
    """Rows of ``start:end`` whose shape is impossible or, uncompressed, whose size is not
    elements x itemsize (None when all agree)."""
    counts, impossible = rule.shapes.counts_of(start, end)
    bad = impossible
    if rule.itemsize is not None:
        sizes = rule.sizes[start:end]
        if impossible is None and rule.shapes.fixed is not None:
            expected = int(counts[0]) * rule.itemsize if len(counts) else 0
            if int(sizes.min()) == expected == int(sizes.max()):
                return None
        # Where elements x itemsize would pass int64, no int64 size can match it.
        wrong = (sizes != counts * rule.itemsize) | (counts > _INT64_MAX // rule.itemsize)
        if impossible is not None:
            wrong &= ~impossible
        if wrong.any():
            bad = wrong if bad is None else bad | wrong
    return bad if bad is not None and bad.any() else None


def _describe_payload(rule: PayloadRule, i: int, source: Path) -> str | None:
    counts, impossible = rule.shapes.counts_of(i, i + 1)
    if impossible is not None and impossible[0]:
        return (
            f"{source}: sample {i} {rule.label}has shape {quote(rule.shapes[i])}: a negative "
            f"dimension, too many elements or more than {MAX_NDIM} dimensions"
        )
    size = int(rule.sizes[i])
    if rule.itemsize is not None and size != int(counts[0]) * rule.itemsize:
        return (
            f"{source}: sample {i} {rule.label}has {size} bytes, but shape "
            f"{quote(rule.shapes[i])} of {rule.dtype_name} needs {int(counts[0]) * rule.itemsize}"
            f"{rule.hint}"
        )
    return None


def payload_rules(
    table: IndexTable, dtype: np.dtype | None, identity: bool, readers: list, hint: str = ""
) -> list[PayloadRule]:
    """The rules of a one-array dataset (``dtype``, ``identity`` codec) or of its fields."""
    if readers:
        return [
            PayloadRule(
                f"field {quote(r.name)} ",
                r.sizes,
                r.shapes,
                r.dtype.itemsize if r.codec.is_identity else None,
                str(r.dtype),
            )
            for r in readers
        ]
    itemsize = dtype.itemsize if identity and dtype is not None else None
    return [PayloadRule("", table.sizes, table.shapes, itemsize, str(dtype), hint)]
