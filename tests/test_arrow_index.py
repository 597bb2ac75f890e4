"""The ``arrow`` index format: round trips, columns used in place of the memory map, and an
open cost that does no per-sample Python work (counted, not timed)."""

from __future__ import annotations

import gc
import math
import pickle
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

import acumen
from acumen.errors import CorruptDatasetError
from acumen.format.index_table import FieldColumns, IndexTable
from acumen.format.metadata import ColumnSpec, MetadataTable
from acumen.format.shapes import ShapeColumn
from acumen.index_formats.arrow import ArrowIndex
from acumen.index_formats.arrow_text import ArrowStringColumn
from acumen.index_formats.parquet import ParquetIndex
from acumen.read.index_checks import ChunkFiles, IndexChecks, payload_rules

TEXTS = ["plain", "", "ünïcødé 日本語 🎉", "comma, inside", 'quote "', "new\nline", "cr\ronly"]
FLOATS = [0.5, math.nan, math.inf, -math.inf, -0.0, 1e-300, 0.1]


def write_dataset(path: Path, arrays: list[np.ndarray], with_metadata: bool = True) -> None:
    with acumen.Writer(path, index_format="arrow", durable=False) as writer:
        for i, array in enumerate(arrays):
            metadata: dict[str, Any] = {}
            if with_metadata:
                metadata = {
                    "label": i - 2**62 if i % 2 else 2**62 + i,
                    "score": FLOATS[i % len(FLOATS)],
                    "ok": bool(i % 3),
                    "text": TEXTS[i % len(TEXTS)],
                }
            writer.add(array, **metadata)


def check_dataset(path: Path, arrays: list[np.ndarray], with_metadata: bool = True) -> None:
    with acumen.open(path) as ds:
        assert len(ds) == len(arrays)
        for i, array in enumerate(arrays):
            got, metadata = ds[i]
            np.testing.assert_array_equal(got, array)
            assert got.shape == array.shape
            if not with_metadata:
                assert metadata == {}
                continue
            assert [type(v) for v in metadata.values()] == [int, float, bool, str]
            assert metadata["label"] == (i - 2**62 if i % 2 else 2**62 + i)
            expected = FLOATS[i % len(FLOATS)]
            assert metadata["score"] == expected or (
                math.isnan(expected) and math.isnan(metadata["score"])
            )
            assert math.copysign(1, metadata["score"]) == math.copysign(1, expected)
            assert metadata["ok"] is bool(i % 3)
            assert metadata["text"] == TEXTS[i % len(TEXTS)]


SHAPES = {
    "fixed": [np.arange(12, dtype=np.float32).reshape(4, 3) + i for i in range(23)],
    "same ndim": [np.arange(i * 3, dtype=np.int16).reshape(i, 3) for i in range(9)],
    "ragged": [
        np.arange(int(np.prod(s)), dtype=np.int16).reshape(s)
        for s in [(), (0,), (5,), (2, 3), (1, 2, 3), (7,), (0, 0), (1,), (3, 1, 1, 2)]
    ],
    "0-d": [np.array(i, dtype=np.float64) for i in range(5)],
}


@pytest.mark.parametrize("kind", list(SHAPES))
def test_round_trip_through_a_dataset(tmp_path: Path, kind: str) -> None:
    arrays = [a.astype(SHAPES[kind][0].dtype) for a in SHAPES[kind]]
    write_dataset(tmp_path / "ds", arrays)
    assert (tmp_path / "ds" / "index.arrow").is_file()
    assert not (tmp_path / "ds" / "index.csv").exists()
    check_dataset(tmp_path / "ds", arrays)


def test_shape_layout_in_the_file(tmp_path: Path) -> None:
    """A template of the shared dimensions in the schema's metadata; per row only the
    varying axes, in the narrowest type; nothing per row when no axis varies."""
    expected = {  # (template, column type)
        "fixed": (b"[4, 3]", None),
        "same ndim": (b"[null, 3]", pa.uint8()),
        "ragged": (None, pa.large_list(pa.int64())),
        "0-d": (b"[]", None),
        "two axes": (b"[null, 2, null]", pa.list_(pa.uint16(), 2)),
    }
    shapes = dict(SHAPES, **{"two axes": [np.zeros((i, 2, 300 + i)) for i in range(4)]})
    for kind, arrays in shapes.items():
        path = tmp_path / kind.replace(" ", "_")
        write_dataset(path, arrays, with_metadata=False)
        with pa.memory_map(str(path / "index.arrow")) as source:
            reader = ipc.open_file(source)
            assert reader.num_record_batches == 1
            schema = reader.schema
        template, column_type = expected[kind]
        assert (schema.metadata or {}).get(b"ai:shape") == template, kind
        if column_type is None:
            assert "ai:shape" not in schema.names, kind
        else:
            assert schema.field("ai:shape").type == column_type, kind
        check_dataset(path, arrays, with_metadata=False)
        assert schema.field("ai:chunk_name").type == pa.dictionary(pa.int32(), pa.string())
        assert schema.field("ai:offset_bytes").type == pa.int64()


