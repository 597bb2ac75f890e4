"""Turning the original index's DataFrame into an :class:`IndexTable`.

Shared by the CSV index format and :mod:`acumen.compat` (whose users hand over the
DataFrame ``load_index`` gave them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from acumen.errors import CorruptDatasetError, quote, shorten
from acumen.format.columns import (
    CHECKSUM_COLUMN,
    CHUNK_COLUMN,
    FIELD_SHAPE_PREFIX,
    FIELD_SIZE_PREFIX,
    OFFSET_COLUMN,
    RESERVED_PREFIX,
    SHAPE_COLUMN,
    SIZE_COLUMN,
    check_reserved_columns,
    narrow_sizes,
)
from acumen.format.index_table import FieldColumns, IndexTable
from acumen.format.metadata import NUMPY_DTYPES, ColumnSpec, MetadataTable, metadata_specs
from acumen.format.shapes import ShapeColumn


def table_from_frame(
    frame: pd.DataFrame, columns: Sequence[ColumnSpec] | None, source: str
) -> IndexTable:
    """Build the index from an original-layout frame; ``source`` names it in errors.

    ``columns`` are the metadata columns the manifest declares; ``None`` means an original
    dataset, whose metadata types are inferred the way pandas reads them (empty text in a
    text column reads back as ``""``, as it was written).
    """
    names = [str(c) for c in frame.columns]
    field_names = check_reserved_columns(names, source)
    try:
        offsets = _integers(frame[OFFSET_COLUMN], OFFSET_COLUMN)
        sizes = narrow_sizes(_integers(frame[SIZE_COLUMN], SIZE_COLUMN))
        shapes = None if field_names else _shapes(frame[SHAPE_COLUMN], SHAPE_COLUMN)
        fields = {
            name: FieldColumns(
                narrow_sizes(_integers(frame[FIELD_SIZE_PREFIX + name], FIELD_SIZE_PREFIX + name)),
                _shapes(frame[FIELD_SHAPE_PREFIX + name], FIELD_SHAPE_PREFIX + name),
            )
            for name in field_names
        }
    except ValueError as error:
        raise CorruptDatasetError(f"{source}: {shorten(str(error), 400)}") from None
    codes, chunk_names = pd.factorize(frame[CHUNK_COLUMN].to_numpy(dtype=object))
    if np.any(codes < 0):
        row = int(np.argmax(codes < 0))
        raise CorruptDatasetError(f"{source}: row {row}: {CHUNK_COLUMN} is empty")
    present = [name for name in names if not name.startswith(RESERVED_PREFIX)]
    specs = metadata_specs(present, lambda name: frame[name].dtype, columns, source)
    metadata = {spec.name: _metadata_column(frame[spec.name], spec, source) for spec in specs}
    return IndexTable(
        chunk_names=[str(name) for name in chunk_names],
        chunk_ids=codes,
        offsets=offsets,
        sizes=sizes,
        shapes=shapes,
        metadata=MetadataTable(len(frame), metadata, specs),
        fields=fields,
        checksums=_checksums(frame, source) if CHECKSUM_COLUMN in names else None,
    )


def _checksums(frame: pd.DataFrame, source: str) -> np.ndarray:
    column = frame[CHECKSUM_COLUMN]
    if len(column) and column.dtype.kind not in "iu":
        raise CorruptDatasetError(f"{source}: column {CHECKSUM_COLUMN} holds non-integers")
    return column.to_numpy(dtype=np.int64)


def _shapes(series: pd.Series, name: str) -> ShapeColumn:
    try:
        return ShapeColumn.parse_texts(series.to_numpy(dtype=object))
    except ValueError as error:
        raise ValueError(f"column {name}: {error}") from None


def _integers(series: pd.Series, name: str) -> np.ndarray:
    if series.dtype.kind not in "iu":
        raise ValueError(f"column {name} holds non-integers (dtype {series.dtype})")
    values = series.to_numpy(dtype=np.int64)
    if len(values) and values.min() < 0:
        row = int(np.argmax(values < 0))
        raise ValueError(f"row {row}: {name} is negative ({values[row]})")
    return values


def _metadata_column(series: pd.Series, spec: ColumnSpec, source: str) -> np.ndarray:
    if spec.type == "str":
        return series.to_numpy(dtype=object, na_value="")
    try:
        return series.to_numpy(dtype=NUMPY_DTYPES[spec.type])
    except (TypeError, ValueError) as error:
        raise CorruptDatasetError(
            f"{source}: metadata column {quote(spec.name)} should hold {spec.type}: "
            f"{shorten(str(error))}"
        ) from None
