"""The CSV index is rendered without pandas; its bytes must equal pandas' ``to_csv``, which
is what the original acumenindexer wrote (and what its reader, pandas, expects)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acumen.format.index_table import FieldColumns, IndexTable
from acumen.format.metadata import ColumnSpec, MetadataTable
from acumen.format.shapes import ShapeColumn
from acumen.index_formats.csv_text import csv_bytes, line_terminator
from tests.test_properties import SETTINGS, SPECIAL_TEXTS, TEXT

SHAPE = st.lists(st.integers(0, 2**40), max_size=3).map(tuple)
COLUMN_KINDS = {
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0.1, 1e16, 1e-5, -0.0, 1e300, 5e-324, 123456789.125]),
    ),
    "bool": st.booleans(),
    "str": TEXT,
}


def pandas_bytes(table: IndexTable, terminator: str) -> bytes:
    out = io.BytesIO()
    table.to_frame().to_csv(out, index=False, lineterminator=terminator, encoding="utf-8")
    return out.getvalue()


@st.composite
def tables(draw: st.DrawFn) -> IndexTable:
    n = draw(st.integers(0, 12))
    chunk_names = draw(
        st.lists(st.sampled_from(["chunk_0.chnk", "chunks/c,1", 'q"uote', "a\rb"]), min_size=1)
    )
    chunk_ids = draw(st.lists(st.integers(0, len(chunk_names) - 1), min_size=n, max_size=n))
    offsets = draw(st.lists(st.integers(0, 2**62), min_size=n, max_size=n))
    sizes = draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n))
    shapes = draw(st.lists(SHAPE, min_size=n, max_size=n))
    kinds = draw(st.lists(st.sampled_from(list(COLUMN_KINDS)), max_size=4))
    names = draw(
        st.lists(
            TEXT.filter(lambda t: t and not t.startswith("ai:")),
            unique=True,
            min_size=len(kinds),
            max_size=len(kinds),
        )
    )
    columns = {}
    for name, kind in zip(names, kinds, strict=True):
        values = draw(st.lists(COLUMN_KINDS[kind], min_size=n, max_size=n))
        dtype = {"int": np.int64, "float": np.float64, "bool": np.bool_, "str": object}[kind]
        columns[name] = np.array(values, dtype=dtype)
    metadata = MetadataTable(
        n, columns, [ColumnSpec(c, k) for c, k in zip(names, kinds, strict=True)]
    )
    with_fields = draw(st.booleans())
    fields = {}
    if with_fields:
        for field in draw(
            st.lists(st.sampled_from(["image", "mask", "a,b"]), min_size=1, unique=True)
        ):
            field_sizes = draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n))
            field_shapes = draw(st.lists(SHAPE, min_size=n, max_size=n))
            fields[field] = FieldColumns(
                np.array(field_sizes, dtype=np.int64), ShapeColumn.from_tuples(field_shapes)
            )
    checksums = None
    if draw(st.booleans()):
        checksums = np.array(
            draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)), dtype=np.int64
        )
    return IndexTable(
        chunk_names=chunk_names,
        chunk_ids=np.array(chunk_ids, dtype=np.int32),
        offsets=np.array(offsets, dtype=np.int64),
        sizes=np.array(sizes, dtype=np.int64),
        shapes=None if with_fields else ShapeColumn.from_tuples(shapes),
        metadata=metadata,
        fields=fields,
        checksums=checksums,
    )


@SETTINGS
@given(table=tables())
def test_the_csv_index_is_byte_for_byte_what_pandas_writes(table: IndexTable) -> None:
    terminator = line_terminator(table)
    assert csv_bytes(table, terminator) == pandas_bytes(table, terminator)


@pytest.mark.parametrize("text", [*SPECIAL_TEXTS, "a\rb", "x,y", 'say "hi"', "two\nlines", "é日🎉"])
@pytest.mark.parametrize("terminator", ["\n", "\r\n"])
def test_special_text_is_quoted_as_pandas_quotes_it(text: str, terminator: str) -> None:
    table = IndexTable(
        chunk_names=["chunk_0.chnk"],
        chunk_ids=np.zeros(3, dtype=np.int32),
        offsets=np.array([0, 4, 8]),
        sizes=np.array([4, 4, 4]),
        shapes=ShapeColumn.from_tuples([(2,), (1, 2), ()]),
        metadata=MetadataTable(
            3,
            {text or "x": np.array([text, "", text], dtype=object)},
            [ColumnSpec(text or "x", "str")],
        ),
    )
    assert csv_bytes(table, terminator) == pandas_bytes(table, terminator)


def test_a_lone_carriage_return_switches_lines_to_crlf() -> None:
    def table(text: str) -> IndexTable:
        return IndexTable(
            chunk_names=["chunk_0.chnk"],
            chunk_ids=np.zeros(1, dtype=np.int32),
            offsets=np.zeros(1, dtype=np.int64),
            sizes=np.zeros(1, dtype=np.int64),
            shapes=ShapeColumn.from_tuples([()]),
            metadata=MetadataTable(
                1, {"t": np.array([text], dtype=object)}, [ColumnSpec("t", "str")]
            ),
        )

    assert line_terminator(table("a\rb")) == "\r\n"
    assert line_terminator(table("a\r\nb")) == "\n"  # quoted anyway: it holds "\n"
    assert line_terminator(table("plain")) == "\n"


def test_large_tables_are_rendered_in_blocks_with_the_same_bytes() -> None:
    n = 150_000  # more than one block of rows
    rng = np.random.default_rng(0)
    table = IndexTable(
        chunk_names=[f"chunk_{i}.chnk" for i in range(3)],
        chunk_ids=np.sort(rng.integers(0, 3, n)).astype(np.int32),
        offsets=np.arange(n, dtype=np.int64) * 1024,
        sizes=np.full(n, 1024, dtype=np.int64),
        shapes=ShapeColumn.from_tuples([(32, 16)] * n),
        metadata=MetadataTable(
            n,
            {"label": rng.integers(0, 10, n), "score": rng.random(n)},
            [ColumnSpec("label", "int"), ColumnSpec("score", "float")],
        ),
    )
    assert csv_bytes(table, "\n") == pandas_bytes(table, "\n")
