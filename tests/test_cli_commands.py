"""The commands that look at a dataset (``info``, ``head``, ``show``), ``--version``,
``--debug``, "did you mean", and shell completion: their key facts on small datasets."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen import cli

REPO = Path(__file__).resolve().parents[1]
JPEG_HEAD = b"\xff\xd8\xff\xe0"


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """7 float32 (2, 3) samples in 4 chunks, with int, str, bool and float metadata."""
    path = tmp_path / "plain"
    with acumen.Writer(path, codec="zstd", dtype="float32", chunk_size_bytes=64) as writer:
        for i in range(7):
            writer.add(
                np.full((2, 3), i, dtype=np.float32),
                label=i,
                name=f"n{i % 3}",
                ok=i % 2 == 0,
                score=i / 4,
            )
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """uint8 images of varying height, (4..8, 6, 3)."""
    path = tmp_path / "images"
    with acumen.Writer(path, dtype="uint8") as writer:
        for i in range(5):
            writer.add(np.full((4 + i, 6, 3), i * 40, dtype=np.uint8))
    return path


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def records(tmp_path: Path) -> Path:
    """Two fields: a uint16 mask and a PNG file's bytes."""
    path = tmp_path / "records"
    fields = {"mask": {"dtype": "uint16"}, "png": {"type": "bytes", "codec": "zstd"}}
    with acumen.Writer(path, fields=fields) as writer:
        writer.add({"mask": np.full((3, 4), 7, np.uint16), "png": png_bytes()}, tag="a")
    return path


def output(capsys, *args: str, status: int = 0) -> str:
    assert cli.main(list(args)) == status
    out, err = capsys.readouterr()
    assert err == "" if status == 0 else out == ""
    return out if status == 0 else err


# --- info ------------------------------------------------------------------------------------
def test_info_summarises(plain: Path, capsys) -> None:
    out = output(capsys, "info", str(plain))
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert out.splitlines()[0] == f"{plain}: 7 samples, float32, shape (2, 3), codec zstd"
    assert lines["codec"].split(None, 1)[1] == "zstd (level 3)"
    assert "csv (index.csv)" in lines["index"]
    on_disk = sum(f.stat().st_size for f in plain.rglob("*") if f.is_file())
    assert "on disk" in lines["size"] and "the arrays' 168 B raw" in lines["size"]
    assert lines["chunks"].startswith("  chunks      4 files") and "target 64 B" in lines["chunks"]
    assert "label  int    min 0, max 6, mean 3" in out
    assert "name   str    3 distinct; most common: 'n0' (3), 'n1' (2), 'n2' (2)" in out
    assert "ok     bool   57.1% true" in out
    assert "score  float  min 0, max 1.5, mean 0.75" in out
    assert "versions" not in lines  # a dataset that never changed
    summary = json.loads(output(capsys, "info", str(plain), "--json"))
    assert summary["samples"] == 7 and summary["size"]["bytes"] == on_disk
    assert summary["shape"] == {"fixed": [2, 3]} and summary["dtype"] == "float32"
    assert summary["size"]["raw_bytes"] == 7 * 6 * 4
    assert summary["chunks"]["count"] == 4 and summary["chunks"]["max_samples"] == 2
    assert summary["metadata"][1] == {
        "name": "name",
        "type": "str",
        "distinct": 3,
        "most_common": [["n0", 3], ["n1", 2], ["n2", 2]],
    }


def test_info_on_varying_shapes_fields_and_versions(images, records, capsys) -> None:
    out = output(capsys, "info", str(images))
    assert "uint8, shape (4..8, 6, 3), codec raw" in out.splitlines()[0]
    summary = json.loads(output(capsys, "info", str(images), "--json"))
    assert summary["shape"] == {"min": [4, 6, 3], "max": [8, 6, 3]}
    assert summary["size"]["raw_bytes"] == sum((4 + i) * 18 for i in range(5))
    out = output(capsys, "info", str(records))
    assert "1 sample, 2 fields" in out
    assert "field mask  uint16, shape (3, 4), codec raw" in out
    assert "field png   bytes, shape" in out and "codec zstd (level 3)" in out
    fields = json.loads(output(capsys, "info", str(records), "--json"))["fields"]
    assert [(f["name"], f["type"], f["dtype"]) for f in fields] == [
        ("mask", "array", "uint16"),
        ("png", "bytes", None),
    ]
    # A changed dataset: its version and the last commits.
    assert cli.main(["delete", str(images), "--indices", "0"]) == 0
    capsys.readouterr()
    summary = json.loads(output(capsys, "info", str(images), "--json"))
    assert summary["samples"] == 4
    assert summary["versions"]["current"] == summary["versions"]["count"] == 2
    assert [e["operation"] for e in summary["versions"]["last"]] == ["write", "delete"]
    assert "versions    version 2 of 2" in output(capsys, "info", str(images))


