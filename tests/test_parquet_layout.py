"""The ``parquet`` index's layout: what is in the file for each kind of shapes and text,
round trips of every kind (hypothesis too), files in the layout written before 0.1.0's
release (list shapes, plain text, int64 sizes), what pandas makes of the file, and damaged
or hostile files (acumen's errors only, never wrong values)."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acumen
from acumen.errors import CorruptDatasetError
from acumen.format.index_table import FieldColumns, IndexTable
from acumen.format.metadata import ColumnSpec, MetadataTable
from acumen.format.shapes import MAX_DIMENSION, ShapeColumn
from acumen.index_formats.arrow_text import ArrowStringColumn
from acumen.index_formats.parquet import ParquetIndex
from acumen.read.index_checks import ChunkFiles, IndexChecks, payload_rules
from tests.dataset_edits import reseal

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TEXTS = ["plain", "", "ünïcødé 日本語 🎉", "comma, inside", 'quote "', "new\nline", "\x00nul"]


def make_table(
    shapes: ShapeColumn,
    metadata: dict[str, tuple[str, Any]] | None = None,
    sizes: np.ndarray | None = None,
    checksums: bool = False,
) -> IndexTable:
    """An index of ``len(shapes)`` samples, 4 to a chunk; ``metadata`` maps a column name
    to (type, values)."""
    n = len(shapes)
    metadata = metadata or {}
    specs = [ColumnSpec(name, kind) for name, (kind, _) in metadata.items()]
    columns = {
        name: np.asarray(values, dtype=object if kind == "str" else None)
        for name, (kind, values) in metadata.items()
    }
    if sizes is None:
        sizes = np.arange(n, dtype=np.int64) * 8
    chunk_ids = np.arange(n) // 4
    return IndexTable(
        chunk_names=[f"chunks/chunk_{c}.chnk" for c in range((n + 3) // 4)],
        chunk_ids=chunk_ids,
        offsets=np.arange(n, dtype=np.int64) % 4 * 1000,
        sizes=sizes,
        shapes=shapes,
        metadata=MetadataTable(n, columns, specs),
        checksums=np.arange(n, dtype=np.int64) - 2**62 if checksums else None,
    )


def round_trip(table: IndexTable, path: Path, **config: Any) -> IndexTable:
    ParquetIndex(**config).write(table, path)
    again = ParquetIndex(**config).read(path, table.metadata.specs)
    assert again == table
    assert again.chunk_ids.dtype == np.int32 and again.offsets.dtype == np.int64
    for i in range(len(table)):
        assert again.shapes[i] == table.shapes[i]
        assert again.metadata.row(i) == table.metadata.row(i) or _nan_row(table, again, i)
    return again


def _nan_row(table: IndexTable, again: IndexTable, i: int) -> bool:
    ours, theirs = table.metadata.row(i), again.metadata.row(i)
    return all(
        a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
        for a, b in zip(ours.values(), theirs.values(), strict=True)
    )


def schema_of(path: Path) -> pa.Schema:
    return pq.read_schema(path)


# --- the layout in the file ---------------------------------------------------------------
LAYOUTS = {  # shapes -> (template, ai:shape column type, or None when absent)
    "fixed": ([(4, 3)] * 9, b"[4, 3]", None),
    "0-d": ([()] * 5, b"[]", None),
    "one varying axis": ([(i, 16) for i in range(1, 10)], b"[null, 16]", pa.uint8()),
    "uint16 axis": ([(300 + i, 2) for i in range(5)], b"[null, 2]", pa.uint16()),
    "int32 axis": ([(2, 70_000 + i) for i in range(5)], b"[2, null]", pa.int32()),
    "int64 axis": ([(2**40 + i,) for i in range(5)], b"[null]", pa.int64()),
    "two axes": (  # one type for all of them, that of the largest
        [(i, 2, 300 + i) for i in range(1, 6)],
        b"[null, 2, null]",
        pa.struct([pa.field(str(j), pa.uint16(), nullable=False) for j in (0, 2)]),
    ),
    "every axis": (
        [(i, i + 1, i + 2) for i in range(5)],
        b"[null, null, null]",
        pa.struct([pa.field(str(j), pa.uint8(), nullable=False) for j in range(3)]),
    ),
    "ragged": ([(), (0,), (5,), (2, 3), (1, 2, 3), (7,)], None, pa.list_(pa.int64())),
}


@pytest.mark.parametrize("kind", list(LAYOUTS))
def test_shape_layout_in_the_file(tmp_path: Path, kind: str) -> None:
    tuples, template, column_type = LAYOUTS[kind]
    path = tmp_path / "index.parquet"
    round_trip(make_table(ShapeColumn.from_tuples(tuples)), path)
    schema = schema_of(path)
    assert (schema.metadata or {}).get(b"ai:shape") == template
    if column_type is None:
        assert "ai:shape" not in schema.names
    else:
        assert schema.field("ai:shape").type == column_type
    assert all(not field.nullable for field in schema)
    assert schema.field("ai:chunk_name").type == pa.dictionary(pa.int32(), pa.string())
    assert schema.field("ai:offset_bytes").type == pa.int64()


def test_offsets_are_delta_encoded_and_sizes_int32_when_they_fit(tmp_path: Path) -> None:
    n = 50
    table = make_table(ShapeColumn(n, fixed=(2,)), checksums=True)
    path = tmp_path / "index.parquet"
    round_trip(table, path)
    footer = pq.read_metadata(path)
    encodings = {
        footer.row_group(0).column(j).path_in_schema: footer.row_group(0).column(j).encodings
        for j in range(footer.num_columns)
    }
    assert "DELTA_BINARY_PACKED" in encodings["ai:offset_bytes"]
    assert "RLE_DICTIONARY" not in encodings["ai:offset_bytes"]
    assert "RLE_DICTIONARY" not in encodings["ai:xxh3_64"]
    assert schema_of(path).field("ai:size_bytes").type == pa.int32()
    assert ParquetIndex().read(path, []).sizes.dtype == np.int32
    big = make_table(ShapeColumn(3, fixed=(2,)), sizes=np.array([0, 2**31, 5]))
    again = round_trip(big, tmp_path / "big.parquet")
    assert schema_of(tmp_path / "big.parquet").field("ai:size_bytes").type == pa.int64()
    assert again.sizes.dtype == np.int64 and again.sizes[1] == 2**31


@pytest.mark.parametrize("compression", ["zstd", "none", "snappy", "lz4", "gzip", "brotli"])
def test_every_compression(tmp_path: Path, compression: str) -> None:
    shapes = ShapeColumn.from_tuples([(i % 7, 3, i % 5) for i in range(30)])
    metadata = {"split": ("str", ["train", "val", "test"] * 10)}
    round_trip(make_table(shapes, metadata), tmp_path / "i.parquet", compression=compression)


def test_zero_samples(tmp_path: Path) -> None:
    metadata = {"a": ("int", []), "b": ("str", []), "c": ("bool", []), "d": ("float", [])}
    again = round_trip(make_table(ShapeColumn(0, fixed=()), metadata), tmp_path / "i.parquet")
    assert len(again) == 0 and again.chunk_names == [] and len(again.shapes) == 0
    assert list(again.metadata.raw_column("b")) == []
    assert np.asarray(again.metadata.raw_column("b")).tolist() == []


def test_huge_dimensions(tmp_path: Path) -> None:
    cases = [
        [(MAX_DIMENSION, 0)] * 3,  # fixed, in the template only
        [(MAX_DIMENSION - i, 0) for i in range(3)],  # varying, int64
        [(0, 2**33, i) for i in range(3)],
        [(2**62,), (0, 2**62), ()],  # ragged
    ]
    for k, tuples in enumerate(cases):
        round_trip(make_table(ShapeColumn.from_tuples(tuples)), tmp_path / f"{k}.parquet")


def test_multi_field_index(tmp_path: Path) -> None:
    n = 6
    fields = {
        "image": FieldColumns(np.full(n, 12), ShapeColumn(n, fixed=(2, 3, 2))),
        "points": FieldColumns(
            np.arange(n) * 16, ShapeColumn.from_tuples([(i, 2) for i in range(n)])
        ),
        "ragged": FieldColumns(
            np.arange(n), ShapeColumn.from_tuples([(1,) * (i % 3) for i in range(n)])
        ),
    }
    base = make_table(ShapeColumn(n, fixed=()), {"t": ("str", list("abcdef"))})
    table = IndexTable(
        base.chunk_names,
        base.chunk_ids,
        base.offsets,
        sum(c.sizes for c in fields.values()),
        None,
        base.metadata,
        fields,
    )
    path = tmp_path / "index.parquet"
    ParquetIndex().write(table, path)
    assert ParquetIndex().read(path, table.metadata.specs) == table
    schema = schema_of(path)
    assert schema.metadata[b"ai:shape:image"] == b"[2, 3, 2]"
    assert "ai:shape:image" not in schema.names
    assert schema.metadata[b"ai:shape:points"] == b"[null, 2]"
    assert schema.field("ai:shape:points").type == pa.uint8()
    assert b"ai:shape:ragged" not in schema.metadata
    assert schema.field("ai:shape:ragged").type == pa.list_(pa.int64())


# --- text metadata --------------------------------------------------------------------------
def test_text_with_few_distinct_values_is_a_dictionary(tmp_path: Path) -> None:
    n = 60
    many = [f"file_{i:04d}.jpg" for i in range(n)]
    metadata = {
        "split": ("str", [["train", "val", "test ü"][i % 3] for i in range(n)]),
        "path": ("str", many),
        "odd": ("str", [TEXTS[i % len(TEXTS)] for i in range(n)]),
        "label": ("int", list(range(n))),
    }
    path = tmp_path / "index.parquet"
    again = round_trip(make_table(ShapeColumn(n, fixed=(1,)), metadata), path)
    schema = schema_of(path)
    assert schema.field("split").type == pa.dictionary(pa.int32(), pa.string())
    assert schema.field("odd").type == pa.dictionary(pa.int32(), pa.string())
    assert schema.field("path").type == pa.string()  # every value distinct: plain
    split = again.metadata.raw_column("split")
    assert isinstance(split, ArrowStringColumn) and "3 distinct" in repr(split)
    assert split.item(4) == "val" and split[-1] == "test ü"
    column = again.metadata.column("split")
    assert isinstance(column, np.ndarray) and column.dtype == object
    assert column.tolist() == metadata["split"][1]


def test_a_large_dictionary_stays_plain(tmp_path: Path) -> None:
    """Distinct values beyond TEXT_DICTIONARY_BYTES: plain text, as a Parquet writer would
    fall back to plain pages (slow to read as a dictionary) anyway."""
    n = 2000
    values = [f"{'x' * 600}{i % 1000}" for i in range(n)]  # 1000 distinct, ~600 kB
    path = tmp_path / "index.parquet"
    round_trip(make_table(ShapeColumn(n, fixed=()), {"t": ("str", values)}), path)
    assert schema_of(path).field("t").type == pa.string()


def test_dictionary_text_column_behaves_like_the_plain_one() -> None:
    values = ["a", "", "ü日🎉", "a", "", "d", "a"]
    plain = ArrowStringColumn(pa.array(values, pa.string()))
    coded = ArrowStringColumn(pa.array(values, pa.string()).dictionary_encode(), "here")
    for column in (plain, coded):
        assert len(column) == 7 and column.dtype == object and list(column) == values
        assert column[2] == "ü日🎉" and column[-1] == "a" and column[np.int64(1)] == ""
        assert [column.item(i) for i in range(7)] == values
        assert column[1:4].tolist() == values[1:4] and column[::-2].tolist() == values[::-2]
        assert column[5:2].tolist() == [] and column[-2:].tolist() == values[-2:]
        assert column[np.array([4, -7, 2])].tolist() == ["", "a", "ü日🎉"]
        mask = np.array([True, False, False, True, False, False, True])
        assert column[mask].tolist() == ["a", "a", "a"]
        assert column[np.array([], dtype=np.int64)].tolist() == []
        assert np.asarray(column).tolist() == values
        assert np.asarray(column[2:5], dtype=str).tolist() == values[2:5]
        assert pickle.loads(pickle.dumps(column)).tolist() == values
        assert pickle.loads(pickle.dumps(column[3:])).tolist() == values[3:]
        assert pa.array(column, pa.string()).to_pylist() == values
        taken = column[np.array([6, 0])]
        assert taken.item(0) == "a" and list(taken[1:]) == ["a"]
        with pytest.raises(IndexError):
            column[7]
        with pytest.raises(IndexError):
            column[np.array([0, 7])]
    sliced = ArrowStringColumn(pa.array(values).dictionary_encode().slice(2, 3))
    assert list(sliced) == ["ü日🎉", "a", ""] and sliced.tolist() == ["ü日🎉", "a", ""]
    empty = ArrowStringColumn(pa.array([], pa.string()).dictionary_encode())
    assert len(empty) == 0 and list(empty) == [] and np.asarray(empty).tolist() == []


def test_a_large_dictionary_is_decoded_by_value() -> None:
    words = [f"w{i}" for i in range(5000)]
    codes = np.arange(10_000) % 5000
    column = ArrowStringColumn(pa.DictionaryArray.from_arrays(pa.array(codes), words))
    assert column.item(7777) == "w2777" and column[9999] == "w4999"
    assert np.asarray(column[:3]).tolist() == ["w0", "w1", "w2"]
    assert column[np.array([5001])].tolist() == ["w1"]


def test_broken_dictionary_text_columns_are_corrupt() -> None:
    outside = pa.DictionaryArray.from_arrays(pa.array([0, 5], pa.int32()), ["a"], safe=False)
    with pytest.raises(CorruptDatasetError, match=r"somewhere.*outside its dictionary"):
        ArrowStringColumn(outside, "somewhere")
    negative = pa.DictionaryArray.from_arrays(pa.array([0, -1], pa.int32()), ["a"], safe=False)
    with pytest.raises(CorruptDatasetError, match="outside"):
        ArrowStringColumn(negative, "somewhere")
    nulls = pa.DictionaryArray.from_arrays(pa.array([0, None], pa.int32()), ["a"])
    with pytest.raises(CorruptDatasetError, match="null"):
        ArrowStringColumn(nulls, "somewhere")
    broken = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(np.array([0, 1], np.int32)), pa.py_buffer(b"\xff")]
    )
    with pytest.raises(CorruptDatasetError, match=r"somewhere.*not UTF-8"):
        ArrowStringColumn(pa.DictionaryArray.from_arrays(pa.array([0, 0]), broken), "somewhere")
    with pytest.raises(TypeError):
        ArrowStringColumn(pa.array([1, 2]).dictionary_encode())


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)


@SETTINGS
@given(
    words=st.lists(TEXT, min_size=1, max_size=12),
    codes=st.lists(st.integers(0, 11), max_size=60),
)
def test_any_text_round_trips(tmp_path: Path, words: list[str], codes: list[int]) -> None:
    values = [words[c % len(words)] for c in codes]
    n = len(values)
    table = make_table(ShapeColumn(n, fixed=(1,)), {"t": ("str", values), "u": ("str", values)})
    again = round_trip(table, tmp_path / "text.parquet")
    assert again.metadata.column("t").tolist() == values
    assert [again.metadata.row(i)["u"] for i in range(n)] == values


# --- shapes of any kind ---------------------------------------------------------------------
DIMENSIONS = st.sampled_from([0, 1, 2, 3, 255, 256, 65_535, 65_536, 2**31, 2**40, 2**62])


@st.composite
def shape_lists(draw: st.DrawFn) -> list[tuple[int, ...]]:
    n = draw(st.integers(0, 12))
    kind = draw(st.sampled_from(["fixed", "same ndim", "ragged"]))
    if kind == "ragged":
        return [tuple(draw(st.lists(DIMENSIONS, max_size=4))) for _ in range(n)]
    ndim = draw(st.integers(0, 4))
    if kind == "fixed":
        return [tuple(draw(st.lists(DIMENSIONS, min_size=ndim, max_size=ndim)))] * n
    varying = draw(st.sets(st.integers(0, max(ndim - 1, 0)), max_size=ndim))
    shared = draw(st.lists(DIMENSIONS, min_size=ndim, max_size=ndim))
    return [
        tuple(draw(DIMENSIONS) if j in varying else shared[j] for j in range(ndim))
        for _ in range(n)
    ]


@SETTINGS
@given(tuples=shape_lists())
def test_any_shapes_round_trip(tmp_path: Path, tuples: list[tuple[int, ...]]) -> None:
    shapes = ShapeColumn.from_tuples(tuples)
    table = make_table(shapes, {"i": ("int", list(range(len(tuples))))})
    again = round_trip(table, tmp_path / "shapes.parquet")
    assert [again.shapes[i] for i in range(len(tuples))] == tuples
    if len(tuples) and len({len(s) for s in tuples}) == 1:  # one number of dimensions
        template = json.loads(schema_of(tmp_path / "shapes.parquet").metadata[b"ai:shape"])
        assert len(template) == len(tuples[0])


# --- files written before this layout -------------------------------------------------------
def write_old_layout(table: IndexTable, path: Path) -> None:
    """The index as acumen wrote it before templates: list<int64> shapes (int32 list
    offsets), int64 sizes, plain string text, nullable columns, zstd."""

    def shape_list(shapes: ShapeColumn) -> pa.ListArray:
        offsets, flat = shapes.to_ragged()
        return pa.ListArray.from_arrays(
            pa.array(offsets.astype(np.int32), pa.int32()), pa.array(flat, pa.int64())
        )

    types = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
    arrays = {
        "ai:chunk_name": pa.DictionaryArray.from_arrays(
            pa.array(table.chunk_ids, pa.int32()), pa.array(table.chunk_names, pa.string())
        ),
        "ai:offset_bytes": pa.array(table.offsets, pa.int64()),
        "ai:size_bytes": pa.array(table.sizes, pa.int64()),
    }
    if table.shapes is not None:
        arrays["ai:shape"] = shape_list(table.shapes)
    for name, columns in table.fields.items():
        arrays["ai:size_bytes:" + name] = pa.array(columns.sizes, pa.int64())
        arrays["ai:shape:" + name] = shape_list(columns.shapes)
    if table.checksums is not None:
        arrays["ai:xxh3_64"] = pa.array(table.checksums, pa.int64())
    for spec in table.metadata.specs:
        arrays[spec.name] = pa.array(table.metadata.column(spec.name), types[spec.type])
    pq.write_table(pa.table(arrays), path, compression="zstd")


OLD_SHAPES = {
    "fixed": [(32, 16)] * 30,
    "same ndim": [(i % 9, 16) for i in range(30)],
    "two axes": [(i % 9, 3, i % 4) for i in range(30)],
    "ragged": [(1,) * (i % 4) for i in range(30)],
    "0-d": [()] * 30,
    "zero samples": [],
}


@pytest.mark.parametrize("kind", list(OLD_SHAPES))
def test_files_in_the_old_layout_read(tmp_path: Path, kind: str) -> None:
    tuples = OLD_SHAPES[kind]
    n = len(tuples)
    metadata = {
        "label": ("int", list(range(n))),
        "score": ("float", [math.nan, 0.5, -math.inf] * (n // 3)),
        "ok": ("bool", [bool(i % 2) for i in range(n)]),
        "split": ("str", ["train", "val", "test"] * (n // 3)),
        "text": ("str", [TEXTS[i % len(TEXTS)] for i in range(n)]),
        "path": ("str", [f"file_{i}.png" for i in range(n)]),
    }
    table = make_table(ShapeColumn.from_tuples(tuples), metadata, checksums=True)
    path = tmp_path / "index.parquet"
    write_old_layout(table, path)
    again = ParquetIndex().read(path, table.metadata.specs)
    assert again == table
    assert [again.shapes[i] for i in range(n)] == tuples
    assert again.sizes.dtype == np.int32


def test_old_text_columns_stay_text(tmp_path: Path) -> None:
    """Plain text in an old file is read as it is (reading few-valued text as a dictionary
    would need the row groups' column metadata, which pyarrow 26 cannot read safely from a
    damaged footer: it aborts the process)."""
    n = 1000
    metadata = {"split": ("str", ["train", "val", "test"] * (n // 3) + ["train"])}
    table = make_table(ShapeColumn(n, fixed=(2,)), metadata)
    path = tmp_path / "index.parquet"
    write_old_layout(table, path)
    again = ParquetIndex().read(path, table.metadata.specs)
    assert "distinct" not in repr(again.metadata.raw_column("split"))
    assert again == table


def test_an_old_dataset_opens_and_reads(tmp_path: Path) -> None:
    arrays = [np.full((i % 5, 3), i, np.float32) for i in range(20)]
    with acumen.Writer(tmp_path / "ds", index_format="parquet", durable=False) as writer:
        for i, array in enumerate(arrays):
            writer.add(array, split=["a", "b"][i % 2], i=i)
    index = tmp_path / "ds" / "index.parquet"
    with acumen.open(tmp_path / "ds") as ds:
        write_old_layout(ds.table, index)
    reseal(tmp_path / "ds")
    assert schema_of(index).field("ai:shape").type == pa.list_(pa.int64())
    with acumen.open(tmp_path / "ds") as ds:
        for i, array in enumerate(arrays):
            got, metadata = ds[i]
            np.testing.assert_array_equal(got, array)
            assert metadata == {"split": ["a", "b"][i % 2], "i": i}


# --- whole datasets -------------------------------------------------------------------------
DATASETS = {
    "fixed": [np.arange(12, dtype=np.float32).reshape(4, 3) + i for i in range(23)],
    "one varying axis": [np.arange(i * 3, dtype=np.int16).reshape(i, 3) for i in range(9)],
    "two varying axes": [np.zeros((i, 2, 300 + i), np.uint8) for i in range(5)],
    "ragged": [
        np.arange(int(np.prod(s)), dtype=np.int16).reshape(s)
        for s in [(), (0,), (5,), (2, 3), (1, 2, 3), (7,), (0, 0), (1,), (3, 1, 1, 2)]
    ],
    "0-d": [np.array(i, dtype=np.float64) for i in range(5)],
    "empty": [],
}


@pytest.mark.parametrize("kind", list(DATASETS))
@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_datasets_round_trip(tmp_path: Path, kind: str, codec: str) -> None:
    arrays = DATASETS[kind]
    root = tmp_path / "ds"
    with acumen.Writer(root, codec=codec, index_format="parquet", durable=False) as writer:
        for i, array in enumerate(arrays):
            writer.add(array, text=TEXTS[i % len(TEXTS)], split=["a", "b"][i % 2], i=i)
    with acumen.open(tmp_path / "ds") as ds:
        assert len(ds) == len(arrays)
        for i, array in enumerate(arrays):
            got, metadata = ds[i]
            np.testing.assert_array_equal(got, array)
            assert got.shape == array.shape and got.dtype == array.dtype
            assert metadata == {"text": TEXTS[i % len(TEXTS)], "split": ["a", "b"][i % 2], "i": i}
        assert [m for _, m in ds] == [ds.metadata(i) for i in range(len(ds))]
        again = pickle.loads(pickle.dumps(ds))
        assert again.table == ds.table
        again.close()


def test_what_pandas_reads(tmp_path: Path) -> None:
    """``pd.read_parquet`` of the index: chunk names and few-valued text as categoricals,
    offsets and sizes as integers, the varying axis as integers (the shared dimensions are
    in the file's metadata and the manifest), a struct of several varying axes as dicts."""
    n = 12
    metadata = {"split": ("str", ["train", "val", "test"] * 4), "i": ("int", list(range(n)))}
    path = tmp_path / "index.parquet"
    ParquetIndex().write(
        make_table(ShapeColumn.from_tuples([(i, 16) for i in range(n)]), metadata), path
    )
    frame = pd.read_parquet(path)
    assert list(frame.columns) == [
        "ai:chunk_name", "ai:offset_bytes", "ai:size_bytes", "ai:shape", "split", "i"
    ]  # fmt: skip
    assert frame["ai:chunk_name"].tolist()[:5] == ["chunks/chunk_0.chnk"] * 4 + [
        "chunks/chunk_1.chnk"
    ]
    assert frame["ai:shape"].tolist() == list(range(n))
    assert frame["split"].tolist() == metadata["split"][1]
    assert isinstance(frame["split"].dtype, pd.CategoricalDtype)
    assert frame["i"].tolist() == list(range(n))
    two = tmp_path / "two.parquet"
    ParquetIndex().write(make_table(ShapeColumn.from_tuples([(i, 2, i) for i in range(3)])), two)
    assert pd.read_parquet(two)["ai:shape"].tolist() == [{"0": i, "2": i} for i in range(3)]
    fixed = tmp_path / "fixed.parquet"
    ParquetIndex().write(make_table(ShapeColumn(3, fixed=(2, 2))), fixed)
    assert "ai:shape" not in pd.read_parquet(fixed).columns


# --- damaged and hostile files -------------------------------------------------------------
def good_columns(n: int = 3) -> dict[str, pa.Array]:
    return {
        "ai:chunk_name": pa.DictionaryArray.from_arrays(
            pa.array([0] * n, pa.int32()), pa.array(["a"])
        ),
        "ai:offset_bytes": pa.array([0, 8, 16][:n], pa.int64()),
        "ai:size_bytes": pa.array([8] * n, pa.int32()),
        "name": pa.array(["x", "y", "z"][:n]),
    }


def write_index(
    path: Path, templates: dict[str, bytes] | None, shape: pa.Array | None, **replaced: Any
) -> None:
    """An index in the template layout; ``shape`` is the ai:shape column (None: absent)."""
    columns = {**good_columns(), **replaced}
    if shape is not None:
        columns = {"ai:shape": shape, **columns}
    table = pa.table(columns)
    metadata = {k.encode(): v for k, v in (templates or {}).items()}
    pq.write_table(table.replace_schema_metadata(metadata or None), path)


AXIS = pa.array([2, 3, 2], pa.uint8())
BROKEN = {  # (templates, ai:shape column, message)
    "template not JSON": ({"ai:shape": b"[2,"}, None, "template"),
    "template not UTF-8": ({"ai:shape": b"[\xff]"}, None, "template"),
    "template of text": ({"ai:shape": b'["2"]'}, None, "template"),
    "template of floats": ({"ai:shape": b"[null, 2.0]"}, AXIS, "template"),
    "template of a bool": ({"ai:shape": b"[true]"}, None, "template"),
    "template an object": ({"ai:shape": b'{"a": 1}'}, None, "template"),
    "negative template": ({"ai:shape": b"[-2]"}, None, "template"),
    "template beyond 2**62": ({"ai:shape": str([2**62 + 1]).encode()}, None, "template"),
    "template too long": ({"ai:shape": b"[" + b", ".join([b"1"] * 65) + b"]"}, None, "template"),
    "template nested deep": ({"ai:shape": b"[" * 100_000 + b"]" * 100_000}, None, "template"),
    "huge number": ({"ai:shape": b"[" + b"9" * 5000 + b"]"}, None, "template"),
    "field template not JSON": ({"ai:shape:x": b"[2,"}, AXIS, "template"),
    "column though no axis varies": ({"ai:shape": b"[2]"}, AXIS, "no axis"),
    "no column for the varying axis": ({"ai:shape": b"[null]"}, None, "lacks"),
    "varying axis of floats": ({"ai:shape": b"[null]"}, pa.array([2.0] * 3), "integer"),
    "varying axis of uint64": ({"ai:shape": b"[null]"}, pa.array([2] * 3, pa.uint64()), "integ"),
    "varying axis of bools": ({"ai:shape": b"[null]"}, pa.array([True] * 3), "integer"),
    "varying axis with a null": (
        {"ai:shape": b"[null]"},
        pa.array([2, None, 2], pa.uint8()),
        "null",
    ),
    "varying axis as a list": ({"ai:shape": b"[null]"}, pa.array([[2]] * 3), "integer"),
    "two axes in one column": ({"ai:shape": b"[null, null]"}, AXIS, "struct"),
    "struct of the wrong axes": (
        {"ai:shape": b"[null, 2, null]"},
        pa.StructArray.from_arrays([AXIS, AXIS], names=["0", "1"]),
        "struct",
    ),
    "struct of too few axes": (
        {"ai:shape": b"[null, null]"},
        pa.StructArray.from_arrays([AXIS], names=["0"]),
        "struct",
    ),
    "struct of floats": (
        {"ai:shape": b"[null, null]"},
        pa.StructArray.from_arrays([AXIS, pa.array([1.0] * 3)], names=["0", "1"]),
        "integer",
    ),
    "struct with a null child": (
        {"ai:shape": b"[null, null]"},
        pa.StructArray.from_arrays([AXIS, pa.array([1, None, 1], pa.uint8())], names=["0", "1"]),
        "null",
    ),
    "struct with a null row": (
        {"ai:shape": b"[null, null]"},
        pa.StructArray.from_arrays(
            [AXIS, AXIS], names=["0", "1"], mask=pa.array([False, True, False])
        ),
        "null",
    ),
    "no template, shape of ints": (None, AXIS, "list"),
    "no template, shape of text": (None, pa.array(["(2,)"] * 3), "list"),
    "no template, list of floats": (None, pa.array([[2.0]] * 3), "integer"),
    "no template, negative list": (None, pa.array([[2], [-1], [2]]), "negative"),
    "no template, list of uint64": (
        None,
        pa.array([[2], [2**63], [2]], pa.list_(pa.uint64())),
        "beyond int64",
    ),
    "no template, list with a null": (None, pa.array([[2], None, [2]]), "null"),
    "no template, null in a list": (
        None,
        pa.array([[2], [None], [2]], pa.list_(pa.int64())),
        "null",
    ),
    "no template, no shape": (None, None, "lacks"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_shape_layouts_are_corrupt(tmp_path: Path, case: str) -> None:
    templates, shape, message = BROKEN[case]
    path = tmp_path / "index.parquet"
    write_index(path, templates, shape)
    with pytest.raises(CorruptDatasetError, match=message) as error:
        ParquetIndex().read(path, [ColumnSpec("name", "str")])
    assert str(path) in str(error.value)


BROKEN_COLUMNS = {  # (column, array, message)
    "offsets of int32": ("ai:offset_bytes", pa.array([0, 8, 16], pa.int32()), "int64"),
    "offsets of uint64": ("ai:offset_bytes", pa.array([0, 8, 2**63], pa.uint64()), "int64"),
    "offsets with a null": ("ai:offset_bytes", pa.array([0, None, 16], pa.int64()), "null"),
    "sizes of floats": ("ai:size_bytes", pa.array([8.0] * 3), "int64"),
    "sizes of uint32": ("ai:size_bytes", pa.array([8] * 3, pa.uint32()), "int64"),
    "sizes with a null": ("ai:size_bytes", pa.array([8, None, 8], pa.int32()), "int64"),
    "chunk names of ints": ("ai:chunk_name", pa.array([1, 2, 3]), "not text"),
    "chunk name null": ("ai:chunk_name", pa.array(["a", None, "a"]), "null"),
    "chunk dictionary of ints": (
        "ai:chunk_name",
        pa.DictionaryArray.from_arrays(pa.array([0, 0, 0], pa.int32()), pa.array([7])),
        "not text",
    ),
    "metadata of another type": ("name", pa.array([1, 2, 3]), "should hold str"),
    "metadata with a null": ("name", pa.array(["a", None, "c"]), "null"),
    "coded metadata with a null": ("name", pa.array(["a", None, "a"]).dictionary_encode(), "null"),
    "coded metadata of ints": ("name", pa.array([1, 2, 1]).dictionary_encode(), "should hold"),
}


@pytest.mark.parametrize("case", list(BROKEN_COLUMNS))
def test_broken_columns_are_corrupt(tmp_path: Path, case: str) -> None:
    name, array, message = BROKEN_COLUMNS[case]
    path = tmp_path / "index.parquet"
    write_index(path, {"ai:shape": b"[2]"}, None, **{name: array})
    with pytest.raises(CorruptDatasetError, match=message) as error:
        ParquetIndex().read(path, [ColumnSpec("name", "str")])
    assert str(path) in str(error.value)


def test_metadata_types_must_match_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "index.parquet"
    table = make_table(
        ShapeColumn(3, fixed=()),
        {
            "a": ("int", [1, 2, 3]),
            "b": ("float", [0.5, 1.5, 2.5]),
            "c": ("bool", [True, False, True]),
        },
    )
    ParquetIndex().write(table, path)
    for specs in (
        [ColumnSpec("a", "float"), ColumnSpec("b", "float"), ColumnSpec("c", "bool")],
        [ColumnSpec("a", "int"), ColumnSpec("b", "int"), ColumnSpec("c", "bool")],
        [ColumnSpec("a", "int"), ColumnSpec("b", "float"), ColumnSpec("c", "int")],
        [ColumnSpec("a", "str"), ColumnSpec("b", "float"), ColumnSpec("c", "bool")],
    ):
        with pytest.raises(CorruptDatasetError, match="should hold"):
            ParquetIndex().read(path, specs)
    assert ParquetIndex().read(path, None) == table  # inferred from the file's types


def test_a_column_named_twice_is_corrupt(tmp_path: Path) -> None:
    columns = good_columns()
    table = pa.Table.from_arrays(
        [*columns.values(), pa.array(["q"] * 3)], names=[*columns, "name"]
    ).replace_schema_metadata({b"ai:shape": b"[2]"})
    path = tmp_path / "index.parquet"
    pq.write_table(table, path)
    with pytest.raises(CorruptDatasetError, match="twice"):
        ParquetIndex().read(path, [ColumnSpec("name", "str")])


BROKEN_ROWS = {  # read as they are; the rows are refused when read (acumen.read.index_checks)
    "negative offset": (
        {"ai:offset_bytes": pa.array([0, -8, 16], pa.int64())},
        AXIS,
        "negative offset",
    ),
    "negative size": ({"ai:size_bytes": pa.array([8, -8, 8], pa.int64())}, AXIS, "negative"),
    "negative varying dimension": ({}, pa.array([2, -1, 2], pa.int32()), "negative"),
    "negative dimension in a struct": (
        {},
        pa.StructArray.from_arrays([AXIS, pa.array([1, -1, 1], pa.int8())], names=["0", "1"]),
        "negative",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_ROWS))
def test_broken_rows_are_found_by_the_row_checks(tmp_path: Path, case: str) -> None:
    replaced, shape, message = BROKEN_ROWS[case]
    template = b"[null, null]" if pa.types.is_struct(shape.type) else b"[null]"
    path = tmp_path / "index.parquet"
    write_index(path, {"ai:shape": template}, shape, **replaced)
    table = ParquetIndex().read(path, [ColumnSpec("name", "str")])
    files = ChunkFiles(path, ["a"], np.array([100]))
    rules = payload_rules(table, np.dtype("<f4"), False, [])
    checks = IndexChecks(files, table, rules, fields=False)
    problems = checks.problems()
    assert len(problems) == 1 and "sample 1" in problems[0] and message in problems[0]
    checks.check(0)
    checks.check(2)
    with pytest.raises(CorruptDatasetError, match=message):
        checks.check(1)


def test_column_names_not_utf8_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "index.parquet"
    ParquetIndex().write(make_table(ShapeColumn(3, fixed=()), {"qqqq": ("int", [1, 2, 3])}), path)
    data = path.read_bytes()
    assert b"qqqq" in data
    path.write_bytes(data.replace(b"qqqq", b"q\xffqq"))
    with pytest.raises(CorruptDatasetError, match=r"index[.]parquet"):
        ParquetIndex().read(path, None)


def test_not_a_parquet_file_is_corrupt(tmp_path: Path) -> None:
    whole = tmp_path / "whole.parquet"
    ParquetIndex().write(make_table(ShapeColumn.from_tuples([(i, 2) for i in range(50)])), whole)
    data = whole.read_bytes()
    for name, content in {
        "empty.parquet": b"",
        "truncated.parquet": data[:-100],
        "headless.parquet": data[100:],
        "text.parquet": b"ai:chunk_name,ai:offset_bytes\n",
    }.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CorruptDatasetError, match=name.replace(".", "[.]")):
            ParquetIndex().read(tmp_path / name, [])
    with pytest.raises(CorruptDatasetError, match="missing"):
        ParquetIndex().read(tmp_path / "absent.parquet", [])


@settings(SETTINGS, max_examples=60)
@given(data=st.data())
def test_flipped_bytes_give_acumen_errors_only(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "index.parquet"
    if not path.exists():
        metadata = {"split": ("str", ["a", "b"] * 20), "t": ("str", [str(i) for i in range(40)])}
        shapes = ShapeColumn.from_tuples([(i % 7, 2, i % 3) for i in range(40)])
        ParquetIndex().write(make_table(shapes, metadata, checksums=True), path)
    valid = path.read_bytes()
    flips = data.draw(st.lists(st.integers(0, len(valid) * 8 - 1), min_size=1, max_size=4))
    damaged = bytearray(valid)
    for bit in flips:
        damaged[bit // 8] ^= 1 << (bit % 8)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(bytes(damaged))
    try:
        table = ParquetIndex().read(broken, [ColumnSpec("split", "str"), ColumnSpec("t", "str")])
    except CorruptDatasetError:
        return
    for i in range(len(table)):  # what reads must give values or acumen's errors
        try:
            table.metadata.row(i)
            table.shapes[i] if table.shapes is not None else None
        except CorruptDatasetError:
            pass
