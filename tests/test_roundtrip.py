"""Round trips: what goes into a dataset comes back bit for bit, with its metadata types.

The full matrix codec x storage x index format, plus chunk rollover, dtypes, pickling,
child processes (fork, spawn, forkserver), threads and ``split_into_chunks`` with workers.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import multiprocessing
import os
import pickle
import random
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acumen
from acumen.errors import ArgumentConflictError
from tests.conftest import CODECS, INDEX_FORMATS, STORAGES

codecs = pytest.mark.parametrize("codec", CODECS)
storages = pytest.mark.parametrize("storage", STORAGES)
index_formats = pytest.mark.parametrize("index_format", INDEX_FORMATS)

# Text that a CSV writer or reader could get wrong (a lone "\r" has its own test below).
TEXTS = [
    "plain",
    "",
    "ünïcødé 日本語 🎉 ✓",
    "comma, inside",
    'quote "inside"',
    '"',
    ",",
    "new\nline",
    "crlf\r\nline",
    "trailing newline\n",
    "NA",
    "nan",
    "NaN",
    "None",
    "null",
    "N/A",
    "  padded  ",
    "'single'",
    "#hash",
    "1",
    "1.5",
    "True",
    "tab\tsep",
    "semi;colon",
]
INTS = [0, 1, -1, 2**63 - 1, -(2**63), 42, 10**15, -7]
FLOATS = [0.0, -0.0, 1.5, math.nan, math.inf, -math.inf, 1e-310, 5e-324, 0.1, -1e300, 1 / 3]


# --- helpers ------------------------------------------------------------------------------
def assert_same_array(got: Any, want: np.ndarray) -> None:
    """Bit-exact: type, dtype, shape and every byte."""
    assert isinstance(got, np.ndarray)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.tobytes() == want.tobytes()
    if want.dtype.names is None:
        assert np.array_equal(got, want, equal_nan=want.dtype.kind in "fc")


def assert_same_value(got: Any, want: Any) -> None:
    assert type(got) is type(want), (got, type(got), want, type(want))
    if isinstance(want, float):
        if math.isnan(want):
            assert math.isnan(got)
        else:
            assert got == want
            assert math.copysign(1.0, got) == math.copysign(1.0, want), (got, want)
    else:
        assert got == want


def assert_same_metadata(got: Any, want: dict[str, Any]) -> None:
    assert isinstance(got, dict)
    assert list(got) == list(want)
    for key, value in want.items():
        assert_same_value(got[key], value)


def write(path: Path, arrays: list, metas: list[dict], **options: Any) -> acumen.Manifest:
    with acumen.Writer(path, **options) as writer:
        for i, (array, meta) in enumerate(zip(arrays, metas, strict=True)):
            assert writer.add(array, **meta) == i
    assert writer.manifest is not None
    return writer.manifest


def checksum(ds: acumen.Dataset) -> str:
    digest = hashlib.sha256()
    for array, meta in ds:
        digest.update(array.dtype.str.encode())
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
        digest.update(repr(sorted(meta.items())).encode())
    return digest.hexdigest()


def expected_chunk_names(sizes: list[int], limit: int) -> list[str]:
    """The original's rollover rule, replayed on payload sizes."""
    names, number, current = [], 0, 0
    for size in sizes:
        if current + size > limit:
            number += 1
            current = 0
        names.append(f"chunks/chunk_{number}.chnk")
        current += size
    return names


def fixed_samples(n: int = 24) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(n)]
    arrays[1][0, 0] = np.nan
    arrays[2][1, 1] = -np.inf
    metas = [
        {
            "label": INTS[i % len(INTS)],
            "score": FLOATS[i % len(FLOATS)],
            "flag": i % 3 == 0,
            "name": TEXTS[i % len(TEXTS)],
        }
        for i in range(n)
    ]
    return arrays, metas


