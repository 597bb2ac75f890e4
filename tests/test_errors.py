"""Every error a user can meet: its class, the built-in it also is, and what it says.

A message must say what is wrong and where (the dataset, the file, the key, the sample),
so each test checks the text as well as the type.
"""

from __future__ import annotations

import os
import re
import socket
import zlib
from pathlib import Path

import lz4.frame
import numpy as np
import pytest

import acumen
import acumen.codecs.gzip
import acumen.codecs.lz4
from acumen import plugins
from acumen.codecs.zstd import ZstdCodec
from acumen.errors import (
    AcumenError,
    CorruptDatasetError,
    DatasetExistsError,
    DatasetNotFoundError,
    IncompleteDatasetError,
    ManifestError,
    PluginNotFoundError,
    SampleError,
)
from tests.dataset_edits import edit_index, manifest_of, reseal, save_manifest

SHAPE = (4, 3)
COMPRESSING = ("gzip", "zstd", "lz4")


# --- helpers -------------------------------------------------------------------------
def arrays(n: int = 3, shape: tuple[int, ...] = SHAPE, dtype=np.float32, seed: int = 0):
    """Random (so incompressible) arrays: a corrupted payload cannot hide in a long run."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


def write(root: Path, samples, **writer_options) -> acumen.Writer:
    with acumen.Writer(root, **writer_options) as writer:
        for i, array in enumerate(samples):
            writer.add(array, label=i, name=f"s{i}")
    return writer


def chunk_path(root: Path, n: int = 0) -> Path:
    return root / "chunks" / f"chunk_{n}.chnk"


def assert_is(error: BaseException, acumen_class: type, builtin: type) -> None:
    assert isinstance(error, acumen_class)
    assert isinstance(error, AcumenError)
    assert isinstance(error, builtin)


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """A small raw float32 dataset with a manifest: 3 samples of (4, 3), one chunk."""
    root = tmp_path / "ds"
    samples = arrays()
    write(root, samples)
    return root, samples


# --- the exception hierarchy --------------------------------------------------------
@pytest.mark.parametrize(
    ("acumen_class", "builtin"),
    [
        (DatasetNotFoundError, FileNotFoundError),
        (DatasetExistsError, FileExistsError),
        (IncompleteDatasetError, ValueError),
        (ManifestError, ValueError),
        (CorruptDatasetError, ValueError),
        (SampleError, ValueError),
        (PluginNotFoundError, KeyError),
        (acumen.PluginConflictError, ValueError),
    ],
)
def test_every_error_is_also_the_natural_builtin(acumen_class, builtin):
    assert issubclass(acumen_class, AcumenError)
    assert issubclass(acumen_class, builtin)
    assert getattr(acumen, acumen_class.__name__) is acumen_class


def test_errors_print_their_message_without_quotes_or_errno():
    # KeyError would print repr() of the message, FileNotFoundError "[Errno None]".
    assert str(PluginNotFoundError("codec 'x' is missing")) == "codec 'x' is missing"
    assert str(DatasetNotFoundError("/a: gone")) == "/a: gone"
    assert str(DatasetExistsError("/a: there")) == "/a: there"


# --- opening: no dataset, incomplete dataset ----------------------------------------
def test_open_missing_path(tmp_path: Path):
    missing = tmp_path / "nothing-here"
    with pytest.raises(DatasetNotFoundError) as caught:
        acumen.open(missing)
    assert_is(caught.value, DatasetNotFoundError, FileNotFoundError)
    assert str(caught.value) == f"{missing}: no such dataset (the path does not exist)"


def test_open_folder_that_is_not_a_dataset(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FileNotFoundError) as caught:
        acumen.open(tmp_path)
    assert_is(caught.value, DatasetNotFoundError, FileNotFoundError)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path}: not a dataset")
    assert "neither manifest.json (acumen) nor index.csv (original acumenindexer)" in message


def test_open_a_plain_file(tmp_path: Path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"12345")
    with pytest.raises(DatasetNotFoundError, match=re.escape(f"{path}: not a dataset folder")):
        acumen.open(path)


def test_failed_write_leaves_an_incomplete_dataset_and_deletes_nothing(tmp_path: Path):
    root = tmp_path / "ds"
    samples = arrays(5)
    writer = acumen.Writer(root, chunk_size_bytes=100)
    with pytest.raises(RuntimeError, match="disk on fire"), writer:
        for array in samples:
            writer.add(array, label=1)
        raise RuntimeError("disk on fire")

    assert (root / ".acumen-writing").is_file()
    assert not (root / "manifest.json").exists()
    # 48-byte samples, 100-byte chunks: two per chunk, all three chunk files kept.
    kept = sorted(p.name for p in (root / "chunks").iterdir())
    assert kept == ["chunk_0.chnk", "chunk_1.chnk", "chunk_2.chnk"]
    assert chunk_path(root, 0).read_bytes() == samples[0].tobytes() + samples[1].tobytes()
    assert chunk_path(root, 2).read_bytes() == samples[4].tobytes()

    with pytest.raises(IncompleteDatasetError) as caught:
        acumen.open(root)
    assert_is(caught.value, IncompleteDatasetError, ValueError)
    message = str(caught.value)
    assert message.startswith(f"{root}: incomplete dataset")
    assert f"writer pid {os.getpid()} on {socket.gethostname()}" in message
    assert ".acumen-writing is present" in message
    assert "write it again" in message
    # Still nothing deleted after the failed open.
    assert len(list((root / "chunks").iterdir())) == 3

    # And nobody may write over it either; the refusal says why.
    with pytest.raises(DatasetExistsError, match="is an incomplete dataset: a write started"):
        acumen.Writer(root)


def test_incomplete_dataset_with_an_unreadable_marker(tmp_path: Path):
    root = tmp_path / "ds"
    write(root, arrays())
    (root / ".acumen-writing").write_text("garbage, not json")
    with pytest.raises(IncompleteDatasetError, match="incomplete dataset: a write started and"):
        acumen.open(root)


def test_aborted_writer_refuses_further_samples(tmp_path: Path):
    writer = acumen.Writer(tmp_path / "ds")
    writer.add(np.zeros(3, np.float32))
    writer.abort()
    with pytest.raises(ValueError, match=re.escape(f"the writer of {tmp_path / 'ds'} is closed")):
        writer.add(np.zeros(3, np.float32))
    with pytest.raises(IncompleteDatasetError):
        acumen.open(tmp_path / "ds")


# --- manifest.json ------------------------------------------------------------------
def test_manifest_not_json(dataset):
    root, _ = dataset
    (root / "manifest.json").write_text('{"format": "acumen", ', encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        acumen.open(root)
    error = caught.value
    assert_is(error, ManifestError, ValueError)
    assert error.path == str(root / "manifest.json")
    assert error.key is None
    assert str(error).startswith(f"{root / 'manifest.json'}: the file: not valid JSON")


def test_manifest_not_utf8(dataset):
    root, _ = dataset
    (root / "manifest.json").write_bytes(b'{"format": "\xff\xfe"}')
    with pytest.raises(ManifestError, match="the file: not UTF-8 text"):
        acumen.open(root)


def test_manifest_not_an_object(dataset):
    root, _ = dataset
    (root / "manifest.json").write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        acumen.open(root)
    assert caught.value.key is None
    assert str(caught.value) == (
        f"{root / 'manifest.json'}: the file: must be a JSON object, got list"
    )


def _delete(*path):
    def edit(m):
        target = m
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return edit


def _set(*path_and_value):
    *path, value = path_and_value

    def edit(m):
        target = m
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return edit


MANIFEST_CASES = [
    (_delete("codec"), "codec", "is missing"),
    (_delete("chunks"), "chunks", "is missing"),
    (_set("n_samples", "3"), "n_samples", "must be an integer, got '3'"),
    (_set("n_samples", True), "n_samples", "must be an integer, got True"),
    (_set("n_samples", 4), "chunks", "sample counts add up to 3, not n_samples = 4"),
    (_set("chunks", 0, "size_bytes", -1), "chunks[0].size_bytes", "must not be negative, got -1"),
    (_set("chunks", 0, "file", 7), "chunks[0].file", "must be a string, got 7"),
    (_set("chunks", 0, "oops"), "chunks[0]", "must be an object"),
    (_set("format", "zarr"), "format", "must be 'acumen', got 'zarr'"),
    (_set("format_version", 0), "format_version", "must be at least 1, got 0"),
    (_set("dtype", "float99"), "dtype", "is not a dtype"),
    (_set("shape", [4, -3]), "shape", "must be null or a list of sizes, got [4, -3]"),
    (_set("codec", "zstd"), "codec", "must be an object, got 'zstd'"),
    (_set("codec", "name", 3), "codec.name", "must be a string, got 3"),
    (_set("codec", "configuration", [1]), "codec.configuration", "must be an object"),
    (_delete("layout"), "layout", "is missing"),
    (_delete("index", "file"), "index.file", "is missing"),
    (_set("layout", "chunk_size_bytes", 1.5), "layout.chunk_size_bytes", "must be an integer"),
    (_set("metadata", 0, "type", "complex"), "metadata[0].type", "must be one of ('int', 'float'"),
    (_set("metadata", 1, "name", None), "metadata[1].name", "must be a string, got None"),
]


@pytest.mark.parametrize(
    ("edit", "key", "problem"), MANIFEST_CASES, ids=[f"{c[1]}:{c[2][:20]}" for c in MANIFEST_CASES]
)
def test_manifest_wrong_value_names_file_and_key(dataset, edit, key, problem):
    root, _ = dataset
    manifest = manifest_of(root)
    edit(manifest)
    save_manifest(root, manifest)
    with pytest.raises(ManifestError) as caught:
        acumen.open(root)
    error = caught.value
    assert_is(error, ManifestError, ValueError)
    assert error.path == str(root / "manifest.json")
    assert error.key == key
    assert str(error).startswith(f"{root / 'manifest.json'}: key '{key}': ")
    assert problem in str(error)


def test_manifest_from_a_newer_acumen_says_upgrade(dataset):
    root, _ = dataset
    manifest = manifest_of(root)
    manifest["format_version"] = 3
    save_manifest(root, manifest)
    with pytest.raises(ManifestError) as caught:
        acumen.open(root)
    assert caught.value.key == "format_version"
    message = str(caught.value)
    assert f"is 3, but this acumen ({acumen.__version__}) reads up to 2" in message
    upgrade = "upgrade acumen (reinstall it from its repository, or `git pull` in an editable "
    upgrade += "clone)"
    assert upgrade in message


def test_manifest_unknown_keys_are_ignored(dataset):
    root, samples = dataset
    manifest = manifest_of(root)
    manifest["written_by_a_newer_minor"] = {"anything": [1, 2]}
    save_manifest(root, manifest)
    with acumen.open(root) as ds:
        np.testing.assert_array_equal(ds[2][0], samples[2])


def test_manifest_disagreeing_with_the_index(dataset):
    root, _ = dataset
    lines = (root / "index.csv").read_text().splitlines()
    (root / "index.csv").write_text("\n".join(lines[:-1]) + "\n")  # drop the last row
    reseal(root)  # as a hostile author would: the index's checksum cannot tell
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert str(caught.value) == (f"{root / 'manifest.json'}: n_samples is 3, the index has 2 rows")


# --- plugins a manifest asks for ----------------------------------------------------
def _ask_for_blosc2(root: Path, provenance) -> None:
    manifest = manifest_of(root)
    manifest["codec"] = {"name": "blosc2", "configuration": {"clevel": 5}}
    if provenance is None:
        del manifest["plugins"]
    else:
        manifest["plugins"]["codec"] = provenance
    save_manifest(root, manifest)


def _check_not_installed(root: Path, hint: str) -> None:
    with pytest.raises(PluginNotFoundError) as caught:
        acumen.open(root)
    assert_is(caught.value, PluginNotFoundError, KeyError)
    message = str(caught.value)
    assert message.startswith("codec 'blosc2' is not installed")
    assert f"(the manifest of {root} asks for it)" in message
    assert "installed codecs: gzip, lz4, raw, zstd" in message
    assert f"try `pip install {hint}`" in message


def test_manifest_codec_not_installed(dataset):
    root, _ = dataset
    _ask_for_blosc2(root, provenance=None)
    _check_not_installed(root, "acumen-blosc2")


def test_manifest_codec_not_installed_hint_uses_recorded_distribution(dataset):
    root, _ = dataset
    _ask_for_blosc2(root, provenance={"distribution": "some-dist", "version": "2.0"})
    _check_not_installed(root, "some-dist")


def test_manifest_codec_renamed_by_hand_does_not_suggest_what_is_installed(dataset):
    # Only the codec name changes: the provenance still says acumen-indexer, which *is*
    # installed and has no blosc2; `pip install acumen-indexer` would help nobody.
    root, _ = dataset
    manifest = manifest_of(root)
    assert manifest["plugins"]["codec"]["distribution"] == "acumen-indexer"
    manifest["codec"]["name"] = "blosc2"
    save_manifest(root, manifest)
    _check_not_installed(root, "acumen-blosc2")


def test_manifest_index_format_not_installed(dataset):
    root, _ = dataset
    manifest = manifest_of(root)
    manifest["index"]["name"] = "feather"
    del manifest["plugins"]
    save_manifest(root, manifest)
    with pytest.raises(PluginNotFoundError) as caught:
        acumen.open(root)
    message = str(caught.value)
    assert "index format 'feather' is not installed" in message
    assert "installed index formats: arrow, csv, parquet" in message
    assert "`pip install acumen-feather`" in message


def test_writer_with_a_codec_that_is_not_installed(tmp_path: Path):
    with pytest.raises(PluginNotFoundError) as caught:
        acumen.Writer(tmp_path / "ds", codec="blosc2")
    assert str(caught.value) == (
        "codec 'blosc2' is not installed; installed codecs: gzip, lz4, raw, zstd; "
        "try `pip install acumen-blosc2`"
    )
    assert not (tmp_path / "ds").exists()


def test_storage_that_is_not_installed(dataset):
    root, _ = dataset
    with pytest.raises(PluginNotFoundError, match="storage backend 's3' is not installed; "):
        acumen.open(root, "s3")


# --- chunk files ----------------------------------------------------------------------
def test_truncated_chunk_against_the_manifest(dataset):
    root, _ = dataset
    path = chunk_path(root)
    size = path.stat().st_size
    os.truncate(path, size - 3)
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert_is(caught.value, CorruptDatasetError, ValueError)
    assert str(caught.value) == (
        f"{path}: chunk file is {size - 3} bytes, the manifest says {size}: "
        "it was truncated or overwritten"
    )


def test_truncated_chunk_without_manifest(tmp_path: Path):
    root = tmp_path / "ds"
    write(root, arrays(3, dtype=np.float16), dtype="float16")  # the original's layout
    (root / "manifest.json").unlink()
    path = chunk_path(root)
    os.truncate(path, 3 * 24 - 5)
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert str(caught.value) == (
        f"{path}: sample 2 needs bytes 48..72 but the file has 67: truncated chunk or wrong index"
    )


def test_chunk_truncated_after_opening(dataset):
    root, samples = dataset
    with acumen.open(root, "seek") as ds:
        os.truncate(chunk_path(root), 100)
        np.testing.assert_array_equal(ds[1][0], samples[1])  # bytes 48..96 are still there
        with pytest.raises(CorruptDatasetError) as caught:
            ds[2]
    message = str(caught.value)
    assert message.startswith(f"{root}: sample 2: {chunk_path(root)}: bytes 96..144 are past")
    assert "(100 bytes)" in message


def test_missing_chunk_file(tmp_path: Path):
    root = tmp_path / "ds"
    write(root, arrays(4), chunk_size_bytes=100)
    chunk_path(root, 1).unlink()
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert str(caught.value) == (
        f"{chunk_path(root, 1)}: chunk file is missing (sample 2 and others are in it)"
    )


def test_index_naming_a_chunk_the_manifest_does_not_list(dataset):
    root, _ = dataset
    (root / "chunks" / "chunk_9.chnk").write_bytes(chunk_path(root).read_bytes())
    edit_index(root, 1, "ai:chunk_name", "chunks/chunk_9.chnk")
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert str(caught.value) == (
        f"{root}: the index names chunk 'chunks/chunk_9.chnk', which the manifest does not list"
    )


def test_original_dataset_opened_with_the_wrong_dtype(tmp_path: Path):
    root = tmp_path / "ds"
    write(root, arrays(3, dtype=np.float16), dtype="float16")
    (root / "manifest.json").unlink()
    with acumen.open(root) as ds:  # float16 is the original's default: fine
        assert ds.dtype == np.float16
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root, dtype=np.float32)
    message = str(caught.value)
    assert message.startswith(f"{root / 'index.csv'}: sample 0 has 24 bytes")
    assert "but shape (4, 3) of float32 needs 48" in message
    assert "is the dtype right" in message
    assert "pass dtype=..." in message


def test_raw_size_disagreeing_with_shape(dataset):
    root, _ = dataset
    edit_index(root, 1, "ai:size_bytes", "40")
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert str(caught.value).startswith(
        f"{root / 'index.csv'}: sample 1 has 40 bytes, but shape (4, 3) of float32 needs 48"
    )


# --- damaged compressed payloads ------------------------------------------------------
def _write_compressed(tmp_path: Path, codec: str):
    root = tmp_path / codec
    samples = arrays(3, shape=(8, 8))
    write(root, samples, codec=codec)
    return root, samples


def _flip(path: Path, position: int, count: int = 1) -> bytes:
    """Invert ``count`` bytes at ``position`` in place (file size unchanged); return them."""
    with open(path, "r+b") as file:
        file.seek(position)
        original = file.read(count)
        file.seek(position)
        file.write(bytes(b ^ 0xFF for b in original))
    return original


def _restore(path: Path, position: int, original: bytes) -> None:
    with open(path, "r+b") as file:
        file.seek(position)
        file.write(original)


@pytest.mark.parametrize("codec", COMPRESSING)
def test_corrupt_payload_is_an_error_not_garbage(tmp_path: Path, codec: str):
    root, samples = _write_compressed(tmp_path, codec)
    path = chunk_path(root)
    size_before = path.stat().st_size
    with acumen.open(root, "seek") as ds:
        offset, size = int(ds.table.offsets[1]), int(ds.table.sizes[1])
        _flip(path, offset + size // 2, 4)  # four bytes in the middle of sample 1's payload
        assert path.stat().st_size == size_before
        try:
            result = ds[1][0]
        except CorruptDatasetError as error:
            assert str(error).startswith(f"{root}: sample 1: {codec} payload ")
        else:
            pytest.fail(
                f"{codec}: a corrupted payload was returned as data "
                f"(equal to the original: {np.array_equal(result, samples[1])})"
            )
        # Its neighbours are untouched and still read.
        np.testing.assert_array_equal(ds[0][0], samples[0])
        np.testing.assert_array_equal(ds[2][0], samples[2])
    # Reopening (the file keeps its size, so the manifest check passes) reports it too.
    with acumen.open(root) as ds, pytest.raises(CorruptDatasetError, match="sample 1"):
        ds.read(1)


@pytest.mark.parametrize("codec", COMPRESSING)
def test_no_single_byte_flip_returns_garbage_or_crashes(tmp_path: Path, codec: str):
    """Flip each byte of a payload in turn: ``ds[1]`` raises CorruptDatasetError or, when the
    byte does not matter (gzip's mtime field, say), returns the exact original."""
    root, samples = _write_compressed(tmp_path, codec)
    path = chunk_path(root)
    garbage, crashes, errors = [], [], 0
    with acumen.open(root, "seek") as ds:
        offset, size = int(ds.table.offsets[1]), int(ds.table.sizes[1])
        for position in range(offset, offset + size):
            original = _flip(path, position)
            try:
                array = ds[1][0]
            except CorruptDatasetError as error:
                errors += 1
                assert str(error).startswith(f"{root}: sample 1: {codec} payload ")
            except Exception as error:
                crashes.append((position - offset, f"{type(error).__name__}: {error}"))
            else:
                if not np.array_equal(array, samples[1]):
                    garbage.append(position - offset)
            finally:
                _restore(path, position, original)
        np.testing.assert_array_equal(ds[1][0], samples[1])
    assert not crashes, f"{codec}: flips that raised something else: {crashes[:5]}"
    assert not garbage, (
        f"{codec}: {len(garbage)} of {size} single-byte flips decoded silently to wrong data "
        f"(payload offsets {garbage[:10]}...); {errors} were reported"
    )


def _bomb(tmp_path: Path, codec: str) -> Path:
    """A dataset whose one payload holds 8 MiB of zeros while the index says 48 bytes."""
    root = tmp_path / f"bomb-{codec}"
    with acumen.Writer(root, codec=codec) as writer:
        writer.add(np.zeros(8 << 20, np.uint8))
    edit_index(root, 0, "ai:shape", "(48,)")
    manifest = manifest_of(root)
    manifest["shape"] = [48]
    save_manifest(root, manifest)
    return root


def test_zstd_declared_size_is_checked_before_decompressing(tmp_path, monkeypatch):
    root = _bomb(tmp_path, "zstd")

    def must_not_run(self):
        raise AssertionError("decompressor used although the sizes disagree")

    monkeypatch.setattr(ZstdCodec, "_decompressor", must_not_run)
    with acumen.open(root) as ds, pytest.raises(CorruptDatasetError) as caught:
        ds[0]
    assert str(caught.value) == (
        f"{root}: sample 0: zstd payload decodes to {8 << 20} bytes, the index says 48"
    )


def test_lz4_declared_size_is_checked_before_decompressing(tmp_path, monkeypatch):
    root = _bomb(tmp_path, "lz4")

    def must_not_run(*args, **kwargs):
        raise AssertionError("decompress called although the sizes disagree")

    monkeypatch.setattr(acumen.codecs.lz4.lz4.frame, "decompress", must_not_run)
    assert lz4.frame.decompress is must_not_run
    with acumen.open(root) as ds, pytest.raises(CorruptDatasetError) as caught:
        ds[0]
    assert str(caught.value) == (
        f"{root}: sample 0: lz4 payload decodes to {8 << 20} bytes, the index says 48"
    )


def test_an_lz4_payload_refused_leaves_the_thread_able_to_decode_empty_samples(tmp_path):
    """The thread's lz4 context is dropped after a frame left part-way: a reset one refused
    every empty frame afterwards ("ERROR_frameSize_wrong"), so an empty sample read after a
    damaged one was reported damaged too (found when tests shared a process)."""
    bomb = _bomb(tmp_path, "lz4")
    with acumen.open(bomb) as ds, pytest.raises(CorruptDatasetError, match="decodes to"):
        ds[0]
    root = tmp_path / "empty-first"
    with acumen.Writer(root, codec="lz4") as writer:
        writer.add(np.zeros((0, 3), np.float32))
        writer.add(np.ones((2, 3), np.float32))
    with acumen.open(root) as ds:
        assert ds.read(0).shape == (0, 3)
        assert ds.read(1).tolist() == [[1.0] * 3] * 2


def test_gzip_inflates_no_more_than_the_index_declares(tmp_path, monkeypatch):
    root = _bomb(tmp_path, "gzip")
    inflated = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, *args):
            self._inner = real(*args)

        def decompress(self, data, max_length=0):
            out = self._inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._inner, name)

    monkeypatch.setattr(acumen.codecs.gzip.zlib, "decompressobj", Spy)
    with acumen.open(root) as ds, pytest.raises(CorruptDatasetError) as caught:
        ds[0]
    assert str(caught.value) == (
        f"{root}: sample 0: gzip payload decodes to more than 48 bytes, the index says 48"
    )
    assert inflated and max(inflated) <= 49


