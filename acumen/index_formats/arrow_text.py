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


def _integers(array: pa.Array, source: str) -> np.ndarray:
    """An integer array without nulls as numpy, viewed on its data buffer: pyarrow's
    ``to_numpy`` imports pandas, which a DataLoader worker unpickling a dataset with such a
    column (dictionary codes) would pay for (~0.2 s) without using it."""
    kind = array.type
    dtype = np.dtype(f"<{'i' if pa.types.is_signed_integer(kind) else 'u'}{kind.bit_width // 8}")
    buffer = array.buffers()[1]
    start, end = array.offset * dtype.itemsize, (array.offset + len(array)) * dtype.itemsize
    if not len(array):
        return np.zeros(0, dtype)
    if buffer is None or buffer.size < end:
        raise CorruptDatasetError(f"{source}: a metadata text column's codes are cut short")
    return np.frombuffer(buffer, dtype, count=len(array), offset=start)


class ArrowStringColumn:
    """A ``str`` metadata column left in Arrow form; values are decoded when asked for.

    The array is ``string`` or ``large_string`` (offsets + UTF-8 bytes), or a dictionary of
    either (``dictionary<int*, string>``: a code per row and each distinct text once, as the
    ``parquet`` index writes text with few distinct values); a small dictionary is decoded
    once, so reading a row is a list lookup.

    Offers what :class:`~acumen.format.metadata.MetadataTable` uses of a numpy object column:
    ``item(i)`` (``0 <= i < len``), ``col[indices]``, ``dtype``, ``len`` and iteration;
    ``numpy.asarray(col)`` gives the object array. Pickles as its Arrow array (the bytes,
    not the map).

    A column read in place from a file is not trusted: ``item(i)`` decodes row ``i``
    between its two offsets, so a reader checks a row with :meth:`damaged_rows` before
    asking for it (the dataset does, a block of rows at a time: :mod:`acumen.read.index_checks`);
    whatever hands the array to pyarrow's kernels (``numpy.asarray``, ``tolist``, taking
    rows) checks the offsets, codes and UTF-8 it reads through first, since pyarrow trusts
    them and damaged ones crash it.
    """

    # ``item`` is a slot holding the decoding function of this column's kind, so that
    # ``col.item(i)`` costs one call.
    __slots__ = (
        "_array",
        "_codes",
        "_data",
        "_dictionary",
        "_offset_item",
        "_offsets",
        "_source",
        "_valid",
        "item",
    )

    dtype = np.dtype(object)

    def __init__(self, array: pa.Array, source: str = "") -> None:
        self._setup(array, source, None)

    def _setup(self, array: pa.Array, source: str, dictionary: Any, valid: bool = False) -> None:
        self._array = array
        self._source = source
        self._codes: np.ndarray | None = None
        self._dictionary: list[str] | ArrowStringColumn | None = None
        self._offsets: np.ndarray | None = None  # a plain column's, for the row checks
        self._valid = valid  # the whole array passed pyarrow's full validation
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
        self._offsets = offsets
        self._offset_item = offsets.item
        self._data = memoryview(data_buffer) if data_buffer is not None else memoryview(b"")
        self.item: Callable[[int], str] = self._text_item

    def _setup_codes(self, array: pa.DictionaryArray, dictionary: Any) -> None:
        """A dictionary array: its codes as numpy, checked against the dictionary's size."""
        if array.null_count:
            raise CorruptDatasetError(f"{self._source}: a metadata text column holds nulls")
        codes = _integers(array.indices, self._source)
        size = len(array.dictionary)
        bounds = pc.min_max(array.indices)  # one pass
        if len(codes) and (bounds["min"].as_py() < 0 or bounds["max"].as_py() >= size):
            raise CorruptDatasetError(
                f"{self._source}: a metadata text column has a code outside its dictionary "
                f"of {size} values"
            )
        if dictionary is None:  # else shared with the column this one was taken from
            dictionary = ArrowStringColumn(array.dictionary, self._source)
            dictionary._check_rows()  # each distinct text's offsets, O(dictionary)
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

    def _derived(self, array: pa.Array, valid: bool = False) -> ArrowStringColumn:
        """A column of ``array`` (a slice or ``take`` of this one's), sharing its decoded
        dictionary."""
        column = ArrowStringColumn.__new__(ArrowStringColumn)
        column._setup(array, self._source, self._dictionary, valid)
        return column

    # --- checks of what is read in place -----------------------------------------------------
    def damaged_rows(self, start: int, end: int) -> np.ndarray | None:
        """A mask of the rows ``start:end`` whose text does not lie inside the column's bytes
        (an offset negative, past the bytes, or below the one before it), None when every
        row's does. O(rows), no copy; a dictionary column's codes were checked when made."""
        offsets = self._offsets
        if offsets is None or end <= start:
            return None
        window = offsets[start : end + 1]
        low, high = window[:-1], window[1:]
        ordered = high >= low  # comparisons only: no int32 arithmetic to wrap around
        if window[0] >= 0 and window[-1] <= len(self._data) and ordered.all():
            return None  # ordered and both ends inside: every row is inside
        return self._outside(low, high)

    def describe(self, i: int) -> str:
        """What is wrong with row ``i``, for a row :meth:`damaged_rows` reports."""
        start, end = self._offset_item(i), self._offset_item(i + 1)
        return f"has its text at bytes {start}..{end} of {len(self._data)}: broken text offsets"

    def _outside(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        return (high < low) | (low < 0) | (high > len(self._data))

    def _check_rows(self, rows: np.ndarray | None = None) -> None:
        """Raise for the first of ``rows`` (all if None) whose text is not inside the
        column's bytes, before pyarrow's ``take`` or a dictionary's decoding reads them."""
        offsets = self._offsets
        if offsets is None or self._valid:
            return
        if rows is None:
            bad = self.damaged_rows(0, len(self._array))
        elif len(rows):
            bad = self._outside(offsets[rows], offsets[rows + 1])
        else:
            return
        if bad is not None and bad.any():
            row = int(np.argmax(bad)) if rows is None else int(rows[int(np.argmax(bad))])
            raise CorruptDatasetError(
                f"{self._source}: a metadata text value (row {row}) {self.describe(row)}"
            )

    def _checked_array(self) -> pa.Array:
        """The array, once checked whole (offsets, codes, UTF-8), for pyarrow's kernels."""
        if not self._valid:
            try:
                self._array.validate(full=True)
            except pa.ArrowInvalid as error:
                raise CorruptDatasetError(
                    f"{self._source}: a metadata text column is damaged: {error}"
                ) from None
            self._valid = True
        return self._array

    def __len__(self) -> int:
        return len(self._array)

    def __iter__(self) -> Iterator[str]:
        self._checked_array()
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
                return self._derived(self._array.slice(start, max(0, stop - start)), self._valid)
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
        self._check_rows(indices)
        return self._derived(self._array.take(pa.array(indices, pa.int64())))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self._codes is None:
            values = self._checked_array().to_numpy(zero_copy_only=False)
        else:  # each distinct text once, gathered by code
            words = np.empty(len(self._dictionary), dtype=object)
            words[:] = (
                self._dictionary if isinstance(self._dictionary, list) else list(self._dictionary)
            )
            values = words[self._codes]
        return values if dtype is None else values.astype(dtype)

    def __arrow_array__(self, type: Any = None) -> pa.Array:
        array = self._checked_array()
        return array if type is None else array.cast(type)

    def tolist(self) -> list[str]:
        if self._codes is None:
            return self._checked_array().to_pylist()
        return self.__array__().tolist()

    def __reduce__(self) -> tuple:
        return (ArrowStringColumn, (self._array, self._source))

    def __repr__(self) -> str:
        if self._codes is None:
            return f"ArrowStringColumn(n={len(self._array)})"
        return f"ArrowStringColumn(n={len(self._array)}, {len(self._dictionary)} distinct)"
