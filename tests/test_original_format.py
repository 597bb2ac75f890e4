"""acumen against the original ``acumenindexer`` (0.0.1) on-disk format.

* acumen reads the stored fixtures written by the original, under every storage;
* with codec raw and the csv index, acumen writes the very bytes the original writes
  (``index.csv`` and every chunk file), plus only ``manifest.json``;
* the original reader reads what acumen writes (raw and gzip), and acumen reads what the
  original writes;
* ``acumen.compat`` keeps the original's functions working, minus their bugs;
* the manifest of a raw/csv dataset describes it truthfully.
"""

from __future__ import annotations

import gzip
import json
import math
import pickle
from pathlib import Path

import acumenindexer
import numpy as np
import pandas as pd
import pytest
import xxhash

import acumen
from acumen import compat

from .conftest import STORAGES, fixture_names, load_fixture

# --------------------------------------------------------------------------------------
# helpers


def assert_same_array(actual: np.ndarray, expected: np.ndarray) -> None:
    """Exactly equal: type, dtype, shape and every byte."""
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    assert actual.tobytes() == expected.tobytes()


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def assert_same_metadata(actual: dict, expected: dict) -> None:
    """Same keys in the same order, same values with the same Python types.

    ``None`` or NaN in ``expected`` stands for NaN, which must come back as a float NaN.
    """
    assert list(actual) == list(expected)
    for key, want in expected.items():
        got = actual[key]
        if want is None or _is_nan(want):
            assert type(got) is float and math.isnan(got), (key, got)
        else:
            assert type(got) is type(want), (key, got, want)
            assert got == want, (key, got, want)


def assert_original_metadata(actual: dict, written: dict) -> None:
    """The metadata as the original reader returns it (pandas row values).

    The original reads its index with a plain ``pd.read_csv``: an empty string comes back
    as NaN, numbers as numpy scalars.
    """
    assert list(actual) == list(written)
    for key, want in written.items():
        got = actual[key]
        if want is None or _is_nan(want) or want == "":
            assert pd.isna(got), (key, got)
        elif isinstance(want, bool):
            assert isinstance(got, (bool, np.bool_)) and bool(got) is want, (key, got)
        elif isinstance(want, int):
            assert not isinstance(got, (bool, np.bool_, str)), (key, got)
            assert got == want, (key, got, want)
        else:
            assert got == want, (key, got, want)


def dataset_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative POSIX path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def original_layout(sizes: list[int], limit: int) -> list[tuple[str, int]]:
    """(chunk name, offset) of each payload under the original's rollover rule."""
    number, current, out = 0, 0, []
    for size in sizes:
        if current + size > limit:
            number += 1
            current = 0
        out.append((f"chunks/chunk_{number}.chnk", current))
        current += size
    return out


# --------------------------------------------------------------------------------------
# the stored fixtures, read by acumen


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("name", fixture_names())
def test_open_original_fixture(name: str, storage: str) -> None:
    folder, params, arrays, metas = load_fixture(name)
    assert not (folder / "manifest.json").exists()
    with acumen.open(
        folder, storage=storage, dtype=params["dtype"], use_gzip=params["use_gzip"]
    ) as ds:
        assert len(ds) == params["n_samples"] == len(arrays) == len(metas)
        assert ds.manifest is None
        for i, (want_array, want_meta) in enumerate(zip(arrays, metas, strict=True)):
            array, meta = ds[i]
            assert_same_array(array, want_array)
            assert_same_metadata(meta, want_meta)
            assert_same_array(ds.read(i), want_array)
        # negative indices count from the end, as for a list
        assert_same_array(ds[-1][0], arrays[-1])
        assert_same_metadata(ds[-1][1], metas[-1])
        with pytest.raises(IndexError):
            ds[len(arrays)]