# --- the index file -------------------------------------------------------------------
@pytest.mark.parametrize("with_manifest", [True, False], ids=["manifest", "original"])
@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("ai:offset_bytes", "4x8", "column ai:offset_bytes holds non-integers"),
        ("ai:offset_bytes", "48.5", "column ai:offset_bytes holds non-integers"),
        ("ai:size_bytes", "", "column ai:size_bytes holds non-integers"),
        ("ai:offset_bytes", "-48", "row 1: ai:offset_bytes is negative (-48)"),
        ("ai:shape", "(4, x)", "row 1: not a shape: '(4, x)'"),
        ("ai:shape", "__import__('os')", "row 1: not a shape: \"__import__('os')\""),
    ],
)
def test_malformed_index_names_index_csv(tmp_path, with_manifest, column, value, problem):
    root = tmp_path / "ds"
    write(root, arrays(3, dtype=np.float16), dtype="float16")
    if not with_manifest:
        (root / "manifest.json").unlink()
    edit_index(root, 1, column, value)
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    message = str(caught.value)
    assert message.startswith(f"{root / 'index.csv'}: ")
    assert problem in message


def test_missing_index_file(dataset):
    root, _ = dataset
    manifest = manifest_of(root)
    manifest["index"]["file"] = "index-renamed.csv"
    save_manifest(root, manifest)
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert str(caught.value) == f"{root / 'index-renamed.csv'}: the index file is missing"


