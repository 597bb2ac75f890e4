"""Accumulates index rows while a dataset is written; hands out an :class:`IndexTable`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from acumen.index_table import FieldColumns, IndexTable
from acumen.metadata import MetadataCollector
from acumen.shapes import ShapeColumn


class IndexBuilder:
    def __init__(self) -> None:
        self._chunk_ids: list[int] = []
        self._offsets: list[int] = []
        self._sizes: list[int] = []
        self._shapes: list[tuple[int, ...]] = []  # one-array datasets
        self._field_sizes: list[list[int]] = []  # multi-field datasets: one list per field
        self._field_shapes: list[list[tuple[int, ...]]] = []
        self._metadata = MetadataCollector()
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
        self._shapes.append(shape)

    def add_record(
        self, chunk: int, offset: int, sizes: list[int], shapes: list[tuple[int, ...]]
    ) -> None:
        """A multi-field sample: each field's payload size and shape."""
        if not self._field_sizes:
            self._field_sizes = [[] for _ in sizes]
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
                self._field_sizes = [[] for _ in field_names]
                self._field_shapes = [[] for _ in field_names]
            fields = {
                name: FieldColumns(np.array(sizes, dtype=np.int64), ShapeColumn.from_tuples(shapes))
                for name, sizes, shapes in zip(
                    field_names, self._field_sizes, self._field_shapes, strict=True
                )
            }
        return IndexTable(
            chunk_names=chunk_names,
            chunk_ids=np.array(self._chunk_ids, dtype=np.int32),
            offsets=np.array(self._offsets, dtype=np.int64),
            sizes=np.array(self._sizes, dtype=np.int64),
            shapes=ShapeColumn.from_tuples(self._shapes) if field_names is None else None,
            metadata=self._metadata.finish(),
            fields=fields,
            checksums=(
                np.array(self.checksums, dtype=np.uint64).view(np.int64)
                if self.checksums is not None
                else None
            ),
        )
