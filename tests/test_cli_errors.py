"""Every mistake a user can make on the command line ends in one line on stderr
(``acumen: error: ...``) and a non-zero exit status, never a traceback; Ctrl-C during a
conversion says how to resume it. Each case runs ``python -m acumen.cli`` as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acumen
from acumen import cli, plugins
from acumen.abc.codec import Buffer, Codec, array_bytes
from acumen.errors import IncompleteDatasetError
from acumen.plugins.registry import Registration

REPO = Path(__file__).resolve().parents[1]
HERE = "tests.test_cli_errors"


# --- helpers named in conversion configs (worker processes import them by name) -----------
def numbers(count: int = 40) -> Any:
    """A callable source: the numbers 0..count-1."""
    yield from range(count)


def read_slowly(item: int) -> tuple[np.ndarray, dict[str, Any]]:
    """A callable reader taking 200 ms an item (a conversion that is surely interrupted
    after its first part, however loaded the machine), none once a file ``fast`` exists in
    the working folder (so the resumed run is quick)."""
    if not Path("fast").exists():
        time.sleep(0.2)
    return np.full(4, item, dtype=np.int32), {"n": item}


class SlowDecode(Codec):
    """Stores bytes as they are, and takes 50 ms to read each back: a recode of a dataset
    written with it is long enough to interrupt."""

    name = "slowdecode"

    def encode(self, array: np.ndarray) -> Buffer:
        return bytes(array_bytes(array))

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        time.sleep(0.05)
        return payload


def register_slow_decode() -> None:
    plugins.registry().register(Registration("codec", "slowdecode", f"{HERE}:SlowDecode"))


RECODE_SLOWLY = f"""
import sys
from {HERE} import register_slow_decode
from acumen import cli
register_slow_decode()
sys.exit(cli.main(["recode", "src", "dst", "--jobs", "2", "--codec", "raw"]))
"""


# --- running the command ------------------------------------------------------------------
def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "acumen.cli", *args]


def environment(plugins: str = "builtin") -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "ACUMEN_PLUGINS": plugins}


def run(folder: Path, *args: str, plugins: str = "builtin") -> subprocess.CompletedProcess:
    return subprocess.run(
        command(*args),
        cwd=folder,
        env=environment(plugins),
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess, status: int = 1) -> str:
    """The one line a failed command printed on stderr (checked to be all it printed)."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if not _is_progress(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("acumen: error: "), lines[0]
    return lines[0]


def _is_progress(line: str) -> bool:
    return line.startswith(("recode ", "verify "))


def make_source(path: Path, count: int = 6, *, noisy: bool = False) -> None:
    """uint8 images (noise when ``noisy``: a lossy codec cannot keep them exactly)."""
    rng = np.random.default_rng(3)
    with acumen.Writer(path, dtype="uint8", durable=False) as writer:
        for i in range(count):
            image = (
                rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                if noisy
                else np.full((16, 16, 3), i * 7, dtype=np.uint8)
            )
            writer.add(image, label=i)


def has_image_plugin() -> bool:
    try:
        import acumen_image  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


# --- item 8: the three reported tracebacks -------------------------------------------------
def test_a_wrong_path_column_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "a.npy", np.zeros(3, dtype=np.float32))
    (tmp_path / "list.csv").write_text("file\ndata/a.npy\n")
    (tmp_path / "cfg.toml").write_text(
        '[source]\ntable = "list.csv"\n[reader]\nname = "npy"\n[output]\npath = "out"\n'
    )
    line = one_line_error(run(tmp_path, "convert", "cfg.toml", "--no-progress"))
    assert line == (
        f"acumen: error: {tmp_path / 'list.csv'}: no column 'path' (set source.path_column); "
        "columns: ['file']"
    )


def test_a_level_for_a_codec_without_one_is_one_line(tmp_path: Path) -> None:
    make_source(tmp_path / "src")
    line = one_line_error(run(tmp_path, "recode", "src", "dst", "--codec", "raw", "--level", "80"))
    assert line == "acumen: error: --level: codec 'raw' has no level (it has no settings)"
    assert not (tmp_path / "dst").exists()


