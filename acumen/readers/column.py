"""``column``: a sample from a column of a table's row (Parquet, Arrow, a saved Hugging Face
dataset); the row's other columns become its metadata.

- A list column of numbers (a list, a fixed-size list, nested lists such as Hugging Face's
  ``Array2D``) gives an array of the column's type, shaped as the row's nesting.
- A binary column gives an array by ``dtype`` (and ``shape``: one ``-1`` allowed), or,
  without ``dtype``, the bytes as they are in a bytes field named after the column (as the
  ``bytes`` reader keeps a file). A Hugging Face ``Image`` or ``Audio`` value (a struct of
  ``bytes`` and ``path``) gives its bytes.
- A number gives a 0-d array (``shape`` reshapes any array).

``column`` may be a list of columns: the sample is then a dict of fields, one per column;
``dtype`` and ``shape`` may then be tables by column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from acumen.abc.reader import Reader
from acumen.format.fields import check_field_name

_METADATA_TYPES = (bool, int, float, str)
_KINDS = {np.ndarray: "an array", bytes: "bytes", dict: "a struct", list: "a list"}
_KINDS[type(None)] = "null"


class ColumnReader(Reader):
    name = "column"

    def __init__(
        self,
        column: str | list[str],
        dtype: str | Mapping[str, str] | None = None,
        shape: list[int] | Mapping[str, list[int]] | None = None,
        metadata: list[str] | None = None,
    ) -> None:
        names = [column] if isinstance(column, str) else list(column)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"column must be a column name or a list of them, got {column!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"column names the same column twice: {names}")
        if len(names) > 1:
            for name in names:  # (they become field names)
                check_field_name(name)
        self.column = column
        self.dtype = dtype
        self.shape = shape
        self.metadata = None if metadata is None else list(metadata)
        self._names = names
        self._dtypes = {n: _by_column(dtype, n, "dtype", names) for n in names}
        self._shapes = {n: _by_column(shape, n, "shape", names) for n in names}
        for name in names:
            if self._dtypes[name] is not None:
                self._dtypes[name] = np.dtype(self._dtypes[name])
                if self._dtypes[name].hasobject:
                    raise ValueError(f"dtype for column {name!r} must be numeric, not object")
            given = self._shapes[name]
            if given is not None:
                if (
                    not all(isinstance(d, int) and d >= -1 for d in given)
                    or list(given).count(-1) > 1
                ):
                    raise ValueError(f"shape for column {name!r} must be sizes (one -1 at most)")
                self._shapes[name] = tuple(given)
        if self.metadata is not None and set(self.metadata) & set(names):
            raise ValueError("a column is the sample or metadata, not both")

    @property
    def configuration(self) -> dict:
        return {
            "column": self.column,
            "dtype": self.dtype,
            "shape": self.shape,
            "metadata": self.metadata,
        }

    def read(self, item: Any) -> tuple[Any, dict[str, Any]]:
        if not isinstance(item, Mapping):
            raise TypeError(
                f"the column reader reads table rows (a table or huggingface source), not "
                f"{type(item).__name__}"
            )
        missing = [n for n in self._names if n not in item]
        if missing:
            raise ValueError(f"no column {missing[0]!r}; the columns: {list(item)}")
        values = {name: self._value(item[name], name) for name in self._names}
        if isinstance(self.column, str):
            sample = values[self.column]
        else:
            sample = {n: v if isinstance(v, np.ndarray) else v[n] for n, v in values.items()}
        return sample, self._metadata(item)

    def _value(self, value: Any, name: str) -> Any:
        if isinstance(value, Mapping) and "bytes" in value:  # a Hugging Face Image, Audio
            if value["bytes"] is None:
                raise ValueError(
                    f"column {name!r} holds a file path ({value.get('path')!r}), not its bytes"
                )
            value = value["bytes"]
        if value is None:
            raise ValueError(f"column {name!r} is null")
        dtype, shape = self._dtypes[name], self._shapes[name]
        if isinstance(value, (bytes, bytearray, memoryview)):
            if dtype is None:
                return {check_field_name(name): bytes(value)}
            return self._from_bytes(bytes(value), name, dtype, shape)
        if dtype is not None:
            raise ValueError(
                f"column {name!r} holds {type(value).__name__} values, not bytes: dtype is for "
                "binary columns (a list column has its own type; output.dtype casts it)"
            )
        if isinstance(value, str):
            raise ValueError(
                f"column {name!r} holds text; a sample is an array or bytes (text is kept as "
                "metadata)"
            )
        array = _as_array(value, name)
        if shape is not None:
            if not _fits(array.size, shape):
                raise ValueError(f"column {name!r}: {array.size} values do not make shape {shape}")
            array = array.reshape(shape)
        return array

    def _from_bytes(self, data: bytes, name: str, dtype: np.dtype, shape: Any) -> np.ndarray:
        if shape is None:
            if len(data) % dtype.itemsize:
                raise ValueError(
                    f"column {name!r}: {len(data)} bytes are not a whole number of {dtype} "
                    f"values ({dtype.itemsize} bytes each)"
                )
            return np.frombuffer(data, dtype)
        known = math.prod(d for d in shape if d != -1) * dtype.itemsize
        if -1 in shape:
            good = known and len(data) % known == 0
            wanted = f"a multiple of {known}"
        else:
            good = len(data) == known
            wanted = str(known)
        if not good:
            raise ValueError(
                f"column {name!r}: {len(data)} bytes, expected {wanted} for dtype {dtype} and "
                f"shape {shape}"
            )
        return np.frombuffer(data, dtype).reshape(shape)

    def _metadata(self, item: Mapping[str, Any]) -> dict[str, Any]:
        if self.metadata is None:
            names = [n for n in item if n not in self._names]
        else:
            missing = [n for n in self.metadata if n not in item]
            if missing:
                raise ValueError(
                    f"no column {missing[0]!r} (in configuration.metadata); the columns: "
                    f"{list(item)}"
                )
            names = self.metadata
        metadata = {}
        for name in names:
            value = item[name]
            if isinstance(value, np.generic):
                value = value.item()
            if not isinstance(value, _METADATA_TYPES):
                kind = _KINDS.get(type(value), type(value).__name__)
                raise ValueError(
                    f"column {name!r} holds {kind}, not metadata (int, float, bool, str): "
                    "list the columns to keep as metadata in configuration.metadata"
                )
            metadata[name] = value
        return metadata


def _by_column(setting: Any, name: str, key: str, names: list[str]) -> Any:
    if not isinstance(setting, Mapping):
        return setting
    unknown = sorted(set(setting) - set(names))
    if unknown:
        raise ValueError(f"{key} names column {unknown[0]!r}, which is not read ({names})")
    return setting.get(name)


def _as_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        array = np.asarray(value)
    except ValueError as error:  # numpy: "inhomogeneous shape"
        raise ValueError(
            f"column {name!r}: nested lists of different lengths do not make one array ({error})"
        ) from None
    if array.dtype.hasobject:
        raise ValueError(f"column {name!r} holds nulls or non-numbers: {value!r:.80}")
    return array


def _fits(size: int, shape: tuple[int, ...]) -> bool:
    known = math.prod(d for d in shape if d != -1)
    return size % known == 0 if -1 in shape and known else size == known
