"""Metadata comes back with the types it was written with, on every write path.

A column's type is fixed by the first sample (or declared before it); a later value of
another type is refused with a SampleError naming the sample, the column, its type and the
value, never absorbed by changing the column (an int column turned float would make every
earlier sample read back ``1`` as ``1.0``). The one widening allowed is an int value in a
float column: it reads back as ``2.0``, the number written, in the column's type.

Each case runs through the Writer, ``split_into_chunks`` and a conversion (one part, and a
part per item: the parts must agree exactly as one writer would).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import acumen
from acumen.convert import ConversionError, convert
from acumen.convert import sources as convert_sources
from acumen.convert.merge import _check_metadata
from acumen.errors import SampleError
from acumen.format.index_concat import concat_metadata
from acumen.format.metadata import ColumnSpec, MetadataTable

MODULE = "tests.test_metadata_types"


# --- a source and a reader a conversion names (worker processes import them) -------------
def value_items(values: list[Any]) -> Iterator[list[Any]]:
    """A callable source: one item per value, ``[position, value]``."""
    for position, value in enumerate(values):
        yield [position, value]


def read_value(item: list[Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """A callable reader: a small array, and the item's value as metadata ``x``."""
    position, value = item
    return np.full(2, position, np.int32), {"x": value}


# --- the three write paths ---------------------------------------------------------------
def with_writer(path: Path, values: list[Any]) -> None:
    with acumen.Writer(path, durable=False) as writer:
        for position, value in enumerate(values):
            writer.add(np.full(2, position, np.int32), x=value)


def with_split(path: Path, values: list[Any]) -> None:
    items = [(np.full(2, i, np.int32), {"x": v}) for i, v in enumerate(values)]
    acumen.split_into_chunks(items, path, dtype=None)


def with_convert(part_size: int) -> Callable[[Path, list[Any]], None]:
    def write(path: Path, values: list[Any]) -> None:
        convert(conversion(path, values, part_size))

    write.__name__ = f"convert_part_size_{part_size}"
    return write


def conversion(path: Path, values: list[Any], part_size: int, on_error: str = "raise") -> dict:
    return {
        "source": {"callable": f"{MODULE}:value_items", "arguments": {"values": values}},
        "reader": {"name": "callable", "configuration": {"function": f"{MODULE}:read_value"}},
        "output": {"path": str(path)},
        "run": {"part_size": part_size, "on_error": on_error, "progress": False},
    }


PATHS = [with_writer, with_split, with_convert(10), with_convert(1)]
path_ids = ["writer", "split_into_chunks", "convert-one-part", "convert-part-per-item"]
every_path = pytest.mark.parametrize("write", PATHS, ids=path_ids)


def read_back(path: Path) -> tuple[str, list[Any]]:
    """The column's declared type and the values as read."""
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    with acumen.open(path) as ds:
        values = [ds.metadata(i)["x"] for i in range(len(ds))]
    (spec,) = manifest["metadata"]
    return spec["type"], values


def fixed_as(kind: str) -> str:
    """What a refusal says fixed the column's type: the first sample, or (a conversion) its
    first item, for every part."""
    return (
        rf"(earlier samples gave {kind} \(first at sample 0\)|"
        rf"the conversion's first item, item 0 \(\[0, .*\]\) made it {kind}); "
    )


def refusal(write: Callable, path: Path, values: list[Any]) -> str:
    """The message of the refusal, the SampleError's own (a conversion wraps it, naming the
    item); no dataset is left committed."""
    with pytest.raises((SampleError, ConversionError)) as caught:
        write(path, values)
    if isinstance(caught.value, ConversionError):
        assert isinstance(caught.value.__cause__, SampleError)
        assert "item 1 ([1, " in str(caught.value)  # which item, in source order
    else:
        assert str(caught.value).startswith("sample 1")
    assert not (path / "manifest.json").exists() or (path / ".acumen-writing").exists()
    return str(caught.value)


