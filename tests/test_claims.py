"""One claim per folder, shared by every writer kind; a live claim is never taken over.

A folder being written by a live ``acumen.Writer`` (in this process or another) is refused
by ``convert``, ``recode``, ``split_into_chunks`` and another ``Writer``, with an error that
names the folder and the owner (pid, host, kind); the writer then commits every sample.
A claim is dead only when that is proven (its lock on the marker is free; without a lock, its
pid is gone or belongs to another process now), and only a conversion resuming its own saved
state takes a dead claim over.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acumen
from acumen.convert import convert
from acumen.errors import DatasetExistsError, IncompleteDatasetError
from acumen.files.claim import inspect, process_identity
from acumen.recode import recode

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "ACUMEN_PLUGINS": "builtin"}
HOST = socket.gethostname()
# zstd with a dictionary holds its first samples back to train on: the folder holds nothing
# but the marker while they are added (what a conversion used to take for its own leftover).
TRAINING_ZSTD = {"name": "zstd", "configuration": {"dictionary_size": 1024, "train_samples": 50}}


def sample(i: int) -> np.ndarray:
    return (np.arange(40, dtype=np.int32) + i).reshape(4, 10)


def npy_source(folder: Path, count: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        np.save(folder / f"s{i:03d}.npy", sample(i))
    return folder


def conversion(source: Path, out: Path, **run: Any) -> dict[str, Any]:
    return {
        "source": {"glob": str(source / "*.npy")},
        "reader": {"name": "npy"},
        "output": {"path": str(out)},
        "run": {"progress": False, "part_size": 2, **run},
    }


def small_dataset(path: Path, count: int = 3) -> Path:
    with acumen.Writer(path) as writer:
        for i in range(count):
            writer.add(sample(i), i=i)
    return path


def attempts_to_take(path: Path, source_dataset: Path, source_npys: Path) -> dict[str, Any]:
    """Every writer kind, each pointed at ``path``: the calls that must all be refused."""
    return {
        "convert": lambda: convert(conversion(source_npys, path)),
        "recode": lambda: recode(source_dataset, path, progress=False, verify=False),
        "split_into_chunks": lambda: acumen.split_into_chunks(
            [(sample(0), {"i": 0})], path, dtype=None
        ),
        "Writer": lambda: acumen.Writer(path),
    }


def assert_all_refused(path: Path, tmp_path: Path, pid: int, kind: str = "Writer") -> None:
    before = sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))
    source = small_dataset(tmp_path / "source")
    npys = npy_source(tmp_path / "npys")
    for name, attempt in attempts_to_take(path, source, npys).items():
        with pytest.raises(DatasetExistsError) as refused:
            attempt()
        message = str(refused.value)
        for part in (str(path), f"{kind}, pid {pid} on {HOST}", "still running"):
            assert part in message, f"{name}: {message}"
        assert "never taken over" in message, f"{name}: {message}"
        after = sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))
        assert after == before, f"{name} touched the folder"


def assert_every_sample(path: Path, count: int) -> None:
    with acumen.open(path) as ds:
        assert len(ds) == count
        for i in range(count):
            assert ds.read(i).tobytes() == sample(i).tobytes()
            assert ds.metadata(i) == {"i": i}


# --- a live Writer in this process ---------------------------------------------------------
@pytest.mark.parametrize("codec", ["raw", TRAINING_ZSTD], ids=["raw", "zstd-training"])
def test_no_writer_kind_takes_over_a_live_writer_in_this_process(tmp_path, codec):
    """Bug: a conversion removed the marker of a live Writer whose folder held nothing else
    yet (samples held back for training) and wrote its own dataset there."""
    path = tmp_path / "ds"
    with acumen.Writer(path, codec=codec, chunk_size_bytes=400, durable=False) as writer:
        for i in range(5):
            writer.add(sample(i), i=i)
        assert_all_refused(path, tmp_path, os.getpid())
        for i in range(5, 12):
            writer.add(sample(i), i=i)
    assert_every_sample(path, 12)


# --- a live Writer in another process ------------------------------------------------------
LIVE_WRITER = """
import json, sys
import numpy as np
import acumen
from tests.test_claims import sample
codec = json.loads(sys.argv[2])
with acumen.Writer(sys.argv[1], codec=codec, chunk_size_bytes=400, durable=False) as writer:
    for i in range(5):
        writer.add(sample(i), i=i)
    print("ready", flush=True)
    sys.stdin.readline()  # until the test has tried every other writer
    for i in range(5, 12):
        writer.add(sample(i), i=i)
