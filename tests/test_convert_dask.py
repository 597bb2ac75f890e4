"""``acumen convert`` with ``run.engine = "dask"``: the same bytes as the local engine, on a
cluster the engine starts or on one given by address; errors, skips and resumption."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from acumen.convert import ConfigError, ConversionError, convert  # noqa: E402

N_FILES = 22
PART_SIZE = 4


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the tests that pass its address (starting one costs seconds)."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_scheduler_in_environment(monkeypatch: pytest.MonkeyPatch):
    import dask

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with dask.config.set({"scheduler-address": None}):
        yield


def make_source(folder: Path, bad: int | None = None) -> Path:
    """``N_FILES`` .npy files of varying shapes; item ``bad`` (if any) is not a .npy file."""
    folder.mkdir()
    rng = np.random.default_rng(7)
    for number in range(N_FILES):
        path = folder / f"item-{number:03d}.npy"
        if number == bad:
            path.write_bytes(b"this is not a .npy file")
        else:
            np.save(path, rng.normal(size=(1 + number % 5, 3)).astype(np.float32))
    return folder


def config(source: Path, output: Path, **run) -> dict:
    return {
        "source": {"glob": "*.npy", "root": str(source)},
        "reader": {"name": "npy"},
        "output": {"path": str(output), "codec": "zstd", "chunk_size": 256},
        "run": {"engine": "dask", "n_jobs": 2, "part_size": PART_SIZE, "progress": False, **run},
    }


def local_reference(cfg: dict, output: Path, file: Path | None = None) -> Path:
    """The same conversion by the local engine (from ``file`` if given: the report names it)."""
    run = {k: v for k, v in cfg["run"].items() if k != "scheduler"}
    reference = {**cfg, "output": {**cfg["output"], "path": str(output)}}
    reference["run"] = {**run, "engine": "local", "n_jobs": 1}
    if file is not None:
        file.write_text(json.dumps(reference), encoding="utf-8")
    convert(reference if file is None else file)
    return output


def assert_same_files(actual: Path, expected: Path) -> None:
    def files(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    got, want = files(actual), files(expected)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name


def test_engine_started_cluster_matches_local_engine(tmp_path, capsys):
    source = make_source(tmp_path / "source")
    cfg = config(source, tmp_path / "dask")
    summary = convert(cfg, progress=True)
    assert summary.samples == N_FILES
    assert summary.resumed_parts == 0
    assert_same_files(tmp_path / "dask", local_reference(cfg, tmp_path / "local"))
    final = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{N_FILES} samples" in final  # every sample counted once on the progress display


def test_scheduler_address_matches_local_engine(tmp_path, cluster, capsys):
    source = make_source(tmp_path / "source")
    cfg = config(source, tmp_path / "dask", scheduler=cluster.scheduler_address)
    summary = convert(cfg, progress=True)
    assert summary.samples == N_FILES
    assert_same_files(tmp_path / "dask", local_reference(cfg, tmp_path / "local"))
    lines = capsys.readouterr().err.strip().splitlines()
    assert f"{N_FILES} samples" in lines[-1]


def test_scheduler_from_dask_environment_variable(tmp_path, cluster):
    """DASK_SCHEDULER_ADDRESS, read by Dask when it is imported: the CLI in a new process."""
    source = make_source(tmp_path / "source")
    cfg = config(source, tmp_path / "dask", n_jobs=1)
    path = tmp_path / "convert.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    environment = {**os.environ, "DASK_SCHEDULER_ADDRESS": cluster.scheduler_address}
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from acumen.cli import main; sys.exit(main())",
            "convert",
            str(path),
            "--no-progress",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert f"{N_FILES} samples" in completed.stdout
    assert_same_files(tmp_path / "dask", local_reference(cfg, tmp_path / "local", path))


def test_raise_names_the_bad_item(tmp_path, cluster):
    source = make_source(tmp_path / "source", bad=9)
    cfg = config(source, tmp_path / "dask", scheduler=cluster.scheduler_address)
    with pytest.raises(ConversionError, match=r"item 9 \(.*item-009\.npy\)"):
        convert(cfg)
    deadline = time.monotonic() + 10  # the engine's client closed (the scheduler hears it soon)
    while set(cluster.scheduler.clients) - {"fire-and-forget"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(cluster.scheduler.clients) == {"fire-and-forget"}


def test_skip_reports_the_bad_item(tmp_path, cluster):
    source = make_source(tmp_path / "source", bad=9)
    cfg = config(source, tmp_path / "dask", scheduler=cluster.scheduler_address, on_error="skip")
    summary = convert(cfg)
    assert summary.samples == N_FILES - 1
    report = json.loads((tmp_path / "dask" / "convert-report.json").read_text())
    assert [entry["position"] for entry in report["skipped"]] == [9]
    assert report["skipped"][0]["item"].endswith("item-009.npy")
    assert summary.skipped == report["skipped"]
    assert_same_files(tmp_path / "dask", local_reference(cfg, tmp_path / "local"))


def test_resume_after_a_failure_reuses_finished_parts(tmp_path, cluster):
    source = make_source(tmp_path / "source")
    cfg = config(source, tmp_path / "dask", scheduler=cluster.scheduler_address)
    cfg["reader"] = {
        "name": "callable",
        "configuration": {"function": "tests.convert_helpers:read_npy_unless_marked"},
    }
    marker = source / "item-013.npy.fail"  # part 3 fails; parts 0-2 are in flight with it
    marker.write_text("")
    with pytest.raises(ConversionError, match=r"item 13 \(.*item-013\.npy\).*marked as failing"):
        convert(cfg)
    state = tmp_path / "dask" / ".acumen-convert" / "parts"
    done = sorted(p.name for p in state.iterdir() if (p / "manifest.json").is_file())
    assert {"part-000000", "part-000001", "part-000002"} <= set(done)
    assert "part-000003" not in done

    marker.unlink()
    summary = convert(cfg)
    assert summary.resumed_parts >= 3
    assert summary.samples == N_FILES
    assert_same_files(tmp_path / "dask", local_reference(cfg, tmp_path / "local"))


def test_without_dask_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # "import distributed" fails
    source = make_source(tmp_path / "source")
    extra = r"pip install 'dask\[distributed\]' \(acumen's 'dask' extra\)"
    with pytest.raises(ConfigError, match=extra):
        convert(config(source, tmp_path / "dask"))