@pytest.mark.parametrize("with_manifest", [True, False], ids=["manifest", "original"])
@pytest.mark.parametrize("name", ["../outside.chnk", "chunks/../../outside.chnk", "ABSOLUTE"])
def test_chunk_name_escaping_the_folder_is_refused(tmp_path, with_manifest, name):
    root = tmp_path / "ds"
    write(root, arrays(3, dtype=np.float16), dtype="float16")
    outside = tmp_path / "outside.chnk"  # exists, with plausible bytes: still refused
    outside.write_bytes(chunk_path(root).read_bytes())
    if name == "ABSOLUTE":
        name = str(outside)
    if not with_manifest:
        (root / "manifest.json").unlink()
    edit_index(root, 0, "ai:chunk_name", name)
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert str(caught.value) == (f"{root}: chunk file {name!r} is not a path inside the dataset")


def test_chunk_symlink_leading_outside_is_refused(tmp_path: Path):
    root = tmp_path / "ds"
    write(root, arrays(3))
    outside = tmp_path / "secret.bin"
    outside.write_bytes(chunk_path(root).read_bytes())
    chunk_path(root).unlink()
    try:
        chunk_path(root).symlink_to(outside)
    except (OSError, NotImplementedError):
        pytest.skip("no symlinks here")
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert str(caught.value) == (
        f"{root}: chunk file 'chunks/chunk_0.chnk' links outside the dataset"
    )