# --- the matrix -----------------------------------------------------------------------------
@codecs
@storages
@index_formats
def test_fixed_shape_with_metadata(tmp_path, codec, storage, index_format):
    arrays, metas = fixed_samples()
    path = tmp_path / "ds"
    manifest = write(path, arrays, metas, codec=codec, index_format=index_format)
    assert manifest.n_samples == len(arrays)

    with acumen.open(path, storage=storage) as ds:
        assert len(ds) == len(arrays)
        assert ds.shape == (3, 4)
        assert ds.dtype == np.dtype("<f4")
        assert ds.columns == ["label", "score", "flag", "name"]
        assert ds.storage.name == storage
        assert ds.codec.name == codec
        assert ds.manifest is not None and ds.manifest.n_samples == len(arrays)
        for i, (array, meta) in enumerate(zip(arrays, metas, strict=True)):
            got_array, got_meta = ds[i]
            assert_same_array(got_array, array)
            assert_same_metadata(got_meta, meta)
            assert_same_array(ds.read(i), array)
            assert_same_metadata(ds.metadata(i), meta)
        for i in range(1, len(arrays) + 1):
            assert_same_array(ds[-i][0], arrays[-i])
            assert_same_metadata(ds.metadata(-i), metas[-i])
        for bad in (len(arrays), -len(arrays) - 1, 10**6):
            with pytest.raises(IndexError):
                ds[bad]
            with pytest.raises(IndexError):
                ds.read(bad)
            with pytest.raises(IndexError):
                ds.metadata(bad)
        iterated = list(ds)
        assert len(iterated) == len(arrays)
        for (got_array, got_meta), array, meta in zip(iterated, arrays, metas, strict=True):
            assert_same_array(got_array, array)
            assert_same_metadata(got_meta, meta)

        frame = ds.index
        assert list(frame.columns) == [
            "ai:chunk_name",
            "ai:offset_bytes",
            "ai:size_bytes",
            "ai:shape",
            "label",
            "score",
            "flag",
            "name",
        ]
        assert len(frame) == len(arrays)
        assert list(frame["ai:shape"]) == ["(3, 4)"] * len(arrays)
        assert list(frame["name"]) == [m["name"] for m in metas]
        assert list(frame["label"]) == [m["label"] for m in metas]
        assert list(frame["flag"]) == [m["flag"] for m in metas]


VARIABLE_SHAPES = {
    "mixed_ndim": [(5,), (2, 3), (2, 3, 4), (), (0, 3), (1, 1, 1), (0,), (7,), (3, 0, 2), ()],
    "same_ndim": [(2, 3), (3, 2), (0, 3), (1, 1), (4, 0), (2, 3)],
    "first_empty": [(0,), (0, 0), (), (3,)],
    "all_0d": [(), (), ()],
    "all_empty": [(0,), (0, 2), (2, 0, 1)],  # raw: an empty chunk file
}


@codecs
@storages
@index_formats
@pytest.mark.parametrize("shapes", list(VARIABLE_SHAPES), ids=list(VARIABLE_SHAPES))
def test_variable_shapes(tmp_path, codec, storage, index_format, shapes):
    rng = np.random.default_rng(3)
    arrays = [
        rng.integers(-1000, 1000, size=shape).astype(np.int16) for shape in VARIABLE_SHAPES[shapes]
    ]
    metas = [{"i": i, "text": TEXTS[i % len(TEXTS)]} for i in range(len(arrays))]
    path = tmp_path / "ds"
    write(path, arrays, metas, codec=codec, index_format=index_format)

    with acumen.open(path, storage=storage) as ds:
        distinct = {a.shape for a in arrays}
        assert ds.shape == (arrays[0].shape if len(distinct) == 1 else None)
        assert len(ds) == len(arrays)
        for i, (array, meta) in enumerate(zip(arrays, metas, strict=True)):
            got_array, got_meta = ds[i]
            assert_same_array(got_array, array)
            assert_same_metadata(got_meta, meta)
        assert list(ds.index["ai:shape"]) == [str(a.shape) for a in arrays]
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["shape"] == (list(arrays[0].shape) if len(distinct) == 1 else None)