def test_metadata_types_in_the_file_and_uncompressed(tmp_path: Path) -> None:
    write_dataset(tmp_path / "ds", SHAPES["fixed"])
    with pa.memory_map(str(tmp_path / "ds" / "index.arrow")) as source:
        reader = ipc.open_file(source)
        types = {f.name: f.type for f in reader.schema}
        batch = reader.get_batch(0)
    assert types["label"] == pa.int64() and types["score"] == pa.float64()
    assert types["ok"] == pa.bool_() and types["text"] == pa.string()
    assert batch.column("score").null_count == 0  # NaN is a value, not a null
    # Uncompressed: the raw offsets are in the file as they are in memory.
    with acumen.open(tmp_path / "ds") as ds:
        needle = ds.table.offsets.tobytes()
    assert needle in (tmp_path / "ds" / "index.arrow").read_bytes()


def test_zero_samples(tmp_path: Path) -> None:
    write_dataset(tmp_path / "ds", [])
    with acumen.open(tmp_path / "ds") as ds:
        assert len(ds) == 0 and ds.table.chunk_names == []
        assert len(ds.table.shapes) == 0 and list(ds) == []


def test_zero_samples_with_declared_columns_round_trips(tmp_path: Path) -> None:
    specs = [ColumnSpec("a", "int"), ColumnSpec("b", "str"), ColumnSpec("c", "bool")]
    columns = {
        "a": np.zeros(0, np.int64),
        "b": np.zeros(0, object),
        "c": np.zeros(0, np.bool_),
    }
    table = IndexTable(
        [], np.zeros(0), np.zeros(0), np.zeros(0), ShapeColumn(0, fixed=()),
        MetadataTable(0, columns, specs),
    )  # fmt: skip
    ArrowIndex().write(table, tmp_path / "index.arrow")
    again = ArrowIndex().read(tmp_path / "index.arrow", specs)
    assert again == table and len(again) == 0
    assert again.metadata.column("b").dtype == object


# --- columns in place ----------------------------------------------------------------


def mapped_file(array: np.ndarray) -> str | None:
    """The file mapped at ``array``'s first byte, from ``/proc/self/maps`` (Linux)."""
    address = array.__array_interface__["data"][0]
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            parts = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            if start <= address < end:
                return parts[5].strip() if len(parts) == 6 else ""
    return None


needs_proc_maps = pytest.mark.skipif(
    not Path("/proc/self/maps").exists(), reason="needs /proc/self/maps (Linux)"
)


@needs_proc_maps
@pytest.mark.parametrize("kind", ["fixed", "same ndim", "ragged"])
def test_columns_are_views_of_the_mapped_file(tmp_path: Path, kind: str) -> None:
    arrays = SHAPES[kind] * 3
    write_dataset(tmp_path / "ds", arrays)
    index_file = str((tmp_path / "ds" / "index.arrow").resolve())
    with acumen.open(tmp_path / "ds") as ds:
        table = ds.table
        columns = [table.chunk_ids, table.offsets, table.sizes, table.metadata.column("label")]
        columns.append(table.metadata.column("score"))
        if kind == "same ndim":
            columns.append(table.shapes.parts()[1])  # the varying axis
        if kind == "ragged":
            columns += list(table.shapes.to_ragged())
        for column in columns:
            assert not column.flags.owndata and not column.flags.writeable
            assert mapped_file(column) == index_file
        # bool is bit-packed in Arrow: unpacked into memory of its own (O(n), by design).
        assert mapped_file(table.metadata.column("ok")) != index_file
        assert isinstance(table.metadata._columns["text"], ArrowStringColumn)


