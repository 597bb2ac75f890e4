"""Several index tables made one: a conversion's parts, a versioned dataset's segments.

Rows keep their order; chunk names are joined by name (a chunk named twice is one chunk);
metadata columns a later table added read as missing in the rows before it (NaN in a
``float`` column, the empty text in a ``str`` one: the only columns that can be added).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from acumen.format.index_table import FieldColumns, IndexTable
from acumen.format.metadata import NUMPY_DTYPES, ColumnSpec, MetadataTable
from acumen.format.shapes import ShapeColumn

#: What a row written before its column existed reads as, by column type.
MISSING = {"float": np.nan, "str": ""}


class MetadataMismatch(ValueError):
    """Tables whose metadata columns cannot be joined (a column with two types...)."""


def concat_tables(
    tables: Sequence[IndexTable],
    field_names: list[str] | None,
    part_names: Sequence[str] | None = None,
) -> IndexTable:
    """One index from ``tables`` in order; ``field_names`` of a multi-field dataset (None:
    one array). A :class:`MetadataMismatch` names the parts (``part_names``) that disagree."""
    if len(tables) == 1:
        return tables[0]
    names: list[str] = []
    numbers: dict[str, int] = {}
    chunk_ids = []
    for table in tables:
        mapping = np.array(
            [numbers.setdefault(name, len(numbers)) for name in table.chunk_names],
            dtype=np.int32,
        )
        # (the first table's chunks keep their numbers: no copy to renumber them)
        identity = np.array_equal(mapping, np.arange(len(mapping)))
        chunk_ids.append(table.chunk_ids if identity else mapping[table.chunk_ids])
    names = list(numbers)
    checksums = [t.checksums for t in tables]
    return IndexTable(
        chunk_names=names,
        chunk_ids=_concat(chunk_ids, np.int32),
        offsets=_concat([t.offsets for t in tables], np.int64),
        sizes=_concat([t.sizes for t in tables], _common([t.sizes for t in tables])),
        shapes=concat_shapes([t.shapes for t in tables]) if field_names is None else None,
        metadata=concat_metadata(
            [t.metadata for t in tables],
            list(part_names or [f"part {n}" for n in range(len(tables))]),
        ),
        fields={
            name: FieldColumns(
                _concat([t.fields[name].sizes for t in tables], np.int64),
                concat_shapes([t.fields[name].shapes for t in tables]),
            )
            for name in field_names or []
        },
        checksums=None if any(c is None for c in checksums) else _concat(checksums, np.int64),
    )


def _concat(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
    """One copy: the arrays concatenated straight into ``dtype``."""
    return np.concatenate(arrays, dtype=dtype) if arrays else np.zeros(0, dtype)


def _common(sizes: list[np.ndarray]) -> type:
    """int32 when every size column is (narrowed: half the memory, kept so), else int64."""
    return np.int32 if all(s.dtype == np.int32 for s in sizes) else np.int64


def concat_shapes(columns: list[ShapeColumn]) -> ShapeColumn:
    """The shapes of every column's samples, in the most compact form that holds them."""
    filled = [c for c in columns if len(c)]
    total = sum(len(c) for c in filled)
    fixed = {c.fixed for c in filled}
    if not filled or (len(fixed) == 1 and None not in fixed):
        return ShapeColumn(total, fixed=fixed.pop() if filled else ())
    if len({c.ndim for c in filled}) == 1 and None not in {c.ndim for c in filled}:
        return ShapeColumn(total, dims=np.concatenate([c.to_dims() for c in filled]))
    offsets, flats, base = [np.zeros(1, np.int64)], [], 0
    for column in filled:
        column_offsets, flat = column.to_ragged()
        offsets.append(column_offsets[1:] - column_offsets[0] + base)
        flats.append(flat[column_offsets[0] : column_offsets[-1]])
        base += int(column_offsets[-1] - column_offsets[0])
    return ShapeColumn.from_ragged(
        np.concatenate(offsets), np.concatenate(flats) if flats else np.zeros(0, np.int64)
    )


def joined_specs(specs: Sequence[Sequence[ColumnSpec]], part_names: Sequence[str]) -> list:
    """The columns of tables joined in order: the first one's, then each column a later
    one adds (``float`` or ``str`` only: older rows read it as missing). A table must have
    every column of the tables before it, with the same type."""
    joined: dict[str, ColumnSpec] = {}
    first_seen: dict[str, str] = {}
    started = False  # a table came first: columns of later ones are additions
    for table_specs, part in zip(specs, part_names, strict=True):
        own = {spec.name: spec for spec in table_specs}
        missing = [name for name in joined if name not in own]
        if missing:
            raise MetadataMismatch(
                f"{part} lacks the metadata columns {missing} that {first_seen[missing[0]]} has"
            )
        for spec in table_specs:
            known = joined.get(spec.name)
            if known is None:
                if started and spec.type not in MISSING:
                    raise MetadataMismatch(
                        f"{part} adds the metadata column {spec.name!r} of type {spec.type}; "
                        "the samples before it would have no value (a column added later must "
                        "be float, NaN when missing, or str, empty when missing)"
                    )
                joined[spec.name] = spec
                first_seen[spec.name] = part
            elif known.type != spec.type:
                raise MetadataMismatch(
                    f"the metadata column {spec.name!r} is {known.type} in "
                    f"{first_seen[spec.name]} but {spec.type} in {part}"
                )
        started = True
    return list(joined.values())


def concat_metadata(tables: Sequence[MetadataTable], part_names: list[str]) -> MetadataTable:
    """The tables' metadata, one after the other; tables without rows add nothing."""
    filled = [(t, name) for t, name in zip(tables, part_names, strict=True) if len(t)]
    if not filled:
        return MetadataTable.empty(0)
    specs = joined_specs([t.specs for t, _ in filled], [name for _, name in filled])
    columns = {}
    for spec in specs:
        dtype = NUMPY_DTYPES[spec.type]
        pieces = []
        for table, _ in filled:
            if spec.name in table.names:
                pieces.append(np.asarray(table.column(spec.name)).astype(dtype, copy=False))
            else:
                pieces.append(np.full(len(table), MISSING[spec.type], dtype=dtype))
        columns[spec.name] = np.concatenate(pieces)
    return MetadataTable(sum(len(t) for t, _ in filled), columns, specs)
