"""Worker processes end when the process that started them is killed.

A child interpreter runs split_into_chunks, recode or convert with two workers whose reads
are slow (so the job is mid-work); each worker leaves a file named by its pid. The test
kills the child with SIGKILL and checks that every process it started is gone soon after.
The functions below are imported by name in the workers (spawn, forkserver, configs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acumen
from acumen.convert import convert
from acumen.recode import SampleReader, recode
from acumen.write.split import split_into_chunks
from acumen.write.worker_pool import WATCHDOG_ONLY

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds processes through /proc"
)

REPO = Path(__file__).resolve().parents[1]
MARKERS = "ACUMEN_TEST_WORKER_MARKERS"
ITEMS = 100_000  # far more than the test lets the job do


# --- run in the child interpreter and its workers ------------------------------------------
def announce() -> None:
    """Leave a file named by this process's pid, then take a while over the item."""
    folder = os.environ.get(MARKERS)
    if folder:
        Path(folder, str(os.getpid())).touch()
    time.sleep(0.005)


def slow_read(item: Any) -> tuple[np.ndarray, dict[str, Any]]:
    announce()
    return np.full(4, int(item), np.float32), {"i": int(item)}


def numbers(count: int) -> Any:
    yield from range(count)


class SlowSampleReader(SampleReader):
    def __call__(self, position: int) -> tuple[Any, dict[str, Any]]:
        announce()
        return super().__call__(position)


def run_split(work: Path) -> None:
    split_into_chunks(range(ITEMS), work / "out", read_fn=slow_read, n_jobs=2, dtype=np.float32)


def run_recode(work: Path) -> None:
    with acumen.Writer(work / "src", durable=False) as writer:
        for i in range(3000):
            writer.add(np.full(4, i, np.float32), i=i)
    acumen.recode.SampleReader = SlowSampleReader  # found by name in the workers
    recode(work / "src", work / "out", n_jobs=2, progress=False)


def run_convert(work: Path) -> None:
    convert(
        {
            "source": {"callable": f"{__name__}:numbers", "arguments": {"count": ITEMS}},
            "reader": {"name": "callable", "configuration": {"function": f"{__name__}:slow_read"}},
            "output": {"path": str(work / "out"), "dtype": "float32"},
            "run": {"n_jobs": 2, "part_size": 200, "progress": False},
        }
    )


CHILD = """
import multiprocessing
import sys

if __name__ == "__main__":
    sys.path.insert(0, {repo!r})
    if {method!r}:
        multiprocessing.set_start_method({method!r}, force=True)
    from tests import test_orphans

    getattr(test_orphans, {job!r})(__import__("pathlib").Path({work!r}))
"""


# --- the test ------------------------------------------------------------------------------
def process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, start time) of every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            table[int(entry)] = (int(fields[1]), fields[0], fields[19])
    return table


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root``: pid -> its start time (to tell a reused pid)."""
    table = process_table()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, started) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def still_running(processes: dict[int, str]) -> list[int]:
    table = process_table()
    return [
        pid
        for pid, started in processes.items()
        if pid in table and table[pid][2] == started and table[pid][1] != "Z"
    ]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def kill_mid_work(tmp_path: Path, job: str, method: str = "", **env: str) -> list[int]:
    """Start ``job`` in a child interpreter, SIGKILL it once both workers are busy, and
    return the processes it had started that still run 5 seconds later."""
    markers = tmp_path / "markers"
    markers.mkdir()
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(CHILD).format(repo=str(REPO), method=method, job=job, work=str(tmp_path))
    )
    child_env = {**os.environ, MARKERS: str(markers), **env}
    child = subprocess.Popen([sys.executable, str(script)], env=child_env, cwd=tmp_path)
    started: dict[int, str] = {}
    try:
        workers = lambda: {int(p.name) for p in markers.iterdir()} - {child.pid}  # noqa: E731
        wait_for(lambda: len(workers()) >= 2 or child.poll() is not None, 60, "two busy workers")
        assert child.poll() is None, "the job ended before it could be killed"
        started = descendants(child.pid)
        assert workers() <= set(started)
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 5
        while still_running(started) and time.monotonic() < deadline:
            time.sleep(0.05)
        return still_running(started)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pid in still_running(started):  # a failed test leaves no orphans behind either
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_split_workers_end_with_their_parent(tmp_path: Path, method: str) -> None:
    assert kill_mid_work(tmp_path, "run_split", method) == []


def test_recode_workers_end_with_their_parent(tmp_path: Path) -> None:
    assert kill_mid_work(tmp_path, "run_recode") == []


def test_convert_workers_end_with_their_parent(tmp_path: Path) -> None:
    assert kill_mid_work(tmp_path, "run_convert") == []


def test_the_watchdog_ends_workers_without_a_parent_death_signal(tmp_path: Path) -> None:
    # (Under forkserver the watchdog is all there is: the split test above checks it.)
    assert kill_mid_work(tmp_path, "run_split", "fork", **{WATCHDOG_ONLY: "1"}) == []
