"""``csv``: the original acumenindexer ``index.csv``, column for column.

Columns: ``ai:chunk_name``, ``ai:offset_bytes``, ``ai:size_bytes``, ``ai:shape`` (tuple
text), then the metadata columns, written by pandas exactly as the original wrote them.
With the manifest's column types, values read back with the types they were written with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from acumen.abc.index_format import IndexFormat
from acumen.errors import CorruptDatasetError, shorten
from acumen.files.local import open_for_reading
from acumen.format import (
    CHUNK_COLUMN,
    FIELD_SIZE_PREFIX,
    OFFSET_COLUMN,
    SHAPE_COLUMN,
    SIZE_COLUMN,
    ColumnSpec,
    IndexTable,
)
from acumen.format.index_frame import table_from_frame
from acumen.index_formats.csv_text import csv_bytes, line_terminator

_READ_TYPES = {"int": np.int64, "float": np.float64, "bool": bool, "str": object}
_RESERVED_TYPES = {CHUNK_COLUMN: object, SHAPE_COLUMN: object}


class CsvIndex(IndexFormat):
    name = "csv"
    filename = "index.csv"

    def write(self, table: IndexTable, path: Path) -> None:
        # The bytes pandas' to_csv gives (see csv_text), made several times faster.
        path.write_bytes(csv_bytes(table, line_terminator(table)))

    def read(self, path: Path, columns: Sequence[ColumnSpec] | None) -> IndexTable:
        dtypes: dict[str, object] = dict(_RESERVED_TYPES)
        options: dict[str, object] = {}
        if columns is not None:
            dtypes.update({c.name: _READ_TYPES[c.type] for c in columns})
            # Only an empty float field means NaN; "NA", "null", "" stay text in text columns.
            options = {
                "keep_default_na": False,
                "na_values": {c.name: [""] for c in columns if c.type == "float"},
            }
        try:
            with open_for_reading(path, "index file") as file:
                frame = pd.read_csv(file, dtype=dtypes, encoding="utf-8", **options)
        except FileNotFoundError:
            raise CorruptDatasetError(f"{path}: the index file is missing") from None
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise CorruptDatasetError(
                f"{path}: the index does not parse: {shorten(str(error), 400)}"
            ) from None
        integer_columns = [OFFSET_COLUMN, SIZE_COLUMN]
        integer_columns += [c for c in frame.columns if str(c).startswith(FIELD_SIZE_PREFIX)]
        for name in integer_columns:
            if name in frame.columns and len(frame) == 0:
                # A header-only file (no samples) gives pandas no values to infer from.
                frame[name] = frame[name].astype(np.int64)
            elif name in frame.columns and frame[name].dtype.kind not in "iu":
                raise CorruptDatasetError(f"{path}: column {name} holds non-integers")
        return table_from_frame(frame, columns, str(path))
