"""Crash safety, tested for real: writers killed by SIGKILL at many points.

A server process (``python -m tests.crash_helpers serve``) imports acumen once and forks a
child per case; the child writes a dataset and dies by SIGKILL, either by its own hand when
a given function is entered (or returns) for the Nth time, or from outside after a random
delay. After every kill the output must be one of:

* absent (or an empty folder: the writer died before claiming it; nothing to read),
* recognisably incomplete: ``acumen.open`` raises IncompleteDatasetError, ``verify`` fails
  and a new writer refuses the folder,
* complete: it opens, ``verify`` passes, and every sample is exactly what was written.

Never a dataset that opens and returns wrong bytes. A conversion killed during its merge
(or around its commit) and run again gives the same files as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acumen
from acumen.convert import convert
from acumen.errors import DatasetExistsError, DatasetNotFoundError, IncompleteDatasetError
from acumen.format.layout import WRITING_MARKER
from acumen.verify import verify
from tests.crash_helpers import DTYPE, convert_config, convert_inputs, sample, sample_shape

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "ACUMEN_PLUGINS": "builtin"}
CONFIGS = [("raw", "csv"), ("zstd", "parquet"), ("raw", "parquet"), ("zstd", "csv")]
CONFIG_IDS = [f"{c}-{i}" for c, i in CONFIGS]
N = 12  # samples per deterministic case
CHUNK = 64  # bytes: two or three samples per chunk, so several chunks and renames


# --- the server ---------------------------------------------------------------------------
class Server:
    def __init__(self, log: Path) -> None:
        self.log = log
        self._stderr = open(log, "wb")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_helpers", "serve"],
            cwd=REPO,
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        assert self._read(60) == {"ready": True}

    def _read(self, timeout: float) -> dict[str, Any]:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            pytest.fail(f"the crash server did not answer within {timeout} s: {self.stderr()}")
        line = self.process.stdout.readline()
        if not line:
            pytest.fail(f"the crash server died: {self.stderr()}")
        return json.loads(line)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.log.read_text(errors="replace")[-3000:]

    def run(self, request: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
        self.process.stdin.write(json.dumps({"timeout": 60, **request}) + "\n")
        self.process.stdin.flush()
        result = self._read(timeout)
        assert not result["timed_out"], f"a child hung: {request}"
        return result

    def stop(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=30)
            self.process.stdout.close()
            self._stderr.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    started = Server(tmp_path_factory.mktemp("server") / "stderr.log")
    yield started
    started.stop()


def write_spec(path: Path, codec: str, index_format: str, n: int = N, chunk: int = CHUNK):
    return {
        "path": str(path),
        "codec": codec,
        "index_format": index_format,
        "n": n,
        "chunk_size_bytes": chunk,
    }


# --- the invariant ------------------------------------------------------------------------
def outcome(path: Path, n: int, metadata_of: Any = lambda i: {"i": i}) -> str:
    """Check the invariant for the output of a killed writer; name the state found."""
    if not path.exists():
        return "absent"
    try:
        dataset = acumen.open(path)
    except IncompleteDatasetError as error:
        assert (path / WRITING_MARKER).exists(), error
        report = verify(path, progress=False)
        assert not report.ok and "incomplete dataset" in str(report)
        with pytest.raises(DatasetExistsError):  # a new writer never writes over it
            acumen.Writer(path)
        return "incomplete"
    except DatasetNotFoundError:
        # The writer died between creating the folder and claiming it: nothing in it.
        assert list(path.iterdir()) == []
        return "empty"
    with dataset:
        assert len(dataset) == n
        for i in range(n):
            array, metadata = dataset[i]
            assert array.dtype == DTYPE and array.shape == sample_shape(i), i
            assert array.tobytes() == sample(i).tobytes(), f"sample {i} returned wrong bytes"
            assert metadata == metadata_of(i)
    with acumen.open(path, "seek", verify="chunk") as dataset:
        assert np.array_equal(dataset.read(n - 1), sample(n - 1))
    report = verify(path, progress=False)
    assert report.ok, str(report)
    assert not (path / WRITING_MARKER).exists()
    return "complete"


def trace_of(server: Server, tmp_path: Path, job: str, spec: dict, name: str) -> list[str]:
    trace_file = tmp_path / f"{name}.trace.json"
    result = server.run({"job": job, "spec": spec, "trace": str(trace_file)})
    assert result["exit"] == 0, server.stderr()
    return json.loads(trace_file.read_text())


def kill_points(trace: list[str]) -> list[tuple[str, str, int]]:
    """Every event of an uninterrupted run as (probe, phase, nth)."""
    counts: Counter = Counter()
    points = []
    for event in trace:
        counts[event] += 1
        probe, phase = event.split("|")
        points.append((probe, phase, counts[event]))
    return points


def kill_at(server: Server, spec: dict, point: tuple[str, str, int]) -> None:
    result = server.run({"job": "write", "spec": spec, "kill": list(point)})
    assert result["killed"], f"{point}: the child was not killed ({result}): {server.stderr()}"


# --- deterministic kill points ------------------------------------------------------------
@pytest.mark.parametrize(("codec", "index_format"), CONFIGS, ids=CONFIG_IDS)
def test_sigkill_at_every_step_of_a_write(server, tmp_path, codec, index_format):
    """Kill before and after every probed step (each add, chunk rename, fsync, index write,
    manifest write, marker removal...) of an uninterrupted run, one child per step."""
    trace = trace_of(
        server, tmp_path, "write", write_spec(tmp_path / "t", codec, index_format), "w"
    )
    assert outcome(tmp_path / "t", N) == "complete"
    points = kill_points(trace)
    if (codec, index_format) not in CONFIGS[:2]:  # the other two: from the last chunk on
        last = "acumen.write.chunk_writer.ChunkWriter._finish_chunk|enter"
        points = points[len(trace) - 1 - trace[::-1].index(last) :]
    seen: Counter = Counter()
    for k, point in enumerate(points):
        path = tmp_path / f"k{k}" / "ds"
        kill_at(server, write_spec(path, codec, index_format), point)
        try:
            seen[outcome(path, N)] += 1
        except AssertionError as error:
            raise AssertionError(f"killed at {point}: {error}") from error
        shutil.rmtree(path.parent, ignore_errors=True)
    expected = {"incomplete", "complete"} | (
        {"absent", "empty"} if len(points) == len(trace) else set()
    )
    assert expected <= set(seen), seen
    assert sum(seen.values()) == len(points) > (40 if len(points) == len(trace) else 15)


MARKER_UNLINK = ("pathlib.Path.unlink", "enter", 1)
NAMED_POINTS = {
    "before the folder exists": (("pathlib.Path.mkdir", "enter", 1), "absent"),
    "before the marker": (("acumen.files.claim.claim_folder", "enter", 1), "empty"),
    "during a chunk (samples buffered)": (
        ("acumen.write.writer.Writer.add", "enter", 2),
        "incomplete",
    ),
    "during a chunk (mid-file)": (("acumen.write.writer.Writer.add", "enter", 5), "incomplete"),
    "chunk fsynced, not renamed": (("os.replace", "enter", 1), "incomplete"),
    "after a chunk": (
        ("acumen.write.chunk_writer.ChunkWriter._finish_chunk", "exit", 1),
        "incomplete",
    ),
    "between chunks and index": (("acumen.write.commit.commit_dataset", "enter", 1), "incomplete"),
    "index in place, no manifest": (
        ("acumen.files.local.replace_durably", "exit", 1),
        "incomplete",
    ),
    "manifest written, not renamed": (
        ("acumen.format.manifest.Manifest.write", "enter", 1),
        "incomplete",
    ),
    "manifest fsynced, before its rename": (("os.replace", "enter", -1), "incomplete"),
    "manifest just renamed": (("os.replace", "exit", -1), "incomplete"),
    "manifest renamed, marker present": (
        ("acumen.files.local.write_atomically", "exit", 1),
        "incomplete",
    ),
    "marker being removed": (MARKER_UNLINK, "incomplete"),
    "marker removed, folder not synced": (("pathlib.Path.unlink", "exit", 1), "complete"),
    "after the last directory fsync": (
        ("acumen.write.commit.commit_dataset", "exit", 1),
        "complete",
    ),
}


@pytest.mark.parametrize(("codec", "index_format"), CONFIGS[:2], ids=CONFIG_IDS[:2])
@pytest.mark.parametrize("where", list(NAMED_POINTS))
def test_sigkill_at_named_points(server, tmp_path, codec, index_format, where):
    """The points the issue names, each with the state it must leave."""
    point, expected = NAMED_POINTS[where]
    if point[2] == -1:  # the last call of that probe in an uninterrupted run
        trace = trace_of(
            server, tmp_path, "write", write_spec(tmp_path / "t", codec, index_format), "w"
        )
        event = f"{point[0]}|{point[1]}"
        point = (point[0], point[1], trace.count(event))
    path = tmp_path / "ds"
    kill_at(server, write_spec(path, codec, index_format), point)
    assert outcome(path, N) == expected


# --- random kill points -------------------------------------------------------------------
@pytest.mark.parametrize(("codec", "index_format"), CONFIGS, ids=CONFIG_IDS)
def test_sigkill_at_random_moments(server, tmp_path, codec, index_format):
    """SIGKILL from outside after a random delay, many runs within a bounded time."""
    n, chunk = 300, 512
    spec = write_spec(tmp_path / "t", codec, index_format, n, chunk)
    clean = server.run({"job": "write", "spec": spec})
    assert clean["exit"] == 0, server.stderr()
    assert outcome(tmp_path / "t", n) == "complete"
    rng = random.Random(f"{codec}-{index_format}")
    seen: Counter = Counter()
    budget = time.monotonic() + 8
    runs = 0
    while runs < 40 and time.monotonic() < budget:
        path = tmp_path / f"r{runs}" / "ds"
        delay = rng.uniform(0, clean["seconds"] * 1.1)
        server.run({"job": "write", "spec": {**spec, "path": str(path)}, "delay": delay})
        try:
            seen[outcome(path, n)] += 1
        except AssertionError as error:
            raise AssertionError(f"killed after {delay:.4f} s: {error}") from error
        shutil.rmtree(path.parent, ignore_errors=True)
        runs += 1
    assert runs >= 10, seen


def test_external_sigkill_of_a_fresh_interpreter(tmp_path):
    """No fork: a plain ``python`` writer killed from outside part way through."""
    rng = random.Random(3)
    for run in range(3):
        path = tmp_path / f"f{run}" / "ds"
        spec = write_spec(path, "zstd", "csv", n=3000, chunk=4096)
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_helpers", "write", json.dumps(spec)],
            cwd=REPO,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            ready, _, _ = select.select([process.stdout], [], [], 60)
            assert ready and process.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.15))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            process.stdout.close()
        assert outcome(path, 3000) in {"absent", "empty", "incomplete", "complete"}


# --- a conversion killed during its merge -------------------------------------------------
def all_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class Conversion:
    """One conversion job (30 .npy files, zstd, parquet index, parts of 8 samples) and the
    files of its uninterrupted run; each case kills it at one point and runs it again."""

    def __init__(self, server: Server, tmp_path: Path) -> None:
        self.server = server
        self.root = tmp_path / "job"
        convert_inputs(str(self.root / "in"), 30)
        self.spec = {"root": str(self.root), "chunk_size_bytes": 96, "part_size": 8}
        self.config = convert_config(str(self.root), 96, 8)
        self.trace = trace_of(server, tmp_path, "convert", self.spec, "convert")
        self.expected = all_files(self.root / "out")
        assert "chunks/chunk_0.chnk" in self.expected
        assert not any(".acumen-convert" in name for name in self.expected)
        assert self.state_of_output() == "complete"
        self.points = kill_points(self.trace)

    def state_of_output(self) -> str:
        inputs = self.root / "in"
        return outcome(self.root / "out", 30, lambda i: {"path": str(inputs / f"s{i:04d}.npy")})

    def kill_and_rerun(self, point: tuple[str, str, int]) -> str | None:
        """Kill at ``point``, check the output, run again; the problem, or None."""
        shutil.rmtree(self.root / "out", ignore_errors=True)
        result = self.server.run({"job": "convert", "spec": self.spec, "kill": list(point)})
        assert result["killed"], f"{point}: not killed: {self.server.stderr()}"
        state = self.state_of_output()  # the invariant holds at every point
        if state == "complete" and all_files(self.root / "out") == self.expected:
            return None  # finished before the kill took effect: nothing left to do
        try:
            convert(self.config)
        except DatasetExistsError as error:
            return f"{point}: left {state}; the re-run is refused: {error}"
        got = all_files(self.root / "out")
        names = set(got) | set(self.expected)
        different = sorted(k for k in names if got.get(k) != self.expected.get(k))
        if different:
            return f"{point}: left {state}; files differ after the re-run: {different[:6]}"
        return None

    def marker_removed(self) -> int:
        """Position in the trace where the merge's commit removes the writing marker."""
        merge = self.trace.index("acumen.convert.merge.merge_parts|enter")
        return self.trace.index("pathlib.Path.unlink|exit", merge)


