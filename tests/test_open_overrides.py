"""``acumen.open``'s dtype=, codec=, use_gzip= and index_format= on a dataset with a manifest.

They exist for original datasets, which record nothing. A manifest says how to read its
dataset, so an explicit value that agrees with it is accepted (and changes nothing) and one
that disagrees is an :class:`ArgumentConflictError` naming what the manifest holds and how
to convert, never bytes read as another type or a ``CorruptDatasetError`` for sound data.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acumen
from acumen import cli
from acumen.errors import ArgumentConflictError, CorruptDatasetError
from acumen.recode import recode
from acumen.verify import verify
from tests.conftest import fixture_names, load_fixture

FLOATS = [np.array([1.5, -2.0, 3.25], np.float32), np.array([0.5], np.float32)]
BYTES = [np.array([0, 255, 7], np.uint8), np.array([128], np.uint8)]


def write(root: Path, arrays: list[np.ndarray], **options: Any) -> Path:
    with acumen.Writer(root, durable=False, **options) as writer:
        for array in arrays:
            writer.add(array)
    return root


def write_with_dictionary(root: Path) -> Path:
    """A zstd dataset whose codec trained a dictionary (its configuration names the file)."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 4, 64).astype(np.uint8) for _ in range(40)]
    codec = {"name": "zstd", "configuration": {"dictionary_size": 1024, "train_samples": 40}}
    write(root, arrays, codec=codec)
    with acumen.open(root) as ds:
        assert ds.codec.dictionary is not None
    return root


# (what is written, what open is told, what the message must say the manifest holds)
DISAGREE = {
    "dtype float32 read as int32": (
        {"arrays": FLOATS},
        {"dtype": "int32"},
        ["dtype float32", "ds.read(i).astype('int32')"],
    ),
    "dtype uint8 read as int8": (
        {"arrays": BYTES},
        {"dtype": np.int8},
        ["dtype uint8", "ds.read(i).astype('int8')"],
    ),
    "dtype uint8 read as float32": (
        {"arrays": BYTES},
        {"dtype": np.float32},
        ["dtype uint8", "ds.read(i).astype('float32')"],
    ),
    "codec lz4 read as zstd": (
        {"arrays": FLOATS, "codec": "lz4"},
        {"codec": "zstd"},
        ["codec 'lz4'", "acumen recode", "--codec zstd"],
    ),
    "codec raw read as gzip": (
        {"arrays": FLOATS},
        {"use_gzip": True},
        ["use_gzip=True", "codec 'raw'", "acumen recode", "--codec gzip"],
    ),
    "codec gzip read as raw": (
        {"arrays": FLOATS, "codec": "gzip"},
        {"use_gzip": False},
        ["use_gzip=False", "codec 'gzip'"],
    ),
    "index csv read as parquet": (
        {"arrays": FLOATS},
        {"index_format": "parquet"},
        ["index format 'csv'", "acumen recode", "--index parquet"],
    ),
    "index parquet read as csv": (
        {"arrays": FLOATS, "index_format": "parquet"},
        {"index_format": {"name": "csv"}},
        ["index format 'parquet'", "--index csv"],
    ),
}


@pytest.mark.parametrize("case", DISAGREE, ids=list(DISAGREE))
def test_an_override_that_disagrees_with_the_manifest_is_refused(tmp_path, case):
    written, asked, says = DISAGREE[case]
    root = write(tmp_path / "ds", **written)
    with pytest.raises(ArgumentConflictError) as caught:
        acumen.open(root, **asked)
    error = caught.value
    assert isinstance(error, ValueError) and not isinstance(error, CorruptDatasetError)
    message = str(error)
    assert message.startswith(f"{root}: ")
    assert "disagrees with its manifest" in message
    for part in says:
        assert part in message, (part, message)


def test_a_codec_without_the_manifests_dictionary_is_refused(tmp_path):
    """A dictionary changes decoding: zstd given without it is another codec."""
    root = write_with_dictionary(tmp_path / "ds")
    with pytest.raises(ArgumentConflictError, match="dictionary") as caught:
        acumen.open(root, codec={"name": "zstd", "configuration": {"level": 3}})
    assert "codecs/data.zstd.dict" in str(caught.value)


