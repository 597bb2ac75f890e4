"""The in-memory offset index: compact numpy arrays, never pandas rows.

This is the one structure every index format reads into and writes from, and the one the
reader's hot path indexes: chunk id, byte offset and byte size per sample, the shapes,
and the metadata columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from acumen.format.columns import (
    CHECKSUM_COLUMN,
    CHUNK_COLUMN,
    FIELD_SHAPE_PREFIX,
    FIELD_SIZE_PREFIX,
    OFFSET_COLUMN,
    SHAPE_COLUMN,
    SIZE_COLUMN,
    size_column,
)
from acumen.format.metadata import MetadataTable
from acumen.format.shapes import ShapeColumn

if TYPE_CHECKING:
    import pandas as pd


@dataclass(eq=False)
class FieldColumns:
    """One field of a multi-field dataset: its payload size and shape in every record."""

    sizes: np.ndarray  # int64, or int32 (see :func:`~acumen.format.columns.narrow_sizes`)
    shapes: ShapeColumn

    def __post_init__(self) -> None:
        self.sizes = size_column(self.sizes)


@dataclass(eq=False)
class IndexTable:
    """Where each sample's payload lives and what it is.

    A one-array dataset has ``shapes``; a multi-field dataset has ``fields`` instead
    (``shapes`` is None) and ``sizes`` are whole-record sizes.
    """

    chunk_names: list[str]  # chunk file names relative to the dataset root
    chunk_ids: np.ndarray  # int32, position in ``chunk_names``
    offsets: np.ndarray  # int64, byte offset of the payload (record) in its chunk file
    sizes: np.ndarray  # int64 or int32 (narrow_sizes), payload (record) size in bytes
    shapes: ShapeColumn | None
    metadata: MetadataTable
    fields: dict[str, FieldColumns] = field(default_factory=dict)
    checksums: np.ndarray | None = None  # int64 xxh3-64 of each record's payload, if kept

    def __post_init__(self) -> None:
        if self.checksums is not None:
            self.checksums = np.ascontiguousarray(self.checksums, dtype=np.int64)
        self.chunk_ids = np.ascontiguousarray(self.chunk_ids, dtype=np.int32)
        self.offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        self.sizes = size_column(self.sizes)
        n = len(self.offsets)
        if (self.shapes is None) == (not self.fields):
            raise ValueError("an index has either shapes (one array) or fields, not both")
        lengths = {len(self.chunk_ids), len(self.sizes), len(self.metadata)}
        lengths |= {len(self.checksums)} if self.checksums is not None else set()
        lengths |= {len(self.shapes)} if self.shapes is not None else set()
        for columns in self.fields.values():
            lengths |= {len(columns.sizes), len(columns.shapes)}
        if lengths != {n}:
            raise ValueError(f"index columns disagree in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.offsets)

    def locate(self, i: int) -> tuple[int, int, int]:
        """Where sample ``i``'s payload is: its chunk id, byte offset and size (Python ints).
        Not for the per-sample read path, which keeps faster columns of its own."""
        return int(self.chunk_ids[i]), int(self.offsets[i]), int(self.sizes[i])

    def ranges(self, positions: np.ndarray) -> list[tuple[int, int, int]]:
        """``locate`` of many samples at once: (chunk id, offset, size) per position."""
        return list(
            zip(
                self.chunk_ids[positions].tolist(),
                self.offsets[positions].tolist(),
                self.sizes[positions].tolist(),
                strict=True,
            )
        )

    def chunk_name_column(self) -> np.ndarray:
        """The chunk name of every sample (object array), as the original index stores it."""
        names = np.array(self.chunk_names, dtype=object)
        return names[self.chunk_ids] if len(names) else np.array([], dtype=object)

    def to_frame(self) -> pd.DataFrame:
        """The original index layout: the four ``ai:`` columns, then the metadata."""
        import pandas as pd  # only here: ``import acumen.format`` stays free of pandas

        data: dict[str, object] = {
            CHUNK_COLUMN: self.chunk_name_column(),
            OFFSET_COLUMN: self.offsets,
            SIZE_COLUMN: self.sizes,
        }
        if self.shapes is not None:
            data[SHAPE_COLUMN] = np.array(self.shapes.to_texts(), dtype=object)
        for name, columns in self.fields.items():
            data[FIELD_SIZE_PREFIX + name] = columns.sizes
            data[FIELD_SHAPE_PREFIX + name] = np.array(columns.shapes.to_texts(), dtype=object)
        if self.checksums is not None:
            data[CHECKSUM_COLUMN] = self.checksums
        for name in self.metadata.names:
            data[name] = self.metadata.column(name)
        return pd.DataFrame(data)

    def take(self, indices: np.ndarray) -> IndexTable:
        indices = np.asarray(indices, dtype=np.int64)
        return IndexTable(
            self.chunk_names,
            self.chunk_ids[indices],
            self.offsets[indices],
            self.sizes[indices],
            self.shapes.take(indices) if self.shapes is not None else None,
            self.metadata.take(indices),
            {
                name: FieldColumns(c.sizes[indices], c.shapes.take(indices))
                for name, c in self.fields.items()
            },
            self.checksums[indices] if self.checksums is not None else None,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IndexTable):
            return NotImplemented
        return (
            list(self.chunk_name_column()) == list(other.chunk_name_column())
            and np.array_equal(self.offsets, other.offsets)
            and np.array_equal(self.sizes, other.sizes)
            and self.shapes == other.shapes
            and self.metadata == other.metadata
            and list(self.fields) == list(other.fields)
            and (self.checksums is None) == (other.checksums is None)
            and (self.checksums is None or np.array_equal(self.checksums, other.checksums))
            and all(
                np.array_equal(c.sizes, other.fields[name].sizes)
                and c.shapes == other.fields[name].shapes
                for name, c in self.fields.items()
            )
        )
