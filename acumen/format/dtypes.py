"""How a dataset stores dtypes: little-endian, no Python objects, named as .npy headers do."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from acumen.errors import SampleError, quote, shorten


def storage_dtype(dtype: Any) -> np.dtype:
    """The on-disk dtype: little-endian, no Python objects, a positive item size."""
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise SampleError(f"dtype {dtype} holds Python objects and cannot be stored as bytes")
    if dtype.itemsize == 0:
        raise SampleError(f"dtype {dtype} has no item size; give strings a length (e.g. 'U16')")
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
        dtype = dtype.newbyteorder("<")
    return dtype


def dtype_to_json(dtype: np.dtype) -> Any:
    """The dtype as .npy headers describe it (``"<f2"``, or a field list)."""
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    return descr if isinstance(descr, str) else _lists(descr)


def dtype_from_json(value: Any) -> np.dtype:
    """The dtype a manifest names; anything else (or a dtype of Python objects) is a
    ``ValueError``, whatever numpy's parser raised."""
    try:
        if not _printable(value):  # numpy reads "\0" as bool, "\t" as int64: type numbers
            raise ValueError("a control character where a type code should be")
        if isinstance(value, str):
            dtype = np.dtype(value)
        elif isinstance(value, list):
            dtype = np.lib.format.descr_to_dtype(_tuples(value))
        else:
            raise TypeError(f"expected a dtype string or field list, got {quote(value)}")
    except Exception as error:  # numpy raises TypeError, ValueError, even SyntaxError
        raise ValueError(
            f"{quote(value)} is not a dtype ({type(error).__name__}: {shorten(str(error))})"
        ) from None
    if dtype.hasobject or dtype.itemsize == 0:
        raise ValueError(f"{quote(value)} is not a dtype that can be stored as bytes")
    return dtype


def _printable(value: Any) -> bool:
    """No text in a dtype description (its type codes and field names) holds a control
    character."""
    if isinstance(value, str):
        return value.isprintable()
    if isinstance(value, list):
        return all(map(_printable, value))
    return True


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        items = [_tuples(v) for v in value]
        # A field is [name, descr] or [name, descr, shape]; a field list is a list of them.
        if items and all(isinstance(v, tuple) for v in items):
            return items
        return tuple(items)
    return value
