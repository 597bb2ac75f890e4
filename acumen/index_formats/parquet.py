"""``parquet``: the index as a Parquet table with native column types.

The chunk name is dictionary-encoded, the shape is a ``list<int64>`` column (not text),
and metadata columns keep their types without help from the manifest.

Reading keeps the index compact: sizes as int32 when they fit, shapes in the compact form of
:class:`~acumen.shapes.ShapeColumn`, and ``str`` metadata in Arrow form (offsets + UTF-8
bytes, decoded one value at a time when a row is read), never as one Python string per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from acumen.abc.index_format import IndexFormat
from acumen.errors import CorruptDatasetError
from acumen.index_formats.arrow_text import ArrowStringColumn
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
from acumen.metadata import NUMPY_DTYPES, ColumnSpec, MetadataTable
from acumen.shapes import ShapeColumn

_ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
_COMPRESSIONS = ("none", "snappy", "gzip", "brotli", "lz4", "zstd")


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

    def write(self, table: IndexTable, path: Path) -> None:
        arrays = {
            CHUNK_COLUMN: pa.DictionaryArray.from_arrays(
                pa.array(table.chunk_ids, pa.int32()), pa.array(table.chunk_names, pa.string())
            ),
            OFFSET_COLUMN: pa.array(table.offsets, pa.int64()),
            SIZE_COLUMN: pa.array(table.sizes, pa.int64()),
        }
        if table.shapes is not None:
            arrays[SHAPE_COLUMN] = _shape_list(table.shapes)
        for name, columns in table.fields.items():
            arrays[FIELD_SIZE_PREFIX + name] = pa.array(columns.sizes, pa.int64())
            arrays[FIELD_SHAPE_PREFIX + name] = _shape_list(columns.shapes)
        if table.checksums is not None:
            arrays[CHECKSUM_COLUMN] = pa.array(table.checksums, pa.int64())
        for spec in table.metadata.specs:
            values = table.metadata.column(spec.name)
            arrays[spec.name] = pa.array(values, _ARROW_TYPES[spec.type])
        pq.write_table(pa.table(arrays), path, compression=self.compression)

    def read(self, path: Path, columns: Sequence[ColumnSpec] | None) -> IndexTable:
        try:
            arrow = pq.read_table(path)
        except FileNotFoundError:
            raise CorruptDatasetError(f"{path}: the index file is missing") from None
        except (pa.ArrowException, OSError) as error:
            raise CorruptDatasetError(f"{path}: the index does not parse: {error}") from None
        field_names = check_reserved_columns(arrow.column_names, str(path))
        try:
            chunk_ids, chunk_names = _chunk_column(arrow.column(CHUNK_COLUMN))
            offsets = _non_negative(arrow, OFFSET_COLUMN)
            sizes = narrow_sizes(_non_negative(arrow, SIZE_COLUMN))
            shapes = None if field_names else _shapes(arrow, SHAPE_COLUMN)
            fields = {
                name: FieldColumns(
                    narrow_sizes(_non_negative(arrow, FIELD_SIZE_PREFIX + name)),
                    _shapes(arrow, FIELD_SHAPE_PREFIX + name),
                )
                for name in field_names
            }
        except (pa.ArrowException, AttributeError, TypeError, ValueError) as error:
            raise CorruptDatasetError(f"{path}: malformed index column: {error}") from None
        present = [c for c in arrow.column_names if not c.startswith(RESERVED_PREFIX)]
        specs = metadata_specs(
            present,
            lambda name: np.dtype(arrow.column(name).type.to_pandas_dtype()),
            columns,
            str(path),
        )
        metadata = {}
        for spec in specs:
            column = arrow.column(spec.name)
            if column.null_count:
                raise CorruptDatasetError(f"{path}: metadata column {spec.name!r} holds nulls")
            if spec.type == "str" and (
                pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
            ):
                metadata[spec.name] = ArrowStringColumn(column.combine_chunks(), str(path))
                continue
            values = column.to_numpy(zero_copy_only=False)
            metadata[spec.name] = np.asarray(values, dtype=NUMPY_DTYPES[spec.type])
        return IndexTable(
            chunk_names=chunk_names,
            chunk_ids=chunk_ids,
            offsets=offsets,
            sizes=sizes,
            shapes=shapes,
            metadata=MetadataTable(arrow.num_rows, metadata, specs),
            fields=fields,
            checksums=(
                arrow.column(CHECKSUM_COLUMN).to_numpy().astype(np.int64)
                if CHECKSUM_COLUMN in arrow.column_names
                else None
            ),
        )


def _shape_list(shapes: ShapeColumn) -> pa.ListArray:
    offsets, flat = shapes.to_ragged()
    return pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32), pa.int32()), pa.array(flat, pa.int64())
    )


def _non_negative(arrow: pa.Table, name: str) -> np.ndarray:
    column = arrow.column(name)
    if not pa.types.is_integer(column.type) or column.null_count:
        raise ValueError(f"column {name} must hold integers without nulls, not {column.type}")
    values = column.combine_chunks().cast(pa.int64()).to_numpy()
    if len(values) and values.min() < 0:
        row = int(np.argmax(values < 0))
        raise ValueError(f"row {row}: {name} is negative ({values[row]})")
    return values


def _shapes(arrow: pa.Table, name: str) -> ShapeColumn:
    lists = arrow.column(name).combine_chunks()
    offsets = lists.offsets.to_numpy()
    flat = lists.values.to_numpy()
    if len(offsets) and offsets[-1] > offsets[0] and flat[offsets[0] : offsets[-1]].min() < 0:
        raise ValueError(f"column {name} holds a negative size")
    return ShapeColumn.from_ragged(offsets, flat)


def _chunk_column(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    if pa.types.is_dictionary(column.type):
        combined = column.unify_dictionaries().combine_chunks()
        return combined.indices.to_numpy(zero_copy_only=False), combined.dictionary.to_pylist()
    encoded = column.combine_chunks().dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist()