@codecs
@storages
@index_formats
def test_zero_samples(tmp_path, codec, storage, index_format):
    path = tmp_path / "ds"
    with acumen.Writer(path, codec=codec, index_format=index_format) as writer:
        pass
    assert writer.manifest is not None and writer.manifest.n_samples == 0
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["n_samples"] == 0
    assert manifest["chunks"] == []

    with acumen.open(path, storage=storage) as ds:
        assert len(ds) == 0
        assert list(ds) == []
        assert ds.columns == []
        for bad in (0, -1):
            with pytest.raises(IndexError):
                ds[bad]
        frame = ds.index
        assert len(frame) == 0
        assert list(frame.columns) == [
            "ai:chunk_name",
            "ai:offset_bytes",
            "ai:size_bytes",
            "ai:shape",
        ]


@index_formats
def test_text_with_lone_carriage_return(tmp_path, index_format):
    """A "\\r" not followed by "\\n" is text like any other character."""
    texts = ["a\rb", "\r", "end\r", "\rstart", "x\r\ny\rz", ""]
    arrays = [np.full(2, i, dtype=np.uint8) for i in range(len(texts))]
    metas = [{"text": t, "n": i} for i, t in enumerate(texts)]
    path = tmp_path / "ds"
    write(path, arrays, metas, index_format=index_format)
    with acumen.open(path) as ds:
        assert len(ds) == len(texts)
        for i, (array, meta) in enumerate(zip(arrays, metas, strict=True)):
            got_array, got_meta = ds[i]
            assert_same_array(got_array, array)
            assert_same_metadata(got_meta, meta)


@index_formats
def test_unusual_column_names(tmp_path, index_format):
    names = ['naïve, "col"', "with space", "日本", "a\nb", "c\rd", "NA", "1"]
    arrays = [np.arange(3, dtype=np.float64) + i for i in range(3)]
    metas = [{name: f"{name}-{i}" for name in names} for i in range(3)]
    path = tmp_path / "ds"
    write(path, arrays, metas, index_format=index_format)
    with acumen.open(path) as ds:
        assert ds.columns == names
        for i in range(3):
            assert_same_metadata(ds.metadata(i), metas[i])


@index_formats
def test_numpy_scalars_and_int_float_mix(tmp_path, index_format):
    """numpy scalars come back as Python values; ints in a float column read back as floats
    (a float comes first: an int column refuses floats, see test_metadata_types.py)."""
    arrays = [np.zeros(1, dtype=np.uint8)] * 3
    metas = [
        {"n": np.int32(-5), "x": np.float32(0.1), "b": np.bool_(True), "mix": 1.0},
        {"n": np.uint16(7), "x": np.float64(2.5), "b": False, "mix": 2},
        {"n": 3, "x": 1.0, "b": np.bool_(False), "mix": np.int64(-4)},
    ]
    path = tmp_path / "ds"
    write(path, arrays, metas, index_format=index_format)
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["metadata"] == [
        {"name": "n", "type": "int"},
        {"name": "x", "type": "float"},
        {"name": "b", "type": "bool"},
        {"name": "mix", "type": "float"},
    ]
    want = [
        {"n": -5, "x": 0.1, "b": True, "mix": 1.0},  # float32 as its shortest text
        {"n": 7, "x": 2.5, "b": False, "mix": 2.0},
        {"n": 3, "x": 1.0, "b": False, "mix": -4.0},
    ]
    with acumen.open(path) as ds:
        for i, meta in enumerate(want):
            assert_same_metadata(ds.metadata(i), meta)


@index_formats
def test_open_overrides(tmp_path, index_format):
    arrays = [np.arange(6, dtype=np.int32).reshape(2, 3) * i for i in range(3)]
    path = tmp_path / "ds"
    write(path, arrays, [{"i": i} for i in range(3)], index_format=index_format)
    index_file = f"index.{index_format}"
    for where in (path, path / "manifest.json", path / index_file, str(path)):
        with acumen.open(where, index_format=index_format) as ds:
            assert_same_array(ds.read(2), arrays[2])
    # The manifest says how to read its dataset: a dtype that agrees changes nothing, one
    # that disagrees is refused (tests/test_open_overrides.py), never bytes read as another.
    with acumen.open(path, dtype="<i4") as ds:
        assert ds.dtype == np.dtype("<i4")
        assert_same_array(ds.read(1), arrays[1])
    with pytest.raises(ArgumentConflictError, match="holds dtype int32"):
        acumen.open(path, dtype="<f4")


