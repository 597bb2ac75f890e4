"""Text metadata columns kept in Arrow form: decoded one value at a time, never as one
Python string per row held for the whole index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from acumen.errors import CorruptDatasetError


class ArrowStringColumn:
    """A ``str`` metadata column left in Arrow form; values are decoded when asked for.

    Offers what :class:`~acumen.metadata.MetadataTable` uses of a numpy object column:
    ``item(i)``, ``col[indices]``, ``dtype``, ``len`` and iteration; ``numpy.asarray(col)``
    gives the object array. Pickles as its Arrow array (the bytes, not the map).
    """

    __slots__ = ("_array", "_data", "_offset_item", "_source")

    dtype = np.dtype(object)

    def __init__(self, array: pa.Array, source: str = "") -> None:
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            raise TypeError(f"not a string array: {array.type}")
        self._array = array
        self._source = source
        _, offsets_buffer, data_buffer = array.buffers()
        offset_type = np.int32 if pa.types.is_string(array.type) else np.int64
        if offsets_buffer is None:  # only an empty array may lack its buffers
            offsets = np.zeros(1, dtype=offset_type)
        else:
            offsets = np.frombuffer(offsets_buffer, dtype=offset_type)
            offsets = offsets[array.offset : array.offset + len(array) + 1]
        self._offset_item = offsets.item
        self._data = memoryview(data_buffer) if data_buffer is not None else memoryview(b"")

    def item(self, i: int) -> str:
        start, end = self._offset_item(i), self._offset_item(i + 1)
        try:
            return str(self._data[start:end], "utf-8")
        except UnicodeDecodeError as error:
            raise CorruptDatasetError(
                f"{self._source}: a metadata text value (row {i}) is not UTF-8: {error}"
            ) from None

    def __len__(self) -> int:
        return len(self._array)

    def __iter__(self) -> Iterator[str]:
        return map(self.item, range(len(self._array)))

    def __getitem__(self, key: Any) -> str | ArrowStringColumn:
        n = len(self._array)
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for a column of {n}")
            return self.item(i + n if i < 0 else i)
        if isinstance(key, slice):
            indices = np.arange(n, dtype=np.int64)[key]
        else:
            indices = np.asarray(key)
            if indices.dtype == np.bool_:
                if indices.shape != (n,):
                    raise IndexError(f"a boolean index needs {n} values, not {indices.shape}")
                indices = np.flatnonzero(indices)
            elif indices.dtype.kind not in "iu" and indices.size:
                raise IndexError(f"cannot index a column with {indices.dtype} values")
            indices = indices.astype(np.int64, copy=False).reshape(-1)
            if indices.size and (indices.min() < -n or indices.max() >= n):
                raise IndexError(f"an index is out of bounds for a column of {n}")
            indices = np.where(indices < 0, indices + n, indices)
        return ArrowStringColumn(self._array.take(pa.array(indices, pa.int64())), self._source)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        values = self._array.to_numpy(zero_copy_only=False)
        return values if dtype is None else values.astype(dtype)

    def __arrow_array__(self, type: Any = None) -> pa.Array:
        return self._array if type is None else self._array.cast(type)

    def tolist(self) -> list[str]:
        return self._array.to_pylist()

    def __reduce__(self) -> tuple:
        return (ArrowStringColumn, (self._array, self._source))

    def __repr__(self) -> str:
        return f"ArrowStringColumn(n={len(self._array)})"