# --- refused -----------------------------------------------------------------------------
@every_path
def test_a_float_after_ints_is_refused_not_promoted(tmp_path: Path, write: Callable) -> None:
    message = refusal(write, tmp_path / "ds", [1, 2.5, 3])
    assert re.search(r"metadata 'x' is float \(2\.5\) but " + fixed_as("int"), message)
    assert "an int column does not turn float" in message
    how = (  # what to do: a float column from the start
        "give floats from the first sample on (1.0, not 1), or declare the column first "
        "(Writer's metadata_types={'x': 'float'})",
        "make it float from the start: the conversion's first item, item 0 ([0, 1]) must "
        "give float",
    )
    assert how[0] in message if write in (with_writer, with_split) else how[1] in message


@every_path
def test_nan_after_ints_is_refused(tmp_path: Path, write: Callable) -> None:
    message = refusal(write, tmp_path / "ds", [1, float("nan")])
    assert re.search(r"metadata 'x' is float \(nan\) but " + fixed_as("int"), message)
    assert "NaN for missing values" in message


@every_path
def test_none_after_ints_says_nan_needs_a_float_column(tmp_path: Path, write: Callable) -> None:
    message = refusal(write, tmp_path / "ds", [1, None])
    assert "metadata 'x' = None (NoneType) cannot be stored" in message
    hint = (
        "(use float('nan') for a missing number); NaN goes in a float column, and this one is int"
    )
    assert hint in message


@every_path
@pytest.mark.parametrize(
    ("values", "kinds"),
    [([True, 2], ("int", "bool")), ([1, True], ("bool", "int")), ([1, "a"], ("str", "int"))],
    ids=["bool-then-int", "int-then-bool", "int-then-str"],
)
def test_other_kinds_are_refused(
    tmp_path: Path, write: Callable, values: list[Any], kinds: tuple[str, str]
) -> None:
    message = refusal(write, tmp_path / "ds", values)
    assert re.search(
        re.escape(f"metadata 'x' is {kinds[0]} ({values[1]!r}) but ") + fixed_as(kinds[1]), message
    )


@every_path
def test_an_int_a_float_column_cannot_hold_exactly_is_refused(
    tmp_path: Path, write: Callable
) -> None:
    message = refusal(write, tmp_path / "ds", [0.5, 2**53 + 1])
    assert "9007199254740993 is an int too large for the float column" in message


# --- accepted ----------------------------------------------------------------------------
@every_path
def test_ints_in_a_float_column_read_back_as_floats(tmp_path: Path, write: Callable) -> None:
    write(tmp_path / "ds", [1.5, 2, -3, float("nan"), 2**53])
    kind, values = read_back(tmp_path / "ds")
    assert kind == "float"
    assert values[:3] == [1.5, 2.0, -3.0] and all(type(v) is float for v in values)
    assert math.isnan(values[3]) and values[4] == float(2**53)


@every_path
def test_ints_stay_ints(tmp_path: Path, write: Callable) -> None:
    write(tmp_path / "ds", [1, 2, 3])
    assert read_back(tmp_path / "ds") == ("int", [1, 2, 3])


# --- Writer(metadata_types=...) ------------------------------------------------------------
def test_declared_float_column_takes_ints_from_the_first_sample(tmp_path: Path) -> None:
    with acumen.Writer(tmp_path / "ds", metadata_types={"x": "float"}) as writer:
        writer.add(np.zeros(1), x=1)
        writer.add(np.zeros(1), x=2.5)
    assert read_back(tmp_path / "ds") == ("float", [1.0, 2.5])


def test_declared_columns_hold_for_the_first_sample_too(tmp_path: Path) -> None:
    with acumen.Writer(tmp_path / "ds", metadata_types={"x": "int"}) as writer:
        with pytest.raises(
            SampleError, match=r"is float \(0.5\) but the Writer's metadata_types made it int"
        ):
            writer.add(np.zeros(1), x=0.5)
        with pytest.raises(SampleError, match=r"missing \['x'\], unexpected \['y'\]"):
            writer.add(np.zeros(1), y=1)
        writer.add(np.zeros(1), x=4)  # the refusals did not undo the declaration
    assert read_back(tmp_path / "ds") == ("int", [4])


