"""Conversion settings that do what they say (issue 12, items 5-7): the automatic part size
(so that ``n_jobs`` runs parts in parallel), a resume that may change ``on_error``, the
``--check`` dry run, and ``callable`` modules that live beside the config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from acumen import cli
from acumen.convert import ConfigError, ConversionError, check, convert
from acumen.convert.parts import (
    MAX_AUTO_PART_SIZE,
    MIN_AUTO_PART_SIZE,
    automatic_part_size,
    items_worth_counting,
)
from tests.test_convert import all_files, base_config, read_all, save_npys, spoil, write_json

REPO = Path(__file__).resolve().parents[1]
HELPERS = "tests.convert_helpers"


def dataset_files(root: Path) -> dict[str, bytes]:
    """Every file of a converted dataset, the report without the config file it names."""
    files = all_files(root)
    report = json.loads(files.pop("convert-report.json"))
    files["skipped"] = json.dumps(report["skipped"]).encode()
    return files


# --- item 5: the part size follows the input, so n_jobs has parts to share -------------------
def test_automatic_part_size_rule() -> None:
    """Several parts per worker, none tiny (a part has a cost of its own), none above the
    cap; one worker gets the largest parts (more parts would only cost)."""
    assert automatic_part_size(1_000, 2) == 125  # 8 parts: 4 for each worker
    assert automatic_part_size(1_000, 16) == MIN_AUTO_PART_SIZE
    assert automatic_part_size(10**9, 2) == MAX_AUTO_PART_SIZE
    assert automatic_part_size(1_000, 1) == MAX_AUTO_PART_SIZE
    assert automatic_part_size(6_400, None) == MIN_AUTO_PART_SIZE  # a Dask cluster: 64 parts
    sizes = [automatic_part_size(n, 4) for n in range(1, 2_000_000, 9_973)]
    assert sizes == sorted(sizes)  # more items never give smaller parts
    for workers in (2, 3, 8, None):
        past = items_worth_counting(workers)
        assert automatic_part_size(past, workers) == MAX_AUTO_PART_SIZE  # counting stops there
        assert automatic_part_size(past - MAX_AUTO_PART_SIZE, workers) < MAX_AUTO_PART_SIZE


def test_n_jobs_2_runs_parts_of_1000_items_on_two_workers(tmp_path: Path) -> None:
    """Bug: the default part_size of 10,000 made 1,000 items one part, so n_jobs=2 ran one
    worker. Now the part size follows the item count: several parts, both workers busy."""
    save_npys(tmp_path / "data", 1_000, shape=(2,))
    config = base_config(
        reader={
            "name": "callable",
            "configuration": {"function": f"{HELPERS}:read_npy_slowly_with_pid"},
        },
        run={"n_jobs": 2},
    )
    summary = convert(write_json(tmp_path / "c.json", config))
    assert summary.samples == 1_000
    assert summary.part_size == automatic_part_size(1_000, 2)
    assert summary.parts == -(-1_000 // summary.part_size) and summary.parts >= 2
    assert summary.workers == 2
    assert f"{summary.parts} parts of up to {summary.part_size:,} items" in str(summary)
    assert "written by 2 worker processes" in str(summary)
    _, metadata = read_all(tmp_path / "out")
    assert len({m["pid"] for m in metadata}) == 2  # two processes really wrote parts
    assert os.getpid() not in {m["pid"] for m in metadata}


def test_resume_with_another_n_jobs_makes_the_same_parts(tmp_path: Path) -> None:
    """The automatic part size is saved with the conversion: a run stopped with three
    workers and resumed with one writes what an uninterrupted run with three writes."""
    paths = save_npys(tmp_path / "data", 400, shape=(3,), seed=3)
    three = base_config(tmp_path / "three", run={"n_jobs": 3})
    summary = convert(write_json(tmp_path / "three.json", three))
    assert summary.part_size == automatic_part_size(400, 3) and summary.parts > 3
    one = convert(write_json(tmp_path / "one.json", base_config(tmp_path / "one")))
    assert one.parts == 1  # one worker: parts would only cost

    good = paths[350].read_bytes()
    spoil(paths[350])
    stopped = base_config(tmp_path / "resumed", run={"n_jobs": 3})
    with pytest.raises(ConversionError, match=r"item 350 \("):
        convert(write_json(tmp_path / "stopped.json", stopped))
    paths[350].write_bytes(good)
    summary = convert(write_json(tmp_path / "again.json", base_config(tmp_path / "resumed")))
    assert summary.resumed_parts >= 1 and summary.part_size == automatic_part_size(400, 3)
    assert dataset_files(tmp_path / "resumed") == dataset_files(tmp_path / "three")


def test_resume_keeps_the_part_size_it_started_with(tmp_path: Path) -> None:
    """The chosen part size is saved with the conversion: a resume makes the same parts even
    if the rule (or the count) would now give another."""
    paths = save_npys(tmp_path / "data", 300, shape=(2,), seed=4)
    spoil(paths[290])
    path = write_json(tmp_path / "c.json", base_config(run={"n_jobs": 2}))
    with pytest.raises(ConversionError):
        convert(path)
    plan = tmp_path / "out" / ".acumen-convert" / "plan.json"
    saved = json.loads(plan.read_text())
    assert saved["part_size"] == automatic_part_size(300, 2)
    plan.write_text(json.dumps({**saved, "part_size": 7}))  # as if another rule chose 7
    np.save(paths[290], np.zeros(2, np.float32))
    summary = convert(path)
    assert summary.part_size == 7 and summary.parts == -(-300 // 7)


def test_explicit_part_size_is_kept(tmp_path: Path) -> None:
    save_npys(tmp_path / "data", 10)
    summary = convert(write_json(tmp_path / "c.json", base_config(run={"part_size": 4})))
    assert (summary.part_size, summary.parts, summary.workers) == (4, 3, 1)
    assert "3 parts of up to 4 items, written by 1 worker process" in str(summary)


# --- item 6: a resume may change on_error; --check reads everything and writes nothing -------
def test_stopped_by_raise_resumes_with_skip(tmp_path: Path) -> None:
    """Bug: the fingerprint held on_error, so a conversion stopped by a bad item under
    "raise" could not be finished with "skip" ("was started with another config")."""
    paths = save_npys(tmp_path / "data", 12, seed=9)
    spoil(paths[7])
    with pytest.raises(ConversionError, match=r"item 7 \("):
        convert(write_json(tmp_path / "raise.json", base_config(run={"part_size": 3})))
    skip = base_config(run={"part_size": 3, "on_error": "skip"})
    summary = convert(write_json(tmp_path / "skip.json", skip))
    assert summary.resumed_parts == 2 and summary.samples == 11
    assert [entry["position"] for entry in summary.skipped] == [7]
    clean = base_config(tmp_path / "clean", run={"part_size": 3, "on_error": "skip"})
    convert(write_json(tmp_path / "skip.json", clean))
    assert dataset_files(tmp_path / "out") == dataset_files(tmp_path / "clean")


def test_stopped_under_skip_resumes_with_raise_and_rewrites_parts_that_skipped(
    tmp_path: Path,
) -> None:
    """A part finished under "skip" may lack items; "raise" promises every item, so a resume
    with "raise" writes such a part again (the item, now fixed, is in; still bad: it raises)."""
    paths = save_npys(tmp_path / "data", 12, seed=11)
    reader = {"name": "callable", "configuration": {"function": f"{HELPERS}:read_npy_or_stop"}}
    fail = Path(f"{paths[1]}.fail")
    stop = Path(f"{paths[10]}.stop")
    fail.touch()
    stop.touch()
    skip = base_config(reader=reader, run={"part_size": 3, "on_error": "skip"})
    with pytest.raises(KeyboardInterrupt):
        convert(write_json(tmp_path / "skip.json", skip))
    stop.unlink()
    raise_ = write_json(tmp_path / "raise.json", base_config(reader=reader, run={"part_size": 3}))
    with pytest.raises(ConversionError, match=r"item 1 \("):
        convert(raise_)  # item 1 is still bad: "raise" does not keep the part that skipped it
    fail.unlink()
    summary = convert(raise_)
    assert summary.skipped == [] and summary.samples == 12 and summary.resumed_parts == 2
    clean = base_config(tmp_path / "clean", reader=reader, run={"part_size": 3})
    convert(write_json(tmp_path / "clean.json", clean))
    assert dataset_files(tmp_path / "out") == dataset_files(tmp_path / "clean")


def test_check_lists_every_unreadable_item_and_writes_nothing(tmp_path: Path) -> None:
    paths = save_npys(tmp_path / "data", 9)
    spoil(paths[2])
    spoil(paths[8])
    report = check(write_json(tmp_path / "c.json", base_config(run={"part_size": 2})))
    assert not report.ok and report.items == 9
    assert [entry["position"] for entry in report.unreadable] == [2, 8]
    assert [entry["item"] for entry in report.unreadable] == [str(paths[2]), str(paths[8])]
    assert all(entry["error"].startswith("ValueError: ") for entry in report.unreadable)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_cli_check_exits_1_listing_unreadable_items_then_0(
    tmp_path: Path, capsys: pytest.CaptureFixture, n_jobs: int
) -> None:
    paths = save_npys(tmp_path / "data", 6)
    good = paths[4].read_bytes()
    spoil(paths[4])
    path = write_json(tmp_path / "c.json", base_config(run={"n_jobs": n_jobs, "part_size": 2}))
    assert cli.main(["convert", str(path), "--check"]) == 1
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"item 4 ({paths[4]}): ValueError: ")
    assert lines[-1] == "6 items read: 1 unreadable"
    assert not (tmp_path / "out").exists()
    paths[4].write_bytes(good)
    assert cli.main(["convert", str(path), "--check"]) == 0
    assert capsys.readouterr().out == "6 items read: all readable\n"
    assert not (tmp_path / "out").exists()


# --- item 7: callable modules beside the config ---------------------------------------------
MODULE = """
import numpy as np