# --- chunk rollover -------------------------------------------------------------------------
@codecs
@storages
@index_formats
def test_chunk_rollover(tmp_path, codec, storage, index_format):
    rng = np.random.default_rng(11)
    # Incompressible bytes of several sizes, so every codec's payloads straddle the limit.
    arrays = [
        rng.integers(0, 256, size=int(rng.integers(1, 90)), dtype=np.uint8) for _ in range(60)
    ]
    metas = [{"position": i} for i in range(len(arrays))]
    limit = 150
    path = tmp_path / "ds"
    manifest = write(
        path, arrays, metas, codec=codec, index_format=index_format, chunk_size_bytes=limit
    )

    with acumen.open(path, storage=storage) as ds:
        for i, array in enumerate(arrays):
            got_array, got_meta = ds[i]
            assert_same_array(got_array, array)
            assert got_meta == {"position": i}
        frame = ds.index
        names = list(frame["ai:chunk_name"])
        sizes = [int(s) for s in frame["ai:size_bytes"]]
        offsets = [int(o) for o in frame["ai:offset_bytes"]]

    assert names == expected_chunk_names(sizes, limit)
    assert len(set(names)) > 5
    assert names[0] == "chunks/chunk_0.chnk"
    # Within a chunk, payloads sit back to back from offset 0.
    for i, (name, offset) in enumerate(zip(names, offsets, strict=True)):
        if i == 0 or names[i - 1] != name:
            assert offset == 0
        else:
            assert offset == offsets[i - 1] + sizes[i - 1]
    # The manifest lists every chunk file with its true size and sample count.
    files = sorted(p.relative_to(path).as_posix() for p in (path / "chunks").iterdir())
    assert files == sorted(set(names))
    assert [c.file for c in manifest.chunks] == sorted(set(names), key=names.index)
    for chunk in manifest.chunks:
        assert (path / chunk.file).stat().st_size == chunk.size_bytes
        assert chunk.n_samples == names.count(chunk.file)
        assert chunk.size_bytes <= limit or chunk.n_samples == 1
    assert manifest.chunk_size_bytes == limit


@codecs
@index_formats
def test_first_sample_larger_than_limit_starts_at_chunk_1(tmp_path, codec, index_format):
    rng = np.random.default_rng(5)
    big = rng.integers(0, 256, size=400, dtype=np.uint8)
    small = [rng.integers(0, 256, size=10, dtype=np.uint8) for _ in range(12)]
    arrays = [big, *small]
    metas = [{"k": i} for i in range(len(arrays))]
    limit = 100
    path = tmp_path / "ds"
    write(path, arrays, metas, codec=codec, index_format=index_format, chunk_size_bytes=limit)

    assert not (path / "chunks" / "chunk_0.chnk").exists()
    with acumen.open(path) as ds:
        names = list(ds.index["ai:chunk_name"])
        sizes = [int(s) for s in ds.index["ai:size_bytes"]]
        for i, array in enumerate(arrays):
            assert_same_array(ds.read(i), array)
    assert names[0] == "chunks/chunk_1.chnk"
    assert "chunks/chunk_0.chnk" not in names
    assert names[1] == "chunks/chunk_2.chnk"
    assert names == expected_chunk_names(sizes, limit)


@index_formats
def test_every_sample_larger_than_limit(tmp_path, index_format):
    arrays = [np.arange(16, dtype=np.float32) * i for i in range(5)]
    path = tmp_path / "ds"
    write(path, arrays, [{}] * 5, index_format=index_format, chunk_size_bytes=10)
    with acumen.open(path) as ds:
        assert list(ds.index["ai:chunk_name"]) == [f"chunks/chunk_{n}.chnk" for n in range(1, 6)]
        assert list(ds.index["ai:offset_bytes"]) == [0] * 5
        for i, array in enumerate(arrays):
            assert_same_array(ds.read(i), array)
            assert ds.metadata(i) == {}