@pytest.mark.skipif(not has_image_plugin(), reason="the acumen-image plugin is not installed")
def test_image_level_names_the_codec_and_its_settings(tmp_path: Path) -> None:
    make_source(tmp_path / "src")
    result = run(
        tmp_path,
        "recode",
        "src",
        "dst",
        "--codec",
        "image",
        "--level",
        "80",
        plugins="builtin,image",
    )
    assert one_line_error(result) == (
        "acumen: error: --level: codec 'image' has no level; its settings: format, quality, "
        'lossless; give them as --codec \'{"name": "image", "configuration": {...}}\''
    )
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_during_a_conversion_says_how_to_resume(tmp_path: Path, jobs: int) -> None:
    (tmp_path / "cfg.toml").write_text(
        f'[source]\ncallable = "{HERE}:numbers"\n'
        f'[reader]\nname = "callable"\nconfiguration = {{ function = "{HERE}:read_slowly" }}\n'
        f'[output]\npath = "out"\n[run]\npart_size = 5\nn_jobs = {jobs}\n'
    )
    process = subprocess.Popen(
        command("convert", "cfg.toml", "--no-progress"),
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # SIGINT as a terminal gives it, even when these tests run in a background job
        # (which inherits SIGINT ignored, so Python would install no KeyboardInterrupt).
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("out/.acumen-convert/parts/*/manifest.json")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no part was written"
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches every process of the group
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines() == [
        "acumen: interrupted; the conversion can be resumed: run the same command again "
        "(acumen convert cfg.toml) and it goes on from where it stopped"
    ]
    # And it does: the same command finishes the conversion.
    (tmp_path / "fast").touch()
    result = run(tmp_path, "convert", "cfg.toml", "--no-progress")
    assert result.returncode == 0, result.stderr
    with acumen.open(tmp_path / "out") as ds:
        assert len(ds) == 40
        assert [int(ds.read(i)[0]) for i in range(40)] == list(range(40))


def test_ctrl_c_during_a_parallel_recode_is_one_line(tmp_path: Path) -> None:
    register_slow_decode()
    with acumen.Writer(tmp_path / "src", codec="slowdecode", durable=False) as writer:
        for i in range(400):
            writer.add(np.full(8, i, dtype=np.float32))
    process = subprocess.Popen(
        [sys.executable, "-c", RECODE_SLOWLY],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "dst" / "chunks").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the recode did not start"
            time.sleep(0.01)
        time.sleep(0.5)  # the workers are busy, or waiting for work
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, err
    # Nothing from the workers: no traceback of a task or of an idle wait.
    assert [line for line in err.splitlines() if not _is_progress(line)] == [
        "acumen: interrupted; dst is left incomplete: remove it before recoding again"
    ]
    with pytest.raises(IncompleteDatasetError):
        acumen.open(tmp_path / "dst")


IDLE_POOL_INTERRUPTED = """
import os, signal, time
from acumen.write.worker_pool import process_pool
pool = process_pool(2)
assert pool.submit(abs, -1).result() == 1  # the workers started, and now wait for work
try:
    os.killpg(0, signal.SIGINT)  # Ctrl-C, to every process of the job
    time.sleep(30)
except KeyboardInterrupt:
    pool.shutdown(wait=True)
    print("interrupted")
"""


def test_ctrl_c_ends_idle_workers_quietly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", IDLE_POOL_INTERRUPTED],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "interrupted\n", "")


# --- item 8: bad arguments of each subcommand ----------------------------------------------
USAGE_MISTAKES = {
    "no command": ([], "the following arguments are required: command (see `acumen --help`)"),
    "demo samples": (
        ["demo", "--samples", "-1"],
        "argument --samples: not a positive whole number: '-1' (see `acumen demo --help`)",
    ),
    "verify jobs": (
        ["verify", "src", "--jobs", "0"],
        "argument --jobs: not a positive whole number: '0' (see `acumen verify --help`)",
    ),
    "verify dtype": (
        ["verify", "src", "--dtype", "float99"],
        "argument --dtype: not a dtype: 'float99' (e.g. float32, uint8, <f2) "
        "(see `acumen verify --help`)",
    ),
    "recode jobs": (
        ["recode", "src", "dst", "--jobs", "0"],
        "argument --jobs: not a number of processes: '0' (a positive whole number, or -1 for "
        "all cores) (see `acumen recode --help`)",
    ),
    "recode dtype": (
        ["recode", "src", "dst", "--dtype", "nonsense"],
        "argument --dtype: not a dtype: 'nonsense' (e.g. float32, uint8, <f2) "
        "(see `acumen recode --help`)",
    ),
    "recode codec json": (
        ["recode", "src", "dst", "--codec", '{"name": "zstd"'],
        "argument --codec: not valid JSON: Expecting ',' delimiter: line 1 column 16 (char 15): "
        '\'{"name": "zstd"\' (see `acumen recode --help`)',
    ),
    "recode codec keys": (
        ["recode", "src", "dst", "--codec", '{"name": "zstd", "config": {}}'],
        'argument --codec: expected a name or {"name": "...", "configuration": {...}}, got '
        "{'config': {}, 'name': 'zstd'} (see `acumen recode --help`)",
    ),
    "recode empty codec": (
        ["recode", "src", "dst", "--codec", " "],
        'argument --codec: empty: give a name, or {"name": "...", "configuration": {...}} '
        "(see `acumen recode --help`)",
    ),
    "recode chunk size": (
        ["recode", "src", "dst", "--chunk-size", "lots"],
        "argument --chunk-size: not a size: 'lots' (e.g. 10485760, 64MiB, 10MB) "
        "(see `acumen recode --help`)",
    ),
}


@pytest.mark.parametrize("case", list(USAGE_MISTAKES))
def test_usage_mistakes_are_one_line(tmp_path: Path, monkeypatch, capsys, case: str) -> None:
    # In this process (as the command runs it, without the cost of starting one each).
    make_source(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    args, message = USAGE_MISTAKES[case]
    with pytest.raises(SystemExit) as stopped:
        cli.main(args)
    assert stopped.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"acumen: error: {message}\n"
    assert not (tmp_path / "dst").exists()


RECODE_MISTAKES = {
    "a level out of range": (
        ["--codec", "zstd", "--level", "99"],
        '--codec {"name": "zstd", "configuration": {"level": 99}}: zstd level must be at most 22',
    ),
    "a level given twice": (
        ["--codec", '{"name": "zstd", "configuration": {"level": 3}}', "--level", "4"],
        "--level 4 contradicts the level 3 in --codec; give it once",
    ),
    "the source's codec has no level": (
        ["--level", "4"],
        "--level: codec 'raw' has no level (it has no settings)",
    ),
    "a bad codec setting": (
        ["--codec", '{"name": "lz4", "configuration": {"level": "high"}}'],
        '--codec {"name": "lz4", "configuration": {"level": "high"}}: ',
    ),
    "an index format that is not installed": (
        ["--index", "nonsense"],
        "index format 'nonsense' is not installed",
    ),
}


@pytest.mark.parametrize("case", list(RECODE_MISTAKES))
def test_recode_mistakes_are_one_line_before_any_work(
    tmp_path: Path, monkeypatch, capsys, case: str
) -> None:
    make_source(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    args, message = RECODE_MISTAKES[case]
    assert cli.main(["recode", "src", "dst", *args]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"acumen: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "dst").exists()  # refused before anything was written


def test_other_refusals_are_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    make_source(tmp_path / "src")
    monkeypatch.chdir(tmp_path)

    def error_of(*args: str) -> str:
        assert cli.main(list(args)) == 1
        lines = [x for x in capsys.readouterr().err.splitlines() if not _is_progress(x)]
        assert len(lines) == 1, lines
        return lines[0]

    assert error_of("info", "missing") == (
        "acumen: error: missing: no such dataset (the path does not exist)"
    )
    assert error_of("convert", "missing.toml") == "acumen: error: missing.toml: no such config file"
    # An argument the source's manifest contradicts is the caller's error, in one line.
    line = error_of("recode", "src", "dst", "--gzip", "--no-verify")
    assert "use_gzip=True disagrees with its manifest" in line
    # A message of several lines (a damaged source's) comes out as one.
    chunk = tmp_path / "src" / "chunks" / "chunk_0.chnk"
    damaged = bytearray(chunk.read_bytes())
    damaged[10] ^= 0xFF
    chunk.write_bytes(bytes(damaged))
    line = error_of("recode", "src", "dst2", "--no-verify")
    assert "checksum" in line and "--skip-damaged" in line
    assert error_of("recode", "src", "src") == (
        "acumen: error: src already exists; acumen never writes over data"
    )


# --- item 11: codec settings as configs give them -------------------------------------------
def test_recode_codec_as_json_and_level(tmp_path: Path, monkeypatch) -> None:
    make_source(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    codec = '{"name": "zstd", "configuration": {"level": 5}}'
    assert cli.main(["recode", "src", "a", "--codec", codec, "--index", '{"name": "parquet"}']) == 0
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["codec"] == {"name": "zstd", "configuration": {"level": 5}}
    assert manifest["index"]["name"] == "parquet"
    # --level adds to a codec given as JSON, and to a name.
    for name, args in {
        "b": ["--codec", '{"name": "lz4", "configuration": {}}', "--level", "3"],
        "c": ["--codec", "lz4", "--level", "3"],
    }.items():
        assert cli.main(["recode", "src", name, *args]) == 0
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        assert manifest["codec"] == {"name": "lz4", "configuration": {"level": 3}}


def test_level_for_fields_with_several_codecs_asks_which(tmp_path: Path, monkeypatch, capsys):
    fields = {"a": {"dtype": "uint8", "codec": "zstd"}, "b": {"dtype": "uint8", "codec": "lz4"}}
    with acumen.Writer(tmp_path / "src", fields=fields, durable=False) as writer:
        writer.add({"a": np.zeros(3, np.uint8), "b": np.ones(2, np.uint8)})
    monkeypatch.chdir(tmp_path)
    assert cli.main(["recode", "src", "dst", "--level", "3"]) == 1
    assert capsys.readouterr().err == (
        "acumen: error: --level: the fields of src use codecs lz4, zstd: say which with --codec\n"
    )
    assert cli.main(["recode", "src", "dst", "--level", "3", "--codec", "zstd"]) == 0
    with acumen.open(tmp_path / "dst") as ds:
        assert {r.codec.get_config()["configuration"]["level"] for r in ds.field_readers} == {3}