def test_manifest_index_file_escaping_the_folder_is_refused(dataset):
    root, _ = dataset
    manifest = manifest_of(root)
    manifest["index"]["file"] = "../index.csv"
    save_manifest(root, manifest)
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert (
        str(caught.value) == f"{root}: index file '../index.csv' is not a path inside the dataset"
    )


# --- the writer: samples it refuses ---------------------------------------------------
WRONG_METADATA = [
    (
        {"label": None},
        "sample 1: metadata 'label' = None (NoneType) cannot be stored in an index; "
        "allowed: int, float, bool, str (use float('nan') for a missing number)",
    ),
    (
        {"label": [1, 2]},
        "sample 1: metadata 'label' = [1, 2] (list) cannot be stored in an index; "
        "allowed: int, float, bool, str",
    ),
    (
        {"label": 1, "extra": 2},
        "sample 1: metadata keys differ from the first sample's (missing [], "
        "unexpected ['extra']); every sample needs the same keys",
    ),
    (
        {},
        "sample 1: metadata keys differ from the first sample's (missing ['label'], "
        "unexpected []); every sample needs the same keys",
    ),
    (
        {"label": "three"},
        "sample 1: metadata 'label' is str ('three') but earlier samples gave int "
        "(first at sample 0); a column holds one type",
    ),
    (
        {"label": True},
        "sample 1: metadata 'label' is bool (True) but earlier samples gave int",
    ),
]