@needs_proc_maps
def test_the_mapping_lives_as_long_as_the_arrays(tmp_path: Path) -> None:
    arrays = SHAPES["fixed"]
    write_dataset(tmp_path / "ds", arrays)
    index_file = tmp_path / "ds" / "index.arrow"
    table = ArrowIndex().read(index_file, None)
    offsets, text = table.offsets, table.metadata._columns["text"]
    expected = offsets.copy()
    index_file.rename(tmp_path / "elsewhere.arrow")  # the map follows the file, not the name
    del table
    gc.collect()
    np.testing.assert_array_equal(offsets, expected)
    assert text.item(2) == TEXTS[2]
    assert mapped_file(offsets) == str((tmp_path / "elsewhere.arrow").resolve())
    del offsets, text
    gc.collect()
    assert "elsewhere.arrow" not in Path("/proc/self/maps").read_text(encoding="utf-8")


def test_pickling_an_opened_dataset(tmp_path: Path) -> None:
    arrays = SHAPES["ragged"] * 2
    write_dataset(tmp_path / "ds", arrays)
    with acumen.open(tmp_path / "ds") as ds:
        again = pickle.loads(pickle.dumps(ds))
        assert again.table == ds.table
        text = again.table.metadata._columns["text"]
        assert isinstance(text, ArrowStringColumn)
    for i, array in enumerate(arrays):
        got, metadata = again[i]
        np.testing.assert_array_equal(got, array)
        assert metadata["text"] == TEXTS[i % len(TEXTS)]
    again.close()
    check_dataset(tmp_path / "ds", arrays)


def test_table_take_and_frame(tmp_path: Path) -> None:
    write_dataset(tmp_path / "ds", SHAPES["ragged"])
    with acumen.open(tmp_path / "ds") as ds:
        table = ds.table
        part = table.take(np.array([8, 0, -1, 3]))
        assert [part.metadata.row(i)["text"] for i in range(4)] == [
            TEXTS[8 % 7], TEXTS[0], TEXTS[8 % 7], TEXTS[3]
        ]  # fmt: skip
        assert part.shapes[0] == (3, 1, 1, 2) and part.shapes[3] == (2, 3)
        frame = ds.index
        assert list(frame["text"]) == [TEXTS[i % len(TEXTS)] for i in range(len(ds))]
        assert list(frame["ai:shape"])[3] == "(2, 3)"
        column = table.metadata.column("text")
        assert isinstance(column, np.ndarray) and column.dtype == object
        assert list(column == "plain") == [i % len(TEXTS) == 0 for i in range(len(ds))]


def test_string_column_indexing() -> None:
    values = ["a", "", "ü日🎉", "d", "e"]
    column = ArrowStringColumn(pa.array(values, pa.string()))
    assert len(column) == 5 and column.dtype == object and list(column) == values
    assert column[2] == "ü日🎉" and column[-1] == "e" and column[np.int64(1)] == ""
    assert column.item(0) == "a"
    assert column[1:4].tolist() == values[1:4] and column[::-2].tolist() == values[::-2]
    assert column[np.array([4, -5, 2])].tolist() == ["e", "a", "ü日🎉"]
    assert column[np.array([True, False, False, True, False])].tolist() == ["a", "d"]
    assert column[np.array([], dtype=np.int64)].tolist() == []
    with pytest.raises(IndexError):
        column[5]
    with pytest.raises(IndexError):
        column[np.array([0, 5])]
    with pytest.raises(IndexError):
        column[np.array([True])]
    sliced = ArrowStringColumn(pa.array(values, pa.large_string()).slice(2, 2))
    assert list(sliced) == ["ü日🎉", "d"] and np.asarray(sliced).tolist() == ["ü日🎉", "d"]
    assert pickle.loads(pickle.dumps(sliced)).tolist() == ["ü日🎉", "d"]
    assert pa.array(sliced, pa.string()).to_pylist() == ["ü日🎉", "d"]
    empty = ArrowStringColumn(pa.array([], pa.string()))
    assert len(empty) == 0 and list(empty) == []


def test_invalid_utf8_is_reported_when_read(tmp_path: Path) -> None:
    broken = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(np.array([0, 2], np.int32)), pa.py_buffer(b"\xff\xfe")]
    )
    column = ArrowStringColumn(broken, "somewhere/index.arrow")
    with pytest.raises(CorruptDatasetError, match=r"somewhere/index[.]arrow"):
        column.item(0)


# --- scaling: no per-sample Python work at open ---------------------------------------


