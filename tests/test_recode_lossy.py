"""A recode whose copy reads back different from its source (a lossy codec) is never
committed: the copy is checked before its marker goes, so a failed check, or a kill during
it, leaves it incomplete. The error is not a CorruptDatasetError (nothing is damaged) and
says how to accept the lossy copy, in Python and on the command line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen import cli, plugins
from acumen.abc.codec import Buffer, Codec, array_bytes
from acumen.errors import CorruptDatasetError, IncompleteDatasetError, RecodeMismatchError
from acumen.format.layout import MANIFEST_FILE, WRITING_MARKER
from acumen.plugins.registry import Registration
from acumen.recode import recode
from acumen.verify import verify

REPO = Path(__file__).resolve().parents[1]


class DropLowBit(Codec):
    """Lossy: clears the lowest bit of every byte, so odd bytes come back one less."""

    name = "droplowbit"

    def encode(self, array: np.ndarray) -> Buffer:
        return (np.frombuffer(array_bytes(array), dtype=np.uint8) & 0xFE).tobytes()

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        if len(payload) != decoded_size:
            raise CorruptDatasetError(f"droplowbit: {len(payload)} bytes, not {decoded_size}")
        return payload


class DiesWhenRead(Codec):
    """Lossless, but the process dies (SIGKILL) at its second decode: the first is recode's
    check of sample 0 before any work, the second reads the finished copy back."""

    name = "dieswhenread"
    decoded = 0  # in this process

    def encode(self, array: np.ndarray) -> Buffer:
        return bytes(array_bytes(array))

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        DiesWhenRead.decoded += 1
        if DiesWhenRead.decoded == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return payload


def register_test_codecs() -> None:
    for name, cls in (("droplowbit", "DropLowBit"), ("dieswhenread", "DiesWhenRead")):
        plugins.registry().register(Registration("codec", name, f"{__name__}:{cls}"))


@pytest.fixture(autouse=True)
def _test_codecs() -> None:
    register_test_codecs()  # conftest's fixture reloads the registry after each test


def make(path: Path) -> list[np.ndarray]:
    """Samples 0..2 have even bytes only (the lossy codec keeps them, so the check of the
    first sample before any work passes), sample 3 does not: only the read-back sees it."""
    samples = [np.full((4, 4), 2 * i, dtype=np.uint8) for i in range(3)]
    samples += [np.arange(16, dtype=np.uint8).reshape(4, 4) + i for i in range(3)]
    with acumen.Writer(path, durable=False) as writer:
        for i, array in enumerate(samples):
            writer.add(array, i=i)
    return samples


def assert_incomplete(path: Path) -> None:
    assert (path / MANIFEST_FILE).exists() and (path / WRITING_MARKER).exists()
    with pytest.raises(IncompleteDatasetError):
        acumen.open(path)
    assert not verify(path).ok


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_lossy_copy_is_not_committed(tmp_path: Path, n_jobs: int) -> None:
    samples = make(tmp_path / "src")
    with pytest.raises(RecodeMismatchError) as caught:
        recode(
            tmp_path / "src", tmp_path / "dst", codec="droplowbit", n_jobs=n_jobs, progress=False
        )
    error = caught.value
    assert not isinstance(error, CorruptDatasetError)  # nothing is damaged
    assert isinstance(error, ValueError)
    dst = tmp_path / "dst"
    assert str(error) == (
        f"{dst}: sample 3 differs from source sample 3 after recoding with codec "
        "{'name': 'droplowbit', 'configuration': {}}; nothing was committed: "
        f"{dst} is left incomplete (remove it); to keep a copy that differs from its source "
        "(a lossy codec), recode again without the check: recode(..., verify=False), or "
        "acumen recode --no-verify"
    )
    assert_incomplete(dst)
    # The suggested rerun works.
    shutil.rmtree(dst)
    recode(tmp_path / "src", dst, codec="droplowbit", verify=False, progress=False)
    with acumen.open(dst) as ds:
        assert [ds.read(i).tobytes() for i in range(len(ds))] == [
            (s & 0xFE).tobytes() for s in samples
        ]


def test_a_lossy_first_sample_stops_the_recode_before_any_work(tmp_path: Path) -> None:
    samples = make(tmp_path / "src")
    with acumen.Writer(tmp_path / "odd", durable=False) as writer:  # sample 0 is lossy
        for array in samples[3:]:
            writer.add(array)
    with pytest.raises(RecodeMismatchError) as caught:
        recode(tmp_path / "odd", tmp_path / "dst", codec="droplowbit", progress=False)
    assert str(caught.value) == (
        f"{tmp_path / 'dst'}: nothing was written: source sample 0 differs from itself once "
        "encoded and decoded by codec {'name': 'droplowbit', 'configuration': {}} (a lossy "
        "codec); to copy with it anyway, without the check: recode(..., verify=False), or "
        "acumen recode --no-verify"
    )
    assert not (tmp_path / "dst").exists()
    recode(tmp_path / "odd", tmp_path / "dst", codec="droplowbit", verify=False, progress=False)
    assert verify(tmp_path / "dst").ok


def test_the_command_says_how_to_accept_a_lossy_copy(tmp_path: Path, monkeypatch, capsys) -> None:
    make(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["recode", "src", "dst", "--codec", "droplowbit"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("acumen: error: dst: sample 3 differs from source sample 3")
    assert err[-1].endswith("recode(..., verify=False), or acumen recode --no-verify")
    assert_incomplete(tmp_path / "dst")
    shutil.rmtree(tmp_path / "dst")
    assert cli.main(["recode", "src", "dst", "--codec", "droplowbit", "--no-verify"]) == 0
    assert "not verified" in capsys.readouterr().out
    assert verify(tmp_path / "dst").ok


KILLED_IN_READ_BACK = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from tests.test_recode_lossy import register_test_codecs
from acumen.recode import recode
register_test_codecs()
recode("src", "dst", codec="dieswhenread", progress=False)
"""


def test_killed_while_reading_the_copy_back_leaves_it_incomplete(tmp_path: Path) -> None:
    make(tmp_path / "src")
    result = subprocess.run(
        [sys.executable, "-c", KILLED_IN_READ_BACK],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert_incomplete(tmp_path / "dst")  # its manifest was written; the marker never went


def image_plugin() -> bool:
    try:
        import acumen_image  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not image_plugin(), reason="the acumen-image plugin is not installed")
def test_jpeg_through_the_image_plugin(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with acumen.Writer(tmp_path / "src", durable=False) as writer:
        for i in range(3):
            writer.add(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), i=i)
    jpeg = '{"name": "image", "configuration": {"format": "jpeg", "quality": 80}}'

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "acumen.cli", "recode", "src", "dst", "--codec", jpeg, *args],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO), "ACUMEN_PLUGINS": "builtin,image"},
            capture_output=True,
            text=True,
            timeout=120,
        )

    failed = run()
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr == (
        "acumen: error: dst: nothing was written: source sample 0 differs from itself once "
        "encoded and decoded by codec {'name': 'image', 'configuration': {'format': 'jpeg', "
        "'quality': 80}} (a lossy codec); to copy with it anyway, without the check: "
        "recode(..., verify=False), or acumen recode --no-verify\n"
    )
    assert not (tmp_path / "dst").exists()  # found before any work
    accepted = run("--no-verify")
    assert accepted.returncode == 0, accepted.stderr
    assert "codec image" in accepted.stdout and "not verified" in accepted.stdout