# --- dtypes ---------------------------------------------------------------------------------
@codecs
@index_formats
def test_dtype_none_first_sample_fixes_dtype(tmp_path, codec, index_format):
    arrays = [
        np.array([1, -2, 3], dtype=np.int16),
        np.array([200, 0], dtype=np.uint8),  # casts safely to int16
        np.array([True, False]),
        np.array(-32768, dtype=np.int16),
    ]
    path = tmp_path / "ds"
    with acumen.Writer(path, codec=codec, index_format=index_format) as writer:
        assert writer.dtype is None
        for array in arrays:
            writer.add(array)
        assert writer.dtype == np.dtype("<i2")
    assert writer.manifest is not None and writer.manifest.dtype == np.dtype("<i2")
    assert json.loads((path / "manifest.json").read_text())["dtype"] == "<i2"
    with acumen.open(path) as ds:
        assert ds.dtype == np.dtype("<i2")
        for i, array in enumerate(arrays):
            assert_same_array(ds.read(i), array.astype(np.int16))


def test_dtype_none_refuses_unsafe_cast(tmp_path):
    with pytest.raises(acumen.SampleError), acumen.Writer(tmp_path / "ds") as writer:
        writer.add(np.zeros(3, dtype=np.int8))
        writer.add(np.zeros(3, dtype=np.float64))


def test_zero_samples_default_dtype_is_float16(tmp_path):
    with acumen.Writer(tmp_path / "ds"):
        pass
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["dtype"] == "<f2"


@codecs
@index_formats
@pytest.mark.parametrize("target", ["float16", "float32", "int32", "uint8", "complex64"])
def test_explicit_dtype_casts(tmp_path, codec, index_format, target):
    arrays = [
        np.array([[0.0, 1.5], [2.25, 100.0]]),
        np.arange(6, dtype=np.int64).reshape(3, 2),
        np.array(7, dtype=np.uint16),
        np.array([True, False, True]),
    ]
    path = tmp_path / "ds"
    write(path, arrays, [{}] * len(arrays), codec=codec, index_format=index_format, dtype=target)
    with acumen.open(path) as ds:
        assert ds.dtype == np.dtype(target)
        assert ds.manifest is not None and ds.manifest.dtype == np.dtype(target)
        for i, array in enumerate(arrays):
            assert_same_array(ds.read(i), array.astype(target))


@codecs
@index_formats
@pytest.mark.parametrize("dtype", [">f8", ">i4", ">u2", ">c16", ">f2"])
def test_big_endian_input_stored_little_endian(tmp_path, codec, index_format, dtype):
    arrays = [
        (np.arange(12) - 5).astype(dtype).reshape(3, 4),
        np.array(3, dtype=dtype),
        np.zeros((0, 2), dtype=dtype),
    ]
    little = np.dtype(dtype).newbyteorder("<")
    path = tmp_path / "ds"
    write(path, arrays, [{}] * len(arrays), codec=codec, index_format=index_format)
    assert json.loads((path / "manifest.json").read_text())["dtype"] == little.str
    with acumen.open(path) as ds:
        assert ds.dtype == little
        for i, array in enumerate(arrays):
            got = ds.read(i)
            assert got.dtype == little
            assert got.dtype.byteorder in ("<", "=")
            assert np.array_equal(got, array)
            assert_same_array(got, array.astype(little))
    if codec == "raw":
        chunk = (path / "chunks" / "chunk_0.chnk").read_bytes()
        assert chunk == b"".join(a.astype(little).tobytes() for a in arrays)


@index_formats
def test_explicit_big_endian_dtype_is_stored_little_endian(tmp_path, index_format):
    arrays = [np.arange(5, dtype=np.float64)]
    path = tmp_path / "ds"
    write(path, arrays, [{}], index_format=index_format, dtype=">i2")
    with acumen.open(path) as ds:
        assert ds.dtype == np.dtype("<i2")
        assert_same_array(ds.read(0), np.arange(5, dtype="<i2"))


STRUCTURED = {
    "packed": np.dtype([("x", "<f4"), ("y", "<i2")]),
    "big_endian_field": np.dtype([("x", ">f4"), ("y", "<i2")]),
    "aligned": np.dtype([("a", "u1"), ("b", "<f8")], align=True),
    "subarray_bytes": np.dtype([("p", "<f4", (2,)), ("q", "S3")]),
}


