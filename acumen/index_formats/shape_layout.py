"""The shape layout shared by the ``arrow`` and ``parquet`` index formats.

When every sample has the same number of dimensions, a *template* (a JSON list of the
dimensions, null at each axis that varies) is kept in the file's metadata under the shape
column's name, and the column holds only the varying axes (none: no column). See
``docs/format.md`` §4.2 and §4.3.
"""

from __future__ import annotations

import json

import pyarrow as pa

from acumen.errors import CorruptDatasetError, quote
from acumen.format.index_table import SHAPE_COLUMN
from acumen.format.shapes import MAX_DIMENSION, MAX_NDIM, ShapeColumn

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