@pytest.fixture(scope="module")
def conversion(server, tmp_path_factory) -> Conversion:
    return Conversion(server, tmp_path_factory.mktemp("conversion"))


def test_conversion_killed_in_the_merge_resumes_identically(conversion):
    """Kill the conversion at each rename of its merge and at each step of its commit up to
    the marker's removal (tests/test_convert.py kills it while parts are written); each time
    the output is recognisably incomplete and running the conversion again gives the files
    of an uninterrupted run, byte for byte."""
    merge = conversion.trace.index("acumen.convert.merge.merge_parts|enter")
    points = conversion.points[merge : conversion.marker_removed()]
    renames = [p for p in points if p[0] == "acumen.convert.merge.os.replace"]
    assert len(renames) >= 8  # one rename per chunk file moved out of the parts
    problems = [problem for point in points if (problem := conversion.kill_and_rerun(point))]
    assert not problems, "\n".join(problems)


def test_conversion_killed_after_its_commit_is_finished_by_a_rerun(conversion):
    """Killed after the manifest committed and the marker went, but before the conversion
    state was removed: the dataset is whole (checked), and a re-run should tidy up and
    leave exactly the files of an uninterrupted run."""
    points = conversion.points[conversion.marker_removed() :]
    assert points
    problems = [problem for point in points if (problem := conversion.kill_and_rerun(point))]
    assert not problems, "\n".join(problems)


def test_conversion_killed_while_claiming_its_folder_resumes(conversion):
    """Killed after the writing marker is created but before the config's fingerprint is
    saved: the folder is recognisably incomplete; a re-run should be able to resume it."""
    claim = conversion.trace.index("acumen.files.local.write_atomically|enter")
    problem = conversion.kill_and_rerun(conversion.points[claim])
    assert problem is None, problem