print("done", flush=True)
"""


@pytest.mark.parametrize("codec", ["raw", TRAINING_ZSTD], ids=["raw", "zstd-training"])
def test_no_writer_kind_takes_over_a_live_writer_in_another_process(tmp_path, codec):
    path = tmp_path / "ds"
    child = subprocess.Popen(
        [sys.executable, "-c", LIVE_WRITER, str(path), json.dumps(codec)],
        cwd=REPO,
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        assert_all_refused(path, tmp_path, child.pid)
        out, err = child.communicate("go\n", timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0 and out.strip() == "done", err
    assert_every_sample(path, 12)


# --- a live conversion ---------------------------------------------------------------------
def read_when_allowed(path: str) -> tuple[np.ndarray, dict[str, Any]]:
    """A callable reader that waits while ``hold`` exists beside the source files."""
    hold = Path(path).parent / "hold"
    deadline = time.monotonic() + 30
    while hold.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return np.load(path, allow_pickle=False), {}


LIVE_CONVERSION = """
import json, sys
from acumen.convert import convert
convert(json.loads(sys.argv[1]))
print("done", flush=True)
"""


def test_a_live_conversion_is_not_resumed_by_a_second_run(tmp_path):
    """Two runs of one config: the second would "resume" the first while it still ran."""
    source = npy_source(tmp_path / "npys")
    (source / "hold").touch()
    out = tmp_path / "out"
    config = conversion(source, out)
    config["reader"] = {
        "name": "callable",
        "configuration": {"function": "tests.test_claims:read_when_allowed"},
    }
    child = subprocess.Popen(
        [sys.executable, "-c", LIVE_CONVERSION, json.dumps(config)],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / ".acumen-convert" / "config.json").exists():  # claimed, then held
            assert child.poll() is None and time.monotonic() < deadline, "the child stopped"
            time.sleep(0.01)
        with pytest.raises(DatasetExistsError) as refused:
            convert(config)
        message = str(refused.value)
        assert str(out) in message and f"convert, pid {child.pid} on {HOST}" in message
        assert "still running" in message
        (source / "hold").unlink()
        output, error = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0 and output.strip() == "done", error
    with acumen.open(out) as ds:
        assert [ds.read(i).tobytes() for i in range(len(ds))] == [
            sample(i).tobytes() for i in range(6)
        ]


# --- dead claims ---------------------------------------------------------------------------
DYING_WRITER = """
import os, signal, sys
import numpy as np
import acumen
from tests.test_claims import sample
writer = acumen.Writer(sys.argv[1], codec={"name": "zstd", "configuration":
    {"dictionary_size": 1024, "train_samples": 50}})
for i in range(5):
    writer.add(sample(i), i=i)
