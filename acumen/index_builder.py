"""Accumulates index rows while a dataset is written; hands out an :class:`IndexTable`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from acumen.index_table import IndexTable
from acumen.metadata import MetadataCollector
from acumen.shapes import ShapeColumn


class IndexBuilder:
    def __init__(self) -> None:
        self._chunk_ids: list[int] = []
        self._offsets: list[int] = []
        self._sizes: list[int] = []
        self._shapes: list[tuple[int, ...]] = []
        self._metadata = MetadataCollector()

    def __len__(self) -> int:
        return len(self._offsets)

    def check_metadata(self, metadata: Mapping[str, object], sample: int | str) -> None:
        """Validate and keep a sample's metadata (before its bytes are written)."""
        self._metadata.add(metadata, sample)

    def add(self, chunk: int, offset: int, size: int, shape: tuple[int, ...]) -> None:
        self._chunk_ids.append(chunk)
        self._offsets.append(offset)
        self._sizes.append(size)
        self._shapes.append(shape)

    def finish(self, chunk_names: list[str]) -> IndexTable:
        return IndexTable(
            chunk_names=chunk_names,
            chunk_ids=np.array(self._chunk_ids, dtype=np.int32),
            offsets=np.array(self._offsets, dtype=np.int64),
            sizes=np.array(self._sizes, dtype=np.int64),
            shapes=ShapeColumn.from_tuples(self._shapes),
            metadata=self._metadata.finish(),
        )
