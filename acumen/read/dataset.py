"""A dataset opened for reading: ``ds[i]`` in O(1) from compact index arrays.

The hot path indexes numpy arrays (chunk id, offset, size), asks the storage for the
bytes, decodes them if the codec compresses, and wraps them with ``np.frombuffer``: no
pandas, no per-read file open, no text parsing. Metadata becomes a dict only for the
sample asked for.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acumen import plugins
from acumen.abc.codec import Codec
from acumen.abc.storage import Storage
from acumen.errors import CorruptDatasetError
from acumen.format.index_table import IndexTable
from acumen.format.manifest import Manifest
from acumen.format.shapes import ShapeColumn
from acumen.read.index_checks import BLOCK_SHIFT, ChunkFiles, IndexChecks, payload_rules
from acumen.read.verifiers import ChunkVerifier, SampleVerifier


def _direct_reader(ds: Dataset, checked: bool) -> Callable[[int], np.ndarray]:
    """``ds._array`` for a zero-copy storage read without checks: it slices the storage's
    chunk views instead of calling ``read``. A closure over what it needs (a read is then a
    few attribute lookups shorter than a method), holding no reference to ``ds``.
    ``checked``: every index row is checked, so the reader skips the block test (0.1 µs).
    """
    storage, read, dtype, root = ds.storage, ds.storage.read, ds.dtype, ds.root
    chunk_at, offset_at, size_at = ds._chunk_at, ds._offset_at, ds._size_at
    shapes, fixed, nbytes, decode = ds._shapes, ds._fixed_shape, ds._nbytes, ds._decode
    pending, check, shift = ds._pending, ds._checks.check, BLOCK_SHIFT

    def first_read(i: int, shape: tuple[int, ...]) -> np.ndarray:
        # The chunk is not open yet, or the range is past its end: read() opens it or says so.
        try:
            data = read(chunk_at[i], offset_at[i], size_at[i])
            if decode is not None:
                data = decode(data, nbytes)
        except CorruptDatasetError as error:
            raise CorruptDatasetError(f"{root}: sample {i}: {error}") from None
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
                raise CorruptDatasetError(f"{root}: sample {i}: {error}") from None
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


_ndarray = np.ndarray
_ORIGINAL_DTYPE_HINT = "; is the dtype right (original datasets do not record it: pass dtype=...)?"


def _scalars(column: np.ndarray) -> memoryview:
    """``column[i]`` as a Python int in about 30 ns (``column.item(i)`` takes 80)."""
    if column.dtype.kind not in "iu" or not column.dtype.isnative:
        column = column.astype(np.int64)
    return memoryview(column)


_ITER_BLOCK = 4096  # samples per block when iterating
# Samples this large are gathered into a batch one by one: measured (256 random samples,
# mmap), numpy's take fell to 0.8-1.7 GB/s for rows of 12-24 KiB while row copies gave 6-9;
# below 8 KiB take wins (1 KiB: 2.0 vs 1.0 GB/s).
_ROW_COPY_BYTES = 8 << 10
_ITER_READ = 8 << 20  # bytes per read at most when iterating


class Dataset:
    """Samples of a dataset. Use :func:`acumen.open` to get one.

    ``ds[i]`` returns ``(array, metadata)`` like the original reader; ``ds.read(i)`` the array
    alone. In a multi-field dataset the array is a dict ``{field: array or bytes}`` of the
    selected fields (all by default; ``acumen.open(path, fields=[...])`` or
    ``ds.read(i, fields=[...])`` read only those fields' bytes).

    Arrays are read-only (views on the file's bytes with the ``mmap`` storage); use
    ``ds.read(i, copy=True)`` for a writable copy. Picklable: in a DataLoader worker the storage
    reopens its files lazily.
    """

    def __init__(
        self,
        root: Path,
        table: IndexTable,
        dtype: np.dtype,
        codec: Codec,
        storage: Storage,
        manifest: Manifest | None = None,
        field_readers: Sequence[FieldReader] = (),
        selected: Sequence[str] | None = None,
        verify: str | None = None,
        chunk_files: ChunkFiles | None = None,
    ) -> None:
        self.root = root
        self.table = table
        self.dtype = np.dtype(dtype) if not field_readers else None
        self.codec = codec
        self.storage = storage
        self.manifest = manifest
        self.field_readers = list(field_readers)
        self.selected = self._check_fields(selected) if selected is not None else None
        #: For a view from :meth:`select`: each sample's position in the whole dataset.
        self.positions: np.ndarray | None = None
        self.verify = verify  # None, "chunk" or "sample" (see acumen.open)
        #: The chunk files and their sizes the index rows are checked against.
        self.chunk_files = chunk_files or ChunkFiles.stat(root, storage.paths)
        self._bind()

    def _bind(self) -> None:
        table = self.table
        self._n = len(table)
        self._chunk_at = _scalars(table.chunk_ids)
        self._offset_at = _scalars(table.offsets)
        self._size_at = _scalars(table.sizes)
        self._shapes = table.shapes
        self._fixed_shape = table.shapes.fixed if table.shapes is not None else None
        self._read_bytes = self.storage.read
        verify = self.verify
        # verify="sample" checks each record's bytes against its row's checksum: reads then
        # cover one record each (see _verified_array).
        self._verify_samples = verify == "sample"
        if verify == "chunk":
            self._read_bytes = ChunkVerifier(self)
        elif verify == "sample":
            self._check_sample = SampleVerifier(self)
        self._decode = None if self.codec.is_identity else self.codec.decode
        # Index rows are checked block by block on first read (acumen.read.index_checks).
        hint = "" if self.manifest else _ORIGINAL_DTYPE_HINT
        rules = payload_rules(table, self.dtype, self.codec.is_identity, self.field_readers, hint)
        self._checks = IndexChecks(self.chunk_files, table, rules, bool(self.field_readers))
        self._checks.on_clean = self._bind_reader
        self._pending = self._checks.pending
        self._row = table.metadata.row
        self._rows_cache: tuple[list, dict[int, np.ndarray]] | None = None
        self._aligned: bool | None = None  # every offset a multiple of the sample size
        # Bytes per sample when every sample has one shape (None otherwise).
        fixed = self._fixed_shape
        self._nbytes = (
            math.prod(fixed) * self.dtype.itemsize
            if fixed is not None and self.dtype is not None
            else None
        )
        # A zero-copy storage read without checks: slice its chunk views, no read() call.
        self._direct = self.storage.zero_copy and verify is None
        if self.field_readers:
            self._wanted = self._wanted_mask(self.selected)
        self._bind_reader()

    def _bind_reader(self) -> None:
        """Pick ``_array``; again once every index block is checked (the checks call it)."""
        if self.field_readers:
            self._array = self._record  # type: ignore[method-assign]
        elif self._verify_samples:
            self._array = self._verified_array  # type: ignore[method-assign]
        elif self._direct and (self._decode is None or self._fixed_shape is not None):
            self._array = _direct_reader(self, self._checks.clean)  # type: ignore[method-assign]

    # --- fields -----------------------------------------------------------------------
    @property
    def fields(self) -> list[str] | None:
        """The fields read by default (all unless selected), or None for one-array data."""
        if not self.field_readers:
            return None
        return [
            r.name for r in self.field_readers if self.selected is None or r.name in self.selected
        ]

    def _check_fields(self, names: Sequence[str]) -> list[str]:
        if not self.field_readers:
            raise ValueError(f"{self.root} holds one array per sample: it has no fields to pick")
        if isinstance(names, str):
            names = [names]
        known = [r.name for r in self.field_readers]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"{self.root} has no field(s) {unknown}; its fields: {known}")
        return list(names)

    def _wanted_mask(self, names: Sequence[str] | None) -> list[bool]:
        if names is None:
            return [True] * len(self.field_readers)
        return [r.name in names for r in self.field_readers]

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
            raise CorruptDatasetError(f"{self.root}: sample {i}: {error}") from None
        return result

    # --- sizes and schema -------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The shape all samples share, or ``None`` when shapes vary (or there are fields)."""
        return self._fixed_shape

    @property
    def columns(self) -> list[str]:
        """The metadata column names."""
        return self.table.metadata.names

    @property
    def index(self) -> pd.DataFrame:
        """The index as the original's DataFrame (built on demand; not used for reading).
        Every row is checked first, as reads check theirs: a damaged one is raised."""
        problems = self._checks.problems()
        if problems:
            raise CorruptDatasetError(problems[0])
        return self.table.to_frame()

    # --- reading ----------------------------------------------------------------------
    def _position(self, i: Any) -> int:
        try:
            position = operator.index(i)
        except TypeError:
            raise TypeError(f"dataset indices must be integers, not {type(i).__name__}") from None
        if position < 0:
            position += self._n
        if not 0 <= position < self._n:
            raise IndexError(f"sample {i} is out of range for a dataset of {self._n} samples")
        return position

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
            raise CorruptDatasetError(f"{self.root}: sample {i}: {error}") from None
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
            raise CorruptDatasetError(f"{self.root}: sample {i}: {error}") from None
        self._check_sample(i, data)
        if self._decode is not None:
            try:
                data = self._decode(data, math.prod(shape) * self.dtype.itemsize)
            except CorruptDatasetError as error:
                raise CorruptDatasetError(f"{self.root}: sample {i}: {error}") from None
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
                raise CorruptDatasetError(f"{self.root}: sample {i}: {error}") from None
        return array

    def read(self, i: int, fields: Sequence[str] | None = None, *, copy: bool = False) -> Any:
        """Sample ``i``'s array (or dict of the selected fields, or of ``fields``).

        Arrays are read-only (zero-copy views with ``mmap``); ``copy=True`` gives a writable
        array of your own.
        """
        if type(i) is not int or not 0 <= i < self._n:
            i = self._position(i)
        if fields is None and not copy:
            return self._array(i)
        if fields is None and not self.field_readers:
            return self._own_array(i)
        if fields is not None:
            sample = self._record(i, self._wanted_mask(self._check_fields(fields)))
        else:
            sample = self._array(i)
        if not copy:
            return sample
        return {k: v if isinstance(v, bytes) else v.copy() for k, v in sample.items()}

    # --- batches ----------------------------------------------------------------------
    def _positions(self, indices: Any) -> np.ndarray:
        positions = np.asarray(indices)
        kind = positions.dtype.kind
        if kind == "b":
            if positions.shape != (self._n,):
                raise IndexError(f"a mask needs {self._n} entries, got shape {positions.shape}")
            return np.flatnonzero(positions)
        if positions.size == 0:
            return np.zeros(0, dtype=np.int64)
        if kind not in "iu":
            raise TypeError(f"indices must be integers, got {positions.dtype}")
        n = self._n
        low, high = positions.min(), positions.max()
        if kind == "u" and high >= n:  # before the cast, which would wrap huge values
            wrong = positions.reshape(-1)[int(np.argmax(positions.reshape(-1) >= n))]
            raise IndexError(f"sample {wrong} is out of range for a dataset of {n} samples")
        positions = positions.astype(np.int64).reshape(-1)  # a copy: the caller's stays theirs
        if low < 0:
            positions = np.where(positions < 0, positions + n, positions)
            low, high = positions.min(), positions.max()
        if low < 0 or high >= n:
            bad = (positions < 0) | (positions >= n)
            wrong = np.asarray(indices).reshape(-1)[int(np.argmax(bad))]
            raise IndexError(f"sample {wrong} is out of range for a dataset of {n} samples")
        return positions

    def read_batch(self, indices: Any, *, threads: int | None = None) -> Any:
        """Many samples at once: one new (writable) array ``(len(indices), *shape)`` when
        every sample has the same shape, else a list of arrays (dicts, with fields).

        Reads are sorted by file position and adjacent payloads read in one go; compressed
        payloads decode straight into the batch, on ``threads`` threads if given (the
        decompressors release the GIL; it pays for slow codecs such as gzip or images).
        """
        positions = self._positions(indices)
        self._checks.check_positions(positions)
        if self.field_readers or self._fixed_shape is None:
            return [self._array(int(i)) for i in positions]
        batch = np.empty((len(positions), *self._fixed_shape), dtype=self.dtype)
        if not len(positions) or batch.nbytes == 0:
            return batch
        if self._verify_samples:
            for row, i in enumerate(positions.tolist()):
                batch[row] = self._array(i)
        elif self._decode is None:
            self._copy_raw_runs(positions, batch)
        else:
            self._decode_into(positions, batch, threads)
        return batch

    def _copy_raw_runs(self, positions: np.ndarray, batch: np.ndarray) -> None:
        chunks = self.table.chunk_ids[positions]
        offsets = self.table.offsets[positions]
        flat = batch.reshape(len(positions), -1).view(np.uint8)
        if self._direct and self._gather_rows(chunks, offsets, flat):
            return
        size = flat.shape[1]
        order = np.lexsort((offsets, chunks))
        # Runs of samples adjacent in the same chunk file are read as one range, straight
        # into their rows of the batch (one preadv with the seek storage).
        chunk_sorted, offset_sorted = chunks[order], offsets[order]
        cuts = (
            np.flatnonzero(
                (chunk_sorted[1:] != chunk_sorted[:-1])
                | (offset_sorted[1:] - offset_sorted[:-1] != size)
            )
            + 1
        )
        starts = [0, *cuts.tolist()]
        out = memoryview(flat.reshape(-1))
        buffers = [out[start : start + size] for start in (order * size).tolist()]
        read_into = self.storage.read_into
        if self.verify is not None:  # checks each chunk on first touch
            for chunk in np.unique(chunk_sorted).tolist():
                self._read_bytes(chunk, 0, 0)
        start = 0
        try:
            for start, end, chunk, offset in zip(
                starts,
                [*starts[1:], len(order)],
                chunk_sorted[starts].tolist(),
                offset_sorted[starts].tolist(),
                strict=True,
            ):
                read_into(chunk, offset, buffers[start:end])
        except CorruptDatasetError as error:
            first = int(positions[order[start]])
            raise CorruptDatasetError(f"{self.root}: sample {first}: {error}") from None

    def _chunk_rows(self, chunk: int, size: int) -> np.ndarray | None:
        """A zero-copy chunk's bytes as rows of ``size`` bytes, kept while the chunk is open
        (the storage's view list changes when it drops its handles)."""
        views = self.storage.views
        cache = self._rows_cache
        if cache is None or cache[0] is not views:
            cache = self._rows_cache = (views, {})
        rows = cache[1].get(chunk)
        if rows is None:
            view = views[chunk]
            if view is None:
                self.storage.handle(chunk)
                view = views[chunk]
                if view is None:
                    return None
            rows = np.frombuffer(view, np.uint8, len(view) // size * size).reshape(-1, size)
            cache[1][chunk] = rows
        return rows

    def _rows_of(self, offsets: np.ndarray, size: int) -> np.ndarray | None:
        """Each offset as a row number of ``size``-byte rows, or None unless every sample of
        the dataset sits at a multiple of ``size`` (as acumen writes fixed shapes; checked once)."""
        if self._aligned is None:
            every = self.table.offsets
            self._aligned = bool(len(every) == 0 or (every.min() >= 0 and not (every % size).any()))
        if not self._aligned:
            return None
        if size & (size - 1) == 0:
            return offsets >> (size.bit_length() - 1)
        return offsets // size

    def _gather_rows(self, chunks: np.ndarray, offsets: np.ndarray, flat: np.ndarray) -> bool:
        """With mapped or in-memory chunks whose samples sit at multiples of the sample size,
        a batch is one ``take`` per chunk (then one scatter to put the rows in order)."""
        size = flat.shape[1]
        rows = self._rows_of(offsets, size)
        if rows is None:
            return False
        if size >= _ROW_COPY_BYTES:
            # Large samples (images): one copy each, straight into the batch, no second
            # pass to put rows in order.
            for k, (chunk, row) in enumerate(zip(chunks.tolist(), rows.tolist(), strict=True)):
                table = self._chunk_rows(chunk, size)
                if table is None or row >= len(table):
                    return False
                flat[k] = table[row]
            return True
        order = chunks.argsort(kind="stable")
        chunk_sorted = chunks[order]
        cuts = np.flatnonzero(chunk_sorted[1:] != chunk_sorted[:-1]) + 1
        if not len(cuts):  # one chunk: straight into the batch
            table = self._chunk_rows(int(chunk_sorted[0]), size)
            if table is None or rows.max() >= len(table):
                return False
            # mode="clip" (rows are checked) lets take write to `out` without a buffer.
            table.take(rows, 0, flat, "clip")
            return True
        row_sorted = rows[order]
        starts = [0, *cuts.tolist()]
        tops = np.maximum.reduceat(row_sorted, starts).tolist()
        gathered = np.empty_like(flat)
        for start, end, chunk, top in zip(
            starts, [*starts[1:], len(order)], chunk_sorted[starts].tolist(), tops, strict=True
        ):
            table = self._chunk_rows(chunk, size)
            if table is None or top >= len(table):
                return False
            table.take(row_sorted[start:end], 0, gathered[start:end], "clip")
        flat[order] = gathered  # back in the order asked for
        return True

    def _decode_into(self, positions: np.ndarray, batch: np.ndarray, threads: int | None) -> None:
        table = self.table
        chunks, offsets = table.chunk_ids[positions], table.offsets[positions]
        order = np.lexsort((offsets, chunks))
        jobs = zip(
            order.tolist(),
            chunks[order].tolist(),
            offsets[order].tolist(),
            table.sizes[positions][order].tolist(),
            strict=True,
        )
        size = batch[0].nbytes
        out = memoryview(batch.reshape(-1).view(np.uint8))
        read, decode = self._read_bytes, self._decode
        # A zero-copy storage read without checks: payloads are slices of its chunk views.
        views = self.storage.views if self._direct else None

        def decode_one(job: tuple[int, int, int, int]) -> None:
            row, chunk, offset, length = job
            view = views[chunk] if views is not None else None
            try:
                payload = view[offset : offset + length] if view else read(chunk, offset, length)
                out[row * size : row * size + size] = decode(payload, size)
            except CorruptDatasetError as error:
                i = int(positions[row])
                raise CorruptDatasetError(f"{self.root}: sample {i}: {error}") from None

        # Sequential by default: measured on 2 cores, thread hand-off cost more than it saved
        # for zstd/lz4 (small samples and 224x224x3 images alike); worth it for slow codecs.
        workers = threads or 1
        if workers > 1:
            jobs = list(jobs)
            with ThreadPoolExecutor(workers) as pool:
                for _ in pool.map(decode_one, jobs, chunksize=max(1, len(jobs) // (4 * workers))):
                    pass
            return
        row = 0
        try:  # decode_one inlined: the loop is most of a batch's time with fast codecs
            for row, chunk, offset, length in jobs:
                view = views[chunk] if views is not None else None
                payload = view[offset : offset + length] if view else read(chunk, offset, length)
                out[row * size : row * size + size] = decode(payload, size)
        except CorruptDatasetError as error:
            i = int(positions[row])
            raise CorruptDatasetError(f"{self.root}: sample {i}: {error}") from None

    # --- subsets without rewriting data -----------------------------------------------
    def select(self, indices: Any) -> Dataset:
        """A view of some samples (indices, in that order, or a boolean mask) reading the
        same files; nothing is copied or rewritten."""
        positions = self._positions(indices)
        table = self.table.take(positions)
        view = Dataset(
            self.root,
            table,
            self.dtype if self.dtype is not None else np.dtype("<f2"),
            self.codec,
            plugins.storage(self.storage.get_config(), self.storage.paths),
            self.manifest,
            [
                FieldReader(
                    r.name,
                    r.type,
                    r.dtype,
                    r.codec,
                    table.fields[r.name].sizes,
                    table.fields[r.name].shapes,
                )
                for r in self.field_readers
            ],
            self.selected,
            self.verify,  # a view checks what the dataset it comes from checks
            self.chunk_files,
        )
        view.positions = self.positions[positions] if self.positions is not None else positions
        return view

    def filter(self, expression: str) -> Dataset:
        """A view of the samples whose metadata satisfy ``expression``, a pandas query such as
        ``"label == 3 and split == 'train'"`` (the expression is yours; data is never run)."""
        frame = pd.DataFrame({name: self.table.metadata.column(name) for name in self.columns})
        try:
            mask = frame.eval(expression)
        except Exception as error:
            raise ValueError(
                f"cannot filter {self.root} by {expression!r}: {error}; columns: {self.columns}"
            ) from None
        if not isinstance(mask, pd.Series) or mask.dtype != bool:
            raise ValueError(f"{expression!r} does not give one True/False per sample")
        return self.select(mask.to_numpy())

    def check_index(self) -> list[str]:
        """Check every index row now (reads otherwise check each block when first read);
        returns one message per damaged row, an empty list when all are sound."""
        return self._checks.problems()

    def metadata(self, i: int) -> dict[str, Any]:
        """Sample ``i``'s metadata, with the types it was written with."""
        i = self._position(i)
        if self._pending[i >> BLOCK_SHIFT]:
            self._checks.check_metadata(i)
        return self._row(i)

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, Any]]:
        if type(i) is not int or not 0 <= i < self._n:
            i = self._position(i)
        return self._array(i), self._row(i)

    def __iter__(self) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
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
        for start in range(0, self._n, _ITER_BLOCK):
            end = min(self._n, start + _ITER_BLOCK)
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

    def _raw_views(self, start: int, end: int) -> list[np.ndarray]:
        """Samples ``start:end`` as read-only arrays, reading each run of adjacent ones once."""
        chunks = self.table.chunk_ids[start:end]
        offsets = self.table.offsets[start:end]
        size = math.prod(self._fixed_shape) * self.dtype.itemsize
        if size == 0:
            return [self._array(i) for i in range(start, end)]
        breaks = (np.diff(chunks) != 0) | (np.diff(offsets) != size)
        # At most _ITER_READ bytes per read (a pread of a whole block of images is costly).
        per_read = max(1, _ITER_READ // size)
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
                raise CorruptDatasetError(
                    f"{self.root}: sample {start + run_start}: {error}"
                ) from None
            views.extend(np.frombuffer(data, self.dtype).reshape(count, *self._fixed_shape))
        return views

    # --- lifetime ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the chunk files (reading again reopens them)."""
        self._rows_cache = None
        self.storage.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "table": self.table,
            "dtype": self.dtype,
            "codec": self.codec,
            "storage": self.storage,
            "manifest": self.manifest,
            "field_readers": self.field_readers,
            "selected": self.selected,
            "positions": self.positions,
            "verify": self.verify,
            "chunk_files": self.chunk_files,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind()

    def __repr__(self) -> str:
        if self.field_readers:
            described = ", ".join(
                f"{r.name} ({'bytes' if r.type == 'bytes' else r.dtype}, {r.codec.name})"
                for r in self.field_readers
            )
            return (
                f"<acumen.Dataset {str(self.root)!r}: {self._n} samples, fields {described}, "
                f"storage {self.storage.name}>"
            )
        shape = self._fixed_shape if self._fixed_shape is not None else "variable"
        return (
            f"<acumen.Dataset {str(self.root)!r}: {self._n} samples, {self.dtype}, shape "
            f"{shape}, codec {self.codec.name}, storage {self.storage.name}>"
        )
