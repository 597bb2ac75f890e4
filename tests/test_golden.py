"""The golden datasets of ``tests/golden`` read back byte for byte, forever.

They were written once by acumen before the issue-13 refactor (``tests/golden/README.md``)
and are never regenerated: a change that stops one of them from reading is a regression.
Every dataset in the folder is checked (a new one joins by being there); ``GOLDEN_NAMES``
makes a deleted one fail loudly.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acumen
from acumen.verify import verify

GOLDEN = Path(__file__).resolve().parent / "golden"

GOLDEN_NAMES = [
    "single_raw_csv_uint8_fixed",
    "single_raw_parquet_float32_varying",
    "single_raw_arrow_int16_fixed",
    "single_gzip_csv_float64_varying",
    "single_gzip_parquet_uint16_fixed",
    "single_gzip_arrow_int32_varying",
    "single_zstd_csv_float16_fixed",
    "single_zstd_parquet_int64_varying",
    "single_zstd_arrow_int8_fixed",
    "single_lz4_csv_bool_varying",
    "single_lz4_parquet_uint32_fixed",
    "single_lz4_arrow_float32_fixed",
    "fields_zstd_lz4_gzip_raw_bytes_parquet",
    "checksums_sample_zstd_csv",
    "checksums_sample_fields_lz4_arrow",
    "zstd_dictionary_parquet",
    "original_split_raw_csv",
    "original_split_gzip_csv",
]


def found_names() -> list[str]:
    return sorted(p.name[: -len(".expected.json")] for p in GOLDEN.glob("*.expected.json"))


NAMES = found_names()


def test_the_golden_folder_holds_every_dataset_and_nothing_half_there() -> None:
    assert sorted(GOLDEN_NAMES) == NAMES
    folders = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == NAMES
    for name in NAMES:
        assert (GOLDEN / f"{name}.expected.npz").is_file()
        assert (GOLDEN / name / "manifest.json").is_file()


class Golden:
    """One golden dataset and what it must read back (loaded without acumen)."""

    def __init__(self, name: str) -> None:
        self.path = GOLDEN / name
        self.info = json.loads((GOLDEN / f"{name}.expected.json").read_text(encoding="utf-8"))
        with np.load(GOLDEN / f"{name}.expected.npz", allow_pickle=False) as arrays:
            self.arrays = {key: arrays[key] for key in arrays.files}
        self.n = self.info["n_samples"]
        self.fields = self.info["fields"]

    def sample(self, i: int) -> Any:
        """Sample ``i`` as acumen returns it: an array, or a dict of arrays and bytes."""
        if self.fields is None:
            return self.arrays[str(i)]
        specs = self.info["samples"][i]["fields"]
        return {
            name: self.arrays[f"{i}/{name}"].tobytes()
            if specs[name]["type"] == "bytes"
            else self.arrays[f"{i}/{name}"]
            for name in self.fields
        }

    def metadata(self, i: int) -> dict[str, Any]:
        return self.info["samples"][i]["metadata"]


def file_digests(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its SHA-256 (a read must not add, change or drop one)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def assert_same_array(got: Any, want: np.ndarray, where: str) -> None:
    assert isinstance(got, np.ndarray), where
    assert got.dtype == want.dtype, where
    assert got.dtype.str == want.dtype.str, where
    assert got.shape == want.shape, where
    assert np.array_equal(got, want), where
    assert got.tobytes() == want.tobytes(), where


def assert_same_sample(got: Any, want: Any, where: str) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for name, value in want.items():
            if isinstance(value, bytes):
                assert type(got[name]) is bytes and got[name] == value, f"{where} {name}"
            else:
                assert_same_array(got[name], value, f"{where} {name}")
    else:
        assert_same_array(got, want, where)


def assert_same_metadata(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    assert list(got) == list(want), where
    for key, value in want.items():
        assert type(got[key]) is type(value), f"{where} {key}: {got[key]!r} vs {value!r}"
        if isinstance(value, float):  # repr: NaN equals NaN, -0.0 differs from 0.0
            assert repr(got[key]) == repr(value) or (math.isnan(got[key]) and math.isnan(value))
        else:
            assert got[key] == value, f"{where} {key}"


def check_reads(ds: acumen.Dataset, golden: Golden) -> None:
    assert len(ds) == golden.n
    assert ds.fields == golden.fields
    for i in range(golden.n):
        sample, metadata = ds[i]
        assert_same_sample(sample, golden.sample(i), f"sample {i}")
        assert_same_metadata(metadata, golden.metadata(i), f"sample {i}")
        assert_same_metadata(ds.metadata(i), golden.metadata(i), f"metadata {i}")
    for i, (sample, metadata) in enumerate(ds):
        assert_same_sample(sample, golden.sample(i), f"iterated sample {i}")
        assert_same_metadata(metadata, golden.metadata(i), f"iterated sample {i}")
    assert i == golden.n - 1
    order = np.random.default_rng(0).permutation(golden.n)
    for positions in (np.arange(golden.n), order):
        batch = ds.read_batch(positions)
        assert len(batch) == golden.n
        if isinstance(batch, np.ndarray):
            wanted = [golden.sample(int(i)) for i in positions]
            assert_same_array(batch, np.stack(wanted), "read_batch")
        else:  # a list: shapes vary, or a record of fields
            for row, i in enumerate(positions.tolist()):
                assert_same_sample(batch[row], golden.sample(i), f"read_batch row {row}")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("storage", ["mmap", "seek", "memory"])
def test_a_golden_dataset_reads_back_byte_for_byte(name: str, storage: str) -> None:
    golden = Golden(name)
    before = file_digests(golden.path)
    with acumen.open(golden.path, storage) as ds:
        assert ds.dtype is not None or golden.fields is not None
        check_reads(ds, golden)
    assert file_digests(golden.path) == before


@pytest.mark.parametrize("name", NAMES)
def test_a_golden_dataset_passes_every_verification(name: str) -> None:
    golden = Golden(name)
    before = file_digests(golden.path)
    manifest = json.loads((golden.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["codec"]["name"] == golden.info["codec"]
    assert manifest["index"]["name"] == golden.info["index_format"]
    if golden.fields is not None:
        codecs = {f["name"]: f["codec"]["name"] for f in manifest["fields"]}
        assert codecs == golden.info["field_codecs"]
    if golden.info["zstd_dictionary"]:
        assert manifest["codec"]["configuration"]["dictionary"]
    levels = ["chunk", "sample"] if golden.info["sample_checksums"] else ["chunk"]
    for level in levels:
        with acumen.open(golden.path, verify=level) as ds:
            check_reads(ds, golden)
    report = verify(golden.path, jobs=1, progress=False)
    assert report.ok, str(report)
    assert file_digests(golden.path) == before
