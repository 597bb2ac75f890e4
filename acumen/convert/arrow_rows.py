"""Rows of an Arrow table (Parquet, an Arrow file, a saved Hugging Face dataset) as items.

A row is a :class:`Row`: a dict of its column values, which knows its number and table for
error messages. The driver turns a record batch into rows column by column: a list column
of numbers (a list, a fixed-size list or nested ones, as Hugging Face's ``Array2D`` stores
them) becomes one numpy array per row, sliced from the batch's values without a Python
float per element; every other column becomes Python values (``to_pylist``). Rows travel
to the workers inside their part, as a table's metadata does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROW_BATCH = 8_192  # rows converted at a time (a batch's values are in memory at once)


class Row(dict):
    """One row of a table: ``{column: value}``, with its ``number`` (0-based, in the source)
    and ``table`` (the file it comes from) for error messages."""

    __slots__ = ("number", "table")

    def __init__(self, values: dict[str, Any], number: int, table: str) -> None:
        super().__init__(values)
        self.number = number
        self.table = table

    def __repr__(self) -> str:
        return f"row {self.number} of {self.table}"

    def __reduce__(self) -> tuple:
        return (Row, (dict(self), self.number, self.table))


def table_batches(path: Path, batch_size: int = ROW_BATCH) -> Iterator[Any]:
    """The record batches of a ``.parquet`` file or an Arrow IPC file (``.arrow``,
    ``.feather``: the file format, or the stream format Hugging Face writes)."""
    import pyarrow as pa

    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size)
        return
    with pa.memory_map(str(path)) as source:
        try:
            batches: Any = pa.ipc.open_file(source)
            found = (batches.get_batch(i) for i in range(batches.num_record_batches))
        except pa.ArrowInvalid:
            source.seek(0)
            found = pa.ipc.open_stream(source)
        for batch in found:
            for start in range(0, batch.num_rows, batch_size):
                yield batch.slice(start, batch_size)


def count_rows(path: Path) -> int:
    """A table's row count: a Parquet footer, or the Arrow batches' headers (mapped)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return sum(batch.num_rows for batch in table_batches(path, 1 << 62))


def table_rows(path: Path, name: str, first: int = 0) -> Iterator[Row]:
    """The rows of one table file, numbered from ``first``; ``name`` names it in errors."""
    number = first
    for batch in table_batches(path):
        names = batch.schema.names
        columns = [column_values(batch.column(i)) for i in range(batch.num_columns)]
        for values in zip(*columns, strict=True):
            yield Row(dict(zip(names, values, strict=True)), number, name)
            number += 1
        if not columns:  # a table without columns still has rows
            for _ in range(batch.num_rows):
                yield Row({}, number, name)
                number += 1


def column_values(array: Any) -> list[Any]:
    """One value per row: numpy arrays for a (nested) list of numbers without nulls, Python
    values otherwise (a ragged nested list stays a nested Python list: the reader says so)."""
    import pyarrow as pa

    if isinstance(array, pa.ExtensionArray):  # (Hugging Face's Array2D, when registered)
        array = array.storage
    arrays = _list_arrays(array)
    if arrays is not None:
        return arrays
    if _numeric(array.type) and not array.null_count:  # numpy scalars keep int16 int16
        return list(array.to_numpy(zero_copy_only=False))
    return array.to_pylist()


def _numeric(arrow_type: Any) -> bool:
    import pyarrow.types as t

    return t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_boolean(arrow_type)


def _list_arrays(array: Any) -> list[Any] | None:
    """Each row of a (nested) list column of numbers as an array; None for any other column
    (or one with nulls, or sliced children, read by ``to_pylist``)."""
    import pyarrow as pa

    levels: list[np.ndarray] = []  # per list level: offsets into the next level's values
    fixed: list[int | None] = []
    current = array
    while isinstance(current, (pa.ListArray, pa.LargeListArray, pa.FixedSizeListArray)):
        if current.null_count:
            return None
        if isinstance(current, pa.FixedSizeListArray):
            size = current.type.list_size
            levels.append((np.arange(len(current) + 1, dtype=np.int64) + current.offset) * size)
            fixed.append(size)
        else:
            levels.append(current.offsets.to_numpy().astype(np.int64, copy=False))
            fixed.append(None)
        current = current.values
        if isinstance(current, pa.ExtensionArray):
            current = current.storage
        if current.offset:
            return None
    leaf_type = current.type
    if not levels or current.null_count:
        return None
    if not _numeric(leaf_type):
        return None
    leaf = current.to_numpy(zero_copy_only=False)
    uniform = _uniform_shape(levels, len(array))
    if uniform is not None:  # every row one shape (a fixed-size list, Array2D): one reshape
        first, last = _leaf_range(levels, 0, len(array))
        return list(leaf[first:last].reshape(len(array), *uniform))
    return [_row_array(leaf, levels, fixed, row) for row in range(len(array))]


def _uniform_shape(levels: list[np.ndarray], rows: int) -> tuple[int, ...] | None:
    """The shape every row has (None if they differ): each level's lengths all equal."""
    shape = []
    start, stop = 0, rows
    for offsets in levels:
        lengths = np.diff(offsets[start : stop + 1])
        if not len(lengths) or (lengths != lengths[0]).any():
            return None
        shape.append(int(lengths[0]))
        start, stop = int(offsets[start]), int(offsets[stop])
    return tuple(shape)


def _leaf_range(levels: list[np.ndarray], start: int, stop: int) -> tuple[int, int]:
    for offsets in levels:
        start, stop = int(offsets[start]), int(offsets[stop])
    return start, stop


def _row_array(
    leaf: np.ndarray, levels: list[np.ndarray], fixed: list[int | None], row: int
) -> Any:
    """Row ``row`` of a nested list column: an array of its shape, or (ragged) nested lists."""
    start, stop = row, row + 1
    shape: list[int] = []
    for depth, offsets in enumerate(levels):
        if depth:  # the elements of the level above must all have one length here
            lengths = np.diff(offsets[start : stop + 1])
            if len(lengths) and (lengths != lengths[0]).any():
                return _nested(leaf, levels, row, row + 1, 0)[0]
            shape.append(int(lengths[0]) if len(lengths) else (fixed[depth] or 0))
        else:
            shape.append(int(offsets[stop] - offsets[start]))
        start, stop = int(offsets[start]), int(offsets[stop])
    return leaf[start:stop].reshape(shape)


def _nested(leaf: np.ndarray, levels: list[np.ndarray], start: int, stop: int, depth: int) -> Any:
    """Elements ``start:stop`` of level ``depth`` as nested Python lists (a ragged row)."""
    if depth == len(levels):
        return leaf[start:stop].tolist()
    offsets = levels[depth]
    return [
        _nested(leaf, levels, int(offsets[i]), int(offsets[i + 1]), depth + 1)
        for i in range(start, stop)
    ]