@pytest.mark.parametrize(("metadata", "message"), WRONG_METADATA)
def test_writer_refuses_metadata_and_names_the_sample(tmp_path, metadata, message):
    root = tmp_path / "ds"
    samples = arrays(3)
    with acumen.Writer(root) as writer:
        writer.add(samples[0], label=0)
        with pytest.raises(SampleError) as caught:
            writer.add(samples[1], **metadata)
        assert_is(caught.value, SampleError, ValueError)
        assert str(caught.value).startswith(message)
        # The writer goes on; the refused sample leaves no trace.
        assert len(writer) == 1
        assert writer.add(samples[2], label=2) == 1
    with acumen.open(root) as ds:
        assert len(ds) == 2
        assert ds.columns == ["label"]
        np.testing.assert_array_equal(ds[1][0], samples[2])
        assert ds[1][1] == {"label": 2}
        assert type(ds[1][1]["label"]) is int


def test_writer_refuses_a_mixed_str_int_column_the_other_way_round(tmp_path):
    with acumen.Writer(tmp_path / "ds") as writer:
        writer.add(np.zeros(2, np.float32), name="a")
        with pytest.raises(SampleError, match=r"metadata 'name' is int \(3\) but earlier"):
            writer.add(np.zeros(2, np.float32), name=3)