# (what is written, what open is told: each agrees with the manifest)
AGREE = {
    "dtype by name": ({"arrays": FLOATS}, {"dtype": "float32"}),
    "dtype by type": ({"arrays": FLOATS}, {"dtype": np.float32}),
    "dtype big-endian": ({"arrays": FLOATS}, {"dtype": ">f4"}),
    "dtype uint8": ({"arrays": BYTES}, {"dtype": np.dtype("uint8")}),
    "codec by name": ({"arrays": FLOATS, "codec": "lz4"}, {"codec": "lz4"}),
    "codec level does not matter to decoding": (
        {"arrays": FLOATS, "codec": "zstd"},
        {"codec": {"name": "zstd", "configuration": {"level": 19}}},
    ),
    "codec and use_gzip": (
        {"arrays": FLOATS, "codec": "gzip"},
        {"codec": "gzip", "use_gzip": True},
    ),
    "use_gzip on gzip": ({"arrays": FLOATS, "codec": "gzip"}, {"use_gzip": True}),
    "use_gzip=False on raw": ({"arrays": FLOATS}, {"use_gzip": False}),
    "index by name": ({"arrays": FLOATS, "index_format": "parquet"}, {"index_format": "parquet"}),
    "index compression does not matter to reading": (
        {"arrays": FLOATS, "index_format": "parquet"},
        {"index_format": {"name": "parquet", "configuration": {"compression": "gzip"}}},
    ),
    "everything at once": (
        {"arrays": BYTES, "codec": "lz4", "index_format": "arrow"},
        {"dtype": "u1", "codec": "lz4", "index_format": "arrow"},
    ),
}


@pytest.mark.parametrize("case", AGREE, ids=list(AGREE))
def test_an_override_that_agrees_with_the_manifest_opens(tmp_path, case):
    written, asked = AGREE[case]
    root = write(tmp_path / "ds", **written)
    with acumen.open(root, **asked) as ds:
        assert ds.dtype == written["arrays"][0].dtype
        for i, array in enumerate(written["arrays"]):
            assert ds.read(i).tobytes() == array.tobytes()


def test_a_codec_named_without_configuration_agrees_and_keeps_the_dictionary(tmp_path):
    root = write_with_dictionary(tmp_path / "ds")
    with acumen.open(root) as plain:
        want = [plain.read(i).copy() for i in range(len(plain))]
    for asked in ("zstd", {"name": "zstd"}, plain.codec):
        with acumen.open(root, codec=asked) as ds:
            assert ds.codec.dictionary == plain.codec.dictionary
            assert all(np.array_equal(ds.read(i), a) for i, a in enumerate(want))


def test_a_fields_dataset_takes_only_what_every_field_holds(tmp_path):
    root = tmp_path / "ds"
    fields = {"image": {"dtype": "uint8", "codec": "lz4"}, "mask": {"dtype": "uint8"}}
    with acumen.Writer(root, codec="lz4", fields=fields, durable=False) as writer:
        writer.add({"image": np.arange(6, dtype=np.uint8), "mask": np.ones(2, np.uint8)})
    with acumen.open(root, dtype="uint8", codec="lz4") as ds:
        assert ds.read(0)["image"].tolist() == list(range(6))
    with pytest.raises(ArgumentConflictError) as caught:
        acumen.open(root, dtype="float32")
    message = str(caught.value)
    assert "field 'image' holds dtype uint8" in message and "astype('float32')" in message
    with pytest.raises(ArgumentConflictError, match="field 'mask' holds codec 'lz4'"):
        acumen.open(root, codec="zstd")


@pytest.mark.parametrize("name", fixture_names())
def test_original_datasets_still_take_every_override(name):
    folder, params, arrays, _ = load_fixture(name)
    codec = "gzip" if params["use_gzip"] else "raw"
    for asked in (
        {"dtype": params["dtype"], "use_gzip": params["use_gzip"]},
        {"dtype": np.dtype(params["dtype"]), "codec": codec, "index_format": "csv"},
    ):
        with acumen.open(folder, **asked) as ds:
            assert ds.manifest is None and ds.codec.name == codec
            assert all(np.array_equal(ds.read(i), a) for i, a in enumerate(arrays))


def test_recode_and_verify_refuse_a_conflicting_source_option(tmp_path, capsys):
    root = write(tmp_path / "ds", FLOATS)
    with pytest.raises(ArgumentConflictError, match="dtype float32"):
        recode(root, tmp_path / "copy", source_options={"dtype": "int32"}, progress=False)
    assert not (tmp_path / "copy").exists()
    with pytest.raises(ArgumentConflictError, match="dtype float32"):
        verify(root, dtype="int32", progress=False)
    for command in (
        ["recode", str(root), str(tmp_path / "copy"), "--dtype", "int32"],
        ["verify", str(root), "--dtype", "int32"],
        ["verify", str(root), "--gzip"],
    ):
        assert cli.main(command) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith(f"acumen: error: {root}: ") and err.count("\n") == 1
        assert "disagrees with its manifest" in err
    assert not (tmp_path / "copy").exists()


def test_an_original_dataset_given_a_manifest_refuses_what_it_used_to_need(tmp_path):
    """The same bytes with a manifest: the manifest's dtype wins over nothing, and an
    override that was right for the original is still right (it agrees)."""
    folder, params, arrays, _ = load_fixture("raw_f32_varlen")
    root = tmp_path / "copy"
    recode(folder, root, source_options={"dtype": params["dtype"]}, progress=False)
    with acumen.open(root, dtype=params["dtype"]) as ds:
        assert all(np.array_equal(ds.read(i), a) for i, a in enumerate(arrays))
    with pytest.raises(ArgumentConflictError, match="float32"):
        acumen.open(root, dtype="float16")
    shutil.rmtree(root)
