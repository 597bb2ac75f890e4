"""The original ``index.csv`` text of an index, byte for byte what pandas ``to_csv`` writes.

pandas turns every value into text (numbers with numpy's ``astype(str)``, NaN as an empty
field) and hands rows to Python's ``csv`` writer, which quotes a field holding the
delimiter, the quote character or a character of the line terminator. Doing the same
work column by column here (text columns quoted once per distinct value, one format
string per row) gives the same bytes several times faster, which matters because the
index is written while the user waits for ``close()``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

from acumen.format import (
    CHECKSUM_COLUMN,
    CHUNK_COLUMN,
    FIELD_SHAPE_PREFIX,
    FIELD_SIZE_PREFIX,
    OFFSET_COLUMN,
    SHAPE_COLUMN,
    SIZE_COLUMN,
    IndexTable,
)

_ROWS_PER_BLOCK = 65536  # rows formatted at a time, to bound the temporary lists


def line_terminator(table: IndexTable) -> str:
    """``"\\n"`` as the original wrote, unless some text holds a ``"\\r"`` that the csv
    writer would leave unquoted (no ``"\\n"``, ``","`` or ``'"'`` beside it): a CSV reader
    would split the row there, so lines then end with ``"\\r\\n"``, which makes ``"\\r"``
    special and quoted."""
    for spec in table.metadata.specs:
        if _unquoted_cr(spec.name):
            return "\r\n"
        if spec.type == "str" and any(map(_unquoted_cr, _distinct(table, spec.name))):
            return "\r\n"
    return "\n"


def csv_bytes(table: IndexTable, terminator: str) -> bytes:
    """The whole file, UTF-8 encoded."""
    names, columns, formats = _columns(table, terminator)
    out = io.StringIO()
    csv.writer(out, lineterminator=terminator, quoting=csv.QUOTE_MINIMAL).writerow(names)
    row_format = ",".join(formats) + terminator
    for start in range(0, len(table), _ROWS_PER_BLOCK):
        block = [column(start, start + _ROWS_PER_BLOCK) for column in columns]
        out.write("".join([row_format % row for row in zip(*block, strict=True)]))
    return out.getvalue().encode("utf-8")


def _columns(table: IndexTable, terminator: str) -> tuple[list[str], list, list[str]]:
    """Column names, a function giving each column's values for rows ``[start, end)``
    (Python ints for ``%d``, ready text for ``%s``), and each column's format."""
    names: list[str] = []
    columns: list = []
    formats: list[str] = []

    def add(name: str, column, fmt: str) -> None:
        names.append(name)
        columns.append(column)
        formats.append(fmt)

    chunk_tokens = _quoted_values(list(table.chunk_names), terminator)
    add(CHUNK_COLUMN, _taken(chunk_tokens, table.chunk_ids), "%s")
    add(OFFSET_COLUMN, _integers(table.offsets), "%d")
    add(SIZE_COLUMN, _integers(table.sizes), "%d")
    if table.shapes is not None:
        add(SHAPE_COLUMN, _texts(table.shapes.to_texts(), terminator), "%s")
    for name, field in table.fields.items():
        add(FIELD_SIZE_PREFIX + name, _integers(field.sizes), "%d")
        add(FIELD_SHAPE_PREFIX + name, _texts(field.shapes.to_texts(), terminator), "%s")
    if table.checksums is not None:
        add(CHECKSUM_COLUMN, _integers(table.checksums), "%d")
    for spec in table.metadata.specs:
        values = table.metadata.column(spec.name)
        if spec.type == "int":
            add(spec.name, _integers(values), "%d")
        elif spec.type == "str":
            add(spec.name, _texts(values, terminator), "%s")
        else:  # float and bool: numpy's text, as pandas makes it (NaN: an empty field)
            add(spec.name, _numpy_texts(values), "%s")
    return names, columns, formats


def _integers(values: np.ndarray):
    return lambda start, end: values[start:end].tolist()


def _numpy_texts(values: np.ndarray):
    def texts(start: int, end: int) -> list[str]:
        block = values[start:end]
        text = block.astype(str).astype(object)
        if block.dtype.kind == "f":
            text[np.isnan(block)] = ""
        return text.tolist()

    return texts


def _texts(values: Sequence[str] | np.ndarray, terminator: str):
    """Text values, each distinct one quoted once."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return _taken(_quoted_values(list(uniques), terminator), codes)


def _taken(tokens: list[str], codes: np.ndarray):
    table = np.array(tokens, dtype=object)
    return lambda start, end: table[codes[start:end]].tolist()


def _quoted_values(values: list[str], terminator: str) -> list[str]:
    """Each value as the csv writer writes it in a row of several fields."""
    special = {",", '"', *terminator}
    tokens = []
    for value in values:
        text = str(value)
        if special.isdisjoint(text):
            tokens.append(text)
            continue
        out = io.StringIO()
        csv.writer(out, lineterminator=terminator, quoting=csv.QUOTE_MINIMAL).writerow([text, ""])
        tokens.append(out.getvalue()[: -len(terminator) - 1])  # drop "," + terminator
    return tokens


def _distinct(table: IndexTable, name: str) -> list[str]:
    return list(pd.unique(np.asarray(table.metadata.column(name), dtype=object)))


def _unquoted_cr(text: str) -> bool:
    return "\r" in text and "\n" not in text and "," not in text and '"' not in text
