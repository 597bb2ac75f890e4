"""``parquet``: the index as a Parquet table with native column types.

Laid out for a fast open (docs/format.md §4.2). No column holds nulls, and the schema says
so (no definition levels to decode). ``ai:chunk_name`` is dictionary-encoded,
``ai:offset_bytes`` is ``int64`` in ``DELTA_BINARY_PACKED`` pages (offsets grow within a
chunk), ``ai:size_bytes`` is ``int32`` when every size fits, and ``str`` metadata with few
distinct values is an Arrow dictionary (a small code per row, each text once).

Shapes as the ``arrow`` index lays them out: when every sample has the same number of
dimensions, the file's key-value metadata holds a template under the shape column's name
(``ai:shape`` → ``[null, 16]``), with null at each axis that varies; ``ai:shape`` then
holds only those axes in narrow integer types (one axis: a plain integer column; k axes: a
struct with one child per axis, named by its number, which Parquet decodes much faster than
a list), and is absent when no axis varies. Otherwise ``ai:shape`` is ``list<int64>``.
Files without templates (written before 0.1.0's release: ``list<int64>`` shapes, plain
``string`` text, ``int64`` sizes) read as before.

Reading keeps the index compact: sizes as int32 when they fit, shapes in the compact form of
:class:`~acumen.format.shapes.ShapeColumn`, and ``str`` metadata in Arrow form (codes, or offsets +
UTF-8 bytes, decoded one value at a time when a row is read), never as one Python string
per row. Offsets, sizes, chunk ids and the varying dimensions are not scanned at open: the
rows are checked block by block as they are read (:mod:`acumen.read.index_checks`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from acumen.abc.index_format import IndexFormat
from acumen.errors import CorruptDatasetError, quote, shorten
from acumen.format import (
    CHECKSUM_COLUMN,
    CHUNK_COLUMN,
    INT32_MAX,
    INT64_MAX,
    OFFSET_COLUMN,
    ColumnSpec,
    IndexTable,
    MetadataTable,
    ShapeColumn,
    narrow_dtype,
    narrow_sizes,
)
from acumen.index_formats._arrow_table import (
    VARYING_TYPES,
    TableReader,
    fixed_by_template,
    table_columns,
)
from acumen.index_formats.arrow_text import ArrowStringColumn, is_text

_COMPRESSIONS = ("none", "snappy", "gzip", "brotli", "lz4", "zstd")
#: Text is dictionary-encoded when its distinct values repeat (at most half as many as
#: rows) and take at most this many bytes: well within Parquet's dictionary page limit
#: (1 MiB), beyond which a writer falls back to plain pages that read slowly as a dictionary.
TEXT_DICTIONARY_BYTES = 512 * 1024
#: Rows per row group.
ROW_GROUP_ROWS = 1 << 20
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

    @property
    def reading_configuration(self) -> dict:
        return {}  # a parquet file records its own compression

    # --- writing -------------------------------------------------------------------------
    def write(self, table: IndexTable, path: Path) -> None:
        columns, shape_templates = table_columns(table, _size_array, _shape_layout, _metadata_array)
        templates = {
            name.encode(): json.dumps(template).encode()
            for name, template in shape_templates.items()
        }
        schema = pa.schema(
            [pa.field(name, array.type, nullable=False) for name, array in columns.items()],
            metadata=templates or None,
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
            # Several row groups are decoded in parallel (2 cores: 1.5-2x), one copy joins
            # them; pinned, not left to pyarrow's default.
            row_group_size=ROW_GROUP_ROWS,
        )

    # --- reading -------------------------------------------------------------------------
    def read(self, path: Path, columns: Sequence[ColumnSpec] | None) -> IndexTable:
        source = str(path)
        try:
            arrow = pq.read_table(path)
            present = arrow.column_names
        except FileNotFoundError:
            raise CorruptDatasetError(f"{path}: the index file is missing") from None
        except (pa.ArrowException, OSError, ValueError) as error:  # names not UTF-8 too
            raise CorruptDatasetError(
                f"{path}: the index does not parse: {shorten(str(error), 400)}"
            ) from None
        if len(set(present)) != len(present):
            raise CorruptDatasetError(f"{path}: the index names a column twice: {quote(present)}")
        return _TableReader(arrow, source).read(columns)


class _TableReader(TableReader):
    """The columns of the Parquet file, read into memory."""

    @contextlib.contextmanager
    def reserved_errors(self) -> Iterator[None]:
        try:
            yield
        except (pa.ArrowException, AttributeError, TypeError, ValueError) as error:
            raise CorruptDatasetError(
                f"{self.source}: malformed index column: {shorten(str(error), 400)}"
            ) from None

    def chunk_column(self) -> tuple[np.ndarray, list[str]]:
        return _chunk_column(self.data.column(CHUNK_COLUMN))

    def int64_column(self, name: str) -> np.ndarray:
        return _int64_column(self.data.column(name), name)

    def size_column(self, name: str) -> np.ndarray:
        return _sizes(self.data.column(name), name)

    def shapes(self, name: str, templates: dict[str, list]) -> ShapeColumn:
        return _shapes(self.data, name, templates)

    def metadata_column(self, spec: ColumnSpec) -> Any:
        return _metadata_column(self.data, spec, self.source)


# --- writing -----------------------------------------------------------------------------


def _leaf_paths(field: pa.Field) -> list[str]:
    """The Parquet column paths of an Arrow field (what ``use_dictionary`` names)."""
    if pa.types.is_struct(field.type):
        return [f"{field.name}.{child.name}" for child in field.type]
    if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
        return [f"{field.name}.list.element"]
    return [field.name]


def _size_array(sizes: np.ndarray) -> pa.Array:
    """Sizes as int32 when every one fits (read back without a cast), else int64."""
    sizes = narrow_sizes(np.asarray(sizes, dtype=np.int64))
    return pa.array(sizes, pa.from_numpy_dtype(sizes.dtype))


def _shape_layout(shapes: ShapeColumn) -> tuple[list[int | None] | None, pa.Array | None]:
    """(template, column) as the module docstring lays them out: the template is None for
    ``list<int64>`` shapes, the column None when no axis varies."""
    parts = shapes.parts()
    if parts is None:  # the number of dimensions varies
        offsets, flat = shapes.to_ragged()
        flat = pa.array(np.asarray(flat, dtype=np.int64), pa.int64())
        if offsets[-1] <= INT32_MAX:
            return None, pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat)
        return None, pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), flat)
    template, values = parts
    if values is None:
        return template, None
    if values.ndim == 1:
        return template, pa.array(values)
    axes = [axis for axis, d in enumerate(template) if d is None]
    children = [pa.array(np.ascontiguousarray(values[:, k])) for k in range(len(axes))]
    fields = [
        pa.field(str(axis), child.type, nullable=False)
        for axis, child in zip(axes, children, strict=True)
    ]
    return template, pa.StructArray.from_arrays(children, fields=fields)


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


def _chunks(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array (a copy only when it is in several pieces)."""
    if column.num_chunks == 1:
        return column.chunk(0)
    if column.num_chunks == 0:
        return pa.array([], column.type)
    return column.combine_chunks()


