"""A dataset opened for reading: ``ds[i]`` in O(1) from compact index arrays.

The hot path indexes numpy arrays (chunk id, offset, size), asks the storage for the
bytes, decodes them if the codec compresses, and wraps them with ``np.frombuffer``: no
pandas, no per-read file open, no text parsing. Metadata becomes a dict only for the
sample asked for.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Sequence
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
from acumen.index_table import IndexTable
from acumen.manifest import Manifest
from acumen.shapes import ShapeColumn


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


_ITER_BLOCK = 4096  # samples per block when iterating
_ITER_READ = 8 << 20  # bytes per read at most when iterating


class Dataset:
    """Samples of a dataset. Use :func:`acumen.open` to get one.

    ``ds[i]`` returns ``(array, metadata)`` like the original reader; ``ds.read(i)`` the array
    alone. In a multi-field dataset the array is a dict ``{field: array or bytes}`` of the
    selected fields (all by default; ``acumen.open(path, fields=[...])`` or
    ``ds.read(i, fields=[...])`` read only those fields' bytes).

    Arrays are read-only (views on the file's bytes with the ``mmap`` storage); use
    ``np.array(a)`` for a writable copy. Picklable: in a DataLoader worker the storage
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
        self._bind()

    def _bind(self) -> None:
        table = self.table
        self._n = len(table)
        self._chunk_item = table.chunk_ids.item
        self._offset_item = table.offsets.item
        self._size_item = table.sizes.item
        self._shapes = table.shapes
        self._fixed_shape = table.shapes.fixed if table.shapes is not None else None
        self._read_bytes = self.storage.read
        verify = self.verify
        # verify="sample" checks each record's bytes: reads then cover one record each.
        self._verify_samples = verify == "sample"
        if verify == "chunk":
            from acumen.verify import ChunkVerifier

            self._read_bytes = ChunkVerifier(self)
        elif verify == "sample":
            from acumen.verify import SampleVerifier

            self._read_bytes = SampleVerifier(self)
        self._decode = None if self.codec.is_identity else self.codec.decode
        self._row = table.metadata.row
        if self.field_readers:
            self._array = self._record  # type: ignore[method-assign]
            self._wanted = self._wanted_mask(self.selected)

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
        wanted = wanted if wanted is not None else self._wanted
        chunk, offset = self._chunk_item(i), self._offset_item(i)
        result: dict[str, Any] = {}
        try:
            if all(wanted) or self._verify_samples:  # one read of the record, then slices
                record = memoryview(self._read_bytes(chunk, offset, self._size_item(i)))
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
        """The index as the original's DataFrame (built on demand; not used for reading)."""
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
        shape = self._fixed_shape if self._fixed_shape is not None else self._shapes[i]
        try:
            data = self._read_bytes(self._chunk_item(i), self._offset_item(i), self._size_item(i))
            if self._decode is not None:
                data = self._decode(data, math.prod(shape) * self.dtype.itemsize)
        except CorruptDatasetError as error:
            raise CorruptDatasetError(f"{self.root}: sample {i}: {error}") from None
        return np.frombuffer(data, self.dtype).reshape(shape)

    def read(self, i: int, fields: Sequence[str] | None = None, *, copy: bool = False) -> Any:
        """Sample ``i``'s array (or dict of the selected fields, or of ``fields``).

        Arrays are read-only (zero-copy views with ``mmap``); ``copy=True`` gives a writable
        array of your own.
        """
        if fields is not None:
            sample = self._record(self._position(i), self._wanted_mask(self._check_fields(fields)))
        else:
            sample = self._array(self._position(i))
        if not copy:
            return sample
        if isinstance(sample, dict):
            return {k: v if isinstance(v, bytes) else v.copy() for k, v in sample.items()}
        return sample.copy()

    # --- batches ----------------------------------------------------------------------
    def _positions(self, indices: Any) -> np.ndarray:
        positions = np.asarray(indices)
        if positions.dtype == np.bool_:
            if positions.shape != (self._n,):
                raise IndexError(f"a mask needs {self._n} entries, got shape {positions.shape}")
            return np.flatnonzero(positions)
        if positions.size == 0:
            return np.zeros(0, dtype=np.int64)
        if positions.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got {positions.dtype}")
        positions = positions.astype(np.int64).reshape(-1)
        positions = np.where(positions < 0, positions + self._n, positions)
        bad = (positions < 0) | (positions >= self._n)
        if np.any(bad):
            wrong = np.asarray(indices).reshape(-1)[int(np.argmax(bad))]
            raise IndexError(f"sample {wrong} is out of range for a dataset of {self._n} samples")
        return positions

    def read_batch(self, indices: Any, *, threads: int | None = None) -> Any:
        """Many samples at once: one new (writable) array ``(len(indices), *shape)`` when
        every sample has the same shape, else a list of arrays (dicts, with fields).

        Reads are sorted by file position and adjacent payloads read in one go; compressed
        payloads decode straight into the batch, on ``threads`` threads if given (the
        decompressors release the GIL; it pays for slow codecs such as gzip or images).
        """
        positions = self._positions(indices)
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
        if self.storage.zero_copy and self._gather_rows(chunks, offsets, batch):
            return
        order = np.lexsort((offsets, chunks))
        sample_bytes = batch[0].nbytes
        flat = batch.reshape(len(positions), -1).view(np.uint8)
        # Runs of samples adjacent in the same chunk file are read as one range.
        chunk_sorted, offset_sorted = chunks[order], offsets[order]
        breaks = np.flatnonzero(
            (np.diff(chunk_sorted) != 0) | (np.diff(offset_sorted) != sample_bytes)
        )
        starts = np.concatenate([[0], breaks + 1])
        ends = np.concatenate([breaks + 1, [len(order)]])
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            rows = order[start:end]
            chunk, offset = int(chunk_sorted[start]), int(offset_sorted[start])
            try:
                data = self._read_bytes(chunk, offset, (end - start) * sample_bytes)
            except CorruptDatasetError as error:
                first = int(positions[rows[0]])
                raise CorruptDatasetError(f"{self.root}: sample {first}: {error}") from None
            run = np.frombuffer(data, np.uint8).reshape(end - start, sample_bytes)
            if end - start == 1 or np.all(np.diff(rows) == 1):
                flat[rows[0] : rows[0] + (end - start)] = run
            else:
                flat[rows] = run

    def _gather_rows(self, chunks: np.ndarray, offsets: np.ndarray, batch: np.ndarray) -> bool:
        """With a mapped or in-memory chunk whose samples sit at multiples of the sample size
        (as acumen writes fixed shapes), a batch is one fancy-index copy per chunk."""
        size = batch[0].nbytes
        if np.any(offsets % size):
            return False
        flat = batch.reshape(len(batch), -1).view(np.uint8)
        rows = offsets // size
        for chunk in np.unique(chunks).tolist():
            mine = np.flatnonzero(chunks == chunk)
            top = int(rows[mine].max()) + 1
            try:
                data = self._read_bytes(chunk, 0, top * size)
            except CorruptDatasetError as error:
                raise CorruptDatasetError(f"{self.root}: {error}") from None
            flat[mine] = np.frombuffer(data, np.uint8).reshape(top, size)[rows[mine]]
        return True

    def _decode_into(self, positions: np.ndarray, batch: np.ndarray, threads: int | None) -> None:
        flat = batch.reshape(len(positions), -1).view(np.uint8)
        size = batch[0].nbytes
        order = np.lexsort((self.table.offsets[positions], self.table.chunk_ids[positions]))

        def decode(row: int) -> None:
            i = int(positions[row])
            try:
                data = self._read_bytes(
                    self._chunk_item(i), self._offset_item(i), self._size_item(i)
                )
                flat[row] = np.frombuffer(self._decode(data, size), np.uint8)
            except CorruptDatasetError as error:
                raise CorruptDatasetError(f"{self.root}: sample {i}: {error}") from None

        rows = order.tolist()
        # Sequential by default: measured on 2 cores, thread hand-off cost more than it saved
        # for zstd/lz4 (small samples and 224x224x3 images alike); worth it for slow codecs.
        workers = threads or 1
        if workers <= 1:
            for row in rows:
                decode(row)
            return
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(decode, rows, chunksize=max(1, len(rows) // (4 * workers))):
                pass

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

    def metadata(self, i: int) -> dict[str, Any]:
        """Sample ``i``'s metadata, with the types it was written with."""
        return self._row(self._position(i))

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, Any]]:
        position = self._position(i)
        return self._array(position), self._row(position)

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