def big_table(n: int, ragged: bool) -> IndexTable:
    if ragged:
        shapes = ShapeColumn.from_ragged(
            np.arange(n + 1, dtype=np.int64) * 2 - np.arange(n + 1) % 2, np.ones(2 * n, np.int64)
        )
    else:
        shapes = ShapeColumn(n, fixed=(32, 16))
    words = np.array(["train", "val", "test ü"], dtype=object)
    metadata = MetadataTable(
        n,
        {"label": np.arange(n, dtype=np.int64) % 10, "split": words[np.arange(n) % 3]},
        [ColumnSpec("label", "int"), ColumnSpec("split", "str")],
    )
    return IndexTable(
        chunk_names=[f"chunks/chunk_{c}.chnk" for c in range(n // 1000 + 1)],
        chunk_ids=np.arange(n) // 1000,
        offsets=(np.arange(n, dtype=np.int64) % 1000) * 1024,
        sizes=np.full(n, 1024, dtype=np.int64),
        shapes=shapes,
        metadata=metadata,
    )


def python_events_to_read(path: Path, specs: list[ColumnSpec]) -> int:
    """Python calls and lines executed by ``read`` (a loop per row in Python would show)."""
    events = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal events
        events += 1
        return trace

    sys.settrace(trace)
    try:
        table = ArrowIndex().read(path, specs)
    finally:
        sys.settrace(None)
    assert len(table)
    return events


@pytest.mark.parametrize("ragged", [False, True], ids=["fixed", "ragged"])
def test_open_runs_the_same_python_for_any_size(tmp_path: Path, ragged: bool) -> None:
    counts = []
    for n in (1_000, 200_000):
        table = big_table(n, ragged)
        path = tmp_path / f"{n}.arrow"
        ArrowIndex().write(table, path)
        counts.append(python_events_to_read(path, table.metadata.specs))
    assert counts[0] == counts[1]


def test_open_allocates_far_less_than_the_offsets_column(tmp_path: Path) -> None:
    n = 200_000
    table = big_table(n, ragged=False)
    path = tmp_path / "index.arrow"
    ArrowIndex().write(table, path)
    del table
    gc.collect()
    arrow_before = pa.total_allocated_bytes()
    tracemalloc.start()
    try:
        again = ArrowIndex().read(path, [ColumnSpec("label", "int"), ColumnSpec("split", "str")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    arrow_allocated = pa.total_allocated_bytes() - arrow_before
    assert len(again) == n and again.metadata.row(n - 1) == {"label": 9, "split": "val"}
    # One int64 column alone would be 1.6 MB; the whole open stays below a tenth of it.
    assert peak < n * 8 / 10, peak
    assert arrow_allocated < n * 8 / 10, arrow_allocated


# --- errors beyond the conformance kit ------------------------------------------------


def write_batch(path: Path, columns: dict[str, pa.Array], batches: int = 1) -> None:
    batch = pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, batch.schema) as writer:
        for _ in range(batches):
            writer.write_batch(batch)


def good_columns() -> dict[str, pa.Array]:
    return {
        "ai:chunk_name": pa.DictionaryArray.from_arrays(
            pa.array([0, 0, 1], pa.int32()), pa.array(["chunks/chunk_0.chnk", "chunks/c1"])
        ),
        "ai:offset_bytes": pa.array([0, 8, 0], pa.int64()),
        "ai:size_bytes": pa.array([8, 8, 8], pa.int64()),
        "ai:shape": pa.array([[2], [2], [2]], pa.list_(pa.int64())),
        "name": pa.array(["a", "b", "c"], pa.string()),
    }


def test_a_file_of_several_batches_and_plain_lists_reads(tmp_path: Path) -> None:
    path = tmp_path / "index.arrow"
    write_batch(path, good_columns(), batches=2)
    table = ArrowIndex().read(path, [ColumnSpec("name", "str")])
    assert len(table) == 6 and table.shapes.fixed == (2,)
    assert table.chunk_names == ["chunks/chunk_0.chnk", "chunks/c1"]
    assert list(table.chunk_ids) == [0, 0, 1] * 2
    assert [table.metadata.row(i)["name"] for i in range(6)] == ["a", "b", "c"] * 2
    write_batch(path, good_columns(), batches=0)
    table = ArrowIndex().read(path, [ColumnSpec("name", "str")])
    assert len(table) == 0 and table.chunk_names == []


def test_list_offsets_not_starting_at_zero(tmp_path: Path) -> None:
    columns = good_columns()
    shapes = pa.array([[9, 9], [1], [2, 3], [4, 5, 6]], pa.list_(pa.int64())).slice(1)
    columns["ai:shape"] = shapes
    write_batch(tmp_path / "index.arrow", columns)
    table = ArrowIndex().read(tmp_path / "index.arrow", None)
    assert [table.shapes[i] for i in range(3)] == [(1,), (2, 3), (4, 5, 6)]


def test_inferred_columns_without_a_manifest(tmp_path: Path) -> None:
    columns = good_columns()
    columns["n"] = pa.array([1, 2, 3], pa.int64())
    columns["ok"] = pa.array([True, False, True])
    write_batch(tmp_path / "index.arrow", columns)
    table = ArrowIndex().read(tmp_path / "index.arrow", None)
    assert [(s.name, s.type) for s in table.metadata.specs] == [
        ("name", "str"), ("n", "int"), ("ok", "bool")
    ]  # fmt: skip
    assert table.metadata.row(1) == {"name": "b", "n": 2, "ok": False}


BROKEN = {
    "offsets int32": ("ai:offset_bytes", pa.array([0, 8, 0], pa.int32()), "int64"),
    "sizes with a null": ("ai:size_bytes", pa.array([8, None, 8], pa.int64()), "null"),
    "chunk names as text": ("ai:chunk_name", pa.array(["a", "a", "b"]), "dictionary"),
    "shape as text": ("ai:shape", pa.array(["(2,)"] * 3), "list of int64"),
    "shape of int32": ("ai:shape", pa.array([[2]] * 3, pa.list_(pa.int32())), "list of int64"),
    "negative dimension": ("ai:shape", pa.array([[2], [-1], [2]], pa.list_(pa.int64())), "neg"),
    "negative fixed dimension": (
        "ai:shape",
        pa.array([[2], [-1], [2]], pa.list_(pa.int64(), 1)),
        "negative",
    ),
    "metadata of another type": ("name", pa.array([1, 2, 3], pa.int64()), "should hold str"),
    "metadata with a null": ("name", pa.array(["a", None, "c"]), "null"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_columns_are_corrupt_and_name_the_file(tmp_path: Path, case: str) -> None:
    name, array, message = BROKEN[case]
    columns = good_columns()
    columns[name] = array
    path = tmp_path / "index.arrow"
    write_batch(path, columns)
    with pytest.raises(CorruptDatasetError, match=message) as error:
        ArrowIndex().read(path, [ColumnSpec("name", "str")])
    assert str(path) in str(error.value)


def _write_with_template(
    path: Path, template: bytes | None, shape: pa.Array | None, **replaced: pa.Array
) -> None:
    """An index in the template layout: ``shape`` holds the varying axes (or is absent)."""
    columns = {**good_columns(), **replaced}
    del columns["ai:shape"]
    if shape is not None:
        columns["ai:shape"] = shape
    batch = pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))
    batch = batch.replace_schema_metadata({b"ai:shape": template} if template else None)
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, batch.schema) as writer:
        writer.write_batch(batch)


BROKEN_LAYOUT = {
    "template not JSON": (b"[2,", None, "template"),
    "template of text": (b'["2"]', None, "template"),
    "negative template": (b"[-2]", None, "template"),
    "template too deep": (b"[" + b", ".join([b"1"] * 65) + b"]", None, "template"),
    "column though no axis varies": (b"[2]", pa.array([2, 2, 2], pa.uint8()), "no axis varies"),
    "no column for the varying axis": (b"[null]", None, "lacks"),
    "varying axis of floats": (b"[null]", pa.array([2.0] * 3), "integers"),
    "varying axis of uint64": (b"[null]", pa.array([2] * 3, pa.uint64()), "integers"),
    "two axes in one column": (b"[null, null]", pa.array([2] * 3, pa.uint8()), "fixed_size"),
    "varying axis with a null": (b"[null]", pa.array([2, None, 2], pa.uint8()), "null"),
}


@pytest.mark.parametrize("case", list(BROKEN_LAYOUT))
def test_broken_shape_layouts_are_corrupt(tmp_path: Path, case: str) -> None:
    template, shape, message = BROKEN_LAYOUT[case]
    path = tmp_path / "index.arrow"
    _write_with_template(path, template, shape)
    with pytest.raises(CorruptDatasetError, match=message) as error:
        ArrowIndex().read(path, [ColumnSpec("name", "str")])
    assert str(path) in str(error.value)


BROKEN_ROWS = {  # read as they are; the rows are refused when read (acumen.read.index_checks)
    "negative offset": ("ai:offset_bytes", pa.array([0, -8, 0], pa.int64()), "negative offset"),
    "chunk id past the names": (
        "ai:chunk_name",
        pa.DictionaryArray.from_arrays(
            pa.array([0, 5, 0], pa.int32()), pa.array(["a", "b"]), safe=False
        ),
        "names no chunk file",
    ),
    "negative varying dimension": ("ai:shape", pa.array([2, -1, 2], pa.int32()), "negative"),
}


@pytest.mark.parametrize("case", list(BROKEN_ROWS))
def test_broken_rows_are_found_by_the_row_checks(tmp_path: Path, case: str) -> None:
    name, array, message = BROKEN_ROWS[case]
    path = tmp_path / "index.arrow"
    if name == "ai:shape":
        _write_with_template(path, b"[null]", array)
    else:
        _write_with_template(path, b"[null]", pa.array([2, 2, 2], pa.uint8()), **{name: array})
    table = ArrowIndex().read(path, [ColumnSpec("name", "str")])
    files = ChunkFiles(path, ["a", "b"], np.array([100, 100]))
    rules = payload_rules(table, np.dtype("<f4"), True, [])
    checks = IndexChecks(files, table, rules, fields=False)
    problems = checks.problems()
    assert len(problems) == 1 and "sample 1" in problems[0] and message in problems[0]
    checks.check(0)
    checks.check(2)
    with pytest.raises(CorruptDatasetError, match=message):
        checks.check(1)


def test_missing_reserved_column_and_other_files(tmp_path: Path) -> None:
    columns = good_columns()
    del columns["ai:size_bytes"]
    path = tmp_path / "index.arrow"
    write_batch(path, columns)
    with pytest.raises(CorruptDatasetError, match=r"lacks .*ai:size_bytes"):
        ArrowIndex().read(path, [ColumnSpec("name", "str")])
    parquet = tmp_path / "index.parquet"
    ParquetIndex().write(big_table(10, False), parquet)
    with pytest.raises(CorruptDatasetError, match=r"index[.]parquet"):
        ArrowIndex().read(parquet, None)
    empty = tmp_path / "empty.arrow"
    empty.write_bytes(b"")
    with pytest.raises(CorruptDatasetError, match=r"empty[.]arrow"):
        ArrowIndex().read(empty, None)
    truncated = tmp_path / "truncated.arrow"
    ArrowIndex().write(big_table(1000, False), tmp_path / "whole.arrow")
    truncated.write_bytes((tmp_path / "whole.arrow").read_bytes()[:-100])
    with pytest.raises(CorruptDatasetError, match=r"truncated[.]arrow"):
        ArrowIndex().read(truncated, None)


def test_multi_field_index_round_trips_in_place(tmp_path: Path) -> None:
    n = 6
    fields = {
        "image": FieldColumns(np.full(n, 12), ShapeColumn(n, fixed=(2, 3, 2))),
        "points": FieldColumns(
            np.arange(n) * 16, ShapeColumn.from_tuples([(i, 2) for i in range(n)])
        ),
        "jpeg": FieldColumns(
            np.arange(n) + 100, ShapeColumn.from_tuples([(i + 100,) for i in range(n)])
        ),
    }
    sizes = sum(c.sizes for c in fields.values())
    table = IndexTable(
        chunk_names=["chunks/chunk_0.chnk"],
        chunk_ids=np.zeros(n),
        offsets=np.concatenate([[0], np.cumsum(sizes)[:-1]]),
        sizes=sizes,
        shapes=None,
        metadata=MetadataTable(
            n, {"t": np.array(list("abcdef"), object)}, [ColumnSpec("t", "str")]
        ),
        fields=fields,
    )
    path = tmp_path / "index.arrow"
    ArrowIndex().write(table, path)
    again = ArrowIndex().read(path, [ColumnSpec("t", "str")])
    assert again == table and again.shapes is None and list(again.fields) == list(fields)
    assert again.fields["image"].shapes.fixed == (2, 3, 2)
    assert again.fields["points"].shapes[4] == (4, 2)
    assert again.metadata.row(5) == {"t": "f"}
    if Path("/proc/self/maps").exists():
        assert mapped_file(again.fields["points"].sizes) == str(path.resolve())