@codecs
@storages
@index_formats
@pytest.mark.parametrize("kind", list(STRUCTURED), ids=list(STRUCTURED))
def test_structured_dtype(tmp_path, codec, storage, index_format, kind):
    dtype = STRUCTURED[kind]
    rng = np.random.default_rng(1)
    arrays = []
    for n in (3, 0, 5):
        array = np.zeros(n, dtype=dtype)
        for name in dtype.names:
            field = array[name]
            if field.dtype.kind == "S":
                array[name] = [bytes([65 + j % 26]) * 3 for j in range(n)]
            else:
                array[name] = rng.integers(-100, 100, size=field.shape).astype(field.dtype)
        arrays.append(array)
    path = tmp_path / "ds"
    write(path, arrays, [{"n": len(a)} for a in arrays], codec=codec, index_format=index_format)
    with acumen.open(path, storage=storage) as ds:
        assert ds.dtype == dtype
        for i, array in enumerate(arrays):
            got = ds.read(i)
            assert_same_array(got, array)
            for name in dtype.names:
                assert np.array_equal(got[name], array[name])


# --- codec configuration --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "level"), [("zstd", 9), ("lz4", 4), ("gzip", 1), ("gzip", 9), ("zstd", -5)]
)
@index_formats
def test_codec_configuration_recorded_and_read_back(tmp_path, name, level, index_format):
    config = {"name": name, "configuration": {"level": level}}
    rng = np.random.default_rng(2)
    arrays = [np.repeat(rng.standard_normal(8), 16).astype(np.float32) for _ in range(10)]
    path = tmp_path / "ds"
    manifest = write(
        path, arrays, [{"i": i} for i in range(10)], codec=config, index_format=index_format
    )
    assert manifest.codec == config
    on_disk = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["codec"] == config
    with acumen.open(path) as ds:
        assert ds.codec.get_config() == config
        assert ds.manifest is not None and ds.manifest.codec == config
        for i, array in enumerate(arrays):
            assert_same_array(ds.read(i), array)
        if name == "gzip":
            first = ds.index.iloc[0]
            start, size = int(first["ai:offset_bytes"]), int(first["ai:size_bytes"])
            chunk = (path / first["ai:chunk_name"]).read_bytes()
            assert gzip.decompress(chunk[start : start + size]) == arrays[0].tobytes()
    # The codec given at open wins over the manifest only when it is the same codec.
    with acumen.open(path, codec=name) as ds:
        assert_same_array(ds.read(3), arrays[3])


def test_use_gzip_flag_matches_codec(tmp_path):
    arrays = [np.arange(10, dtype=np.float32)]
    write(tmp_path / "ds", arrays, [{}], codec="gzip")
    with acumen.open(tmp_path / "ds", use_gzip=True) as ds:
        assert ds.codec.name == "gzip"
        assert_same_array(ds.read(0), arrays[0])
    with pytest.raises(ValueError):
        acumen.open(tmp_path / "ds", use_gzip=False, codec="gzip")


# --- pickling -------------------------------------------------------------------------------
@codecs
@storages
@index_formats
def test_pickle_dataset(tmp_path, codec, storage, index_format):
    arrays, metas = fixed_samples(10)
    arrays[4] = np.zeros((0, 3), dtype=np.float32)  # variable shapes
    path = tmp_path / "ds"
    write(path, arrays, metas, codec=codec, index_format=index_format, chunk_size_bytes=100)
    ds = acumen.open(path, storage=storage)
    before = checksum(ds)  # handles are open now: they must not be pickled
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        clone = pickle.loads(pickle.dumps(ds, protocol=protocol))
        assert clone is not ds
        assert len(clone) == len(ds)
        assert clone.storage.name == storage
        assert clone.codec.get_config() == ds.codec.get_config()
        assert clone.columns == ds.columns
        assert clone.shape is None
        for i, (array, meta) in enumerate(zip(arrays, metas, strict=True)):
            got_array, got_meta = clone[i]
            assert_same_array(got_array, array)
            assert_same_metadata(got_meta, meta)
        assert checksum(clone) == before
        clone.close()
    # The original still reads after its clone closed.
    assert checksum(ds) == before
    ds.close()
    # And an unopened dataset pickles too.
    fresh = pickle.loads(pickle.dumps(acumen.open(path, storage=storage)))
    assert checksum(fresh) == before
    fresh.close()


