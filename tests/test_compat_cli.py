"""The ``acumen`` command: ``info``, ``plugins`` and how it reports errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import acumen
from acumen import cli

from .conftest import FIXTURES, load_fixture

EXPECTED_PLUGINS = {
    "codecs": ["gzip", "lz4", "raw", "zstd"],
    "storage backends": ["memory", "mmap", "remote", "seek"],
    "index formats": ["arrow", "csv", "parquet"],
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m acumen.cli ARGS`` in a fresh interpreter, built-in plugins only."""
    env = {**os.environ, "ACUMEN_PLUGINS": "builtin"}
    return subprocess.run(
        [sys.executable, "-m", "acumen.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def small_dataset(tmp_path):
    path = tmp_path / "ds"
    with acumen.Writer(path, codec="zstd", dtype="float32", chunk_size_bytes=64) as writer:
        for i in range(7):
            writer.add(np.full((2, 3), i, dtype=np.float32), label=i, name=f"n{i}")
    return path


def _sections(output: str) -> dict[str, list[str]]:
    """``acumen plugins`` output as {section label: [plugin lines]}."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            current = line[:-1]
            sections[current] = []
        elif line.startswith("  ") and current is not None:
            sections[current].append(line)
    return sections


# --------------------------------------------------------------------------------------
# info


def test_info_manifest_on_acumen_dataset(small_dataset, capsys) -> None:
    assert cli.main(["info", str(small_dataset), "--manifest"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    first, _, rest = out.partition("\n")
    assert "7 samples" in first
    assert "float32" in first
    assert "(2, 3)" in first
    assert "zstd" in first
    # the rest is the manifest, as JSON
    manifest = json.loads(rest)
    on_disk = json.loads((small_dataset / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == on_disk
    assert manifest["n_samples"] == 7
    assert "original acumenindexer" not in out


def test_info_on_acumen_dataset_via_its_manifest_file(small_dataset, capsys) -> None:
    assert cli.main(["info", str(small_dataset / "manifest.json")]) == 0
    assert "7 samples" in capsys.readouterr().out


def test_info_on_original_fixture_needs_no_arguments(capsys) -> None:
    folder, params, arrays, _ = load_fixture("raw_f16_fixed")
    assert (params["dtype"], params["use_gzip"]) == ("float16", False)  # the defaults
    assert cli.main(["info", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert f"{len(arrays)} samples" in out
    assert "50 samples" in out
    assert "float16" in out
    assert "(4, 3)" in out
    assert "original acumenindexer dataset (no manifest)" in out


def test_info_on_original_fixture_subprocess() -> None:
    result = run_cli("info", str(FIXTURES / "raw_f16_fixed"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "50 samples" in result.stdout
    assert "original acumenindexer dataset" in result.stdout


def test_info_on_original_float32_fixture_explains_dtype(capsys) -> None:
    """Opened with the float16 default, a float32 original dataset is refused with a hint."""
    folder = FIXTURES / "raw_f32_varlen"
    assert cli.main(["info", str(folder)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("acumen: error: ")
    assert str(folder) in err
    assert "dtype" in err


# --------------------------------------------------------------------------------------
# plugins


def _check_plugins_output(output: str) -> None:
    sections = _sections(output)
    assert set(EXPECTED_PLUGINS) <= set(sections)
    for label, names in EXPECTED_PLUGINS.items():
        listed = {line.split()[0]: line for line in sections[label]}
        assert sorted(listed) == names, label
        for name in names:
            assert "acumen-indexer" in listed[name], listed[name]
            assert acumen.__version__ in listed[name]
    assert "failed:" not in output


def test_plugins_lists_builtins(capsys) -> None:
    assert cli.main(["plugins"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    _check_plugins_output(out)


def test_plugins_subprocess() -> None:
    result = run_cli("plugins")
    assert result.returncode == 0, result.stderr
    _check_plugins_output(result.stdout)


# --------------------------------------------------------------------------------------
# errors


def test_missing_path_is_an_error(tmp_path, capsys) -> None:
    missing = tmp_path / "no_such_dataset"
    assert cli.main(["info", str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("acumen: error: ")
    assert str(missing) in err
    assert "Traceback" not in err


def test_missing_path_subprocess(tmp_path) -> None:
    missing = tmp_path / "nowhere" / "data"
    result = run_cli("info", str(missing))
    assert result.returncode == 1
    assert result.stdout == ""
    assert str(missing) in result.stderr
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_folder_that_is_no_dataset(tmp_path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert cli.main(["info", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert str(tmp_path) in err
    assert "manifest.json" in err and "index.csv" in err


def test_no_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (  # one line, as every error (tests/test_cli_errors.py)
        "acumen: error: the following arguments are required: command (see `acumen --help`)\n"
    )
