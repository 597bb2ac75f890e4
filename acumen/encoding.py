"""Turning one sample's array into the payload a chunk file stores.

Runs in the writer's process or in a worker process, so it holds nothing but the dtype
and the codec (both picklable).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from acumen.abc.codec import Buffer, Codec
from acumen.errors import SampleError


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


class SampleEncoder:
    """Checks, casts and encodes arrays; the first array fixes the dtype unless one is given.

    With an explicit ``dtype`` every array is cast to it (``astype``, as the original did).
    Without one, later arrays must cast safely to the first array's dtype.
    """

    def __init__(self, codec: Codec, dtype: Any = None) -> None:
        self.codec = codec
        self.explicit = dtype is not None
        self.dtype: np.dtype | None = storage_dtype(dtype) if dtype is not None else None

    def encode(self, array: Any, sample: int | str) -> tuple[Buffer, tuple[int, ...]]:
        """Return ``(payload, shape)`` for one sample; errors name the sample."""
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise SampleError(
                f"sample {sample}: the array has object dtype, which holds Python objects, not "
                "bytes; convert it to a numeric dtype (e.g. np.asarray(x, dtype=np.float32))"
            )
        if self.dtype is None:
            try:
                self.dtype = storage_dtype(array.dtype)
            except SampleError as error:
                raise SampleError(f"sample {sample}: {error}") from None
        if array.dtype != self.dtype:
            if not self.explicit and not np.can_cast(array.dtype, self.dtype, "safe"):
                raise SampleError(
                    f"sample {sample}: dtype {array.dtype} does not cast safely to the dataset's "
                    f"dtype {self.dtype} (set by the first sample); pass dtype= to cast"
                )
            array = array.astype(self.dtype)
        if not array.flags.c_contiguous:
            array = array.copy(order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        try:
            payload = self.codec.encode(array)
        except (TypeError, ValueError) as error:
            raise SampleError(
                f"sample {sample}: codec '{self.codec.name}' cannot store this array "
                f"({array.dtype}, shape {array.shape}): {error}"
            ) from None
        return payload, array.shape