@pytest.mark.parametrize("key", ["ai:shape", "ai:my_own"])
def test_writer_refuses_reserved_metadata_keys(tmp_path, key):
    with acumen.Writer(tmp_path / "ds") as writer, pytest.raises(SampleError) as caught:
        writer.add(np.zeros(2, np.float32), **{key: 1})
    assert str(caught.value) == (
        f"sample 0: metadata key {key!r} uses the reserved prefix 'ai:' (acumen's own index "
        "columns); rename it"
    )


def test_writer_refuses_an_empty_metadata_key(tmp_path):
    with acumen.Writer(tmp_path / "ds") as writer, pytest.raises(SampleError) as caught:
        writer.add(np.zeros(2, np.float32), **{"": 1})
    assert str(caught.value) == "sample 0: a metadata key is the empty string"


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, np.uint64(2**64 - 1)], ids=str)
def test_writer_refuses_int_beyond_int64_when_added(tmp_path, value):
    """Refused by add(), naming the sample, so the dataset is not lost at close()."""
    root = tmp_path / "ds"
    with acumen.Writer(root) as writer:
        writer.add(np.zeros(2, np.float32), n=1)
        with pytest.raises(SampleError) as caught:
            writer.add(np.zeros(2, np.float32), n=value)
        assert str(caught.value).startswith(f"sample 1: metadata 'n' = {value}")
        assert "does not fit in int64" in str(caught.value)
        writer.add(np.ones(2, np.float32), n=-5)
    with acumen.open(root) as ds:
        assert [ds.metadata(i) for i in range(len(ds))] == [{"n": 1}, {"n": -5}]


def test_writer_refuses_object_arrays(tmp_path):
    with acumen.Writer(tmp_path / "ds") as writer:
        writer.add(np.zeros(3, np.float32))
        with pytest.raises(SampleError) as caught:
            writer.add(np.array([1, "a", None], dtype=object))
    assert str(caught.value) == (
        "sample 1: the array has object dtype, which holds Python objects, not bytes; convert "
        "it to a numeric dtype (e.g. np.asarray(x, dtype=np.float32))"
    )