def _int64_column(column: pa.ChunkedArray, name: str) -> np.ndarray:
    # Negative offsets (and sizes) are found by the block checks, as rows are read.
    if column.type != pa.int64() or column.null_count:
        raise ValueError(f"column {name} must be int64 without nulls, not {column.type}")
    return _chunks(column).to_numpy(zero_copy_only=False)


def _sizes(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """Sizes as int32 when the file holds them so or every one fits, else int64."""
    if column.type == pa.int32() and not column.null_count:
        return _chunks(column).to_numpy(zero_copy_only=False)
    return narrow_sizes(_int64_column(column, name))


def _shapes(arrow: pa.Table, name: str, templates: dict[str, list]) -> ShapeColumn:
    template = templates.get(name)
    if template is None:
        return _list_shapes(arrow.column(name), name)  # every dimension per row
    n = arrow.num_rows
    k = template.count(None)
    fixed = fixed_by_template(name, template, n, name in arrow.column_names)
    if fixed is not None:
        return fixed
    column = arrow.column(name)
    if column.null_count:
        raise ValueError(f"column {name} holds nulls")
    if k == 1:
        _check_varying(column.type, name)
        values = _chunks(column).to_numpy(zero_copy_only=False)
    else:
        values = _struct_axes(column, name, template)
    # Signs and element counts are checked block by block as samples are read.
    return ShapeColumn.from_parts(n, template, values)


def _check_varying(kind: pa.DataType, name: str) -> None:
    if kind not in VARYING_TYPES:
        raise ValueError(f"column {name} is {kind}, expected integer dimensions")


def _struct_axes(column: pa.ChunkedArray, name: str, template: list) -> np.ndarray:
    """The ``(n, k)`` varying dimensions of a struct column (one child per varying axis)."""
    axes = [str(axis) for axis, d in enumerate(template) if d is None]
    kind = column.type
    if not pa.types.is_struct(kind) or [child.name for child in kind] != axes:
        raise ValueError(f"column {name} is {kind}, expected a struct of the axes {axes}")
    for child in kind:
        _check_varying(child.type, name)
    dtype = np.result_type(*[child.type.to_pandas_dtype() for child in kind])
    # Column-major: each axis is filled, and later scanned, as contiguous memory.
    values = np.empty((len(column), len(axes)), dtype=dtype, order="F")
    start = 0
    for chunk in column.chunks:
        for k, child in enumerate(chunk.flatten()):
            if child.null_count:
                raise ValueError(f"column {name} holds nulls")
            values[start : start + len(chunk), k] = child.to_numpy(zero_copy_only=False)
        start += len(chunk)
    return values


def _list_shapes(column: pa.ChunkedArray, name: str) -> ShapeColumn:
    """``list<int64>``: each row's dimensions (ragged, or a file without templates)."""
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        raise ValueError(f"column {name} is {kind}, expected a list of dimensions")
    if not pa.types.is_integer(kind.value_type) or column.null_count:
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
        if high > INT64_MAX:
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
    # Ids outside the dictionary are found by the block checks, as rows are read.
    if column.null_count:
        raise ValueError(f"column {CHUNK_COLUMN} holds nulls")
    if pa.types.is_dictionary(column.type):
        combined = _chunks(column.unify_dictionaries())
    else:
        combined = _chunks(column).dictionary_encode()
    names = combined.dictionary
    if not is_text(names.type) or names.null_count:
        raise ValueError(f"column {CHUNK_COLUMN} is {column.type}: not text")
    ids = combined.indices
    if ids.type != pa.int32():
        ids = ids.cast(pa.int32())  # refuses values beyond int32
    return ids.to_numpy(zero_copy_only=False), names.to_pylist()


def _metadata_column(arrow: pa.Table, spec: ColumnSpec, source: str) -> Any:
    column = arrow.column(spec.name)
    kind = column.type
    if spec.type == "str":
        ok = is_text(kind.value_type if pa.types.is_dictionary(kind) else kind)
    else:
        ok = kind == _METADATA_TYPES[spec.type]
    if not ok:
        raise CorruptDatasetError(
            f"{source}: metadata column {quote(spec.name)} is {kind}, "
            f"but it should hold {spec.type}"
        )
    if column.null_count:
        raise CorruptDatasetError(f"{source}: metadata column {quote(spec.name)} holds nulls")
    try:
        if spec.type == "str":
            if pa.types.is_dictionary(kind):
                column = column.unify_dictionaries()
            return ArrowStringColumn(_chunks(column), source)
        return _chunks(column).to_numpy(zero_copy_only=False)
    except (pa.ArrowException, ValueError) as error:
        raise CorruptDatasetError(
            f"{source}: metadata column {quote(spec.name)} is malformed: {shorten(str(error))}"
        ) from None
