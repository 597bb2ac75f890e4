"""What the ``arrow`` and ``parquet`` index formats share: an Arrow table of the ``ai:`` columns.

Both lay out the same columns in the same order (:func:`table_columns`), each with its own
array types, and read them back in the same steps (:class:`TableReader`), each with its own
checks. Shapes: when every sample has the same number of dimensions, a *template* (a JSON
list of the dimensions, null at each axis that varies) is kept in the file's metadata under
the shape column's name, and the column holds only the varying axes (none: no column). See
``docs/format.md`` §4.2 and §4.3.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pyarrow as pa

from acumen.errors import CorruptDatasetError, quote
from acumen.format import (
    CHECKSUM_COLUMN,
    CHUNK_COLUMN,
    FIELD_SHAPE_PREFIX,
    FIELD_SIZE_PREFIX,
    MAX_DIMENSION,
    MAX_NDIM,
    OFFSET_COLUMN,
    RESERVED_PREFIX,
    SHAPE_COLUMN,
    SIZE_COLUMN,
    ColumnSpec,
    FieldColumns,
    IndexTable,
    MetadataTable,
    ShapeColumn,
    check_reserved_columns,
    metadata_specs,
)

#: Integer types a varying axis may be stored in (uint64 could exceed int64 arithmetic).
VARYING_TYPES = (
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
)


def shape_templates(metadata: dict[bytes, bytes] | None, source: str) -> dict[str, list]:
    """The shape templates in a file's key-value metadata, by shape column name;
    :class:`CorruptDatasetError` for one that is not a list of dimensions and nulls."""
    found = {}
    for key, value in (metadata or {}).items():
        name = key.decode("utf-8", "replace")
        if not name.startswith(SHAPE_COLUMN):
            continue
        try:
            template = json.loads(value)
        except (ValueError, RecursionError):
            template = None
        if not (
            isinstance(template, list)
            and len(template) <= MAX_NDIM
            and all(d is None or (type(d) is int and 0 <= d <= MAX_DIMENSION) for d in template)
        ):
            raise CorruptDatasetError(f"{source}: the shape template of {quote(name)} is not valid")
        found[name] = template
    return found


def fixed_by_template(name: str, template: list, n: int, present: bool) -> ShapeColumn | None:
    """The shapes when the template has no varying axis (then there must be no column),
    else None (then the column must be there); ``ValueError`` when they disagree."""
    if template.count(None) == 0:
        if present:
            raise ValueError(f"column {quote(name)} is there, but no axis varies ({template})")
        return ShapeColumn(n, fixed=tuple(template))
    if not present:
        raise ValueError(f"index lacks the column {quote(name)} (its template {template} varies)")
    return None


# --- writing -----------------------------------------------------------------------------


def table_columns(
    table: IndexTable,
    size_array: Callable[[np.ndarray], pa.Array],
    shape_layout: Callable[[ShapeColumn], tuple[list[int | None] | None, pa.Array | None]],
    metadata_array: Callable[[MetadataTable, ColumnSpec], pa.Array],
) -> tuple[dict[str, pa.Array], dict[str, list[int | None]]]:
    """The file's columns in order, and its shape templates by shape column name.

    ``shape_layout`` gives a shape column's (template, array): the template None when the
    number of dimensions varies, the array None when no axis does.
    """
    columns: dict[str, pa.Array] = {
        CHUNK_COLUMN: pa.DictionaryArray.from_arrays(
            pa.array(table.chunk_ids, pa.int32()), pa.array(table.chunk_names, pa.string())
        ),
        OFFSET_COLUMN: pa.array(table.offsets, pa.int64()),
        SIZE_COLUMN: size_array(table.sizes),
    }
    templates: dict[str, list[int | None]] = {}

    def add_shapes(name: str, shapes: ShapeColumn) -> None:
        template, array = shape_layout(shapes)
        if template is not None:
            templates[name] = template
        if array is not None:
            columns[name] = array

    if table.shapes is not None:
        add_shapes(SHAPE_COLUMN, table.shapes)
    for name, field_columns in table.fields.items():
        columns[FIELD_SIZE_PREFIX + name] = size_array(field_columns.sizes)
        add_shapes(FIELD_SHAPE_PREFIX + name, field_columns.shapes)
    if table.checksums is not None:
        columns[CHECKSUM_COLUMN] = pa.array(table.checksums, pa.int64())
    for spec in table.metadata.specs:
        columns[spec.name] = metadata_array(table.metadata, spec)
    return columns, templates


# --- reading -----------------------------------------------------------------------------


class TableReader(ABC):
    """Reads an :class:`IndexTable` from an Arrow table or record batch of the ``ai:``
    columns; a subclass reads (and checks) each kind of column its own way."""

    def __init__(self, data: pa.Table | pa.RecordBatch, source: str) -> None:
        self.data = data
        self.source = source  # names the file in errors

    def read(self, columns: Sequence[ColumnSpec] | None) -> IndexTable:
        data, source = self.data, self.source
        present = data.schema.names
        templates = shape_templates(data.schema.metadata, source)
        field_names = check_reserved_columns(
            present + [name for name in templates if name not in present], source
        )
        with self.reserved_errors():
            chunk_ids, chunk_names = self.chunk_column()
            offsets = self.int64_column(OFFSET_COLUMN)
            sizes = self.size_column(SIZE_COLUMN)
            shapes = None if field_names else self.shapes(SHAPE_COLUMN, templates)
            fields = {
                name: FieldColumns(
                    self.size_column(FIELD_SIZE_PREFIX + name),
                    self.shapes(FIELD_SHAPE_PREFIX + name, templates),
                )
                for name in field_names
            }
            checksums = self.checksum_column() if CHECKSUM_COLUMN in present else None
        specs = metadata_specs(
            [c for c in present if not c.startswith(RESERVED_PREFIX)],
            lambda name: numpy_dtype(data.schema.field(name).type),
            columns,
            source,
        )
        metadata = {spec.name: self.metadata_column(spec) for spec in specs}
        return IndexTable(
            chunk_names=chunk_names,
            chunk_ids=chunk_ids,
            offsets=offsets,
            sizes=sizes,
            shapes=shapes,
            metadata=MetadataTable(data.num_rows, metadata, specs),
            fields=fields,
            checksums=checksums,
        )

    def reserved_errors(self) -> AbstractContextManager[None]:
        """Around the reading of the ``ai:`` columns (to turn errors into corruption)."""
        return contextlib.nullcontext()

    @abstractmethod
    def chunk_column(self) -> tuple[np.ndarray, list[str]]:
        """The chunk ids (int32) and the chunk file names they index."""

    @abstractmethod
    def int64_column(self, name: str) -> np.ndarray: ...

    def size_column(self, name: str) -> np.ndarray:
        return self.int64_column(name)

    def checksum_column(self) -> np.ndarray:
        return self.int64_column(CHECKSUM_COLUMN)

    @abstractmethod
    def shapes(self, name: str, templates: dict[str, list]) -> ShapeColumn: ...

    @abstractmethod
    def metadata_column(self, spec: ColumnSpec) -> Any: ...


def numpy_dtype(kind: pa.DataType) -> np.dtype:
    """The numpy dtype of an Arrow type (object for text and what numpy has no type for)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    try:
        return np.dtype(kind.to_pandas_dtype())
    except (NotImplementedError, TypeError):
        return np.dtype(object)
