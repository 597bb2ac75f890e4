"""``parquet``: the index as a Parquet table with native column types.

Written for a fast open (docs/format.md §4.2): every column is non-null (no definition
levels to decode); ``ai:chunk_name`` is dictionary-encoded; ``ai:offset_bytes`` is
delta-encoded (offsets grow within a chunk); sizes are ``int32`` when they fit; text
metadata with few distinct values is an Arrow dictionary (a small code per row, each text
once). Shapes are stored as cheaply as they allow: a shape every sample shares is only in
the file's key-value metadata (``ai:shape`` is a ``null`` column), samples of one number of
dimensions store only their varying axes, each as a narrow unsigned integer column of a
struct (the shared dimensions are in the metadata), and only samples that differ in their
number of dimensions keep a ``list<int64>`` per row. Files written before (``ai:shape``
always ``list<int64>``, plain ``string`` text, ``int64`` sizes) read as they are.

Reading keeps the index compact: sizes as int32 when they fit, shapes in the compact form of
:class:`~acumen.shapes.ShapeColumn`, and ``str`` metadata in Arrow form (codes, or offsets +
UTF-8 bytes, decoded one value at a time when a row is read), never as one Python string
per row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from acumen.abc.index_format import IndexFormat
from acumen.errors import CorruptDatasetError
from acumen.index_formats.arrow_text import ArrowStringColumn, is_text
from acumen.index_frame import check_reserved_columns, metadata_specs
from acumen.index_table import (
    CHECKSUM_COLUMN,
    CHUNK_COLUMN,
    FIELD_SHAPE_PREFIX,
    FIELD_SIZE_PREFIX,
    OFFSET_COLUMN,
    RESERVED_PREFIX,
    SHAPE_COLUMN,
    SIZE_COLUMN,
    FieldColumns,
    IndexTable,
    narrow_sizes,
)
from acumen.metadata import ColumnSpec, MetadataTable
from acumen.shapes import ShapeColumn, narrow_dtype

_COMPRESSIONS = ("none", "snappy", "gzip", "brotli", "lz4", "zstd")
#: The file's key-value metadata entry holding the shape templates (JSON).
SHAPES_KEY = b"acumen:shapes"
#: Text is dictionary-encoded when its distinct values repeat (at most half as many as
#: rows) and take at most this many bytes: well within Parquet's dictionary page limit
#: (1 MiB), beyond which a writer falls back to plain pages that read slowly as a dictionary.
TEXT_DICTIONARY_BYTES = 512 * 1024
#: See :func:`_few_distinct_texts`.
DICTIONARY_TEXT_BYTES_PER_ROW = 0.5
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1
_UNSIGNED = ((2**8 - 1, pa.uint8()), (2**16 - 1, pa.uint16()), (2**32 - 1, pa.uint32()))
_METADATA_TYPES = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


class ParquetIndex(IndexFormat):
    name = "parquet"
    filename = "index.parquet"

    def __init__(self, compression: str = "zstd") -> None:
        if compression not in _COMPRESSIONS:
            raise ValueError(f"parquet compression must be one of {_COMPRESSIONS}")
        self.compression = compression

    @property
    def configuration(self) -> dict:
        return {"compression": self.compression}

    # --- writing -------------------------------------------------------------------------
    def write(self, table: IndexTable, path: Path) -> None:
        columns: dict[str, pa.Array] = {
            CHUNK_COLUMN: pa.DictionaryArray.from_arrays(
                pa.array(table.chunk_ids, pa.int32()), pa.array(table.chunk_names, pa.string())
            ),
            OFFSET_COLUMN: pa.array(table.offsets, pa.int64()),
            SIZE_COLUMN: _size_array(table.sizes),
        }
        templates: dict[str, list[int | None]] = {}

        def add_shapes(name: str, shapes: ShapeColumn) -> None:
            columns[name], template = _shape_array(shapes)
            if template is not None:
                templates[name] = template

        if table.shapes is not None:
            add_shapes(SHAPE_COLUMN, table.shapes)
        for name, field_columns in table.fields.items():
            columns[FIELD_SIZE_PREFIX + name] = _size_array(field_columns.sizes)
            add_shapes(FIELD_SHAPE_PREFIX + name, field_columns.shapes)
        if table.checksums is not None:
            columns[CHECKSUM_COLUMN] = pa.array(table.checksums, pa.int64())
        for spec in table.metadata.specs:
            columns[spec.name] = _metadata_array(table.metadata, spec)
        schema = pa.schema(
            [
                pa.field(name, array.type, nullable=pa.types.is_null(array.type))
                for name, array in columns.items()
            ],
            metadata={SHAPES_KEY: json.dumps(templates).encode()},
        )
        pq.write_table(
            pa.Table.from_arrays(list(columns.values()), schema=schema),
            path,
            compression=self.compression,
            # Offsets and checksums are (nearly) all distinct: a dictionary never pays.
            use_dictionary=[
                leaf
                for field in schema
                if field.name not in (OFFSET_COLUMN, CHECKSUM_COLUMN)
                for leaf in _leaf_paths(field)
            ],
            column_encoding={OFFSET_COLUMN: "DELTA_BINARY_PACKED"},
        )

    # --- reading -------------------------------------------------------------------------
    def read(self, path: Path, columns: Sequence[ColumnSpec] | None) -> IndexTable:
        source = str(path)
        try:
            footer = pq.read_metadata(path)
            schema = footer.schema.to_arrow_schema()
            names = schema.names
            if len(set(names)) != len(names):
                raise CorruptDatasetError(f"{path}: the index names a column twice: {names}")
            # A null shape column holds nothing (its template is in the metadata): not read.
            skipped = _null_shape_columns(schema)
            arrow = pq.read_table(
                path,
                columns=[c for c in names if c not in skipped] if skipped else None,
                read_dictionary=_few_distinct_texts(footer, schema) or None,
            )
        except FileNotFoundError:
            raise CorruptDatasetError(f"{path}: the index file is missing") from None
        except (pa.ArrowException, OSError) as error:
            raise CorruptDatasetError(f"{path}: the index does not parse: {error}") from None
        n = arrow.num_rows

        def column(name: str) -> pa.ChunkedArray:
            return pa.chunked_array([pa.nulls(n)]) if name in skipped else arrow.column(name)

        field_names = check_reserved_columns(names, source)
        try:
            templates = _templates(arrow.schema.metadata)
            chunk_ids, chunk_names = _chunk_column(arrow.column(CHUNK_COLUMN))
            offsets = _offsets(arrow.column(OFFSET_COLUMN), OFFSET_COLUMN)
            sizes = _sizes(arrow.column(SIZE_COLUMN), SIZE_COLUMN)
            shapes = None
            if not field_names:
                shapes = _shapes(column(SHAPE_COLUMN), SHAPE_COLUMN, templates)
            fields = {
                name: FieldColumns(
                    _sizes(arrow.column(FIELD_SIZE_PREFIX + name), FIELD_SIZE_PREFIX + name),
                    _shapes(
                        column(FIELD_SHAPE_PREFIX + name), FIELD_SHAPE_PREFIX + name, templates
                    ),
                )
                for name in field_names
            }
            checksums = None
            if CHECKSUM_COLUMN in names:
                checksums = _checksums(arrow.column(CHECKSUM_COLUMN))
        except (
            pa.ArrowException,
            AttributeError,
            KeyError,
            TypeError,
            ValueError,
            RecursionError,
        ) as error:
            raise CorruptDatasetError(f"{path}: malformed index column: {error}") from None
        present = [c for c in names if not c.startswith(RESERVED_PREFIX)]
        specs = metadata_specs(
            present, lambda name: _numpy_dtype(arrow.schema.field(name).type), columns, source
        )
        metadata = {spec.name: _metadata_column(arrow, spec, source) for spec in specs}
        return IndexTable(
            chunk_names=chunk_names,
            chunk_ids=chunk_ids,
            offsets=offsets,
            sizes=sizes,
            shapes=shapes,
            metadata=MetadataTable(n, metadata, specs),
            fields=fields,
            checksums=checksums,
        )


# --- writing -----------------------------------------------------------------------------


def _leaf_paths(field: pa.Field) -> list[str]:
    """The Parquet column paths of an Arrow field (what ``use_dictionary`` names)."""
    if pa.types.is_null(field.type):
        return []
    if pa.types.is_struct(field.type):
        return [f"{field.name}.{child.name}" for child in field.type]
    if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
        return [f"{field.name}.list.element"]
    return [field.name]


def _size_array(sizes: np.ndarray) -> pa.Array:
    """Sizes as int32 when every one fits (read back without a cast), else int64."""
    if sizes.dtype == np.int32 or (len(sizes) and sizes.min() >= 0 and sizes.max() <= _INT32_MAX):
        return pa.array(np.asarray(sizes, dtype=np.int32), pa.int32())
    return pa.array(np.asarray(sizes, dtype=np.int64), pa.int64())


def _shape_array(shapes: ShapeColumn) -> tuple[pa.Array, list[int | None] | None]:
    """The ``ai:shape`` column of ``shapes`` and its template (None for ``list<int64>``).

    The template has a dimension for each axis every sample shares and None for each axis
    that varies; the column is ``null`` (every axis shared), a struct of the varying axes
    (one child per axis, named by its number, in the narrowest unsigned type that holds it),
    or a ``list<int64>`` of each sample's dimensions when the numbers of dimensions differ.
    """
    n = len(shapes)
    if shapes.fixed is not None:
        return pa.nulls(n), [int(d) for d in shapes.fixed]
    if shapes.ndim is None:
        offsets, flat = shapes.to_ragged()
        lengths = np.diff(offsets)
        if not (lengths[0] > 0 and np.all(lengths == lengths[0])):
            flat = pa.array(np.asarray(flat, dtype=np.int64), pa.int64())
            if offsets[-1] <= _INT32_MAX:
                return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat), None
            return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), flat), None
        dims = np.asarray(flat[offsets[0] : offsets[-1]]).reshape(n, int(lengths[0]))
    else:
        dims = shapes.to_dims()
    template: list[int | None] = []
    children, child_fields = [], []
    for axis in range(dims.shape[1]):
        values = np.ascontiguousarray(dims[:, axis], dtype=np.int64)
        low, high = int(values.min()), int(values.max())
        if low == high:
            template.append(low)
            continue
        template.append(None)
        kind = next((t for limit, t in _UNSIGNED if low >= 0 and high <= limit), pa.int64())
        children.append(pa.array(values, pa.int64()).cast(kind))
        child_fields.append(pa.field(str(axis), kind, nullable=False))
    if not children:
        return pa.nulls(n), template
    return pa.StructArray.from_arrays(children, fields=child_fields), template


def _metadata_array(metadata: MetadataTable, spec: ColumnSpec) -> pa.Array:
    if spec.type != "str":
        return pa.array(metadata.column(spec.name), _METADATA_TYPES[spec.type])
    raw = metadata.raw_column(spec.name)
    if isinstance(raw, ArrowStringColumn):  # already in Arrow form: no Python strings
        text = pa.array(raw)
        if pa.types.is_dictionary(text.type):
            text = text.cast(text.type.value_type)
    else:
        text = pa.array(np.asarray(raw, dtype=object), pa.string())
    if isinstance(text, pa.ChunkedArray):  # beyond 2 GiB of text: left plain
        return text
    encoded = text.dictionary_encode()
    words = encoded.dictionary
    if 2 * len(words) <= len(text) and words.nbytes <= TEXT_DICTIONARY_BYTES:
        return encoded
    return text


# --- reading -----------------------------------------------------------------------------


def _null_shape_columns(schema: pa.Schema) -> set[str]:
    return {
        field.name
        for field in schema
        if pa.types.is_null(field.type)
        and (field.name == SHAPE_COLUMN or field.name.startswith(FIELD_SHAPE_PREFIX))
    }


def _few_distinct_texts(footer: pq.FileMetaData, schema: pa.Schema) -> list[str]:
    """Plain text metadata columns to read as Arrow dictionaries: those whose pages are
    dictionary-encoded in every row group and take at most
    :data:`DICTIONARY_TEXT_BYTES_PER_ROW` bytes a row before compression, which only a few
    distinct values (codes of at most 4 bits, or long runs) achieve. Such a column then
    reads as codes rather than one string per row (files written before text was stored as
    a dictionary: ``split`` columns and the like; 3 values read 5x faster).

    Only a guess about speed, never about values: both forms read the same texts. Plain
    pages (a writer's fallback for a large dictionary) take at least 4 bytes a row, so at
    most 1/8 of the rows can be plain, which the dictionary reader hashes; text with many
    distinct values (file names) never qualifies and reads as before.
    """
    rows = footer.num_rows
    if not rows or not footer.num_row_groups:
        return []
    texts = {
        field.name
        for field in schema
        if is_text(field.type) and not field.name.startswith(RESERVED_PREFIX)
    }
    sizes = dict.fromkeys(texts, 0)
    for group in range(footer.num_row_groups):
        row_group = footer.row_group(group)
        for leaf in range(row_group.num_columns):
            chunk = row_group.column(leaf)
            name = chunk.path_in_schema
            if name in sizes:
                if not chunk.has_dictionary_page:
                    sizes.pop(name)
                else:
                    sizes[name] += chunk.total_uncompressed_size
    return [name for name, size in sizes.items() if size <= DICTIONARY_TEXT_BYTES_PER_ROW * rows]


def _templates(metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    """The shape templates of the file's key-value metadata (none in older files)."""
    if not metadata or SHAPES_KEY not in metadata:
        return {}
    templates = json.loads(metadata[SHAPES_KEY])
    if not isinstance(templates, dict):
        raise ValueError(f"{SHAPES_KEY.decode()} is not a JSON object")
    return templates


def _template(templates: dict[str, Any], name: str) -> list[int | None]:
    template = templates.get(name)
    if not isinstance(template, list) or not all(
        d is None or (type(d) is int and 0 <= d <= _INT64_MAX) for d in template
    ):
        raise ValueError(
            f"column {name}: {SHAPES_KEY.decode()} gives no shape template for it "
            f"(a list of dimensions and nulls), but {template!r}"
        )
    return template


def _chunks(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array (a copy only when it is in several pieces)."""
    if column.num_chunks == 1:
        return column.chunk(0)
    if column.num_chunks == 0:
        return pa.array([], column.type)
    return column.combine_chunks()


def _integers(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """An integer column without nulls as numpy values of its own type, each ≥ 0 and within
    int64."""
    if not pa.types.is_integer(column.type) or column.null_count:
        raise ValueError(f"column {name} must hold integers without nulls, not {column.type}")
    values = _chunks(column).to_numpy(zero_copy_only=False)
    if len(values) and values.dtype.kind == "i" and values.min() < 0:
        row = int(np.argmax(values < 0))
        raise ValueError(f"row {row}: {name} is negative ({values[row]})")
    if len(values) and values.dtype == np.uint64 and values.max() > _INT64_MAX:
        row = int(np.argmax(values > _INT64_MAX))
        raise ValueError(f"row {row}: {name} is beyond int64 ({values[row]})")
    return values


def _offsets(column: pa.ChunkedArray, name: str) -> np.ndarray:
    return _integers(column, name).astype(np.int64, copy=False)


def _sizes(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """Sizes as int32 when the file holds them so or they all fit, else int64."""
    values = _integers(column, name)
    if values.dtype == np.int32:
        return values
    return narrow_sizes(values.astype(np.int64, copy=False))


def _checksums(column: pa.ChunkedArray) -> np.ndarray:
    if column.type != pa.int64() or column.null_count:
        raise ValueError(f"column {CHECKSUM_COLUMN} must be int64 without nulls")
    return _chunks(column).to_numpy(zero_copy_only=False)


def _shapes(column: pa.ChunkedArray, name: str, templates: dict[str, Any]) -> ShapeColumn:
    kind, n = column.type, len(column)
    if pa.types.is_null(kind):  # every sample has the template's shape
        template = _template(templates, name)
        if None in template:
            raise ValueError(f"column {name} is null but its template has a varying axis")
        return ShapeColumn(n, fixed=tuple(template))
    if pa.types.is_struct(kind):
        return _struct_shapes(column, name, _template(templates, name))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _list_shapes(column, name)
    raise ValueError(f"column {name} is {kind}: not a shape column")


def _struct_shapes(column: pa.ChunkedArray, name: str, template: list[int | None]) -> ShapeColumn:
    """The varying axes of a struct column (one child per ``None`` of the template)."""
    varying = [axis for axis, d in enumerate(template) if d is None]
    children = [child.name for child in column.type]
    if children != [str(axis) for axis in varying]:
        raise ValueError(
            f"column {name} holds axes {children}, but its template {template} varies in "
            f"{[str(axis) for axis in varying]}"
        )
    if column.null_count:
        raise ValueError(f"column {name} holds nulls")
    n = len(column)
    if n == 0:
        return ShapeColumn(0, fixed=())
    pieces: list[list[np.ndarray]] = [[] for _ in varying]
    high = max((d for d in template if d is not None), default=0)
    for chunk in column.chunks:
        for k, child in enumerate(chunk.flatten()):
            if not pa.types.is_integer(child.type) or child.null_count:
                raise ValueError(f"column {name} axis {varying[k]} is {child.type} with nulls")
            values = child.to_numpy(zero_copy_only=False)
            if len(values):
                if values.dtype.kind == "i" and values.min() < 0:
                    raise ValueError(f"column {name} holds a negative size")
                high = max(high, int(values.max()))
            pieces[k].append(values)
    if high > _INT64_MAX:
        raise ValueError(f"column {name} holds a dimension beyond int64 ({high})")
    # Column-major: each axis is contiguous, so filling it and the constructor's per-axis
    # minimum and maximum run over contiguous memory.
    dims = np.empty((n, len(template)), dtype=narrow_dtype(high), order="F")
    for axis, d in enumerate(template):
        if d is not None:
            dims[:, axis] = d
    for k, axis in enumerate(varying):
        start = 0
        for values in pieces[k]:
            dims[start : start + len(values), axis] = values
            start += len(values)
    return ShapeColumn(n, dims=dims)


def _list_shapes(column: pa.ChunkedArray, name: str) -> ShapeColumn:
    """``list<int64>``: each row's dimensions (every file written before the struct form)."""
    if not pa.types.is_integer(column.type.value_type) or column.null_count:
        raise ValueError(f"column {name} must hold lists of integers without nulls")
    lists = _chunks(column)
    n = len(lists)
    if n == 0:
        return ShapeColumn(0, fixed=())
    offsets = lists.offsets.to_numpy()
    lengths = np.diff(offsets)
    first, last = int(offsets[0]), int(offsets[-1])
    values = lists.values
    if first < 0 or last > len(values) or lengths.min() < 0:
        raise ValueError(f"column {name} has broken list offsets")
    if values.null_count:
        raise ValueError(f"column {name} holds nulls")
    flat = values.to_numpy(zero_copy_only=False)[first:last]
    high = 0
    if len(flat):
        if flat.min() < 0:
            raise ValueError(f"column {name} holds a negative size")
        high = int(flat.max())
        if high > _INT64_MAX:
            raise ValueError(f"column {name} holds a dimension beyond int64 ({high})")
    ndim = int(lengths[0])
    if ndim > 0 and np.all(lengths == ndim):
        # Column-major, narrow: the constructor's per-axis scans run over contiguous memory.
        dims = np.empty((n, ndim), dtype=narrow_dtype(high), order="F")
        dims[:] = flat.reshape(n, ndim)
        return ShapeColumn(n, dims=dims)
    return ShapeColumn(
        n, dims=flat.astype(np.int64, copy=False), offsets=offsets.astype(np.int64) - first
    )


def _chunk_column(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    if column.null_count:
        raise ValueError(f"column {CHUNK_COLUMN} holds nulls")
    if pa.types.is_dictionary(column.type):
        combined = _chunks(column.unify_dictionaries())
    else:
        combined = _chunks(column).dictionary_encode()
    names = combined.dictionary
    if not is_text(names.type) or names.null_count:
        raise ValueError(f"column {CHUNK_COLUMN} is {column.type}: not text")
    ids = combined.indices.to_numpy(zero_copy_only=False)
    if len(ids) and (ids.min() < 0 or ids.max() >= len(names)):
        raise ValueError(f"column {CHUNK_COLUMN} names no chunk in some row")
    return ids, names.to_pylist()


def _numpy_dtype(kind: pa.DataType) -> np.dtype:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    try:
        return np.dtype(kind.to_pandas_dtype())
    except (NotImplementedError, TypeError):
        return np.dtype(object)


def _metadata_column(arrow: pa.Table, spec: ColumnSpec, source: str) -> Any:
    column = arrow.column(spec.name)
    kind = column.type
    if spec.type == "str":
        value_type = kind.value_type if pa.types.is_dictionary(kind) else kind
        ok = is_text(value_type)
    else:
        ok = kind == _METADATA_TYPES[spec.type]
    if not ok:
        raise CorruptDatasetError(
            f"{source}: metadata column {spec.name!r} is {kind}, but it should hold {spec.type}"
        )
    if column.null_count:
        raise CorruptDatasetError(f"{source}: metadata column {spec.name!r} holds nulls")
    try:
        if spec.type == "str":
            if pa.types.is_dictionary(kind):
                column = column.unify_dictionaries()
            return ArrowStringColumn(_chunks(column), source)
        return _chunks(column).to_numpy(zero_copy_only=False)
    except (pa.ArrowException, ValueError) as error:
        raise CorruptDatasetError(
            f"{source}: metadata column {spec.name!r} is malformed: {error}"
        ) from None
