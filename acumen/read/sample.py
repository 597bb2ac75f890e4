"""Reading one sample: the per-sample fast path of :class:`acumen.read.dataset.Dataset`.

The hot path indexes compact columns (chunk id, offset, size), asks the storage for the
bytes, decodes them if the codec compresses, and wraps them with ``np.frombuffer``: no
pandas, no per-read file open, no text parsing. With a zero-copy storage and no checks left
to run, the read is a closure over what it needs (:func:`direct_reader`), a few attribute
lookups shorter than a method.

:class:`SampleReads` holds the reads; the dataset binds the state they use
(``Dataset._bind``) and picks which one ``_array`` is.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acumen.abc.codec import Codec
from acumen.abc.storage import Storage
from acumen.errors import CorruptDatasetError, sample_error
from acumen.format.index_table import IndexTable
from acumen.format.shapes import ShapeColumn
from acumen.read.index_checks import BLOCK_SHIFT, IndexChecks

_ndarray = np.ndarray
ITER_BLOCK = 4096  # samples per block when iterating
AHEAD_BYTES = 32 << 20  # a remote dataset's iteration: bytes fetched ahead of the reader
AHEAD_BLOCK = 4 << 20  # ... in blocks of about this many bytes, each fetched on its own
ITER_READ = 8 << 20  # bytes per read at most when iterating


def scalars(column: np.ndarray) -> memoryview:
    """``column[i]`` as a Python int in about 30 ns (``column.item(i)`` takes 80)."""
    if column.dtype.kind not in "iu" or not column.dtype.isnative:
        column = column.astype(np.int64)
    return memoryview(column)


@dataclass(eq=False)
class FieldReader:
    """How to read one field of a multi-field dataset."""

    name: str
    type: str  # "array" or "bytes"
    dtype: np.dtype
    codec: Codec
    sizes: np.ndarray
    shapes: ShapeColumn

    def decode(self, data: Any, i: int) -> Any:
        fixed = self.shapes.fixed
        shape = fixed if fixed is not None else self.shapes[i]
        if not self.codec.is_identity:
            data = self.codec.decode(data, math.prod(shape) * self.dtype.itemsize)
        if self.type == "bytes":
            return bytes(data)
        return np.frombuffer(data, self.dtype).reshape(shape)


class SampleReads:
    """The single-sample reads of a dataset (a base of ``Dataset``, which binds this state)."""

    root: Path
    table: IndexTable
    dtype: Any
    storage: Storage
    field_readers: list[FieldReader]
    verify: str | None
    _n: int
    _chunk_at: memoryview
    _offset_at: memoryview
    _size_at: memoryview
    _shapes: ShapeColumn | None
    _fixed_shape: tuple[int, ...] | None
    _nbytes: int | None
    _decode: Callable[[Any, int], Any] | None
    _read_bytes: Callable[[int, int, int], Any]
    _check_sample: Callable[[int, Any], None]
    _verify_samples: bool
    _checks: IndexChecks
    _pending: Any
    _row: Callable[[int], dict[str, Any]]
    prefetch: Callable[[Any], Any]  # Dataset.prefetch: a future of the fetch
    _wanted: list[bool]

    def _array(self, i: int) -> np.ndarray:
        if self._pending[i >> BLOCK_SHIFT]:
            self._checks.check(i)
        shape = self._fixed_shape if self._fixed_shape is not None else self._shapes[i]
        try:
            data = self._read_bytes(self._chunk_at[i], self._offset_at[i], self._size_at[i])
            if self._decode is None:
                # The storage returns the size asked for, which the index has as shape x dtype.
                return _ndarray(shape, self.dtype, data)
            nbytes = self._nbytes
            if nbytes is None:
                nbytes = math.prod(shape) * self.dtype.itemsize
            data = self._decode(data, nbytes)
        except CorruptDatasetError as error:
            raise sample_error(self.root, i, error) from None
        return np.frombuffer(data, self.dtype).reshape(shape)

    def _verified_array(self, i: int) -> np.ndarray:
        """``_array`` with verify="sample": the payload is checked against row ``i``'s
        checksum before it is decoded."""
        if self._pending[i >> BLOCK_SHIFT]:
            self._checks.check(i)
        shape = self._fixed_shape if self._fixed_shape is not None else self._shapes[i]
        try:
            data = self._read_bytes(self._chunk_at[i], self._offset_at[i], self._size_at[i])
        except CorruptDatasetError as error:
            raise sample_error(self.root, i, error) from None
        self._check_sample(i, data)
        if self._decode is not None:
            try:
                data = self._decode(data, math.prod(shape) * self.dtype.itemsize)
            except CorruptDatasetError as error:
                raise sample_error(self.root, i, error) from None
        return np.frombuffer(data, self.dtype).reshape(shape)

    def _own_array(self, i: int) -> np.ndarray:
        """Sample ``i`` as a new writable array, copied once from the file's bytes."""
        if self._pending[i >> BLOCK_SHIFT]:
            self._checks.check(i)
        if self._decode is not None or self._verify_samples or self.storage.zero_copy:
            return self._array(i).copy()
        shape = self._fixed_shape if self._fixed_shape is not None else self._shapes[i]
        array = np.empty(shape, self.dtype)
        if array.nbytes:
            chunk = self._chunk_at[i]
            if self.verify is not None:
                self._read_bytes(chunk, 0, 0)  # checks the chunk on first touch
            try:
                self.storage.read_into(
                    chunk, self._offset_at[i], [memoryview(array.reshape(-1).view(np.uint8))]
                )
            except CorruptDatasetError as error:
                raise sample_error(self.root, i, error) from None
        return array

    def _record(self, i: int, wanted: list[bool] | None = None) -> dict[str, Any]:
        if self._pending[i >> BLOCK_SHIFT]:
            self._checks.check(i)
        wanted = wanted if wanted is not None else self._wanted
        chunk, offset = self._chunk_at[i], self._offset_at[i]
        result: dict[str, Any] = {}
        try:
            if all(wanted) or self._verify_samples:  # one read of the record, then slices
                record = memoryview(self._read_bytes(chunk, offset, self._size_at[i]))
                if self._verify_samples:
                    self._check_sample(i, record)
                start = 0
                for reader, want in zip(self.field_readers, wanted, strict=True):
                    end = start + reader.sizes.item(i)
                    if want:
                        result[reader.name] = reader.decode(record[start:end], i)
                    start = end
                return result
            for reader, want in zip(self.field_readers, wanted, strict=True):
                size = reader.sizes.item(i)
                if want:
                    result[reader.name] = reader.decode(self._read_bytes(chunk, offset, size), i)
                offset += size
        except CorruptDatasetError as error:
            raise sample_error(self.root, i, error) from None
        return result

    # --- iteration --------------------------------------------------------------------
    def _samples(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Every sample with its metadata, in order (``iter(dataset)``)."""
        if self.storage.batched_reads:
            yield from self._samples_ahead()
            return
        if (
            self.field_readers
            or self._fixed_shape is None
            or self._decode is not None
            or self._verify_samples
        ):
            for i in range(self._n):
                yield self._array(i), self._row(i)
            return
        # Raw samples of one shape: each block's runs of adjacent payloads are read at once
        # and split into views, and metadata columns become lists once per block.
        names = self.table.metadata.names
        columns = [self.table.metadata.raw_column(name) for name in names]
        for start in range(0, self._n, ITER_BLOCK):
            end = min(self._n, start + ITER_BLOCK)
            if not self._checks.check_range(start, end):  # raised at the damaged sample
                for i in range(start, end):
                    yield self._array(i), self._row(i)
                continue
            arrays = self._raw_views(start, end)
            if not names:
                for array in arrays:
                    yield array, {}
                continue
            values = zip(
                *[np.asarray(column[start:end]).tolist() for column in columns], strict=True
            )
            for array, row in zip(arrays, values, strict=True):
                yield array, dict(zip(names, row, strict=True))

    def _samples_ahead(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """A remote dataset in order, read ahead: the samples are taken in blocks of about
        ``AHEAD_BLOCK`` bytes, and up to ``AHEAD_BYTES`` of the blocks after the one being
        read are fetched at once (each its own GETs, on its own thread), so the link stays
        busy while samples are consumed and no round trip waits for the one before. The
        window is bounded by the storage's memory cache (half of ``cache_bytes``), which
        holds the fetched blocks until they are read. A failed fetch is not raised here:
        the reads of the block fetch again and report it with the sample; a block with a
        damaged index row is not fetched ahead (its reads raise at that sample)."""
        window = AHEAD_BYTES
        held = getattr(self.storage, "cache_bytes", None)
        if held is not None:
            window = min(window, held // 2)
        # (no memory to hold blocks ahead: nothing is fetched ahead, each run read at once)
        block = max(1, min(AHEAD_BLOCK, window // 4)) if window else AHEAD_BLOCK
        blocks = byte_blocks(self.table.sizes, block, first=block // 16)
        depth = max(1, window // block)
        raw = not (
            self.field_readers
            or self._fixed_shape is None
            or self._decode is not None
            or self._verify_samples
        )
        pool = ThreadPoolExecutor(min(depth, len(blocks)) or 1, "acumen-read-ahead")
        ahead: deque[Future] = deque()

        submitted = 0

        def fetch_next() -> None:
            nonlocal submitted
            if window and submitted < len(blocks):
                start, end = blocks[submitted]
                submitted += 1
                if self._checks.check_range(start, end):
                    ranges = self.table.ranges(np.arange(start, end))
                    ahead.append(pool.submit(self.storage.prefetch, ranges))
                else:
                    ahead.append(pool.submit(lambda: None))

        try:
            for _ in range(depth):
                fetch_next()
            for start, end in blocks:
                if ahead:
                    with contextlib.suppress(Exception):
                        ahead.popleft().result()
                fetch_next()
                if raw and math.prod(self._fixed_shape) and self._checks.check_range(start, end):
                    for i, array in enumerate(self._raw_views(start, end), start):
                        yield array, self._row(i)
                else:
                    for i in range(start, end):
                        yield self._array(i), self._row(i)
        finally:
            # No fetch may fill the storage's cache after the loop (it may be closing).
            pool.shutdown(wait=True, cancel_futures=True)

    def _raw_views(self, start: int, end: int) -> list[np.ndarray]:
        """Samples ``start:end`` as read-only arrays, reading each run of adjacent ones once."""
        chunks = self.table.chunk_ids[start:end]
        offsets = self.table.offsets[start:end]
        size = math.prod(self._fixed_shape) * self.dtype.itemsize
        if size == 0:
            return [self._array(i) for i in range(start, end)]
        breaks = (np.diff(chunks) != 0) | (np.diff(offsets) != size)
        # At most ITER_READ bytes per read (a pread of a whole block of images is costly).
        per_read = max(1, ITER_READ // size)
        breaks[per_read - 1 :: per_read] = True
        breaks = np.flatnonzero(breaks) + 1
        views: list[np.ndarray] = []
        for run_start, run_end in zip(
            [0, *breaks.tolist()], [*breaks.tolist(), end - start], strict=True
        ):
            count = run_end - run_start
            try:
                data = self._read_bytes(
                    int(chunks[run_start]), int(offsets[run_start]), count * size
                )
            except CorruptDatasetError as error:
                raise sample_error(self.root, start + run_start, error) from None
            views.extend(np.frombuffer(data, self.dtype).reshape(count, *self._fixed_shape))
        return views


def direct_reader(reads: SampleReads, checked: bool) -> Callable[[int], np.ndarray]:
    """``_array`` for a zero-copy storage read without checks: it slices the storage's
    chunk views instead of calling ``read``. A closure over what it needs (a read is then a
    few attribute lookups shorter than a method), holding no reference to the dataset.
    ``checked``: every index row is checked, so the reader skips the block test (0.1 µs).
    """
    storage, read, dtype, root = reads.storage, reads.storage.read, reads.dtype, reads.root
    chunk_at, offset_at, size_at = reads._chunk_at, reads._offset_at, reads._size_at
    shapes, fixed, nbytes, decode = reads._shapes, reads._fixed_shape, reads._nbytes, reads._decode
    pending, check, shift = reads._pending, reads._checks.check, BLOCK_SHIFT

    def first_read(i: int, shape: tuple[int, ...]) -> np.ndarray:
        # The chunk is not open yet, or the range is past its end: read() opens it or says so.
        try:
            data = read(chunk_at[i], offset_at[i], size_at[i])
            if decode is not None:
                data = decode(data, nbytes)
        except CorruptDatasetError as error:
            raise sample_error(root, i, error) from None
        return np.frombuffer(data, dtype).reshape(shape)

    if decode is not None:

        def decoded(i: int) -> np.ndarray:
            if not checked and pending[i >> shift]:
                check(i)
            view = storage.views[chunk_at[i]]
            if view is None:
                return first_read(i, fixed)
            offset = offset_at[i]
            try:
                data = decode(view[offset : offset + size_at[i]], nbytes)
            except CorruptDatasetError as error:
                raise sample_error(root, i, error) from None
            return _ndarray(fixed, dtype, data)

        return decoded

    def raw(i: int) -> np.ndarray:
        shape = fixed if fixed is not None else shapes[i]
        view = storage.views[chunk_at[i]]
        offset = offset_at[i]
        if view is not None and offset >= 0:  # (numpy would take a negative offset)
            try:  # the buffer is too small only past the end of the file
                return _ndarray(shape, dtype, view, offset)
            except TypeError:
                pass
        return first_read(i, shape)

    if checked:
        return raw

    def raw_checking(i: int) -> np.ndarray:
        if pending[i >> shift]:
            check(i)
        return raw(i)

    return raw_checking


def byte_blocks(sizes: np.ndarray, limit: int, first: int | None = None) -> list[tuple[int, int]]:
    """``[start, end)`` blocks of consecutive samples of about ``limit`` payload bytes each
    (at least one sample each); with ``first``, the first block has about ``first`` bytes
    and each next one twice the one before, up to ``limit`` (a read-ahead starts small, so
    the first samples come after a short GET)."""
    if not len(sizes):
        return []
    ends = np.cumsum(sizes, dtype=np.int64)
    ramp = []
    if first is not None:
        step = max(1, int(first))
        while step < limit:
            ramp.append(step)
            step *= 2
    targets = np.cumsum(ramp, dtype=np.int64)
    offset = int(targets[-1]) if len(ramp) else 0
    targets = np.concatenate([targets, np.arange(offset + limit, int(ends[-1]), limit)])
    cuts = np.searchsorted(ends, targets[targets < ends[-1]], side="left") + 1
    bounds = np.unique(np.concatenate([[0], cuts, [len(sizes)]])).tolist()
    return list(itertools.pairwise(bounds))