@pytest.mark.parametrize(
    ("types", "error", "match"),
    [
        ({"x": "double"}, SampleError, r"'x' has type 'double'; a column's type is one of int"),
        ({"ai:x": "int"}, SampleError, r"reserved prefix"),
        ({"": "int"}, SampleError, r"empty string"),
        (["x"], TypeError, r"metadata_types must be a dict"),
    ],
    ids=["unknown-type", "reserved", "empty-name", "not-a-dict"],
)
def test_bad_declarations_are_refused_up_front(
    tmp_path: Path, types: Any, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        acumen.Writer(tmp_path / "ds", metadata_types=types)
    assert not (tmp_path / "ds").exists()


# --- conversions: every part gets the first item's types -----------------------------------
def test_a_skipped_item_is_reported_and_the_rest_keep_their_type(tmp_path: Path) -> None:
    summary = convert(conversion(tmp_path / "ds", [1, 2.5, 3, 4], part_size=2, on_error="skip"))
    assert [entry["position"] for entry in summary.skipped] == [1]
    assert "SampleError" in summary.skipped[0]["error"]
    assert (
        "is float (2.5) but the conversion's first item, item 0 ([0, 1]) made it int"
        in summary.skipped[0]["error"]
    )
    assert read_back(tmp_path / "ds") == ("int", [1, 3, 4])


def test_parts_that_disagree_are_refused_naming_them() -> None:
    """Parts written without types fixed up front (by an acumen before this rule, resumed
    now) may disagree: the merge refuses rather than turn the int part's values to floats."""
    ints = MetadataTable(2, {"x": np.array([1, 2])}, [ColumnSpec("x", "int")])
    floats = MetadataTable(1, {"x": np.array([2.5])}, [ColumnSpec("x", "float")])
    with pytest.raises(ConversionError) as caught:
        _check_metadata([ints, floats], ["parts/part-000000", "parts/part-000001"])
    message = str(caught.value)
    assert "parts/part-000000 has 'x' (int), parts/part-000001 has 'x' (float)" in message
    assert "remove the output folder and run the conversion again" in message
    _check_metadata([ints, ints], ["a", "b"])  # agreeing parts merge as before
    merged = concat_metadata([ints, ints], ["a", "b"])
    assert merged.specs == [ColumnSpec("x", "int")] and merged.column("x").tolist() == [1, 2] * 2


def test_a_csv_table_has_one_type_per_column_across_its_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pandas infers types per batch: a column of ints in the first batch and of 2.5 or an
    empty cell in a later one is float from its first row, as for the whole file."""
    monkeypatch.setattr(convert_sources, "_TABLE_BATCH", 2)
    (tmp_path / "data").mkdir()
    for i in range(6):
        np.save(tmp_path / "data" / f"{i}.npy", np.full(2, i, np.int16))
    pd.DataFrame(
        {
            "file": [f"data/{i}.npy" for i in range(6)],
            "score": ["1", "2", "3", "2.5", "5", ""],
            "name": ["a", "b", "c", "d", "7", ""],
            "count": ["1", "2", "3", "4", "5", "6"],
            "flag": ["True", "False", "True", "False", "yes", "True"],
        }
    ).to_csv(tmp_path / "list.csv", index=False)
    summary = convert(
        {
            "source": {"table": str(tmp_path / "list.csv"), "path_column": "file"},
            "reader": {"name": "npy"},
            "output": {"path": str(tmp_path / "ds")},
            "run": {"part_size": 2, "progress": False},
        }
    )
    assert summary.samples == 6 and not summary.skipped
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text(encoding="utf-8"))
    types = {spec["name"]: spec["type"] for spec in manifest["metadata"]}
    assert types == {"score": "float", "name": "str", "count": "int", "flag": "str", "path": "str"}
    with acumen.open(tmp_path / "ds") as ds:
        rows = [ds.metadata(i) for i in range(len(ds))]
    assert [r["score"] for r in rows][:5] == [1.0, 2.0, 3.0, 2.5, 5.0]
    assert math.isnan(rows[5]["score"])
    assert [r["name"] for r in rows] == ["a", "b", "c", "d", "7", ""]
    assert [r["count"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["flag"] for r in rows] == ["True", "False", "True", "False", "yes", "True"]
