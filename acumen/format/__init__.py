"""What a dataset is on disk, and what an index-format plugin works with.

An index format (:class:`acumen.abc.index_format.IndexFormat`) writes an
:class:`IndexTable` to one file and reads it back. Everything it needs is exported here:
the table and its parts (:class:`FieldColumns`, :class:`ShapeColumn`,
:class:`MetadataTable`, :class:`ColumnSpec`), the reserved ``ai:`` column names, and the
helpers every built-in format shares (:func:`check_reserved_columns`,
:func:`metadata_specs`, :func:`narrow_sizes`, the shape text of :func:`parse_shape` /
:func:`format_shape`). Errors in a file are :class:`acumen.errors.CorruptDatasetError`.

A pandas-based format may turn an original-layout frame into a table with
:func:`table_from_frame` (and back with :meth:`IndexTable.to_frame`); that name is loaded
on first use, so ``import acumen.format`` itself imports neither pandas nor pyarrow.
"""

from __future__ import annotations

from typing import Any

from acumen.format.columns import (
    CHECKSUM_COLUMN,
    CHUNK_COLUMN,
    FIELD_SHAPE_PREFIX,
    FIELD_SIZE_PREFIX,
    INT32_MAX,
    INT64_MAX,
    OFFSET_COLUMN,
    RESERVED_COLUMNS,
    RESERVED_PREFIX,
    SHAPE_COLUMN,
    SIZE_COLUMN,
    check_reserved_columns,
    field_names_of,
    format_shape,
    narrow_sizes,
    parse_shape,
    size_column,
)
from acumen.format.index_table import FieldColumns, IndexTable
from acumen.format.metadata import (
    COLUMN_TYPES,
    NUMPY_DTYPES,
    ColumnSpec,
    MetadataCollector,
    MetadataTable,
    column_type_of_dtype,
    metadata_specs,
)
from acumen.format.shapes import MAX_DIMENSION, MAX_NDIM, ShapeColumn, narrow_dtype

__all__ = [
    "CHECKSUM_COLUMN",
    "CHUNK_COLUMN",
    "COLUMN_TYPES",
    "FIELD_SHAPE_PREFIX",
    "FIELD_SIZE_PREFIX",
    "INT32_MAX",
    "INT64_MAX",
    "MAX_DIMENSION",
    "MAX_NDIM",
    "NUMPY_DTYPES",
    "OFFSET_COLUMN",
    "RESERVED_COLUMNS",
    "RESERVED_PREFIX",
    "SHAPE_COLUMN",
    "SIZE_COLUMN",
    "ColumnSpec",
    "FieldColumns",
    "IndexTable",
    "MetadataCollector",
    "MetadataTable",
    "ShapeColumn",
    "check_reserved_columns",
    "column_type_of_dtype",
    "field_names_of",
    "format_shape",
    "metadata_specs",
    "narrow_dtype",
    "narrow_sizes",
    "parse_shape",
    "size_column",
    "table_from_frame",
]

_LAZY = {"table_from_frame": "acumen.format.index_frame"}  # these import pandas


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