def items(count):
    return [f"item-{i}" for i in range(count)]


def read(item):
    number = int(item.rsplit("-", 1)[1])
    return np.full(3, number, dtype=np.int16), {"number": number}
"""


SPAWNED_CLI = (
    "import multiprocessing, sys; multiprocessing.set_start_method('spawn'); "
    "from acumen.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize(
    ("n_jobs", "command"),
    [(1, ["-m", "acumen.cli"]), (2, ["-m", "acumen.cli"]), (2, ["-c", SPAWNED_CLI])],
    ids=["one-process", "two-workers", "two-spawned-workers"],
)
def test_callable_modules_beside_the_config_from_another_folder(
    tmp_path: Path, n_jobs: int, command: list[str]
) -> None:
    """Bug: a reader or source module next to the config could not be imported unless the
    current folder happened to be the config's. Now the config's folder is on the import
    path for them, in the driver and in the workers."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "myreader.py").write_text(MODULE, encoding="utf-8")
    (project / "c.toml").write_text(
        "[source]\n"
        'callable = "myreader:items"\n'
        "arguments = { count = 7 }\n"
        "[reader]\n"
        'name = "callable"\n'
        'configuration = { function = "myreader:read" }\n'
        "[output]\n"
        'path = "out"\n'
        "[run]\n"
        f"n_jobs = {n_jobs}\n"
        "part_size = 2\n"
        "progress = false\n",
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, *command, "convert", str(project / "c.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{project / 'out'}: 7 samples")
    samples, metadata = read_all(project / "out")
    assert [m["number"] for m in metadata] == list(range(7))
    assert [s.tolist() for s in samples] == [[i] * 3 for i in range(7)]
    assert "myreader" not in sys.modules  # the test process itself imported nothing


def test_missing_callable_module_names_the_folders_searched(tmp_path: Path) -> None:
    config = base_config(reader={"name": "callable", "configuration": {"function": "nomod:read"}})
    with pytest.raises(ConfigError) as raised:
        convert(write_json(tmp_path / "c.json", config))
    message = str(raised.value)
    assert "No module named 'nomod'" in message
    assert f"the config's folder {tmp_path}" in message and "sys.path" in message


def test_callable_reader_beside_the_config_on_dask_workers(tmp_path: Path) -> None:
    """Dask workers (spawned processes that never saw the driver's imports) find the reader
    module beside the config: each task carries the config's folder."""
    pytest.importorskip("distributed")
    import dask

    (tmp_path / "mydaskreader.py").write_text(MODULE, encoding="utf-8")
    config = {
        "source": {"callable": "mydaskreader:items", "arguments": {"count": 6}},
        "reader": {"name": "callable", "configuration": {"function": "mydaskreader:read"}},
        "output": {"path": "out"},
        "run": {"engine": "dask", "n_jobs": 2, "part_size": 2, "progress": False},
    }
    with dask.config.set({"scheduler-address": None}):
        summary = convert(write_json(tmp_path / "c.json", config))
    assert summary.samples == 6 and summary.parts == 3
    _, metadata = read_all(tmp_path / "out")
    assert [m["number"] for m in metadata] == list(range(6))


def test_resume_without_part_size_continues_with_the_one_it_started_with(
    tmp_path: Path,
) -> None:
    """A conversion started with run.part_size set (or by an older acumen, which saved its
    default of 10,000 as if set) may be resumed by a config that leaves it out."""
    paths = save_npys(tmp_path / "data", 12, seed=12)
    good = paths[8].read_bytes()
    spoil(paths[8])
    with pytest.raises(ConversionError):
        convert(write_json(tmp_path / "set.json", base_config(run={"part_size": 5})))
    paths[8].write_bytes(good)
    summary = convert(write_json(tmp_path / "auto.json", base_config(run={"n_jobs": 2})))
    assert (summary.part_size, summary.parts, summary.resumed_parts) == (5, 3, 1)
    convert(write_json(tmp_path / "clean.json", base_config("clean", run={"part_size": 5})))
    assert dataset_files(tmp_path / "out") == dataset_files(tmp_path / "clean")