# --- child processes ------------------------------------------------------------------------
_INHERITED: dict[str, acumen.Dataset] = {}


def _checksum_of_pickled(blob: bytes) -> tuple[int, str, int]:
    ds = pickle.loads(blob)
    try:
        return os.getpid(), checksum(ds), len(ds)
    finally:
        ds.close()


def _checksum_of_inherited(key: str) -> tuple[int, str, int]:
    ds = _INHERITED[key]
    return os.getpid(), checksum(ds), len(ds)


def _mp_dataset(root: Path, codec: str, index_format: str) -> Path:
    rng = np.random.default_rng([CODECS.index(codec), INDEX_FORMATS.index(index_format)])
    arrays = [rng.standard_normal(int(rng.integers(0, 40))).astype(np.float64) for _ in range(40)]
    metas = [{"i": i, "t": TEXTS[i % len(TEXTS)], "f": FLOATS[i % len(FLOATS)]} for i in range(40)]
    path = root / f"{codec}-{index_format}"
    write(path, arrays, metas, codec=codec, index_format=index_format, chunk_size_bytes=512)
    return path


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_read_in_child_processes(tmp_path, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    context = multiprocessing.get_context(method)
    jobs = []
    for index_format in INDEX_FORMATS:
        for codec in CODECS:
            path = _mp_dataset(tmp_path, codec, index_format)
            for storage in STORAGES:
                ds = acumen.open(path, storage=storage)
                expected = checksum(ds)  # read in the parent first: handles are open
                jobs.append(((codec, storage, index_format), ds, expected))
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = [
            (label, ds, expected, pool.submit(_checksum_of_pickled, pickle.dumps(ds)))
            for label, ds, expected in jobs
        ]
        for label, ds, expected, future in futures:
            pid, got, n = future.result(timeout=120)
            assert pid != os.getpid(), label
            assert n == len(ds), label
            assert got == expected, label
    # The parent's handles survived the children.
    for label, ds, expected in jobs:
        assert checksum(ds) == expected, label
        ds.close()


@storages
@codecs
def test_dataset_opened_before_fork(tmp_path, storage, codec):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("fork is not available here")
    path = _mp_dataset(tmp_path, codec, "csv")
    ds = acumen.open(path, storage=storage)
    expected = checksum(ds)  # handles open in the parent before the fork
    key = f"{storage}-{codec}"
    _INHERITED[key] = ds
    try:
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
            results = [
                f.result(timeout=120)
                for f in [pool.submit(_checksum_of_inherited, key) for _ in range(4)]
            ]
    finally:
        del _INHERITED[key]
    for pid, got, n in results:
        assert pid != os.getpid()
        assert n == len(ds)
        assert got == expected
    assert checksum(ds) == expected
    ds.close()


# --- threads --------------------------------------------------------------------------------
@codecs
@storages
def test_threads_read_concurrently(tmp_path, codec, storage):
    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal(int(rng.integers(1, 300))).astype(np.float32) for _ in range(120)]
    metas = [{"i": i} for i in range(len(arrays))]
    path = tmp_path / "ds"
    write(path, arrays, metas, codec=codec, chunk_size_bytes=4096)
    expected = [a.tobytes() for a in arrays]

    ds = acumen.open(path, storage=storage)  # no read yet: handles open under contention

    def read_many(seed: int) -> list[tuple[int, bytes, int]]:
        order = list(range(len(arrays))) * 3
        random.Random(seed).shuffle(order)
        out = []
        for i in order:
            array, meta = ds[i]
            out.append((i, array.tobytes(), meta["i"]))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read_many, range(16)))
    assert len(results) == 16
    for result in results:
        assert len(result) == 3 * len(arrays)
        for i, data, meta_i in result:
            assert data == expected[i]
            assert meta_i == i
    ds.close()