@pytest.mark.parametrize("name", fixture_names())
def test_original_fixture_index_frame(name: str) -> None:
    """``ds.index`` is the original's index DataFrame: same columns, locations and shapes."""
    folder, params, _, _ = load_fixture(name)
    original = pd.read_csv(folder / "index.csv")
    with acumen.open(folder, dtype=params["dtype"], use_gzip=params["use_gzip"]) as ds:
        frame = ds.index
    assert list(frame.columns) == list(original.columns)
    assert list(frame.columns[:4]) == [
        "ai:chunk_name",
        "ai:offset_bytes",
        "ai:size_bytes",
        "ai:shape",
    ]
    for column in ("ai:chunk_name", "ai:shape"):
        assert list(frame[column]) == list(original[column])
    for column in ("ai:offset_bytes", "ai:size_bytes"):
        assert frame[column].tolist() == original[column].tolist()


def test_original_fixture_needs_its_dtype() -> None:
    """An original float32 dataset opened with the float16 default is refused, not misread."""
    folder, _, _, _ = load_fixture("raw_f32_varlen")
    with pytest.raises(acumen.CorruptDatasetError, match="dtype"):
        acumen.open(folder)


# --------------------------------------------------------------------------------------
# sample sets written by the original and by acumen

NAMES = ["plain", "with, comma", 'with "quotes"', "ünïcödé ✓", "", "new\nline", "semi;colon"]


def _fixed_case() -> dict:
    rng = np.random.default_rng(1)
    samples = []
    for i in range(22):
        meta = {
            "label": i % 5,
            "name": NAMES[i % len(NAMES)],
            "score": float("nan") if i % 4 == 3 else float(rng.random()),
            "flag": bool(i % 2),
            "mixed": 2 if i % 3 else 2.5,  # ints and floats: a float column
        }
        samples.append((rng.standard_normal((4, 3)).astype(np.float32), meta))
    # 24-byte payloads, 96-byte chunks: exactly four fill a chunk (== limit stays in it)
    return {"samples": samples, "dtype": np.float16, "chunk_size_bytes": 96}


def _variable_shapes(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            shape: tuple[int, ...] = (int(rng.integers(1, 30)),)
        elif kind == 1:
            shape = (int(rng.integers(1, 20)), 2)
        elif kind == 2:
            shape = (2, 3, int(rng.integers(1, 5)))
        else:
            shape = (int(rng.integers(1, 6)), 1, 2, 1)
        arrays.append(rng.standard_normal(shape))  # float64
    return arrays


def _variable_case() -> dict:
    arrays = _variable_shapes(26, seed=2)
    arrays[5] = np.array(3.25)  # 0-d: shape "()"
    arrays[9] = np.zeros((0,))  # empty payload in the middle of a chunk
    samples = [(a, {"seq_id": f"s{i:03d}", "ndim": a.ndim}) for i, a in enumerate(arrays)]
    return {"samples": samples, "dtype": np.float32, "chunk_size_bytes": 200}


def _first_oversized_case() -> dict:
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((10, 10))]  # 200 bytes as float16, above the 64 limit
    arrays += [rng.standard_normal((2, 2)) for _ in range(9)]  # 8 bytes each
    arrays.insert(5, rng.standard_normal((6, 6)))  # 72 bytes: oversized in the middle too
    samples = [(a, {"i": i, "big": a.size > 4}) for i, a in enumerate(arrays)]
    return {"samples": samples, "dtype": np.float16, "chunk_size_bytes": 64}


def _uint8_case() -> dict:
    rng = np.random.default_rng(4)
    samples = [
        (rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), {"path": f"img/{i}.png", "cls": i % 3})
        for i in range(6)
    ]
    return {"samples": samples, "dtype": np.uint8, "chunk_size_bytes": 4096}


def _no_metadata_case() -> dict:
    rng = np.random.default_rng(5)
    samples = [(rng.standard_normal((3,)).astype(np.float32), {}) for _ in range(7)]
    return {"samples": samples, "dtype": np.float32, "chunk_size_bytes": 40}


def _many_case() -> dict:
    arrays = _variable_shapes(150, seed=6)
    samples = [(a, {"k": i, "tag": f"t{i % 7}"}) for i, a in enumerate(arrays)]
    return {"samples": samples, "dtype": np.float32, "chunk_size_bytes": 512}


