"""Accumulates index rows while a dataset is written; hands out an :class:`IndexTable`.

Positions are kept in typed arrays (4 or 8 bytes a sample, not a Python int object each),
and shapes only once they start to differ: writing ten million samples must not need
gigabytes of bookkeeping.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from acumen.format.index_table import FieldColumns, IndexTable
from acumen.format.metadata import ColumnSpec, MetadataCollector
from acumen.format.shapes import ShapeColumn


class IndexBuilder:
    def __init__(
        self,
        metadata_columns: Sequence[ColumnSpec] | None = None,
        metadata_from: str = "",
        existing: Sequence[ColumnSpec] | None = None,
        rows_before: int = 0,
    ) -> None:
        """``metadata_columns`` fixes the metadata columns before the first sample (else the
        first sample does); ``metadata_from`` says where they came from, for errors;
        ``existing`` and ``rows_before``: an append's (see MetadataCollector)."""
        self._chunk_ids = array("i")
        self._offsets = array("q")
        self._sizes = array("q")
        # One-array datasets: the shape every sample so far shares, until one differs;
        # from then on every sample's shape.
        self._shape: tuple[int, ...] | None = None
        self._shapes: list[tuple[int, ...]] | None = None
        self._field_sizes: list[array] = []  # multi-field datasets: one array per field
        self._field_shapes: list[list[tuple[int, ...]]] = []
        self._metadata = MetadataCollector(metadata_columns, metadata_from, existing, rows_before)
        self.checksums: list[int] | None = None  # per-record xxh3-64, when the writer keeps them
        #: Validate and keep a sample's metadata, before its bytes are written:
        #: ``check_metadata(metadata, sample)`` (the collector's own method: no extra call).
        self.check_metadata: Callable[[Mapping[str, object], int | str], None] = self._metadata.add

    def __len__(self) -> int:
        return len(self._offsets)

    def add(self, chunk: int, offset: int, size: int, shape: tuple[int, ...]) -> None:
        """A one-array sample."""
        self._chunk_ids.append(chunk)
        self._offsets.append(offset)
        self._sizes.append(size)
        if self._shapes is not None:
            self._shapes.append(shape)
        elif shape != self._shape:
            self._shape_differs(shape)

    def _shape_differs(self, shape: tuple[int, ...]) -> None:
        before = len(self._offsets) - 1
        if before == 0:
            self._shape = shape
        else:
            self._shapes = [self._shape] * before + [shape]

    def add_record(
        self, chunk: int, offset: int, sizes: list[int], shapes: list[tuple[int, ...]]
    ) -> None:
        """A multi-field sample: each field's payload size and shape."""
        if not self._field_sizes:
            self._field_sizes = [array("q") for _ in sizes]
            self._field_shapes = [[] for _ in sizes]
        self._chunk_ids.append(chunk)
        self._offsets.append(offset)
        self._sizes.append(sum(sizes))
        for n, (size, shape) in enumerate(zip(sizes, shapes, strict=True)):
            self._field_sizes[n].append(size)
            self._field_shapes[n].append(shape)

    def finish(self, chunk_names: list[str], field_names: list[str] | None = None) -> IndexTable:
        fields = {}
        if field_names is not None:
            if not self._field_sizes:  # no samples
                self._field_sizes = [array("q") for _ in field_names]
                self._field_shapes = [[] for _ in field_names]
            fields = {
                name: FieldColumns(_numpy(sizes, np.int64), ShapeColumn.from_tuples(shapes))
                for name, sizes, shapes in zip(
                    field_names, self._field_sizes, self._field_shapes, strict=True
                )
            }
        return IndexTable(
            chunk_names=chunk_names,
            chunk_ids=_numpy(self._chunk_ids, np.int32),
            offsets=_numpy(self._offsets, np.int64),
            sizes=_numpy(self._sizes, np.int64),
            shapes=self._shape_column() if field_names is None else None,
            metadata=self._metadata.finish(),
            fields=fields,
            checksums=(
                np.array(self.checksums, dtype=np.uint64).view(np.int64)
                if self.checksums is not None
                else None
            ),
        )

    def _shape_column(self) -> ShapeColumn:
        if self._shapes is not None:
            return ShapeColumn.from_tuples(self._shapes)
        return ShapeColumn(len(self), fixed=self._shape or ())


def _numpy(values: array, dtype: type) -> np.ndarray:
    """A numpy copy of a typed array (the builder may still grow it)."""
    return np.frombuffer(values, dtype=dtype).copy() if len(values) else np.zeros(0, dtype)


def column_specs(types: Mapping[str, str] | None) -> list[ColumnSpec] | None:
    """The Writer's ``metadata_types`` as column specs (None: the first sample decides)."""
    if types is None:
        return None
    if not isinstance(types, Mapping):
        raise TypeError(
            f"metadata_types must be a dict of column name -> type, got {type(types).__name__}"
        )
    return [ColumnSpec(name, kind) for name, kind in types.items()]
