"""The manifest seals itself and records the checksum of every other file it names, and
per-sample checksums are bound to their index row.

Before, a flipped byte of an index could change metadata or arrays without an error, and a
row whose chunk id was damaged pointed ``verify="sample"`` at another sample's bytes, whose
own checksum was valid.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.errors import AcumenError, CorruptDatasetError, ManifestError
from acumen.format.checksums import SEAL_KEY, file_checksum
from acumen.read import file_checks as validation
from acumen.verify import verify
from tests.conftest import INDEX_FORMATS
from tests.dataset_edits import edit_index, manifest_of, save_manifest

ARRAYS = [np.arange(6, dtype=np.int32).reshape(2, 3) + 10 * i for i in range(6)]
METADATA = [{"label": i % 3, "name": f"s{i}", "weight": i / 4} for i in range(6)]


def write(path: Path, **options) -> Path:
    with acumen.Writer(path, **options) as writer:
        for array, metadata in zip(ARRAYS, METADATA, strict=True):
            writer.add(array, **metadata)
    return path


def read_all(path: Path, **options) -> tuple[list[np.ndarray], list[dict]]:
    with acumen.open(path, **options) as ds:
        return [ds.read(i).copy() for i in range(len(ds))], [ds.metadata(i) for i in range(len(ds))]


@pytest.mark.parametrize("index_format", INDEX_FORMATS)
def test_the_manifest_records_the_index_checksum_and_seals_itself(
    tmp_path: Path, index_format: str
) -> None:
    root = write(tmp_path / "ds", index_format=index_format)
    manifest = manifest_of(root)
    index_file = manifest["index"]["file"]
    assert manifest["files"] == {index_file: file_checksum(root / index_file)}
    assert list(manifest)[-1] == SEAL_KEY


@pytest.mark.parametrize("index_format", INDEX_FORMATS)
def test_every_flipped_index_byte_is_refused_at_open(tmp_path: Path, index_format: str) -> None:
    """No byte of the index can change without the open saying so, naming the file."""
    root = write(tmp_path / "ds", index_format=index_format)
    index = root / manifest_of(root)["index"]["file"]
    original = index.read_bytes()
    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0x10
        index.write_bytes(bytes(damaged))
        with pytest.raises(CorruptDatasetError, match=f"{index}: checksum .* differs"):
            acumen.open(root)
    index.write_bytes(original)
    arrays, metadata = read_all(root)
    assert metadata == METADATA
    for got, want in zip(arrays, ARRAYS, strict=True):
        np.testing.assert_array_equal(got, want)


def test_every_flipped_manifest_bit_is_an_error_or_harmless(tmp_path: Path) -> None:
    """A single flipped bit anywhere in the manifest is refused; the only flips that open
    are those that leave what it says intact (inside the seal's own key name)."""
    root = write(tmp_path / "ds", codec="zstd")
    path = root / "manifest.json"
    original = path.read_bytes()
    opened = 0
    for position in range(len(original)):
        for bit in (0x01, 0x20, 0x80):
            damaged = bytearray(original)
            damaged[position] ^= bit
            path.write_bytes(bytes(damaged))
            try:
                arrays, metadata = read_all(root)
            except AcumenError:
                continue
            opened += 1
            assert metadata == METADATA, f"byte {position} ^ {bit:#x}"
            for got, want in zip(arrays, ARRAYS, strict=True):
                np.testing.assert_array_equal(got, want)
    assert opened <= 3 * len(SEAL_KEY)


def test_an_edited_manifest_names_its_seal(tmp_path: Path) -> None:
    root = write(tmp_path / "ds")
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["dtype"] = "<f4"  # same size, other meaning: would read garbage
    path.write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=f"{path}: key '{SEAL_KEY}': .* damaged or edited"):
        acumen.open(root)


