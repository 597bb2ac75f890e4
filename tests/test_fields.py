"""Samples with several named fields: own dtypes and codecs, reading some fields only."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import acumen
from acumen.errors import CorruptDatasetError, ManifestError, SampleError
from tests.conftest import INDEX_FORMATS, STORAGES
from tests.dataset_edits import save_manifest

FIELDS = {
    "image": {"dtype": "uint8", "codec": "lz4"},
    "mask": {"dtype": "bool", "codec": "raw"},
    "points": {"dtype": "float32", "codec": {"name": "zstd", "configuration": {"level": 5}}},
    "jpeg": {"type": "bytes", "codec": "zstd"},
}


def make_samples(n: int) -> list[tuple[dict, dict]]:
    rng = np.random.default_rng(7)
    samples = []
    for i in range(n):
        h = 4 + i % 5
        sample = {
            "image": rng.integers(0, 256, (h, 6, 3), dtype=np.uint8),
            "mask": rng.random((h, 6)) > 0.5,
            "points": rng.normal(size=(i % 4, 2)).astype(np.float32),  # some are (0, 2)
            "jpeg": bytes(rng.integers(0, 256, i * 3, dtype=np.uint8)),  # b"" for i = 0
        }
        samples.append((sample, {"label": i % 3, "name": f"s{i}"}))
    return samples


def write(path: Path, samples: list, **options) -> acumen.Dataset:
    with acumen.Writer(path, **options) as writer:
        for sample, metadata in samples:
            writer.add(sample, **metadata)
    return writer.manifest


def assert_same_fields(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for name, value in want.items():
        if isinstance(value, bytes):
            assert type(got[name]) is bytes and got[name] == value
        else:
            assert got[name].dtype == value.dtype and got[name].shape == value.shape
            assert got[name].tobytes() == value.tobytes()


@pytest.mark.parametrize("index_format", INDEX_FORMATS)
@pytest.mark.parametrize("storage", STORAGES)
def test_fields_round_trip(tmp_path: Path, storage: str, index_format: str) -> None:
    samples = make_samples(23)
    write(tmp_path / "ds", samples, fields=FIELDS, index_format=index_format, chunk_size_bytes=500)
    with acumen.open(tmp_path / "ds", storage=storage) as ds:
        assert len(ds) == 23
        assert ds.fields == ["image", "mask", "points", "jpeg"]
        assert ds.dtype is None and ds.shape is None
        for i, (sample, metadata) in enumerate(samples):
            got, got_metadata = ds[i]
            assert_same_fields(got, sample)
            assert got_metadata == metadata
        assert_same_fields(ds.read(-1), samples[-1][0])
        assert [m for _, m in ds] == [m for _, m in samples]


def test_manifest_and_index_declare_the_fields(tmp_path: Path) -> None:
    write(tmp_path / "ds", make_samples(5), fields=FIELDS)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert [f["name"] for f in manifest["fields"]] == ["image", "mask", "points", "jpeg"]
    image, mask, points, jpeg = manifest["fields"]
    assert image == {
        "name": "image",
        "type": "array",
        "dtype": "|u1",
        "codec": {"name": "lz4", "configuration": {"level": 0}},
        "shape": None,
    }
    assert mask["dtype"] == "|b1" and mask["codec"]["name"] == "raw"
    assert points["codec"] == {"name": "zstd", "configuration": {"level": 5}}
    assert jpeg["type"] == "bytes" and jpeg["dtype"] == "|u1"
    assert manifest["plugins"]["codec:lz4"]["distribution"] == "acumen-indexer"
    index = pd.read_csv(tmp_path / "ds" / "index.csv")
    assert list(index.columns) == [
        "ai:chunk_name",
        "ai:offset_bytes",
        "ai:size_bytes",
        "ai:size_bytes:image",
        "ai:shape:image",
        "ai:size_bytes:mask",
        "ai:shape:mask",
        "ai:size_bytes:points",
        "ai:shape:points",
        "ai:size_bytes:jpeg",
        "ai:shape:jpeg",
        "label",
        "name",
    ]
    field_sizes = index[[c for c in index.columns if c.startswith("ai:size_bytes:")]]
    assert (field_sizes.sum(axis=1) == index["ai:size_bytes"]).all()
    assert index["ai:shape:mask"][0] == "(4, 6)"


def test_fields_inferred_from_the_first_sample(tmp_path: Path) -> None:
    samples = [({"x": np.arange(i, dtype=np.int16), "raw": b"ab" * i}, {}) for i in range(4)]
    write(tmp_path / "ds", samples, codec="gzip")
    with acumen.open(tmp_path / "ds") as ds:
        readers = {r.name: r for r in ds.field_readers}
        assert readers["x"].dtype == np.int16 and readers["x"].codec.name == "gzip"
        assert readers["raw"].type == "bytes"
        for i, (sample, _) in enumerate(samples):
            assert_same_fields(ds.read(i), sample)


class _RangeRecorder:
    def __init__(self, read):
        self.read, self.ranges = read, []

    def __call__(self, chunk, offset, size):
        self.ranges.append((chunk, offset, size))
        return self.read(chunk, offset, size)


def test_reading_some_fields_reads_only_their_bytes(tmp_path: Path) -> None:
    samples = make_samples(6)
    write(tmp_path / "ds", samples, fields=FIELDS)
    index = pd.read_csv(tmp_path / "ds" / "index.csv")
    with acumen.open(tmp_path / "ds", fields=["points"]) as ds:
        assert ds.fields == ["points"]
        recorder = ds._read_bytes = _RangeRecorder(ds._read_bytes)
        got, _ = ds[3]
        assert list(got) == ["points"]
        assert_same_fields(got, {"points": samples[3][0]["points"]})
        row = index.iloc[3]
        start = row["ai:offset_bytes"] + row["ai:size_bytes:image"] + row["ai:size_bytes:mask"]
        assert recorder.ranges == [(0, start, row["ai:size_bytes:points"])]
        # ds.read can pick other fields on the fly.
        both = ds.read(3, fields=["jpeg", "image"])
        assert list(both) == ["image", "jpeg"]  # in the dataset's field order
        assert_same_fields(both, {k: samples[3][0][k] for k in ("image", "jpeg")})


def test_a_damaged_field_does_not_stop_reading_the_others(tmp_path: Path) -> None:
    samples = make_samples(4)
    write(tmp_path / "ds", samples, fields=FIELDS)
    index = pd.read_csv(tmp_path / "ds" / "index.csv")
    row = index.iloc[2]
    points_at = row["ai:offset_bytes"] + row["ai:size_bytes:image"] + row["ai:size_bytes:mask"]
    chunk = tmp_path / "ds" / row["ai:chunk_name"]
    data = bytearray(chunk.read_bytes())
    data[points_at + row["ai:size_bytes:points"] - 2] ^= 0xFF  # inside the zstd frame
    chunk.write_bytes(bytes(data))
    with acumen.open(tmp_path / "ds") as ds:
        with pytest.raises(CorruptDatasetError, match="sample 2"):
            ds[2]
        assert_same_fields(
            ds.read(2, fields=["image", "mask"]), {k: samples[2][0][k] for k in ("image", "mask")}
        )


def test_pickled_dataset_keeps_its_fields_and_selection(tmp_path: Path) -> None:
    samples = make_samples(5)
    write(tmp_path / "ds", samples, fields=FIELDS)
    with acumen.open(tmp_path / "ds", fields=["jpeg", "mask"]) as ds:
        copy = pickle.loads(pickle.dumps(ds))
    assert copy.fields == ["mask", "jpeg"]
    assert_same_fields(copy.read(4), {k: samples[4][0][k] for k in ("mask", "jpeg")})
    copy.close()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_split_into_chunks_with_fields(tmp_path: Path, n_jobs: int) -> None:
    samples = make_samples(30)
    acumen.split_into_chunks(
        samples, tmp_path / f"ds{n_jobs}", n_jobs=n_jobs, fields=FIELDS, chunk_size_bytes=700
    )
    with acumen.open(tmp_path / f"ds{n_jobs}") as ds:
        for i, (sample, metadata) in enumerate(samples):
            got, got_metadata = ds[i]
            assert_same_fields(got, sample)
            assert got_metadata == metadata


def test_split_with_workers_writes_the_same_bytes(tmp_path: Path) -> None:
    samples = make_samples(30)
    for n_jobs in (1, 2):
        acumen.split_into_chunks(samples, tmp_path / f"ds{n_jobs}", n_jobs=n_jobs, fields=FIELDS)
    one, two = tmp_path / "ds1", tmp_path / "ds2"
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    for file in files:
        assert (one / file).read_bytes() == (two / file).read_bytes(), file


def test_zero_samples_with_fields(tmp_path: Path) -> None:
    write(tmp_path / "ds", [], fields=FIELDS)
    with acumen.open(tmp_path / "ds") as ds:
        assert len(ds) == 0 and ds.fields == ["image", "mask", "points", "jpeg"]


def test_refused_samples_leave_no_trace(tmp_path: Path) -> None:
    good = make_samples(3)
    with acumen.Writer(tmp_path / "ds", fields=FIELDS) as writer:
        writer.add(good[0][0], **good[0][1])
        bad_cases = [
            ({k: v for k, v in good[1][0].items() if k != "mask"}, "missing \\['mask'\\]"),
            ({**good[1][0], "extra": np.zeros(1)}, "unexpected \\['extra'\\]"),
            ({**good[1][0], "jpeg": np.zeros(3)}, "field 'jpeg'.*takes bytes"),
            ({**good[1][0], "image": np.array([None, 1], dtype=object)}, "'image'.*object"),
            (np.zeros(3), "one array, but this dataset's samples are dicts"),
        ]
        for sample, message in bad_cases:
            with pytest.raises(SampleError, match=message):
                writer.add(sample, **good[1][1])
        writer.add(good[1][0], **good[1][1])
        writer.add(good[2][0], **good[2][1])
    with acumen.open(tmp_path / "ds") as ds:
        assert len(ds) == 3
        for i, (sample, _) in enumerate(good):
            assert_same_fields(ds.read(i), sample)


def test_field_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="field name 'a b'"):
        acumen.Writer(tmp_path / "a", fields={"a b": "float32"})
    with pytest.raises(ValueError, match="not dtype="):
        acumen.Writer(tmp_path / "b", fields={"x": "float32"}, dtype="float32")
    with pytest.raises(ValueError, match="unknown keys \\['dtpye'\\]"):
        acumen.Writer(tmp_path / "c", fields={"x": {"dtpye": "float32"}})
    with acumen.Writer(tmp_path / "d") as writer:
        writer.add(np.zeros(2))
        with pytest.raises(SampleError, match="a dict of fields, but this dataset holds one"):
            writer.add({"x": np.zeros(2)})
    with pytest.raises(ValueError, match="has no fields to pick"):
        acumen.open(tmp_path / "d", fields=["x"])
    write(tmp_path / "e", make_samples(2), fields=FIELDS)
    with pytest.raises(ValueError, match="no field\\(s\\) \\['nope'\\]; its fields: "):
        acumen.open(tmp_path / "e", fields=["nope"])
    with pytest.raises(ValueError, match="each field has its own dtype and codec"):
        acumen.open(tmp_path / "e", dtype="float32")


def test_manifest_fields_are_validated(tmp_path: Path) -> None:
    write(tmp_path / "ds", make_samples(2), fields=FIELDS)
    path = tmp_path / "ds" / "manifest.json"
    original = json.loads(path.read_text())
    cases = [
        (lambda m: m["fields"][1].update(type="blob"), "fields[1].type"),
        (lambda m: m["fields"][0].pop("codec"), "fields[0].codec"),
        (lambda m: m["fields"][2].update(dtype="nonsense"), "fields[2].dtype"),
        (lambda m: m["fields"][3].update(name="mask"), "fields[3].name"),
        (lambda m: m.update(fields=[]), "'fields'"),
    ]
    for change, key in cases:
        manifest = json.loads(json.dumps(original))
        change(manifest)
        save_manifest(tmp_path / "ds", manifest)
        with pytest.raises(ManifestError, match=key.replace("[", "\\[").replace("]", "\\]")):
            acumen.open(tmp_path / "ds")
