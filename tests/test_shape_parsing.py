"""The original index's shape text is parsed in linear time: no input, however long or
hostile, makes opening an index backtrack (issue 11, item 9)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import acumen
from acumen.errors import CorruptDatasetError
from acumen.format.shapes import ShapeColumn, format_shape, parse_shape

LONG = 50_000
#: Far above what a linear parse of 50,000 characters takes, far below a backtracking one.
BUDGET_S = 0.5

PATHOLOGICAL = [
    "(1" + " " * LONG + "x)",  # the reported one: spaces, then no closing parenthesis
    "(1" + " " * LONG,
    "(" + " " * LONG + "1" + " " * LONG + ",x)",
    "(" + "1 ," * (LONG // 3) + "x)",
    "(" + "1 , " * (LONG // 4) + " " * LONG + "x)",
    "(" + "1," * LONG + ",)",
    "(" + ", " * LONG + ")",
    "(" + "," * LONG + ")",
    "(" + "1" * LONG + ")",
    "(" + "1" * LONG + ",)",
    "(" + "9" * LONG + "x",
    "(" * LONG + ")" * LONG,
    "(" + "1(" * LONG + ")",
    "(1" + "\t\n " * LONG + ",x)",
    " " * LONG + "(1, 2" + " " * LONG,
    "(" + "1 1 " * LONG + ")",
]


@pytest.mark.parametrize("text", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_a_hostile_shape_is_refused_in_linear_time(text: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ValueError, match="not a shape"):
        parse_shape(text)
    assert time.perf_counter() - start < BUDGET_S


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("(" + " , ".join(["7"] * (LONG // 4)) + " ,  )", (7,) * (LONG // 4)),
        ("(1" + "\t\n " * LONG + ",)", (1,)),
        ("(" + " " * LONG + "1," + " " * LONG + "2" + " " * LONG + ")", (1, 2)),
        ("(" + "0" * LONG + "5,)", (5,)),
    ],
    ids=range(4),
)
def test_a_long_valid_shape_parses_in_linear_time(text: str, shape: tuple[int, ...]) -> None:
    start = time.perf_counter()
    assert parse_shape(text) == shape
    assert time.perf_counter() - start < BUDGET_S


def test_an_original_index_with_a_hostile_shape_cell_opens_or_fails_fast(tmp_path: Path) -> None:
    """The reported case end to end: an original ``index.csv`` whose ``ai:shape`` cell is
    ``(1`` + 50,000 spaces + ``x)`` is refused at once, naming the column and row."""
    root = tmp_path / "original"
    (root / "chunks").mkdir(parents=True)
    (root / "chunks" / "chunk_0.chnk").write_bytes(bytes(4))
    hostile = "(1" + " " * LONG + "x)"
    (root / "index.csv").write_text(
        "ai:chunk_name,ai:offset_bytes,ai:size_bytes,ai:shape\n"
        f'chunks/chunk_0.chnk,0,2,"(1,)"\n'
        f'chunks/chunk_0.chnk,2,2,"{hostile}"\n'
    )
    start = time.perf_counter()
    with pytest.raises(CorruptDatasetError, match=r"ai:shape: row 1: not a shape"):
        acumen.open(root)
    assert time.perf_counter() - start < 5 * BUDGET_S


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("()", ()),
        ("( )", ()),
        ("(5,)", (5,)),
        ("( 5 , )", (5,)),
        ("(4, 3)", (4, 3)),
        ("(4,3,)", (4, 3)),
        ("  (0, 0, 1)  ", (0, 0, 1)),
        ("(\t4,\n3 )", (4, 3)),
        ("(007, 2)", (7, 2)),
        (f"({2**62},)", (2**62,)),
    ],
)
def test_the_text_forms_that_parse(text: str, shape: tuple[int, ...]) -> None:
    assert parse_shape(text) == shape


@pytest.mark.parametrize(
    "text",
    [
        "",
        "(",
        ")",
        "(5)",  # a one-element tuple needs its comma
        "(,)",
        "(,5)",
        "(5,,)",
        "(5,,6)",
        "(4 3)",
        "(-1,)",
        "(+1,)",
        "(1_0,)",  # int() would take it
        "(٣,)",  # a non-ASCII decimal digit: int() would take it too
        "(²,)",
        "(1.0,)",
        "[4, 3]",
        "4, 3",
        "((4, 3))",
        "(4, 3)x",
        f"({2**62 + 1},)",
        "(" + "0" * 30 + "1" + "0" * 30 + ",)",
    ],
)
def test_the_text_forms_that_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a shape"):
        parse_shape(text)


def test_anything_but_text_is_refused() -> None:
    for value in (None, 5, b"(5,)", (5,), float("nan")):
        with pytest.raises(ValueError, match="not a shape"):
            parse_shape(value)  # type: ignore[arg-type]


SHAPES = st.lists(st.integers(0, 2**62), max_size=8).map(tuple)
SPACE = st.text(alphabet=" \t", max_size=3)


@settings(max_examples=int(os.environ.get("ACUMEN_HYPOTHESIS_EXAMPLES", "30")) * 5)
@given(shape=SHAPES)
def test_valid_shapes_round_trip_through_their_text(shape: tuple[int, ...]) -> None:
    text = format_shape(shape)
    assert text == str(shape)
    assert parse_shape(text) == shape
    assert all(type(d) is int for d in parse_shape(text))


@settings(max_examples=int(os.environ.get("ACUMEN_HYPOTHESIS_EXAMPLES", "30")) * 5)
@given(shape=SHAPES, data=st.data())
def test_spacing_and_a_trailing_comma_do_not_change_a_shape(shape, data) -> None:
    """Whitespace around every token, and a trailing comma, parse as Python reads them."""
    parts = [f"{data.draw(SPACE)}{d}{data.draw(SPACE)}" for d in shape]
    comma = "," if len(shape) == 1 else data.draw(st.sampled_from(["", ","]))
    inner = ",".join(parts) + (comma + data.draw(SPACE) if shape else data.draw(SPACE))
    text = f"{data.draw(SPACE)}({inner}){data.draw(SPACE)}"
    assert parse_shape(text) == shape


def test_a_column_of_texts_parses_each_distinct_one() -> None:
    texts = ["(2, 3)", "(2, 4)", "(2, 3)", "( 2,3 )"]
    column = ShapeColumn.parse_texts(texts)
    assert [column[i] for i in range(4)] == [(2, 3), (2, 4), (2, 3), (2, 3)]
    with pytest.raises(ValueError, match=r"row 2: not a shape"):
        ShapeColumn.parse_texts(["(1,)", "(2,)", "(1" + " " * LONG + "x)"])