def test_a_damaged_codec_dictionary_is_refused(tmp_path: Path) -> None:
    codec = {"name": "zstd", "configuration": {"dictionary_size": 1024}}
    root = tmp_path / "ds"
    rng = np.random.default_rng(0)
    with acumen.Writer(root, codec=codec) as writer:
        for i in range(300):
            writer.add(rng.integers(0, 4, 64).astype(np.uint8), i=i)
    manifest = manifest_of(root)
    (name,) = [n for n in manifest["files"] if n != manifest["index"]["file"]]
    dictionary = root / name
    data = bytearray(dictionary.read_bytes())
    data[len(data) // 2] ^= 1
    dictionary.write_bytes(bytes(data))
    with pytest.raises(CorruptDatasetError, match=f"{dictionary}: checksum .* differs"):
        acumen.open(root)
    assert any(str(dictionary) in problem for problem in verify(root, progress=False).problems)


def test_a_large_index_is_hashed_by_verify_not_by_every_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past HASH_AT_OPEN_BYTES a plain open trusts the index's rows checks; verify=... and
    ``acumen verify`` hash it whatever its size."""
    root = write(tmp_path / "ds")
    edit_index(root, 1, "label", "2")  # a value no row check can doubt...
    manifest = manifest_of(root)
    manifest["files"]["index.csv"] = "xxh3_64:" + "0" * 16  # ...with its old checksum
    save_manifest(root, manifest)
    monkeypatch.setattr(validation, "HASH_AT_OPEN_BYTES", 0)
    with acumen.open(root) as ds:
        assert ds.metadata(1)["label"] == 2
    with pytest.raises(CorruptDatasetError, match=r"index\.csv: checksum"):
        acumen.open(root, verify="chunk")
    report = verify(root, progress=False)
    assert not report.ok
    assert any("index.csv: checksum" in problem for problem in report.problems)


def test_datasets_without_file_checksums_still_open_and_verify_says_so(tmp_path: Path) -> None:
    """Datasets written before the checksums were recorded read as before."""
    root = write(tmp_path / "ds")
    manifest = manifest_of(root)
    del manifest["files"], manifest[SEAL_KEY]
    (root / "manifest.json").write_text(json.dumps(manifest))
    arrays, metadata = read_all(root)
    assert metadata == METADATA
    np.testing.assert_array_equal(arrays[5], ARRAYS[5])
    report = verify(root, progress=False)
    assert report.ok
    assert any("records no checksum of the index" in note for note in report.notes)


@pytest.mark.parametrize("storage", ["mmap", "seek"])
def test_verify_sample_catches_a_row_pointing_at_another_samples_bytes(
    tmp_path: Path, storage: str
) -> None:
    """Row 1 is made to point at sample 4's payload (valid bytes, with a valid checksum of
    their own in row 4): the checksum of row 1 does not match them."""
    root = write(tmp_path / "ds", checksums="sample")
    with acumen.open(root) as ds:
        offset = int(ds.table.offsets[4])
    edit_index(root, 1, "ai:offset_bytes", str(offset))  # resealed: only the sample check can tell
    with acumen.open(root, storage) as ds:
        np.testing.assert_array_equal(ds.read(1), ARRAYS[4])  # without verify: undetectable
    with (
        acumen.open(root, storage, verify="sample") as ds,
        pytest.raises(CorruptDatasetError, match="sample 1: the payload's checksum differs"),
    ):
        ds.read(1)
    with acumen.open(root, storage, verify="sample") as ds:
        np.testing.assert_array_equal(ds.read(4), ARRAYS[4])
        with pytest.raises(CorruptDatasetError, match="sample 1"):
            ds.read_batch([0, 1])
        view = ds.select([4, 1])
        np.testing.assert_array_equal(view.read(0), ARRAYS[4])
        with pytest.raises(CorruptDatasetError, match="sample 1"):
            view.read(1)
    report = verify(root, progress=False)
    assert any("sample 1:" in problem for problem in report.problems)


def test_reseal_is_what_a_hostile_author_does(tmp_path: Path) -> None:
    """The test helper that edits with valid checksums: the row checks still refuse."""
    root = write(tmp_path / "ds")
    edit_index(root, 2, "ai:size_bytes", "4")
    with pytest.raises(CorruptDatasetError, match="sample 2"):
        acumen.open(root)
