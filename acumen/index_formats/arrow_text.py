"""Text metadata columns kept in Arrow form: decoded one value at a time, never as one
Python string per row held for the whole index."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from acumen.errors import CorruptDatasetError

#: A dictionary of at most this many texts is decoded once, when the column is made; a
#: larger one stays in Arrow form too and each value is decoded when its row is read.
_DECODED_DICTIONARY = 4096


def is_text(kind: pa.DataType) -> bool:
    """Whether ``kind`` is Arrow text: ``string`` or ``large_string``."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


class ArrowStringColumn:
    """A ``str`` metadata column left in Arrow form; values are decoded when asked for.

    The array is ``string`` or ``large_string`` (offsets + UTF-8 bytes), or a dictionary of
    either (``dictionary<int*, string>``: a code per row and each distinct text once, as the
    ``parquet`` index writes text with few distinct values); a small dictionary is decoded
    once, so reading a row is a list lookup.

    Offers what :class:`~acumen.metadata.MetadataTable` uses of a numpy object column:
    ``item(i)`` (``0 <= i < len``), ``col[indices]``, ``dtype``, ``len`` and iteration;
    ``numpy.asarray(col)`` gives the object array. Pickles as its Arrow array (the bytes,
    not the map).
    """

    # ``item`` is a slot holding the decoding function of this column's kind, so that
    # ``col.item(i)`` costs one call.
    __slots__ = ("_array", "_codes", "_data", "_dictionary", "_offset_item", "_source", "item")

    dtype = np.dtype(object)

    def __init__(self, array: pa.Array, source: str = "") -> None:
        self._setup(array, source, None)

    def _setup(self, array: pa.Array, source: str, dictionary: Any) -> None:
        self._array = array
        self._source = source
        self._codes: np.ndarray | None = None
        self._dictionary: list[str] | ArrowStringColumn | None = None
        kind = array.type
        if pa.types.is_dictionary(kind) and is_text(kind.value_type):
            self._setup_codes(array, dictionary)
            return
        if not is_text(kind):
            raise TypeError(f"not a string array: {kind}")
        _, offsets_buffer, data_buffer = array.buffers()
        offset_type = np.int32 if pa.types.is_string(kind) else np.int64
        if offsets_buffer is None:  # only an empty array may lack its buffers
            offsets = np.zeros(1, dtype=offset_type)
        else:
            offsets = np.frombuffer(offsets_buffer, dtype=offset_type)
            offsets = offsets[array.offset : array.offset + len(array) + 1]
        self._offset_item = offsets.item
        self._data = memoryview(data_buffer) if data_buffer is not None else memoryview(b"")
        self.item: Callable[[int], str] = self._text_item

    def _setup_codes(self, array: pa.DictionaryArray, dictionary: Any) -> None:
        """A dictionary array: its codes as numpy, checked against the dictionary's size."""
        if array.null_count:
            raise CorruptDatasetError(f"{self._source}: a metadata text column holds nulls")
        codes = array.indices.to_numpy(zero_copy_only=False)
        size = len(array.dictionary)
        bounds = pc.min_max(array.indices)  # one pass
        if len(codes) and (bounds["min"].as_py() < 0 or bounds["max"].as_py() >= size):
            raise CorruptDatasetError(
                f"{self._source}: a metadata text column has a code outside its dictionary "
                f"of {size} values"
            )
        if dictionary is None:  # else shared with the column this one was taken from
            dictionary = ArrowStringColumn(array.dictionary, self._source)
            if size <= _DECODED_DICTIONARY:
                dictionary = [dictionary.item(k) for k in range(size)]
        self._codes = codes
        self._dictionary = dictionary
        code_item = codes.item
        if isinstance(dictionary, list):
            self.item = lambda i: dictionary[code_item(i)]
        else:
            decode = dictionary.item
            self.item = lambda i: decode(code_item(i))

    def _text_item(self, i: int) -> str:
        start, end = self._offset_item(i), self._offset_item(i + 1)
        try:
            return str(self._data[start:end], "utf-8")
        except UnicodeDecodeError as error:
            raise CorruptDatasetError(
                f"{self._source}: a metadata text value (row {i}) is not UTF-8: {error}"
            ) from None

    def _derived(self, array: pa.Array) -> ArrowStringColumn:
        """A column of ``array`` (a slice or ``take`` of this one's), sharing its decoded
        dictionary."""
        column = ArrowStringColumn.__new__(ArrowStringColumn)
        column._setup(array, self._source, self._dictionary)
        return column

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
            start, stop, step = key.indices(n)
            if step == 1:  # a view of the same buffers
                return self._derived(self._array.slice(start, max(0, stop - start)))
            indices = np.arange(start, stop, step, dtype=np.int64)
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
        return self._derived(self._array.take(pa.array(indices, pa.int64())))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self._codes is None:
            values = self._array.to_numpy(zero_copy_only=False)
        else:  # each distinct text once, gathered by code
            words = np.empty(len(self._dictionary), dtype=object)
            words[:] = (
                self._dictionary if isinstance(self._dictionary, list) else list(self._dictionary)
            )
            values = words[self._codes]
        return values if dtype is None else values.astype(dtype)

    def __arrow_array__(self, type: Any = None) -> pa.Array:
        return self._array if type is None else self._array.cast(type)

    def tolist(self) -> list[str]:
        if self._codes is None:
            return self._array.to_pylist()
        return self.__array__().tolist()

    def __reduce__(self) -> tuple:
        return (ArrowStringColumn, (self._array, self._source))

    def __repr__(self) -> str:
        if self._codes is None:
            return f"ArrowStringColumn(n={len(self._array)})"
        return f"ArrowStringColumn(n={len(self._array)}, {len(self._dictionary)} distinct)"