def _odd_values_case() -> dict:
    texts = ["t\tb", " sp ", "'single'", "#hash", "\\back", "€", "a=b", "x  y"]
    samples = []
    for i, text in enumerate(texts):
        meta = {
            "text": text,
            "big": 2**62 + i,
            "tiny": -1.5e-300 * i,  # -0.0 first
            "inf": [1.0, 2.5, float("inf"), -float("inf")][i % 4],
            "i32": np.int32(i),
            "i64": np.int64(-i),
            "b": np.bool_(i % 2),
            "f64": np.float64(i / 3),
        }
        samples.append((np.full((2, 2), i, dtype=np.float64), meta))
    return {"samples": samples, "dtype": np.float16, "chunk_size_bytes": 16}


CASES = {
    "fixed": _fixed_case,
    "odd_values": _odd_values_case,
    "variable": _variable_case,
    "first_oversized": _first_oversized_case,
    "uint8": _uint8_case,
    "no_metadata": _no_metadata_case,
    "many": _many_case,
}


def make_sample(i: int) -> tuple[np.ndarray, dict]:
    """A module-level ``read_fn`` (picklable for worker processes)."""
    return np.arange(i % 9 + 1, dtype=np.float64).reshape(-1, 1) * (i + 0.5), {"i": i}


@pytest.fixture(scope="module")
def cases() -> dict[str, dict]:
    return {name: build() for name, build in CASES.items()}


@pytest.fixture(scope="module")
def original_output(cases, tmp_path_factory) -> dict[str, Path]:
    """Each case written once by the original writer (n_jobs=1, where it is correct)."""
    root = tmp_path_factory.mktemp("original")
    out = {}
    for name, case in cases.items():
        path = root / name
        acumenindexer.split_into_chunks(
            case["samples"],
            str(path),
            n_jobs=1,
            dtype=case["dtype"],
            chunk_size_bytes=case["chunk_size_bytes"],
        )
        out[name] = path
    return out


def write_with_acumen(kind: str, case: dict, path: Path, **options) -> None:
    samples, dtype, limit = case["samples"], case["dtype"], case["chunk_size_bytes"]
    if kind == "split":
        acumen.split_into_chunks(samples, path, n_jobs=1, dtype=dtype, chunk_size_bytes=limit)
    elif kind == "compat":
        compat.split_into_chunks(samples, str(path), n_jobs=1, dtype=dtype, chunk_size_bytes=limit)
    elif kind == "writer":
        with acumen.Writer(
            path, codec="raw", index_format="csv", chunk_size_bytes=limit, dtype=dtype, **options
        ) as writer:
            for array, meta in samples:
                writer.add(array, **meta)
    else:  # pragma: no cover
        raise AssertionError(kind)


def cast(case: dict) -> list[np.ndarray]:
    return [np.asarray(a).astype(case["dtype"]) for a, _ in case["samples"]]


# --------------------------------------------------------------------------------------
# byte for byte


@pytest.mark.parametrize("kind", ["split", "writer", "compat"])
@pytest.mark.parametrize("case_name", list(CASES))
def test_bytes_equal_original_writer(case_name, kind, cases, original_output, tmp_path) -> None:
    ours = tmp_path / "acumen"
    write_with_acumen(kind, cases[case_name], ours)
    theirs = dataset_files(original_output[case_name])
    mine = dataset_files(ours)
    assert set(mine) == set(theirs) | {"manifest.json"}
    assert mine["index.csv"] == theirs["index.csv"]
    for name, data in theirs.items():
        assert mine[name] == data, name