def test_writer_refuses_an_object_dtype_argument(tmp_path):
    with pytest.raises(SampleError, match="dtype object holds Python objects"):
        acumen.Writer(tmp_path / "ds", dtype=object)
    assert not (tmp_path / "ds").exists()


def test_writer_refuses_an_unsafe_cast_without_dtype(tmp_path):
    root = tmp_path / "ds"
    with acumen.Writer(root) as writer:
        writer.add(np.zeros(3, np.float32), label=0)
        with pytest.raises(SampleError) as caught:
            writer.add(np.zeros(3, np.float64), label=1)
        assert str(caught.value) == (
            "sample 1: dtype float64 does not cast safely to the dataset's dtype float32 (set "
            "by the first sample); pass dtype= to cast"
        )
        writer.add(np.arange(3, dtype=np.int16), label=2)  # int16 -> float32 is safe
    with acumen.open(root) as ds:
        assert ds.dtype == np.float32
        assert len(ds) == 2
        np.testing.assert_array_equal(ds[1][0], [0.0, 1.0, 2.0])
        assert ds[1][1] == {"label": 2}


def test_refused_sample_does_not_change_column_types(tmp_path):
    """Sample 1 is refused for 'b'; its 'a' (accepted, checked first) must not stick."""
    root = tmp_path / "ds"
    with acumen.Writer(root) as writer:
        writer.add(np.zeros(2, np.float32), a=1, b="x")
        with pytest.raises(SampleError, match="sample 1: metadata 'b' is int"):
            writer.add(np.zeros(2, np.float32), a=np.int32(7), b=3)
        writer.add(np.zeros(2, np.float32), a=2, b="y")
    with acumen.open(root) as ds:
        assert [(c.name, c.type) for c in ds.manifest.metadata] == [("a", "int"), ("b", "str")]
        assert ds[1][1] == {"a": 2, "b": "y"}
        assert type(ds[1][1]["a"]) is int


def test_refused_first_sample_does_not_fix_the_dtype(tmp_path):
    """The first *accepted* array fixes the dtype, not a refused one."""
    root = tmp_path / "ds"
    with acumen.Writer(root) as writer:
        with pytest.raises(SampleError, match="use float\\('nan'\\)"):
            writer.add(np.zeros(3, np.float64), x=None)
        writer.add(np.ones(3, np.float32), x=1.0)
    with acumen.open(root) as ds:
        assert len(ds) == 1
        assert ds.dtype == np.float32
        assert ds.manifest.dtype == np.float32


# --- the writer and split_into_chunks: where they write --------------------------------
def test_writer_on_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    with pytest.raises(DatasetExistsError) as caught:
        acumen.Writer(tmp_path)
    assert_is(caught.value, DatasetExistsError, FileExistsError)
    assert str(caught.value) == (
        f"{tmp_path} already exists and is not an empty folder; acumen never writes over "
        "data: choose a new path or remove it"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_writer_on_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(FileExistsError, match="already exists and is not an empty folder"):
        acumen.Writer(path)


def test_writer_on_an_existing_dataset(dataset):
    root, samples = dataset
    with pytest.raises(DatasetExistsError):
        acumen.Writer(root)
    with acumen.open(root) as ds:  # untouched
        np.testing.assert_array_equal(ds[0][0], samples[0])


@pytest.mark.parametrize("existing", ["empty dir", "dataset", "file"])
def test_split_into_chunks_on_an_existing_path(tmp_path, existing):
    path = tmp_path / "out"
    if existing == "empty dir":
        path.mkdir()
    elif existing == "dataset":
        write(path, arrays(1))
    else:
        path.write_text("x")
    before = sorted(p.name for p in path.rglob("*")) if path.is_dir() else path.read_text()
    with pytest.raises(DatasetExistsError) as caught:
        acumen.split_into_chunks([(np.zeros(3), {})], path)
    assert_is(caught.value, DatasetExistsError, FileExistsError)
    assert str(caught.value) == f"{path} already exists; acumen never writes over data"
    after = sorted(p.name for p in path.rglob("*")) if path.is_dir() else path.read_text()
    assert after == before


def _read_item(item):
    if item == "bad.npy":
        raise RuntimeError("cannot decode bad.npy")
    return np.full(3, len(item), np.float32), {"name": item}


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_split_read_fn_raising_names_sample_and_item(tmp_path, n_jobs):
    items = ["a.npy", "bb.npy", "bad.npy", "d.npy"]
    with pytest.raises(SampleError) as caught:
        acumen.split_into_chunks(items, tmp_path / "out", read_fn=_read_item, n_jobs=n_jobs)
    assert_is(caught.value, SampleError, ValueError)
    assert str(caught.value) == (
        "sample 2 ('bad.npy'): read_fn raised RuntimeError: cannot decode bad.npy"
    )
    # Not finished, so not a dataset.
    with pytest.raises(IncompleteDatasetError):
        acumen.open(tmp_path / "out")


def test_split_read_fn_raising_on_the_first_item_with_dtype_none(tmp_path):
    with pytest.raises(SampleError) as caught:
        acumen.split_into_chunks(["bad.npy", "a.npy"], tmp_path / "o", _read_item, dtype=None)
    assert str(caught.value).startswith("sample 0 ('bad.npy'): read_fn raised RuntimeError")


def test_split_items_that_are_not_pairs(tmp_path):
    with pytest.raises(SampleError) as caught:
        acumen.split_into_chunks([(np.zeros(3), {}), np.zeros(3)], tmp_path / "o")
    assert str(caught.value).startswith(
        "sample 1 (array([0., 0., 0.])): item is not an (array, metadata) pair: ValueError"
    )


def test_split_metadata_that_is_not_a_dict(tmp_path):
    with pytest.raises(SampleError) as caught:
        acumen.split_into_chunks([(np.zeros(3), ["label", 1])], tmp_path / "o")
    assert str(caught.value) == "sample 0 (tuple of 2): metadata must be a dict, got list"


def test_split_bad_metadata_names_the_sample(tmp_path):
    items = [(np.zeros(3), {"v": 1.0}), (np.zeros(3), {"v": None})]
    with pytest.raises(SampleError, match=r"^sample 1: metadata 'v' = None .*float\('nan'\)"):
        acumen.split_into_chunks(items, tmp_path / "o")


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5])
def test_split_bad_n_jobs(tmp_path, n_jobs):
    with pytest.raises(ValueError, match=re.escape(f"got {n_jobs!r}")):
        acumen.split_into_chunks([(np.zeros(3), {})], tmp_path / "o", n_jobs=n_jobs)