def test_info_manifest_keeps_the_raw_manifest(plain: Path, capsys) -> None:
    out = output(capsys, "info", str(plain), "--manifest")
    manifest = json.loads(out.partition("\n")[2])
    assert manifest == json.loads((plain / "manifest.json").read_text())


# --- head ------------------------------------------------------------------------------------
def test_head_prints_index_rows(plain: Path, capsys) -> None:
    lines = output(capsys, "head", str(plain), "-n", "3").splitlines()
    assert lines[0].split() == [
        "position", "chunk", "offset", "size", "shape", "label", "name", "ok", "score"
    ]  # fmt: skip
    assert len(lines) == 4
    assert lines[2].split()[:3] == ["1", "chunks/chunk_0.chnk", "21"]
    assert lines[2].split()[6:] == ["1", "n1", "False", "0.25"]
    assert len(output(capsys, "head", str(plain)).splitlines()) == 8  # all 7 (fewer than 10)
    rows = [json.loads(x) for x in output(capsys, "head", str(plain), "--json").splitlines()]
    with acumen.open(plain) as ds:
        expected = [ds.table.locate(i) for i in range(7)]
    assert [(r["chunk"], r["offset"], r["size"]) for r in rows] == [
        (f"chunks/chunk_{c}.chnk", o, s) for c, o, s in expected
    ]
    assert rows[6] == {**rows[6], "position": 6, "shape": [2, 3], "label": 6, "name": "n0"}


def test_head_of_fields_shows_each_shape(records, capsys) -> None:
    (row,) = [json.loads(x) for x in output(capsys, "head", str(records), "--json").splitlines()]
    assert row["shape:mask"] == [3, 4] and row["tag"] == "a" and "shape" not in row


# --- show ------------------------------------------------------------------------------------
def test_show_describes_a_sample(plain: Path, records: Path, capsys) -> None:
    out = output(capsys, "show", str(plain), "-2")
    assert out.splitlines()[0] == f"sample 5 of {plain}"
    assert "float32, shape (2, 3), min 5, max 5, mean 5; values [5., 5., 5., 5., 5., 5.]" in out
    assert "label = 5" in out and "name = 'n2'" in out
    out = output(capsys, "show", str(records), "0")
    assert "field mask: uint16, shape (3, 4), min 7, max 7, mean 7" in out
    head = png_bytes()[:4].hex(" ")
    assert f"field png: {len(png_bytes()):,} bytes (PNG): {head}" in out


def pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image)