# --- split_into_chunks ----------------------------------------------------------------------
def _read_item(item: int) -> tuple[np.ndarray, dict[str, Any]]:
    rng = np.random.default_rng(item)
    shape = (int(rng.integers(0, 6)), int(rng.integers(1, 5)))
    return rng.standard_normal(shape), {
        "position": item,
        "name": TEXTS[item % len(TEXTS)],
        "score": FLOATS[item % len(FLOATS)],
        "even": item % 2 == 0,
    }


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@codecs
@index_formats
def test_split_into_chunks_parallel_matches_serial(tmp_path, codec, index_format):
    items = list(range(150))  # several batches of 32 per worker
    options = dict(
        read_fn=_read_item,
        chunk_size_bytes=256,
        codec=codec,
        index_format=index_format,
        dtype=np.float32,
    )
    serial = acumen.split_into_chunks(items, tmp_path / "serial", n_jobs=1, **options)
    parallel = acumen.split_into_chunks(iter(items), tmp_path / "parallel", n_jobs=2, **options)
    assert serial.n_samples == parallel.n_samples == len(items)

    serial_files = _tree(tmp_path / "serial")
    parallel_files = _tree(tmp_path / "parallel")
    assert sorted(serial_files) == sorted(parallel_files)
    assert len([f for f in serial_files if f.startswith("chunks/")]) > 5
    for name, data in serial_files.items():
        assert parallel_files[name] == data, name

    with acumen.open(tmp_path / "parallel") as ds:
        assert len(ds) == len(items)
        positions = [ds.metadata(i)["position"] for i in range(len(ds))]
        assert positions == items  # input order, each sample once
        for i in items:
            array, meta = _read_item(i)
            got_array, got_meta = ds[i]
            assert_same_array(got_array, array.astype(np.float32))
            assert_same_metadata(got_meta, meta)


def test_split_into_chunks_pairs_default_float16(tmp_path):
    pairs = [_read_item(i) for i in range(40)]
    acumen.split_into_chunks(pairs, tmp_path / "a", n_jobs=2, use_gzip=True, chunk_size_bytes=64)
    acumen.split_into_chunks(pairs, tmp_path / "b", n_jobs=1, use_gzip=True, chunk_size_bytes=64)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    with acumen.open(tmp_path / "a") as ds:
        assert ds.dtype == np.dtype("<f2")
        assert ds.codec.name == "gzip"
        for i, (array, meta) in enumerate(pairs):
            got_array, got_meta = ds[i]
            assert_same_array(got_array, array.astype(np.float16))
            assert_same_metadata(got_meta, meta)


def test_split_into_chunks_dtype_none(tmp_path):
    pairs = [(np.arange(i, dtype=np.int32), {"i": i}) for i in range(50)]
    acumen.split_into_chunks(pairs, tmp_path / "a", n_jobs=2, dtype=None)
    with acumen.open(tmp_path / "a") as ds:
        assert ds.dtype == np.dtype("<i4")
        for i, (array, _) in enumerate(pairs):
            assert_same_array(ds.read(i), array)


# --- read-only views ------------------------------------------------------------------------
@codecs
@storages
def test_arrays_are_read_only(tmp_path, codec, storage):
    arrays = [np.arange(12, dtype=np.float64).reshape(3, 4) * i for i in range(4)]
    path = tmp_path / "ds"
    write(path, arrays, [{}] * 4, codec=codec)
    with acumen.open(path, storage=storage) as ds:
        array = ds.read(1)
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0, 0] = 99.0
        assert_same_array(array, arrays[1])
        copy = np.array(array)
        copy[0, 0] = 99.0  # a copy is writable
        assert_same_array(ds.read(1), arrays[1])


def test_mmap_raw_arrays_are_views_of_the_file(tmp_path):
    arrays = [np.arange(1000, dtype=np.float32) + i for i in range(3)]
    path = tmp_path / "ds"
    write(path, arrays, [{}] * 3)
    ds = acumen.open(path, storage="mmap")
    first, again = ds.read(2), ds.read(2)
    assert not first.flags.writeable and not first.flags.owndata
    assert np.shares_memory(first, again)  # both view the same mapped bytes: no copy
    assert not np.shares_memory(first, ds.read(1))
    # Closing the dataset does not pull the bytes from under live arrays.
    ds.close()
    assert_same_array(first, arrays[2])
    # Reading after close reopens the map.
    assert_same_array(ds.read(0), arrays[0])
    ds.close()
