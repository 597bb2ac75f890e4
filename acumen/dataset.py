"""A dataset opened for reading: ``ds[i]`` in O(1) from compact index arrays.

The hot path indexes numpy arrays (chunk id, offset, size), asks the storage for the
bytes, decodes them if the codec compresses, and wraps them with ``np.frombuffer``: no
pandas, no per-read file open, no text parsing. Metadata becomes a dict only for the
sample asked for.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acumen.abc.codec import Codec
from acumen.abc.storage import Storage
from acumen.errors import CorruptDatasetError
from acumen.index_table import IndexTable
from acumen.manifest import Manifest


class Dataset:
    """Samples of a dataset. Use :func:`acumen.open` to get one.

    ``ds[i]`` returns ``(array, metadata)`` like the original reader; ``ds.read(i)`` the array
    alone. Arrays are read-only (views on the file's bytes with the ``mmap`` storage); use
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
    ) -> None:
        self.root = root
        self.table = table
        self.dtype = np.dtype(dtype)
        self.codec = codec
        self.storage = storage
        self.manifest = manifest
        self._bind()

    def _bind(self) -> None:
        table = self.table
        self._n = len(table)
        self._chunk_item = table.chunk_ids.item
        self._offset_item = table.offsets.item
        self._size_item = table.sizes.item
        self._shapes = table.shapes
        self._fixed_shape = table.shapes.fixed
        self._read_bytes = self.storage.read
        self._decode = None if self.codec.is_identity else self.codec.decode
        self._row = table.metadata.row

    # --- sizes and schema -------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The shape all samples share, or ``None`` when shapes vary."""
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

    def read(self, i: int) -> np.ndarray:
        """Sample ``i``'s array."""
        return self._array(self._position(i))

    def metadata(self, i: int) -> dict[str, Any]:
        """Sample ``i``'s metadata, with the types it was written with."""
        return self._row(self._position(i))

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, Any]]:
        position = self._position(i)
        return self._array(position), self._row(position)

    def __iter__(self) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
        for i in range(self._n):
            yield self._array(i), self._row(i)

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
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind()

    def __repr__(self) -> str:
        shape = self._fixed_shape if self._fixed_shape is not None else "variable"
        return (
            f"<acumen.Dataset {str(self.root)!r}: {self._n} samples, {self.dtype}, shape "
            f"{shape}, codec {self.codec.name}, storage {self.storage.name}>"
        )