def test_show_writes_images(images: Path, records: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "a.png"
    assert "6x8 RGB" in output(capsys, "show", str(images), "4", "--out", str(out))
    assert np.array_equal(pixels(out), np.full((8, 6, 3), 160, np.uint8))
    # A record: the first field that is an image (the uint16 mask), or the one named.
    output(capsys, "show", str(records), "0", "--out", str(out))
    assert np.array_equal(pixels(out), np.full((3, 4), 7, np.uint16))
    said = output(capsys, "show", str(records), "0", "--field", "png", "--out", str(out))
    assert "PNG as stored" in said and out.read_bytes() == png_bytes()
    jpeg = tmp_path / "b.jpg"  # converted
    output(capsys, "show", str(records), "0", "--field", "png", "--out", str(jpeg))
    assert jpeg.read_bytes()[:3] == JPEG_HEAD[:3]
    assert pixels(jpeg).shape == (3, 4)


def test_show_mistakes_are_one_line(plain: Path, records: Path, tmp_path: Path, capsys) -> None:
    err = output(capsys, "show", str(plain), "7", status=1)
    assert err == (
        f"acumen: error: {plain}: sample 7 is out of range: the dataset has 7 samples "
        "(0 to 6, or -7 to -1)\n"
    )
    err = output(capsys, "show", str(plain), "0", "--out", str(tmp_path / "x.png"), status=1)
    assert err.startswith(f"acumen: error: {plain}: sample 0 is not an image: float32 of shape")
    assert not (tmp_path / "x.png").exists()
    err = output(capsys, "show", str(records), "0", "--field", "nope", "--out", "x.png", status=1)
    assert "no such field; its fields: ['mask', 'png']" in err
    err = output(capsys, "show", str(tmp_path / "missing"), "0", status=1)
    assert err.count("\n") == 1 and "does not exist" in err


# --- the command itself ---------------------------------------------------------------------
def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0
    where = Path(acumen.__file__).resolve().parent
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert (
        capsys.readouterr().out == f"acumen {acumen.__version__} from {where} (python {python})\n"
    )
    with pytest.raises(SystemExit):
        cli.main(["-V"])
    assert capsys.readouterr().out.startswith(f"acumen {acumen.__version__} from ")


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["ver", "x"], "invalid choice: 'ver' "),
        (["shwo", "x", "0"], "did you mean 'show'?"),
        (["hed", "x"], "did you mean 'head'?"),
        (["info", "x", "--jsn"], "unrecognized arguments: --jsn; did you mean --json?"),
        (["completion", "bsh"], "did you mean 'bash'"),
    ],
)
def test_did_you_mean_a_command_or_option(args, suggestion, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(args)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert suggestion in err and err.count("\n") == 1
    if args[0] == "ver":
        assert "did you mean 'verify'?" in err


def test_did_you_mean_a_config_key(tmp_path: Path, capsys) -> None:
    (tmp_path / "cfg.toml").write_text(
        '[source]\nglob = "*.npy"\n[reader]\nname = "npy"\n[output]\npth = "out"\n'
    )
    err = output(capsys, "convert", str(tmp_path / "cfg.toml"), status=1)
    assert "key 'output.pth': is not a setting; did you mean 'path'? allowed: " in err
    (tmp_path / "cfg.toml").write_text('[sourse]\nglob = "*.npy"\n')
    err = output(capsys, "convert", str(tmp_path / "cfg.toml"), status=1)
    assert "key 'sourse': is not a section; did you mean 'source'? sections: " in err


def test_debug_prints_the_traceback(tmp_path: Path) -> None:
    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "acumen.cli", *args],
            env={**os.environ, "PYTHONPATH": str(REPO), "ACUMEN_PLUGINS": "builtin", **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    missing = str(tmp_path / "missing")
    quiet = run("info", missing)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    assert quiet.stderr.count("\n") == 1
    for result in (run("--debug", "info", missing), run("info", missing, ACUMEN_DEBUG="1")):
        assert result.returncode == 1
        assert result.stderr.startswith("Traceback (most recent call last):")
        assert result.stderr.splitlines()[-1] == quiet.stderr.strip()


# --- completion ----------------------------------------------------------------------------
def _complete(script: str, line: str) -> list[str]:
    """What bash's completion function offers for ``line`` (the word at its end)."""
    words = line.split(" ")
    driver = (
        f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n_acumen\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", driver], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return [w for w in result.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion(plain: Path, capsys, tmp_path: Path, monkeypatch) -> None:
    script = output(capsys, "completion", "bash")
    checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert _complete(script, "acumen ver") == ["verify"]
    assert _complete(script, "acumen h") == ["head", "history"]
    assert set(_complete(script, "acumen --")) == {"--help", "--version", "--debug"}
    assert _complete(script, "acumen info --j") == ["--json"]
    assert _complete(script, "acumen completion ") == ["bash", "zsh"]
    assert set(_complete(script, "acumen --debug show x 0 --")) >= {"--out", "--field"}
    monkeypatch.chdir(plain.parent)
    assert _complete(script, "acumen info pl") == ["plain"]  # dataset paths: files


def test_zsh_completion(capsys) -> None:
    script = output(capsys, "completion", "zsh")
    assert script.startswith("#compdef acumen")
    assert "'head:print the first index rows" in script
    assert "'--json[a JSON object, for scripts]'" in script
    assert "'1:shell:(bash zsh)'" in script
    if shutil.which("zsh"):
        checked = subprocess.run(["zsh", "-n"], input=script, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr


def test_a_bug_is_one_line_that_points_to_debug(plain: Path, monkeypatch, capsys) -> None:
    from acumen.commands import head

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(head, "index_rows", broken)
    assert output(capsys, "head", str(plain), status=1) == (
        "acumen: error: unexpected RuntimeError: boom "
        "(run `acumen --debug head ...` for the traceback)\n"
    )


def test_ctrl_c_during_verify_says_nothing_changed() -> None:
    import argparse

    said = cli._after_interrupt(argparse.Namespace(command="verify", path="ds"))
    assert said == "; verify only reads, nothing changed: run it again (acumen verify ds)"
