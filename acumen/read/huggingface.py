"""``ds.to_huggingface()``: an acumen dataset as a Hugging Face ``datasets.Dataset``.

The features say what each column holds, so that the values come back exactly:

- samples of one fixed shape: ``Value`` (0-d), ``List(Value, length=n)`` (1-d), ``Array2D``
  to ``Array5D``, a fixed-length ``List`` nesting past that; of varying shapes (one number
  of dimensions): nested ``List``\\ s; bytes fields: ``Value("binary")``;
- metadata columns: ``Value("int64")``, ``"float64"``, ``"bool"``, ``"string"``.

The table is built batch by batch through ``read_batch`` (one gather per batch, no Python
object per value): the arrays of a batch become Arrow lists over the batch's own buffer.
``datasets`` is imported here only, never by ``import acumen``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import datasets

Dataset = Any  # acumen.read.dataset.Dataset, which imports this module (lazily)

_METADATA = {"int": "int64", "float": "float64", "bool": "bool", "str": "string"}


def to_huggingface(
    dataset: Dataset,
    *,
    column: str = "array",
    batch_size: int = 1024,
    path: str | os.PathLike[str] | None = None,
) -> datasets.Dataset:
    """The dataset as a ``datasets.Dataset`` (see :meth:`acumen.Dataset.to_huggingface`)."""
    import datasets
    import pyarrow as pa

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    sample_columns = _sample_columns(dataset, column)
    clash = sorted(set(sample_columns) & set(dataset.columns))
    if clash:
        raise ValueError(
            f"{dataset.root}: metadata column {clash[0]!r} has the name of the samples' "
            "column: pass another column= name"
        )
    features = datasets.Features(
        {name: feature for name, (feature, _, _) in sample_columns.items()}
        | {spec.name: datasets.Value(_METADATA[spec.type]) for spec in dataset.table.metadata.specs}
    )
    schema = features.arrow_schema
    batches = _batches(dataset, sample_columns, schema, batch_size)
    info = datasets.DatasetInfo(features=features)
    if path is None:
        table = pa.Table.from_batches(list(batches), schema)
        return datasets.Dataset(datasets.table.InMemoryTable(table), info=info)
    with pa.OSFile(os.fspath(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return datasets.Dataset.from_file(os.fspath(path), info=info)


def _sample_columns(dataset: Dataset, column: str) -> dict[str, tuple[Any, Any, Any]]:
    """``{column: (feature, field name or None, dtype)}`` for the samples' data."""
    import datasets

    if not dataset.field_readers:
        shapes = dataset.table.shapes
        return {column: (_feature(dataset, column, dataset.dtype, shapes), None, dataset.dtype)}
    found = {}
    for reader in dataset.field_readers:
        if dataset.selected is not None and reader.name not in dataset.selected:
            continue
        if reader.type == "bytes":
            found[reader.name] = (datasets.Value("binary"), reader.name, None)
        else:
            feature = _feature(dataset, reader.name, reader.dtype, reader.shapes)
            found[reader.name] = (feature, reader.name, reader.dtype)
    return found


def _feature(dataset: Dataset, name: str, dtype: Any, shapes: Any) -> Any:
    import datasets

    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise ValueError(
            f"{dataset.root}: {name!r} has dtype {dtype}, which Arrow does not hold; cast it"
        )
    value = datasets.Value(dtype.name)
    fixed = shapes.fixed if shapes is not None else ()
    if fixed is not None:
        if len(fixed) == 0:
            return value
        if 2 <= len(fixed) <= 5:
            return getattr(datasets, f"Array{len(fixed)}D")(tuple(fixed), dtype.name)
        for size in reversed(fixed):
            value = datasets.List(value, length=size)
        return value
    if shapes.ndim is None:
        raise ValueError(
            f"{dataset.root}: the samples of {name!r} have different numbers of dimensions; "
            "a Hugging Face column nests lists to one depth"
        )
    for _ in range(shapes.ndim):
        value = datasets.List(value)
    return value


def _batches(
    dataset: Dataset, columns: dict[str, tuple[Any, Any, Any]], schema: Any, batch_size: int
) -> Iterator[Any]:
    import pyarrow as pa

    metadata = dataset.table.metadata
    for start in range(0, len(dataset), batch_size):
        positions = np.arange(start, min(start + batch_size, len(dataset)))
        samples = dataset.read_batch(positions)
        arrays = []
        for name, (_, field, dtype) in columns.items():
            values = [s[field] for s in samples] if field is not None else samples
            arrays.append(_arrow(values, schema.field(name).type, dtype, len(positions)))
        for spec in metadata.specs:
            values = metadata.column(spec.name)[positions]
            arrays.append(pa.array(values, schema.field(spec.name).type))
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _arrow(values: Any, arrow_type: Any, dtype: Any, n: int) -> Any:
    """An Arrow array of ``arrow_type`` (``features.arrow_schema``'s) for ``n`` samples: one
    array ``(n, *shape)``, or a list of arrays of one number of dimensions, or of bytes."""
    import pyarrow as pa

    if dtype is None:
        return pa.array(values, pa.binary())
    if isinstance(arrow_type, pa.ExtensionType):  # Array2D..5D: over its storage type
        storage = _arrow(values, arrow_type.storage_type, dtype, n)
        return pa.ExtensionArray.from_storage(arrow_type, storage)
    if isinstance(values, np.ndarray):  # one shape: lengths repeat, over the batch's buffer
        shape = values.shape[1:]
        leaf = np.ascontiguousarray(values).reshape(-1)
        counts = [n * math.prod(shape[:j]) for j in range(len(shape))]
        lengths = [np.full(c, d, dtype=np.int32) for c, d in zip(counts, shape, strict=True)]
    else:
        arrays = [np.asarray(v) for v in values]
        ndim = len(_levels(arrow_type))
        leaf = np.concatenate([a.reshape(-1) for a in arrays]) if arrays else np.empty(0, dtype)
        lengths = [
            np.concatenate(
                [np.full(math.prod(a.shape[:j]), a.shape[j], np.int32) for a in arrays]
                or [np.empty(0, np.int32)]
            )
            for j in range(ndim)
        ]
    array = pa.array(leaf.astype(dtype, copy=False))
    types = _levels(arrow_type)
    for level in reversed(range(len(types))):
        level_type = types[level]
        if pa.types.is_fixed_size_list(level_type):
            array = pa.FixedSizeListArray.from_arrays(array, level_type.list_size)
        else:
            offsets = np.zeros(len(lengths[level]) + 1, np.int32)
            np.cumsum(lengths[level], out=offsets[1:])
            array = pa.ListArray.from_arrays(pa.array(offsets), array)
    return array.cast(arrow_type) if array.type != arrow_type else array


def _levels(arrow_type: Any) -> list[Any]:
    import pyarrow as pa

    levels = []
    while pa.types.is_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        levels.append(arrow_type)
        arrow_type = arrow_type.value_type
    return levels