def test_original_layout_edge_cases(cases, original_output) -> None:
    """The edge cases the byte comparison relies on really occur in the original's output."""
    oversized = dataset_files(original_output["first_oversized"])
    assert "chunks/chunk_0.chnk" not in oversized
    assert "chunks/chunk_1.chnk" in oversized
    fixed = pd.read_csv(original_output["fixed"] / "index.csv")
    # 24-byte payloads exactly filling 96-byte chunks
    assert fixed["ai:chunk_name"].value_counts().max() == 4
    variable = pd.read_csv(original_output["variable"] / "index.csv")
    assert "()" in set(variable["ai:shape"])
    assert "(0,)" in set(variable["ai:shape"])
    assert 0 in set(variable["ai:size_bytes"])
    for name in CASES:
        frame = pd.read_csv(original_output[name] / "index.csv")
        assert len(frame) == len(cases[name]["samples"])  # n_jobs=1: each sample once


@pytest.mark.parametrize("case_name", ["fixed", "variable", "first_oversized"])
def test_index_follows_original_rollover_rule(case_name, cases, tmp_path) -> None:
    case = cases[case_name]
    write_with_acumen("split", case, tmp_path / "d")
    frame = pd.read_csv(tmp_path / "d" / "index.csv")
    sizes = frame["ai:size_bytes"].tolist()
    expected = original_layout(sizes, case["chunk_size_bytes"])
    assert list(zip(frame["ai:chunk_name"], frame["ai:offset_bytes"], strict=True)) == expected
    assert sizes == [a.nbytes for a in cast(case)]