# --- reading: indices -----------------------------------------------------------------
def test_index_out_of_range_and_wrong_type(dataset):
    root, samples = dataset
    with acumen.open(root) as ds:
        np.testing.assert_array_equal(ds[-3][0], samples[0])
        for bad in (3, -4, 10**20):
            with pytest.raises(IndexError) as caught:
                ds[bad]
            assert str(caught.value) == (f"sample {bad} is out of range for a dataset of 3 samples")
        with pytest.raises(IndexError, match="sample 3 is out of range"):
            ds.read(3)
        with pytest.raises(IndexError, match="sample -4 is out of range"):
            ds.metadata(-4)
        for bad, type_name in (("a", "str"), (1.0, "float"), (None, "NoneType")):
            with pytest.raises(TypeError) as caught:
                ds[bad]
            assert str(caught.value) == f"dataset indices must be integers, not {type_name}"
        np.testing.assert_array_equal(ds[np.int64(2)][0], samples[2])


# --- codec options --------------------------------------------------------------------
def test_use_gzip_contradicting_codec(dataset, tmp_path):
    root, _ = dataset
    with pytest.raises(ValueError) as caught:
        acumen.open(root, codec="zstd", use_gzip=True)
    assert str(caught.value) == "use_gzip=True contradicts codec='zstd'; give one of them"
    with pytest.raises(ValueError, match="use_gzip=False contradicts codec='gzip'"):
        acumen.open(root, codec={"name": "gzip"}, use_gzip=False)
    with pytest.raises(ValueError) as caught:
        acumen.split_into_chunks([(np.zeros(3), {})], tmp_path / "out", use_gzip=True, codec="zstd")
    assert str(caught.value) == "use_gzip=True contradicts codec='zstd'; give one of them"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"name": "zstd", "configuration": {"level": 99}}, "zstd level must be at most 22"),
        ({"name": "gzip", "configuration": {"level": 12}}, "gzip level must be 0..9, got 12"),
        ({"name": "gzip", "configuration": {"level": -1}}, "gzip level must be 0..9, got -1"),
        ({"name": "lz4", "configuration": {"level": 99}}, "lz4 level must be 0..16, got 99"),
        (
            {"name": "zstd", "configuration": {"levle": 3}},
            "codec 'zstd': bad configuration: ",
        ),
        ({"configuration": {"level": 3}}, "a plugin config needs a 'name' string"),
    ],
)
def test_bad_codec_configuration(tmp_path, config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        plugins.codec(config)
    with pytest.raises(ValueError, match=re.escape(message)):
        acumen.Writer(tmp_path / "ds", codec=config)
    assert not (tmp_path / "ds").exists()


def test_bad_index_format_configuration():
    with pytest.raises(ValueError, match="parquet compression must be one of"):
        plugins.index_format({"name": "parquet", "configuration": {"compression": "rar"}})


def test_bad_codec_configuration_in_a_manifest(dataset):
    root, _ = dataset
    manifest = manifest_of(root)
    manifest["codec"] = {"name": "zstd", "configuration": {"level": 99}}
    save_manifest(root, manifest)
    with pytest.raises(ValueError, match="zstd level must be at most 22"):
        acumen.open(root)


def test_bad_chunk_size(tmp_path):
    with pytest.raises(ValueError, match="chunk_size_bytes must be positive, got 0"):
        acumen.Writer(tmp_path / "a", chunk_size_bytes=0)
    with pytest.raises(TypeError, match=re.escape("chunk_size_bytes must be an int, got 1.5")):
        acumen.Writer(tmp_path / "b", chunk_size_bytes=1.5)


def test_writer_refusing_an_argument_leaves_nothing_behind(tmp_path):
    """A refused argument must not leave a claimed (marker) folder: the corrected call works."""
    root = tmp_path / "ds"
    with pytest.raises(ValueError, match="chunk_size_bytes must be positive"):
        acumen.Writer(root, chunk_size_bytes=0)
    assert not (root / ".acumen-writing").exists()
    with acumen.Writer(root, chunk_size_bytes=1000) as writer:
        writer.add(np.zeros(3, np.float32))
    with acumen.open(root) as ds:
        assert len(ds) == 1
