"""acumen recode: another codec, index format or chunk size; the same data, verified."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen import cli
from acumen.errors import (
    DatasetExistsError,
    IncompleteDatasetError,
    RecodeMismatchError,
)
from acumen.progress import Progress
from acumen.recode import recode
from tests.conftest import FIXTURES, load_fixture


def make(path: Path, **options) -> list[tuple[np.ndarray, dict]]:
    rng = np.random.default_rng(5)
    samples = [
        (rng.normal(size=(i % 9, 3)).astype(np.float32), {"i": i, "tag": f"t{i % 4}", "x": i / 3})
        for i in range(60)
    ]
    with acumen.Writer(path, durable=False, **options) as writer:
        for array, metadata in samples:
            writer.add(array, **metadata)
    return samples


def assert_dataset(path: Path, samples: list) -> None:
    with acumen.open(path) as ds:
        assert len(ds) == len(samples)
        for i, (array, metadata) in enumerate(samples):
            got, got_metadata = ds[i]
            assert got.dtype == array.dtype and got.tobytes() == array.tobytes()
            assert got_metadata == metadata


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_recode_changes_codec_index_and_chunk_size(tmp_path: Path, n_jobs: int) -> None:
    samples = make(tmp_path / "src", chunk_size_bytes=10_000)
    manifest = recode(
        tmp_path / "src",
        tmp_path / "dst",
        codec={"name": "zstd", "configuration": {"level": 9}},
        index_format="parquet",
        chunk_size_bytes=512,
        n_jobs=n_jobs,
        progress=False,
    )
    assert manifest.codec == {"name": "zstd", "configuration": {"level": 9}}
    assert manifest.index["name"] == "parquet" and manifest.chunk_size_bytes == 512
    assert len(manifest.chunks) > 5
    assert_dataset(tmp_path / "dst", samples)


def test_recode_keeps_what_is_not_given(tmp_path: Path) -> None:
    make(tmp_path / "src", codec="lz4", index_format="arrow", chunk_size_bytes=2000)
    manifest = recode(tmp_path / "src", tmp_path / "dst", progress=False)
    assert manifest.codec["name"] == "lz4" and manifest.index["name"] == "arrow"
    assert manifest.chunk_size_bytes == 2000


@pytest.mark.parametrize("name", ["raw_f32_varlen", "gzip_f32", "raw_f16_fixed"])
def test_recode_an_original_dataset(tmp_path: Path, name: str) -> None:
    folder, params, arrays, meta = load_fixture(name)
    recode(
        folder,
        tmp_path / "dst",
        codec="zstd",
        progress=False,
        source_options={"dtype": params["dtype"], "use_gzip": params["use_gzip"]},
    )
    with acumen.open(tmp_path / "dst") as ds:
        assert ds.codec.name == "zstd"
        for i, array in enumerate(arrays):
            assert ds.read(i).tobytes() == array.tobytes()
        assert list(ds.index.columns[4:]) == list(meta[0])


def test_recode_fields_and_a_trained_dictionary(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    samples = [
        {"pose": np.round(rng.normal(size=(17, 2)), 1).astype(np.float32), "raw": b"x" * i}
        for i in range(300)
    ]
    codec = {"name": "zstd", "configuration": {"dictionary_size": 2048, "train_samples": 100}}
    with acumen.Writer(tmp_path / "src", codec=codec) as writer:
        for sample in samples:
            writer.add(sample)
    # Keeping the codec keeps each field's trained dictionary, stored again in the copy.
    recode(tmp_path / "src", tmp_path / "same", index_format="parquet", progress=False)
    manifest = json.loads((tmp_path / "same" / "manifest.json").read_text())
    assert manifest["fields"][0]["codec"]["configuration"]["dictionary"] == (
        "codecs/pose.zstd.dict"
    )
    assert (tmp_path / "same" / "codecs" / "pose.zstd.dict").read_bytes() == (
        tmp_path / "src" / "codecs" / "pose.zstd.dict"
    ).read_bytes()
    # Another codec for every field.
    recode(tmp_path / "src", tmp_path / "lz4", codec="lz4", progress=False)
    with acumen.open(tmp_path / "lz4") as ds:
        assert {r.codec.name for r in ds.field_readers} == {"lz4"}
        for i, sample in enumerate(samples):
            got = ds.read(i)
            assert got["pose"].tobytes() == sample["pose"].tobytes() and got["raw"] == sample["raw"]


def test_verification_catches_a_copy_that_differs(tmp_path: Path, monkeypatch) -> None:
    make(tmp_path / "src")
    real_open = acumen.recode.open_dataset

    def open_and_damage(path, **options):
        ds = real_open(path, **options)
        if Path(path).name == "dst":  # the copy, when it is verified
            original = ds._array
            ds._array = lambda i: original(i) + 1 if i == 17 else original(i)
        return ds

    monkeypatch.setattr(acumen.recode, "open_dataset", open_and_damage)
    with pytest.raises(RecodeMismatchError, match="dst: sample 17 differs from source sample 17"):
        recode(tmp_path / "src", tmp_path / "dst", progress=False)
    with pytest.raises(IncompleteDatasetError):  # checked before it was marked complete
        acumen.open(tmp_path / "dst")


def test_recode_refuses_an_existing_destination(tmp_path: Path) -> None:
    make(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    with pytest.raises(DatasetExistsError):
        recode(tmp_path / "src", tmp_path / "dst", progress=False)


def test_recode_command(tmp_path: Path, capsys) -> None:
    samples = make(tmp_path / "src")
    status = cli.main(
        [
            "recode",
            str(tmp_path / "src"),
            str(tmp_path / "dst"),
            "--codec",
            "zstd",
            "--level",
            "7",
            "--index",
            "arrow",
            "--chunk-size",
            "1KiB",
            "--jobs",
            "2",
        ]
    )
    assert status == 0
    out, err = capsys.readouterr()
    assert "60 samples" in out and "codec zstd, index arrow; verified" in out
    assert "recode dst: 60/60 samples" in err and "verify dst: 60/60 samples" in err
    manifest = json.loads((tmp_path / "dst" / "manifest.json").read_text())
    assert manifest["codec"] == {"name": "zstd", "configuration": {"level": 7}}
    assert manifest["layout"]["chunk_size_bytes"] == 1024
    assert_dataset(tmp_path / "dst", samples)


def test_recode_command_errors(tmp_path: Path, capsys) -> None:
    make(tmp_path / "src")
    assert cli.main(["recode", str(tmp_path / "src"), str(tmp_path / "a"), "--codec", "nope"]) == 1
    assert "codec 'nope' is not installed" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert cli.main(["recode", str(tmp_path / "missing"), str(tmp_path / "b")]) == 1
    assert "missing: no such dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["recode", str(tmp_path / "src"), str(tmp_path / "c"), "--chunk-size", "lots"])
    assert "not a size: 'lots'" in capsys.readouterr().err


def test_original_fixture_recoded_by_command(tmp_path: Path, capsys) -> None:
    folder = FIXTURES / "gzip_f32"
    status = cli.main(
        [
            "recode",
            str(folder),
            str(tmp_path / "out"),
            "--dtype",
            "float32",
            "--gzip",
            "--codec",
            "lz4",
        ]
    )
    assert status == 0
    assert "30 samples" in capsys.readouterr().out


def test_progress_on_a_terminal_and_in_a_log() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    with Progress(4, "job", stream=tty) as bar:
        for _ in range(4):
            bar.update(1, 1500)
    text = tty.getvalue()
    assert text.startswith("\r[") and "job: 1/4 samples" in text
    assert text.rstrip().endswith(
        "job: 4/4 samples, " + text.split("job: 4/4 samples, ")[-1].strip()
    )
    assert "6.0 KB" in text and text.endswith("\n")
    log = io.StringIO()
    with Progress(None, "job", stream=log, interval=3600) as bar:
        for _ in range(3):
            bar.update(1, 10)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("job: 1 samples") and lines[-1].startswith("job: 3 samples, ")
    assert all("\r" not in line and "\x1b" not in line for line in lines)
    quiet = io.StringIO()
    with Progress(3, "job", stream=quiet, enabled=False) as bar:
        bar.update(3)
    assert quiet.getvalue() == ""


def test_plugins_command_lists_failures(tmp_path: Path, monkeypatch, capsys) -> None:
    from acumen import plugins

    site = tmp_path / "site"
    (site / "acumen_broken").mkdir(parents=True)
    (site / "acumen_broken" / "__init__.py").write_text("raise ImportError('needs libfoo')\n")
    info = site / "acumen_broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acumen-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[acumen]\nbroken = acumen_broken\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin,broken")
    with pytest.warns(plugins.PluginLoadWarning):
        plugins.reload()
    assert cli.main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "failed: broken (acumen-broken): ImportError: needs libfoo" in out
    assert "zstd" in out and "acumen-indexer" in out
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin")  # before the fixture reloads
