"""``arrow``: the index as an uncompressed Arrow IPC file, read memory-mapped in place.

The columns are those of ``parquet`` (``ai:chunk_name`` dictionary-encoded,
``ai:offset_bytes`` / ``ai:size_bytes`` int64, metadata with native types), written as ONE
record batch so that every column is one contiguous buffer. Reading maps the file and hands
its buffers to numpy as they are: chunk ids, offsets, sizes, shape dimensions and int/float
metadata are views of the map, not copies, and opening does no work per sample: the rows
are checked block by block as they are read (:mod:`acumen.read.index_checks`).

Nothing read in place is trusted. pyarrow's reader checks each buffer's extent against the
file and ``validate()`` each buffer's size against the rows (O(columns)); what that leaves
unchecked is checked before a value is read through it: the chunk names (one text per chunk
file) whole at open, the chunk ids against the names and the text offsets of ``str``
metadata row by row with the other row checks; pyarrow's kernels, which trust offsets and
crash on damaged ones, get a text column only once it is validated whole.

Two column kinds are not used in place: ``bool`` metadata (Arrow packs bits; numpy needs a
byte per value, so they are unpacked at open, O(n)) and ``str`` metadata, which stays in
the map as Arrow's offsets + UTF-8 bytes and is decoded one value at a time when a row is
read (:class:`ArrowStringColumn`).

Shapes: when every sample has the same number of dimensions, the schema's metadata holds
a template under the shape column's name (``{"ai:shape": "[null, 16]"}``), with null at
each axis that varies; the ``ai:shape`` column then holds only those axes, in the narrowest
integer type (one axis: a plain integer column; k axes: ``fixed_size_list<int>[k]``), and is
absent when no axis varies. Otherwise ``ai:shape`` is ``large_list<int64>``. Files without
a template (acumen before 0.1.0's release) hold every dimension per row and read as before.
A multi-field index has ``ai:size_bytes:<field>`` and ``ai:shape:<field>`` instead of
``ai:shape``, laid out the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from acumen.abc.index_format import IndexFormat
from acumen.errors import CorruptDatasetError, quote
from acumen.format import (
    CHECKSUM_COLUMN,
    CHUNK_COLUMN,
    INT32_MAX,
    ColumnSpec,
    IndexTable,
    MetadataTable,
    ShapeColumn,
)
from acumen.index_formats._arrow_table import (
    VARYING_TYPES,
    TableReader,
    fixed_by_template,
    table_columns,
)
from acumen.index_formats.arrow_text import ArrowStringColumn


class ArrowIndex(IndexFormat):
    name = "arrow"
    filename = "index.arrow"

    def write(self, table: IndexTable, path: Path) -> None:
        columns, templates = table_columns(
            table, lambda sizes: pa.array(sizes, pa.int64()), _shape_layout, _metadata_array
        )
        metadata = {name: json.dumps(template) for name, template in templates.items()}
        # One record batch: each column is a single contiguous array in the file.
        batch = pa.RecordBatch.from_arrays(
            list(columns.values()), names=list(columns), metadata=metadata or None
        )
        options = ipc.IpcWriteOptions(compression=None)
        with (
            pa.OSFile(str(path), "wb") as sink,
            ipc.new_file(sink, batch.schema, options=options) as writer,
        ):
            writer.write_batch(batch)

    def read(self, path: Path, columns: Sequence[ColumnSpec] | None) -> IndexTable:
        return _BatchReader(_map_batch(path), str(path)).read(columns)


class _BatchReader(TableReader):
    """The columns of the mapped record batch, in place."""

    def chunk_column(self) -> tuple[np.ndarray, list[str]]:
        return _chunk_column(self.data.column(CHUNK_COLUMN), self.source)

    def int64_column(self, name: str) -> np.ndarray:
        return _int64_column(self.data, name, self.source)

    def checksum_column(self) -> np.ndarray:
        column = self.data.column(CHECKSUM_COLUMN)
        if not pa.types.is_int64(column.type) or column.null_count:
            raise CorruptDatasetError(
                f"{self.source}: column {CHECKSUM_COLUMN} must be int64 without nulls"
            )
        return column.to_numpy(zero_copy_only=False)

    def shapes(self, name: str, templates: dict[str, list]) -> ShapeColumn:
        return _shapes(self.data, name, templates, self.source)

    def metadata_column(self, spec: ColumnSpec) -> Any:
        return _metadata_column(self.data, spec, self.source)


# --- writing -----------------------------------------------------------------------------


def _shape_layout(shapes: ShapeColumn) -> tuple[list[int | None] | None, pa.Array | None]:
    """(template, column) as the module docstring lays them out."""
    parts = shapes.parts()
    if parts is None:  # the number of dimensions varies
        return None, _ragged_array(shapes)
    template, values = parts
    if values is None:
        return template, None
    flat = pa.array(values.reshape(-1))
    if values.ndim == 2:
        return template, pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    return template, flat


def _ragged_array(shapes: ShapeColumn) -> pa.Array:
    offsets, flat = shapes.to_ragged()
    return pa.LargeListArray.from_arrays(
        pa.array(np.asarray(offsets, dtype=np.int64), pa.int64()),
        pa.array(np.asarray(flat, dtype=np.int64), pa.int64()),
    )


def _metadata_array(metadata: MetadataTable, spec: ColumnSpec) -> pa.Array:
    values, kind = metadata.column(spec.name), spec.type
    if kind == "int":
        return pa.array(np.asarray(values, dtype=np.int64), pa.int64())
    if kind == "float":
        # from_pandas=False: NaN stays a value, not a null.
        return pa.array(np.asarray(values, dtype=np.float64), pa.float64())
    if kind == "bool":
        return pa.array(np.asarray(values, dtype=np.bool_), pa.bool_())
    text = pa.array(values, pa.large_string())
    # Plain ``string`` (int32 offsets) unless the text exceeds what int32 offsets can hold.
    data = text.buffers()[2]
    if data is None or data.size <= INT32_MAX:
        text = text.cast(pa.string())
    return text


# --- reading -----------------------------------------------------------------------------


def _map_batch(path: Path) -> pa.RecordBatch:
    """The file's one record batch, its buffers views of the memory map.

    The file handle is closed at once: Arrow's buffers keep the mapping alive for as long
    as any array or numpy view of them does, and unmap it when the last one goes.
    """
    source = str(path)
    try:
        with pa.memory_map(source, "r") as mapped:
            reader = ipc.open_file(mapped)
            if reader.num_record_batches == 1:
                batch = reader.get_batch(0)
            else:  # not written by acumen: gather the batches (a copy, O(n) anyway)
                table = reader.read_all()
                for part in table.to_batches():  # pyarrow's gathering trusts what it reads
                    part.validate(full=True)
                table = table.unify_dictionaries()
                batch = pa.RecordBatch.from_arrays(
                    [column.combine_chunks() for column in table.columns],
                    schema=table.schema,
                )
        batch.validate()
    except FileNotFoundError:
        raise CorruptDatasetError(f"{source}: the index file is missing") from None
    except (pa.ArrowException, OSError, ValueError) as error:
        raise CorruptDatasetError(f"{source}: the index does not parse: {error}") from None
    return batch


def _no_nulls(array: pa.Array, name: str, source: str) -> None:
    if array.null_count:
        raise CorruptDatasetError(f"{source}: column {quote(name)} holds nulls")


def _wrong_type(name: str, array: pa.Array, expected: str, source: str) -> CorruptDatasetError:
    return CorruptDatasetError(
        f"{source}: column {quote(name)} is {array.type}, expected {expected}"
    )


def _chunk_column(array: pa.Array, source: str) -> tuple[np.ndarray, list[str]]:
    kind = array.type
    if not (
        pa.types.is_dictionary(kind)
        and kind.index_type == pa.int32()
        and (pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type))
    ):
        raise _wrong_type(CHUNK_COLUMN, array, "dictionary<values=string, indices=int32>", source)
    _no_nulls(array, CHUNK_COLUMN, source)
    names = array.dictionary
    _no_nulls(names, CHUNK_COLUMN, source)
    try:  # one text per chunk file: its offsets and UTF-8 checked before pyarrow reads them
        names.validate(full=True)
    except pa.ArrowInvalid as error:
        raise CorruptDatasetError(f"{source}: column {CHUNK_COLUMN!r}: {error}") from None
    if len(array) and not len(names):
        raise CorruptDatasetError(f"{source}: column {CHUNK_COLUMN!r} names no chunk file")
    # Ids outside the dictionary are found by the block checks, as rows are read.
    return array.indices.to_numpy(zero_copy_only=True), names.to_pylist()


def _int64_column(batch: pa.RecordBatch, name: str, source: str) -> np.ndarray:
    array = batch.column(name)
    if array.type != pa.int64():
        raise _wrong_type(name, array, "int64", source)
    _no_nulls(array, name, source)
    # Negative values are found by the block checks, as rows are read.
    return array.to_numpy(zero_copy_only=True)


def _shapes(
    batch: pa.RecordBatch, name: str, templates: dict[str, list[int | None]], source: str
) -> ShapeColumn:
    template = templates.get(name)
    if template is None:
        return _shape_column(batch, name, source)  # every dimension per row
    n = batch.num_rows
    k = template.count(None)
    try:
        fixed = fixed_by_template(name, template, n, name in batch.schema.names)
    except ValueError as error:
        raise CorruptDatasetError(f"{source}: {error}") from None
    if fixed is not None:
        return fixed
    array = batch.column(name)
    _no_nulls(array, name, source)
    if k > 1:
        kind = array.type
        if not (pa.types.is_fixed_size_list(kind) and kind.list_size == k):
            raise _wrong_type(name, array, f"fixed_size_list<int>[{k}]", source)
        array = array.values.slice(array.offset * k, n * k)
        _no_nulls(array, name, source)
    if array.type not in VARYING_TYPES:
        raise _wrong_type(name, array, "integers", source)
    # In place: a view of the map. Signs and element counts are checked by block on read.
    values = array.to_numpy(zero_copy_only=True)
    return ShapeColumn.from_parts(n, template, values.reshape(n, k) if k > 1 else values)


def _shape_column(batch: pa.RecordBatch, name: str, source: str) -> ShapeColumn:
    array, n = batch.column(name), batch.num_rows
    kind = array.type
    is_list = pa.types.is_list(kind) or pa.types.is_large_list(kind)
    if not ((is_list or pa.types.is_fixed_size_list(kind)) and kind.value_type == pa.int64()):
        raise _wrong_type(name, array, "a list of int64", source)
    _no_nulls(array, name, source)
    if n == 0:
        return ShapeColumn(0, fixed=())
    if not is_list:
        ndim = kind.list_size
        if ndim == 0:
            return ShapeColumn(n, fixed=())
        values = array.values.slice(array.offset * ndim, n * ndim)
        _no_nulls(values, name, source)
        flat = values.to_numpy(zero_copy_only=True)
        first = flat[:ndim]
        if first.min() >= 0 and _periodic(values, ndim):  # one memcmp: every row is the first
            return ShapeColumn(n, fixed=tuple(int(d) for d in first))
        low, high = _axis_bounds(flat, ndim)
        if low.min() < 0:
            raise CorruptDatasetError(f"{source}: column {quote(name)} holds a negative size")
        # In place: the varying axis is a view of the map, not a copy.
        return ShapeColumn.from_dims(flat.reshape(n, ndim), low, high)
    _no_nulls(array.values, name, source)
    offsets = array.offsets.to_numpy(zero_copy_only=True).astype(np.int64, copy=False)
    flat = array.values.to_numpy(zero_copy_only=True)
    lengths = np.diff(offsets)
    if offsets[0] < 0 or offsets[-1] > len(flat) or lengths.min() < 0:
        raise CorruptDatasetError(f"{source}: column {quote(name)} has broken list offsets")
    flat = flat[offsets[0] : offsets[-1]]
    if len(flat) and flat.min() < 0:
        raise CorruptDatasetError(f"{source}: column {quote(name)} holds a negative size")
    if offsets[0]:
        offsets = offsets - offsets[0]
    if np.all(lengths == lengths[0]):
        return ShapeColumn.from_ragged(offsets, flat)
    return ShapeColumn(n, dims=flat, offsets=offsets)


def _periodic(values: pa.Array, ndim: int) -> bool:
    """Whether every row of a fixed-size list's int64 values equals the first row: the
    values shifted by one row are byte for byte the values (``Buffer.equals`` is memcmp)."""
    width = ndim * 8
    data = values.buffers()[1].slice(values.offset * 8, len(values) * 8)
    return data.slice(width).equals(data.slice(0, data.size - width))


def _axis_bounds(flat: np.ndarray, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Each axis's minimum and maximum over ``flat`` viewed as (n, ndim) rows: folded into
    rows of 512 samples so that the reductions run over contiguous memory."""
    rows = len(flat) // ndim
    fold = 512
    whole = rows // fold * fold
    parts = [flat[whole * ndim :].reshape(-1, ndim)]
    if whole:
        block = flat[: whole * ndim].reshape(whole // fold, fold * ndim)
        parts += [block.min(axis=0).reshape(fold, ndim), block.max(axis=0).reshape(fold, ndim)]
    stacked = np.concatenate(parts)
    return stacked.min(axis=0), stacked.max(axis=0)


_METADATA_TYPES = {
    "int": (pa.int64(),),
    "float": (pa.float64(),),
    "bool": (pa.bool_(),),
    "str": (pa.string(), pa.large_string()),
}


def _metadata_column(batch: pa.RecordBatch, spec: ColumnSpec, source: str) -> Any:
    array = batch.column(spec.name)
    if array.type not in _METADATA_TYPES[spec.type]:
        raise CorruptDatasetError(
            f"{source}: metadata column {quote(spec.name)} is {array.type}, "
            f"but it should hold {spec.type} ({_METADATA_TYPES[spec.type][0]})"
        )
    if array.null_count:
        raise CorruptDatasetError(f"{source}: metadata column {quote(spec.name)} holds nulls")
    if spec.type == "str":
        return ArrowStringColumn(array, source)
    if spec.type == "bool":
        return array.to_numpy(zero_copy_only=False)  # bit-packed: unpacked, O(n)
    return array.to_numpy(zero_copy_only=True)