def _write_both(samples: list, tmp_path: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(original's files, acumen's files) for the same samples, float16, 64-byte chunks."""
    acumenindexer.split_into_chunks(
        samples, str(tmp_path / "original"), n_jobs=1, dtype=np.float16, chunk_size_bytes=64
    )
    acumen.split_into_chunks(
        samples, tmp_path / "acumen", n_jobs=1, dtype=np.float16, chunk_size_bytes=64
    )
    return dataset_files(tmp_path / "original"), dataset_files(tmp_path / "acumen")


def test_bytes_equal_original_writer_crlf_in_text(tmp_path) -> None:
    """Windows line ends inside a text value: the original quotes the field (it holds a
    "\n") and keeps "\n" row ends; its index reads back exactly. acumen must match it.

    Only a "\r" that nothing else gets quoted (no "\n", "," or '"' in the field) needs
    the "\r\n" row ends of docs/format.md; see test_lone_carriage_return_reads_back."""
    texts = ["line one\r\nline two", "plain", "a, b\r\nc"]
    samples = [(np.full((3,), i, dtype=np.float32), {"t": t, "n": i}) for i, t in enumerate(texts)]
    theirs, mine = _write_both(samples, tmp_path)
    assert pd.read_csv(tmp_path / "original" / "index.csv")["t"].tolist() == texts
    assert set(mine) == set(theirs) | {"manifest.json"}
    assert mine["index.csv"] == theirs["index.csv"]


def test_bytes_equal_original_writer_float32_metadata(tmp_path) -> None:
    """np.float32 metadata (e.g. ``score=array.mean()``): the original's column is float32,
    which pandas writes with float32's shortest repr ("0.1")."""
    samples = [(np.full((3,), i, np.float32), {"score": np.float32(i / 10)}) for i in range(4)]
    theirs, mine = _write_both(samples, tmp_path)
    assert b"0.1\n" in theirs["index.csv"]
    assert mine["index.csv"] == theirs["index.csv"]


@pytest.mark.parametrize("in_memory", [False, True])
def test_lone_carriage_return_reads_back(in_memory, tmp_path) -> None:
    """A lone "\r" in text (which the original itself garbles): acumen's index still reads
    back exactly, through acumen and through the original reader."""
    texts = ["a\rb", "plain", "c\r\nd", "\r"]
    samples = [(np.full((2,), i, dtype=np.float32), {"t": t, "n": i}) for i, t in enumerate(texts)]
    acumen.split_into_chunks(samples, tmp_path / "d", dtype=np.float32)
    with acumen.open(tmp_path / "d") as ds:
        assert [ds[i][1] for i in range(len(texts))] == [m for _, m in samples]
    read = acumenindexer.read_from_index(
        acumenindexer.load_index(str(tmp_path / "d" / "index.csv")),
        dtype=np.float32,
        chunk_paths=str(tmp_path / "d"),
        in_memory=in_memory,
    )
    for i, (array, meta) in enumerate(samples):
        got_array, got_meta = read(i)
        assert_same_array(got_array, array)
        assert_original_metadata(got_meta, meta)


# --------------------------------------------------------------------------------------
# the original reader reads acumen's output


@pytest.mark.parametrize("in_memory", [False, True])
@pytest.mark.parametrize("kind", ["split", "writer"])
@pytest.mark.parametrize(
    "case_name", ["fixed", "odd_values", "variable", "first_oversized", "uint8"]
)
def test_original_reader_reads_acumen_raw(case_name, kind, in_memory, cases, tmp_path) -> None:
    case = cases[case_name]
    root = tmp_path / "d"
    write_with_acumen(kind, case, root)
    index = acumenindexer.load_index(str(root / "index.csv"))
    read = acumenindexer.read_from_index(
        index, dtype=case["dtype"], use_gzip=False, chunk_paths=str(root), in_memory=in_memory
    )
    assert len(index) == len(case["samples"])
    for i, ((_, meta), want) in enumerate(zip(case["samples"], cast(case), strict=True)):
        array, got_meta = read(i)
        assert_same_array(array, want)
        assert_original_metadata(got_meta, meta)


def _write_gzip(kind: str, case: dict, path: Path) -> None:
    samples, dtype, limit = case["samples"], case["dtype"], case["chunk_size_bytes"]
    if kind == "split":
        acumen.split_into_chunks(
            samples, path, n_jobs=1, dtype=dtype, chunk_size_bytes=limit, use_gzip=True
        )
    elif kind == "compat":
        compat.split_into_chunks(
            samples, str(path), n_jobs=1, dtype=dtype, chunk_size_bytes=limit, use_gzip=True
        )
    else:
        with acumen.Writer(
            path, codec="gzip", index_format="csv", chunk_size_bytes=limit, dtype=dtype
        ) as writer:
            for array, meta in samples:
                writer.add(array, **meta)


def test_original_writer_refuses_gzip(tmp_path) -> None:
    """Why gzip output is compared through the original reader rather than its writer."""
    with pytest.raises(Exception, match="use_gzip"):
        acumenindexer.split_into_chunks([], str(tmp_path / "x"), n_jobs=1, use_gzip=True)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("kind", ["split", "writer", "compat"])
@pytest.mark.parametrize("case_name", ["fixed", "variable", "first_oversized"])
def test_original_reader_reads_acumen_gzip(case_name, kind, cases, tmp_path) -> None:
    case = cases[case_name]
    root = tmp_path / "d"
    _write_gzip(kind, case, root)
    files = dataset_files(root)
    frame = pd.read_csv(root / "index.csv")
    assert set(files) == {"index.csv", "manifest.json", *set(frame["ai:chunk_name"])}
    # the original's rollover rule, applied to the compressed payload sizes
    sizes = frame["ai:size_bytes"].tolist()
    layout = list(zip(frame["ai:chunk_name"], frame["ai:offset_bytes"], strict=True))
    assert layout == original_layout(sizes, case["chunk_size_bytes"])
    wanted = cast(case)
    # each payload is one complete gzip member of the cast array's bytes
    for row, want in zip(frame.itertuples(index=False), wanted, strict=True):
        chunk, offset, size = row[0], row[1], row[2]
        payload = files[chunk][offset : offset + size]
        assert payload[:2] == b"\x1f\x8b"
        assert gzip.decompress(payload) == want.tobytes()
    # chunk files hold nothing but the payloads
    for chunk, group in frame.groupby("ai:chunk_name"):
        assert len(files[chunk]) == int(group["ai:size_bytes"].sum())
    index = acumenindexer.load_index(str(root / "index.csv"))
    for in_memory in (False, True):
        read = acumenindexer.read_from_index(
            index, dtype=case["dtype"], use_gzip=True, chunk_paths=str(root), in_memory=in_memory
        )
        for i, ((_, meta), want) in enumerate(zip(case["samples"], wanted, strict=True)):
            array, got_meta = read(i)
            assert_same_array(array, want)
            assert_original_metadata(got_meta, meta)
    # and acumen reads it back from its manifest alone
    with acumen.open(root) as ds:
        assert ds.codec.name == "gzip"
        for i, want in enumerate(wanted):
            assert_same_array(ds.read(i), want)


# --------------------------------------------------------------------------------------
# acumen reads what the original wrote


def _as_read(meta: dict, frame_types: dict[str, str]) -> dict:
    """What acumen gives back for a written dict read from a manifest-less index."""
    out = {}
    for key, value in meta.items():
        value = value.item() if isinstance(value, np.generic) else value
        out[key] = float(value) if frame_types[key] == "float" else value
    return out


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("case_name", list(CASES))
def test_acumen_reads_original_output(case_name, storage, cases, original_output) -> None:
    case = cases[case_name]
    root = original_output[case_name]
    assert not (root / "manifest.json").exists()
    with acumen.open(root, storage=storage, dtype=case["dtype"], use_gzip=False) as ds:
        assert len(ds) == len(case["samples"])
        kinds = {spec.name: spec.type for spec in ds.table.metadata.specs}
        for i, ((_, meta), want) in enumerate(zip(case["samples"], cast(case), strict=True)):
            array, got_meta = ds[i]
            assert_same_array(array, want)
            assert_same_metadata(got_meta, _as_read(meta, kinds))


@pytest.mark.parametrize("case_name", ["fixed", "odd_values", "variable", "no_metadata"])
def test_acumen_round_trip_keeps_types(case_name, cases, tmp_path) -> None:
    """Through the manifest, acumen's own raw/csv output reads back as written."""
    case = cases[case_name]
    write_with_acumen("writer", case, tmp_path / "d")
    with acumen.open(tmp_path / "d") as ds:
        kinds = {spec.name: spec.type for spec in ds.table.metadata.specs}
        for i, ((_, meta), want) in enumerate(zip(case["samples"], cast(case), strict=True)):
            array, got_meta = ds[i]
            assert_same_array(array, want)
            assert_same_metadata(got_meta, _as_read(meta, kinds))


# --------------------------------------------------------------------------------------
# acumen.compat


@pytest.mark.parametrize("in_memory", [False, True])
@pytest.mark.parametrize("name", fixture_names())
def test_compat_reads_fixture_default_chunk_paths(name, in_memory) -> None:
    folder, params, arrays, metas = load_fixture(name)
    index = compat.load_index(str(folder / "index.csv"))
    assert isinstance(index, pd.DataFrame)
    assert len(index) == len(arrays)
    # the DataFrame is the original's: same as a plain read_csv of the file
    pd.testing.assert_frame_equal(index, acumenindexer.load_index(str(folder / "index.csv")))
    read = compat.read_from_index(
        index, dtype=params["dtype"], use_gzip=params["use_gzip"], in_memory=in_memory
    )
    assert len(read) == len(arrays)
    for i, (want_array, want_meta) in enumerate(zip(arrays, metas, strict=True)):
        array, meta = read(i)
        assert_same_array(array, want_array)
        assert_same_metadata(meta, want_meta)


@pytest.mark.parametrize("name", fixture_names())
def test_compat_reads_fixture_explicit_chunk_paths(name, tmp_path, monkeypatch) -> None:
    """The original's call, with chunk_paths given, from an unrelated working folder."""
    folder, params, arrays, metas = load_fixture(name)
    monkeypatch.chdir(tmp_path)
    index = compat.load_index(folder / "index.csv")
    read = compat.read_from_index(
        index, params["dtype"], params["use_gzip"], chunk_paths=str(folder)
    )
    for i in (0, len(arrays) // 2, len(arrays) - 1):
        array, meta = read(i)
        assert_same_array(array, arrays[i])
        assert_same_metadata(meta, metas[i])


@pytest.mark.parametrize("in_memory", [False, True])
@pytest.mark.parametrize("name", ["raw_f16_fixed", "gzip_f32"])
def test_compat_reader_pickles(name, in_memory) -> None:
    folder, params, arrays, metas = load_fixture(name)
    read = compat.read_from_index(
        compat.load_index(str(folder / "index.csv")),
        dtype=params["dtype"],
        use_gzip=params["use_gzip"],
        in_memory=in_memory,
    )
    fresh = pickle.loads(pickle.dumps(read))
    read(0)  # files now open (mapped with in_memory=True)
    used = pickle.loads(pickle.dumps(read))
    for reader in (fresh, used, read):
        assert len(reader) == len(arrays)
        for i in (0, 7, len(arrays) - 1):
            array, meta = reader(i)
            assert_same_array(array, arrays[i])
            assert_same_metadata(meta, metas[i])


def test_original_reader_is_not_picklable() -> None:
    """The bug compat fixes: the original's reader is a closure."""
    folder, _, _, _ = load_fixture("raw_f16_fixed")
    read = acumenindexer.read_from_index(
        acumenindexer.load_index(str(folder / "index.csv")), chunk_paths=str(folder)
    )
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(read)


def test_compat_parallel_split_equals_serial(cases, original_output, tmp_path) -> None:
    case = cases["many"]
    options = {"dtype": case["dtype"], "chunk_size_bytes": case["chunk_size_bytes"]}
    compat.split_into_chunks(case["samples"], str(tmp_path / "one"), n_jobs=1, **options)
    compat.split_into_chunks(case["samples"], str(tmp_path / "two"), n_jobs=2, **options)
    one, two = dataset_files(tmp_path / "one"), dataset_files(tmp_path / "two")
    assert set(two) == set(one)
    for name, data in one.items():
        assert two[name] == data, name
    # and both are the original's serial output, plus the manifest
    theirs = dataset_files(original_output["many"])
    assert set(two) == set(theirs) | {"manifest.json"}
    for name, data in theirs.items():
        assert two[name] == data, name
    frame = compat.load_index(str(tmp_path / "two" / "index.csv"))
    assert len(frame) == len(case["samples"])  # each sample once (the original's bug: n_jobs x)
    read = compat.read_from_index(frame, dtype=case["dtype"])
    for i, ((_, meta), want) in enumerate(zip(case["samples"], cast(case), strict=True)):
        array, got_meta = read(i)
        assert_same_array(array, want)
        assert_same_metadata(got_meta, meta)


def test_compat_parallel_split_with_read_fn(tmp_path) -> None:
    items = list(range(100))
    options = {"read_fn": make_sample, "dtype": np.float32, "chunk_size_bytes": 128}
    compat.split_into_chunks(items, str(tmp_path / "one"), n_jobs=1, **options)
    compat.split_into_chunks(items, str(tmp_path / "three"), n_jobs=3, **options)
    assert dataset_files(tmp_path / "three") == dataset_files(tmp_path / "one")
    read = compat.read_from_index(
        compat.load_index(str(tmp_path / "three" / "index.csv")), dtype=np.float32
    )
    for i in items:
        array, meta = read(i)
        want_array, want_meta = make_sample(i)
        assert_same_array(array, want_array.astype(np.float32))
        assert_same_metadata(meta, want_meta)


@pytest.mark.parametrize("content", ["empty", "file"])
def test_compat_split_refuses_existing_path(content, cases, tmp_path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    if content == "file":
        (target / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="already exists"):
        compat.split_into_chunks(cases["fixed"]["samples"], str(target), n_jobs=1)
    assert [p.name for p in target.iterdir()] == ([] if content == "empty" else ["keep.txt"])
    if content == "file":
        assert (target / "keep.txt").read_text() == "precious"


def test_compat_split_refuses_existing_file(cases, tmp_path) -> None:
    target = tmp_path / "out"
    target.write_bytes(b"data")
    with pytest.raises(acumen.DatasetExistsError):
        compat.split_into_chunks(cases["fixed"]["samples"], str(target), n_jobs=1)
    assert target.read_bytes() == b"data"


# --------------------------------------------------------------------------------------
# the manifest


def _check_manifest(root: Path, case: dict) -> dict:
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    frame = pd.read_csv(root / "index.csv")
    assert manifest["format"] == "acumen"
    assert manifest["format_version"] == 1
    assert manifest["acumen_version"] == acumen.__version__
    assert manifest["n_samples"] == len(case["samples"]) == len(frame)
    assert manifest["dtype"] == np.dtype(case["dtype"]).newbyteorder("<").str
    assert manifest["index"]["name"] == "csv"
    assert isinstance(manifest["index"]["configuration"], dict)
    assert manifest["index"]["file"] == "index.csv"
    assert manifest["layout"]["chunk_size_bytes"] == case["chunk_size_bytes"]
    counts = frame["ai:chunk_name"].value_counts().to_dict()
    files = [c["file"] for c in manifest["chunks"]]
    assert files == sorted(counts, key=lambda f: int(f.split("_")[1].split(".")[0]))
    for entry in manifest["chunks"]:
        assert set(entry) == {"file", "size_bytes", "n_samples", "checksum"}
        assert entry["size_bytes"] == (root / entry["file"]).stat().st_size
        data = (root / entry["file"]).read_bytes()
        assert entry["checksum"] == f"xxh3_64:{xxhash.xxh3_64(data).hexdigest()}"
        assert entry["n_samples"] == counts[entry["file"]]
    assert sum(c["n_samples"] for c in manifest["chunks"]) == manifest["n_samples"]
    # the chunks list names every chunk file there is
    on_disk = sorted(p.relative_to(root).as_posix() for p in (root / "chunks").iterdir())
    assert sorted(files) == on_disk
    return manifest


@pytest.mark.parametrize("kind", ["split", "writer"])
def test_manifest_of_fixed_raw_csv_dataset(kind, cases, tmp_path) -> None:
    case = cases["fixed"]
    write_with_acumen(kind, case, tmp_path / "d")
    manifest = _check_manifest(tmp_path / "d", case)
    assert manifest["dtype"] == "<f2"
    assert manifest["shape"] == [4, 3]
    assert manifest["codec"]["name"] == "raw"
    assert isinstance(manifest["codec"]["configuration"], dict)
    assert manifest["metadata"] == [
        {"name": "label", "type": "int"},
        {"name": "name", "type": "str"},
        {"name": "score", "type": "float"},
        {"name": "flag", "type": "bool"},
        {"name": "mixed", "type": "float"},
    ]
    assert len(manifest["chunks"]) == 6  # 22 samples, 4 per chunk


def test_manifest_of_variable_and_oversized_datasets(cases, tmp_path) -> None:
    variable = cases["variable"]
    write_with_acumen("split", variable, tmp_path / "v")
    manifest = _check_manifest(tmp_path / "v", variable)
    assert manifest["shape"] is None
    assert manifest["dtype"] == "<f4"
    assert manifest["metadata"] == [
        {"name": "seq_id", "type": "str"},
        {"name": "ndim", "type": "int"},
    ]
    oversized = cases["first_oversized"]
    write_with_acumen("writer", oversized, tmp_path / "o")
    manifest = _check_manifest(tmp_path / "o", oversized)
    assert manifest["chunks"][0]["file"] == "chunks/chunk_1.chnk"
    assert manifest["chunks"][0]["n_samples"] == 1
    assert manifest["chunks"][0]["size_bytes"] == 200  # above the limit: alone in its chunk


def test_manifest_of_gzip_dataset(cases, tmp_path) -> None:
    case = cases["variable"]
    _write_gzip("split", case, tmp_path / "g")
    manifest = _check_manifest(tmp_path / "g", case)
    assert manifest["codec"]["name"] == "gzip"