if sys.argv[2] != "-":  # a forked child outlives its parent: it must not keep the claim
    child = os.fork()
    if child == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        import time
        time.sleep(60)
        os._exit(0)
    with open(sys.argv[2], "w") as file:
        file.write(str(child))
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("fork", ["fork", "no-fork"])
def test_a_dead_writers_folder_is_never_taken_over(tmp_path, fork):
    """The writer is gone (its forked child still runs): its claim is dead, and still no
    conversion takes it over: a conversion resumes only what a conversion left."""
    path = tmp_path / "ds"
    forked = tmp_path / "forked.pid"
    result = subprocess.run(
        [sys.executable, "-c", DYING_WRITER, str(path), str(forked) if fork == "fork" else "-"],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    try:
        check_dead_writer(path, tmp_path)
    finally:
        if forked.exists():
            os.kill(int(forked.read_text()), signal.SIGKILL)


def check_dead_writer(path: Path, tmp_path: Path) -> None:
    state = inspect(path)
    assert state is not None and state.owner.kind == "Writer"
    assert not state.alive, state.describe()
    assert "its lock on the marker is free" in state.why
    npys = npy_source(tmp_path / "npys")
    for attempt in (lambda: convert(conversion(npys, path)), lambda: acumen.Writer(path)):
        with pytest.raises(DatasetExistsError) as refused:
            attempt()
        message = str(refused.value)
        assert f"{path} is an incomplete dataset" in message
        assert f"Writer, pid {state.owner.pid} on {HOST} (no longer running" in message
    assert [p.name for p in path.iterdir()] == [".acumen-writing"]
    with pytest.raises(IncompleteDatasetError):
        acumen.open(path)


def write_marker(path: Path, **fields: Any) -> None:
    path.mkdir(parents=True, exist_ok=True)
    owner = {"pid": os.getpid(), "host": HOST, "started": time.time(), "kind": "convert"}
    (path / ".acumen-writing").write_text(json.dumps({**owner, **fields}), encoding="utf-8")


@pytest.mark.skipif(process_identity(os.getpid()) is None, reason="no process start times here")
def test_without_a_lock_a_reused_pid_is_not_the_owner(tmp_path):
    """A marker without a lock (another OS, a file system without flock): the pid decides,
    and a pid now used by another process (another start time) is not the owner."""
    me = process_identity(os.getpid())
    write_marker(tmp_path / "a", process=me)
    assert inspect(tmp_path / "a").alive  # this very process: alive
    write_marker(tmp_path / "b", process="another boot/12345")
    assert not inspect(tmp_path / "b").alive
    assert "another process now" in inspect(tmp_path / "b").why
    write_marker(tmp_path / "c", pid=finished_pid())
    assert not inspect(tmp_path / "c").alive
    write_marker(tmp_path / "d", host="elsewhere.example", pid=1)
    assert inspect(tmp_path / "d").alive  # another host: never proven dead
    assert "another host" in inspect(tmp_path / "d").why


def test_a_marker_from_another_host_is_never_taken_over(tmp_path):
    """A conversion with its state saved, whose marker names another host: refused."""
    source = npy_source(tmp_path / "npys")
    out = tmp_path / "out"
    config = conversion(source, out)
    convert(config)  # a finished conversion, then made to look as if it were running
    (out / "manifest.json").unlink()
    write_marker(out, host="elsewhere.example", pid=1)
    with pytest.raises(DatasetExistsError, match=re.escape("elsewhere.example (still running")):
        convert(config)


def test_a_failed_conversion_is_resumed_in_the_same_process(tmp_path):
    """A conversion that failed lets go of its claim (the marker stays): the same config run
    again in the same process resumes it."""
    source = npy_source(tmp_path / "npys")
    (source / "s003.npy").write_bytes(b"not an npy file")
    config = conversion(source, tmp_path / "out")
    with pytest.raises(acumen.AcumenError):
        convert(config)
    state = inspect(tmp_path / "out")
    assert state is not None and not state.alive and state.owner.kind == "convert"
    np.save(source / "s003.npy", sample(3))
    summary = convert(config)
    assert summary.samples == 6 and summary.resumed_parts == 1
    assert not list((tmp_path / "out").glob(".acumen-writing*"))


def test_a_marker_that_is_not_a_file_is_refused_without_hanging(tmp_path):
    """A FIFO where the marker should be: looking at it must not block on its open."""
    path = tmp_path / "ds"
    path.mkdir()
    os.mkfifo(path / ".acumen-writing")
    with pytest.raises(DatasetExistsError, match="did not record who it is"):
        acumen.Writer(path)
    with pytest.raises(DatasetExistsError, match="did not record who it is"):
        convert(conversion(npy_source(tmp_path / "npys"), path))


def finished_pid() -> int:
    """The pid of a process that has ended (not reused this instant)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def test_a_conversion_left_by_an_older_acumen_resumes(tmp_path):
    """Its marker names no kind and holds no lock: the pid (gone) and the saved config of a
    conversion say whose it is; a live pid is still refused."""
    source = npy_source(tmp_path / "npys")
    (source / "s003.npy").write_bytes(b"not an npy file")
    out = tmp_path / "out"
    config = conversion(source, out)
    with pytest.raises(acumen.AcumenError):
        convert(config)
    older = {"pid": os.getpid(), "host": HOST, "started": time.time()}
    (out / ".acumen-writing").write_text(json.dumps(older), encoding="utf-8")
    np.save(source / "s003.npy", sample(3))
    with pytest.raises(DatasetExistsError, match=f"a writer, pid {os.getpid()} on {HOST}"):
        convert(config)  # this process is alive: it might be that writer
    (out / ".acumen-writing").write_text(json.dumps({**older, "pid": finished_pid()}))
    assert convert(config).samples == 6


def test_a_resumed_conversion_removes_dead_attempts_only(tmp_path):
    """What a killed or failed run's part attempts wrote is removed before the parts are
    written again; an attempt whose writer lives (a task still running) is left alone."""
    from acumen.convert.parts import remove_dead_attempts

    parts = tmp_path / "parts"
    dead = acumen.Writer(parts / "part-000001.attempt-aaaa")
    dead.add(sample(1))
    dead.abort()
    with acumen.Writer(parts / "part-000002.attempt-bbbb") as live:
        live.add(sample(2))
        remove_dead_attempts(parts)
        assert sorted(p.name for p in parts.iterdir()) == ["part-000002.attempt-bbbb"]
    assert inspect(parts / "part-000002.attempt-bbbb") is None  # committed
