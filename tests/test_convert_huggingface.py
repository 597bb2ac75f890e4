"""Hugging Face both ways: ``[source] huggingface`` and the ``column`` reader (on Parquet and
Arrow tables too), and ``ds.to_huggingface()``; round trips compared value for value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import acumen
from acumen.convert import ConfigError, ConversionError, convert
from acumen.convert.arrow_rows import column_values

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a dict config's relative paths start here


def run(source: dict, column: Any, out: Path, **configuration: Any) -> Any:
    return convert(
        {
            "source": source,
            "reader": {"name": "column", "configuration": {"column": column, **configuration}},
            "output": {"path": str(out)},
            "run": {"progress": False, "part_size": 3},
        }
    )


def all_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "convert-report.json"
    }


def hf_dataset(n: int = 7) -> Any:
    rng = np.random.default_rng(0)
    features = datasets.Features(
        {
            "x": datasets.Array2D((2, 3), "float32"),
            "v": datasets.List(datasets.Value("int16")),
            "b": datasets.Value("binary"),
            "label": datasets.ClassLabel(names=["cat", "dog", "eel"]),
            "caption": datasets.Value("string"),
        }
    )
    data = {
        "x": [rng.normal(size=(2, 3)).astype(np.float32) for _ in range(n)],
        "v": [np.arange(i % 4, dtype=np.int16) - i for i in range(n)],
        "b": [np.arange(4, dtype=np.uint16).tobytes() * (1 + i % 2) for i in range(n)],
        "label": [i % 3 for i in range(n)],
        "caption": [f"sample {i}" for i in range(n)],
    }
    return datasets.Dataset.from_dict(data, features=features), data


def test_saved_dataset_converts_value_for_value(tmp_path: Path) -> None:
    hf, data = hf_dataset()
    hf.save_to_disk(str(tmp_path / "hf"))
    summary = run({"huggingface": "hf"}, "x", tmp_path / "x", metadata=["label", "caption"])
    assert summary.samples == 7
    ds = acumen.open(tmp_path / "x")
    assert ds.dtype == np.float32 and ds.shape == (2, 3)
    for i in range(7):
        array, metadata = ds[i]
        np.testing.assert_array_equal(array, data["x"][i])
        assert metadata == {"label": i % 3, "caption": f"sample {i}"}
    # a variable-length list column, and a binary one read as bytes (named by the column)
    run({"huggingface": str(tmp_path / "hf")}, "v", tmp_path / "v", metadata=[])
    ds = acumen.open(tmp_path / "v")
    assert ds.dtype == np.int16
    assert all(np.array_equal(ds.read(i), data["v"][i]) for i in range(7))
    run({"huggingface": "hf"}, ["x", "b"], tmp_path / "xb", metadata=["label"])
    ds = acumen.open(tmp_path / "xb")
    assert [ds.read(i)["b"] for i in range(7)] == data["b"]


def test_a_dataset_dict_needs_its_split(tmp_path: Path) -> None:
    hf, data = hf_dataset()
    datasets.DatasetDict({"train": hf, "test": hf.select([5, 1])}).save_to_disk(
        str(tmp_path / "dd")
    )
    run({"huggingface": "dd", "split": "test"}, "v", tmp_path / "t", metadata=[])
    ds = acumen.open(tmp_path / "t")
    assert [ds.read(i).tolist() for i in range(2)] == [data["v"][5].tolist(), data["v"][1].tolist()]
    with pytest.raises(
        ConfigError,
        match=r"is a DatasetDict: choose a split with source\.split; its splits: train, test",
    ):
        run({"huggingface": "dd"}, "v", tmp_path / "u")
    with pytest.raises(ConfigError, match="has no split 'valid'; its splits: train, test"):
        run({"huggingface": "dd", "split": "valid"}, "v", tmp_path / "u")
    with pytest.raises(ConfigError, match="not a dataset saved with datasets' save_to_disk"):
        run({"huggingface": "."}, "v", tmp_path / "u")
    with pytest.raises(ConfigError, match="use the column reader"):
        convert(
            {
                "source": {"huggingface": "dd", "split": "test"},
                "reader": {"name": "npy"},
                "output": {"path": str(tmp_path / "u")},
            }
        )


def binary_table(n: int = 10, bad: int | None = None) -> pa.Table:
    images = [np.full((2, 2), i, np.float32) for i in range(n)]
    blobs = [a.tobytes() for a in images]
    if bad is not None:
        blobs[bad] = blobs[bad][:-4]
    return pa.table(
        {
            "image": pa.array(blobs, pa.binary()),
            "fixed": pa.array([[i, -i] for i in range(n)], pa.list_(pa.int32(), 2)),
            "label": pa.array(range(n), pa.int64()),
            "weight": pa.array([i / 4 for i in range(n)], pa.float64()),
        }
    )


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_column_reader_on_tables(tmp_path: Path, suffix: str) -> None:
    table = binary_table()
    path = tmp_path / f"t{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        with pa.ipc.new_file(path, table.schema) as writer:
            writer.write_table(table)
    run(
        {"table": path.name},
        "image",
        tmp_path / "img",
        dtype="float32",
        shape=[2, 2],
        metadata=["label", "weight"],
    )
    ds = acumen.open(tmp_path / "img")
    for i in range(10):
        array, metadata = ds[i]
        np.testing.assert_array_equal(array, np.full((2, 2), i, np.float32))
        assert metadata == {"label": i, "weight": i / 4}
    run({"table": str(path)}, "fixed", tmp_path / "fixed", metadata=[])
    ds = acumen.open(tmp_path / "fixed")
    assert ds.dtype == np.int32 and ds.read_batch(range(10)).tolist() == [
        [i, -i] for i in range(10)
    ]


def test_column_reader_errors_name_the_row_and_column(tmp_path: Path) -> None:
    pq.write_table(binary_table(bad=4), tmp_path / "t.parquet")
    with pytest.raises(ConversionError) as raised:
        run(
            {"table": "t.parquet"},
            "image",
            tmp_path / "a",
            dtype="float32",
            shape=[2, 2],
            metadata=["label"],
        )
    assert (
        "item 4 (row 4 of t.parquet): ValueError: column 'image': 12 bytes, expected 16 "
        "for dtype float32 and shape (2, 2)" in str(raised.value)
    )
    with pytest.raises(
        ConversionError,
        match=r"item 0 \(row 0 of t.parquet\): ValueError: no "
        r"column 'pixels'; the columns: \['image', 'fixed', 'label', 'weight'\]",
    ):
        run({"table": "t.parquet"}, "pixels", tmp_path / "b")
    with pytest.raises(ConversionError, match="column 'fixed' holds an array, not metadata"):
        run({"table": "t.parquet"}, "image", tmp_path / "c")
    with pytest.raises(ConfigError, match="the column reader reads rows of arrays: no CSV"):
        (tmp_path / "t.csv").write_text("a\n1\n")
        run({"table": "t.csv"}, "a", tmp_path / "d")
    with pytest.raises(ConfigError, match=r"reads the rows of a source\.table"):
        run({"glob": "*.npy"}, "a", tmp_path / "e")


def test_resume_after_a_bad_row_is_fixed(tmp_path: Path) -> None:
    pq.write_table(binary_table(bad=7), tmp_path / "t.parquet")
    options = {"dtype": "float32", "shape": [2, 2], "metadata": ["label"]}
    with pytest.raises(ConversionError, match="item 7"):
        run({"table": "t.parquet"}, "image", tmp_path / "out", **options)
    pq.write_table(binary_table(), tmp_path / "t.parquet")
    assert run({"table": "t.parquet"}, "image", tmp_path / "out", **options).resumed_parts == 2
    run({"table": "t.parquet"}, "image", tmp_path / "clean", **options)
    assert all_files(tmp_path / "out") == all_files(tmp_path / "clean")


def writer_dataset(path: Path, shapes: list[tuple[int, ...]], fields: bool = False) -> None:
    rng = np.random.default_rng(3)
    with acumen.Writer(path) as writer:
        for i, shape in enumerate(shapes):
            array = rng.integers(-100, 100, shape).astype(np.int16)
            sample = {"pixels": array, "jpeg": bytes([i]) * i} if fields else array
            writer.add(sample, label=i, score=i / 3, name=f"n{i}", odd=bool(i % 2))


@pytest.mark.parametrize(
    ("shapes", "feature"),
    [
        ([(2, 3)] * 5, "Array2D"),
        ([(4,)] * 5, "List"),
        ([(i, 2) for i in range(1, 6)], "List"),
        ([()] * 5, "Value"),
    ],
)
def test_to_huggingface_round_trips_exactly(
    tmp_path: Path, shapes: list[tuple[int, ...]], feature: str
) -> None:
    writer_dataset(tmp_path / "a", shapes)
    ds = acumen.open(tmp_path / "a")
    hf = ds.to_huggingface(batch_size=2)
    assert type(hf.features["array"]).__name__ == feature
    assert hf.features["label"] == datasets.Value("int64")
    assert hf.features["odd"] == datasets.Value("bool")
    assert hf.features["name"] == datasets.Value("string")
    hf.save_to_disk(str(tmp_path / "hf"))
    back = datasets.load_from_disk(str(tmp_path / "hf")).with_format("numpy")
    for i in range(5):
        array, metadata = ds[i]
        row = back[i]
        assert np.asarray(row["array"]).tolist() == array.tolist()
        assert {k: row[k].item() for k in metadata} == metadata
    # ... and back to acumen through the saved folder: the same values, dtype and shapes
    run({"huggingface": "hf"}, "array", tmp_path / "again")
    again = acumen.open(tmp_path / "again")
    assert again.dtype == np.int16
    for i in range(5):
        assert again.read(i).shape == ds.read(i).shape
        np.testing.assert_array_equal(again.read(i), ds.read(i))
        assert again.metadata(i) == ds.metadata(i)


def test_to_huggingface_fields_bytes_and_a_file(tmp_path: Path) -> None:
    writer_dataset(tmp_path / "a", [(3, i) for i in range(4)], fields=True)
    ds = acumen.open(tmp_path / "a")
    hf = ds.to_huggingface(batch_size=3, path=tmp_path / "a.arrow")
    assert hf.features["jpeg"] == datasets.Value("binary")
    assert hf.cache_files and hf.num_rows == 4
    for i in range(4):
        assert hf[i]["jpeg"] == bytes([i]) * i
        assert hf[i]["pixels"] == ds.read(i)["pixels"].tolist()
    writer_dataset(tmp_path / "b", [(2,)] * 2)
    with pytest.raises(ValueError, match="'label' has the name of the samples' column"):
        acumen.open(tmp_path / "b").to_huggingface(column="label")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.lists(st.integers(-5, 5), min_size=0, max_size=3), max_size=3), max_size=6)
)
def test_nested_list_columns_give_each_row_as_numpy_would(rows: list) -> None:
    values = column_values(pa.array(rows, pa.list_(pa.list_(pa.int8()))))
    for row, value in zip(rows, values, strict=True):
        try:
            expected = np.asarray(row, dtype=np.int8)
        except ValueError:  # ragged: kept as lists, which the column reader refuses
            assert value == row
            continue
        if expected.size == 0:  # no inner length is recorded for an empty row
            assert np.asarray(value).size == 0
            continue
        assert value.dtype == np.int8 and value.tolist() == expected.tolist()
