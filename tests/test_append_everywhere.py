"""Appends through every entry point (issue 16): split_into_chunks(mode="append"), acumen
convert with output.mode = "append" (resumed exactly once after a SIGKILL at each step),
and the tiered merging of index segments that keeps opening cheap."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acumen
from acumen.convert import convert
from acumen.convert.config import ConfigError
from acumen.format.versions import list_versions
from acumen.write.tiers import FANOUT, merge_span, tier


# --- split_into_chunks ----------------------------------------------------------------------
def test_split_into_chunks_appends_with_the_datasets_settings(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    items = [(np.full(3, i, np.float32), {"label": i}) for i in range(5)]
    acumen.split_into_chunks(items, out, dtype=np.float32, index_format="arrow", codec="zstd")
    more = [(np.full(3, i, np.float64), {"label": i}) for i in range(5, 9)]
    manifest = acumen.split_into_chunks(more, out, mode="append", n_jobs=2)
    assert manifest.versioned is not None and manifest.versioned.version == 2
    with acumen.open(out) as ds:
        assert len(ds) == 9 and ds.dtype == np.float32 and ds.manifest.codec["name"] == "zstd"
        assert [int(ds[i][0][0]) for i in range(9)] == list(range(9))
    with pytest.raises(acumen.SampleError, match="loses values"):  # no silent inf
        acumen.split_into_chunks([(np.full(3, 1e300), {"label": 1})], out, mode="append")
    with pytest.raises(ValueError, match="index_format='csv' differs"):
        acumen.split_into_chunks(
            [(np.ones(3), {"label": 1})], out, mode="append", index_format="csv"
        )
    with pytest.raises(ValueError, match="mode must be"):
        acumen.split_into_chunks([], out, mode="replace")
    assert len(acumen.open(out)) == 9


# --- acumen convert, output.mode = "append" ---------------------------------------------------
def _inputs(folder: Path, name: str, values: range, dtype: str = "int32") -> None:
    (folder / name).mkdir(parents=True)
    for i in values:
        np.save(folder / name / f"s{i:03d}.npy", np.full(2, i, dtype))


def _config(folder: Path, glob: str, **output: Any) -> dict[str, Any]:
    return {
        "source": {"glob": glob, "root": str(folder)},
        "reader": {"name": "npy"},
        "output": {"path": str(folder / "out"), **output},
        "run": {"part_size": 3, "progress": False},
    }


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    _inputs(tmp_path, "a", range(10))
    _inputs(tmp_path, "b", range(10, 20), "int64")
    convert(_config(tmp_path, "a/*.npy", index_format="parquet"))
    return tmp_path


def _values(out: Path) -> list[int]:
    with acumen.open(out) as ds:
        return [int(ds[i][0][0]) for i in range(len(ds))]


def test_convert_appends_one_version(dataset: Path) -> None:
    summary = convert(_config(dataset, "b/*.npy", mode="append"))
    out = dataset / "out"
    assert summary.samples == 20 and _values(out) == list(range(20))
    assert list_versions(out) == [1, 2]
    with acumen.open(out) as ds:
        info = ds.manifest.versioned
        assert info.operation == "append" and len(info.segments) == 2
        assert all(c.file.startswith("chunks/chunk_") for c in ds.manifest.chunks[:4])
        assert all(c.file.startswith("chunks/2") for c in ds.manifest.chunks[4:])
        assert ds[12][1] == {"path": "b/s012.npy"}
    assert not (out / ".acumen-convert").exists() and not any((out / "_writers").iterdir())


@pytest.mark.parametrize(
    ("key", "value"),
    [("codec", "zstd"), ("index_format", "csv"), ("dtype", "float32"), ("chunk_size", "1KB")],
)
def test_convert_append_refuses_other_settings(dataset: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"key 'output\.{key}': differs from the dataset's"):
        convert(_config(dataset, "b/*.npy", mode="append", **{key: value}))
    assert _values(dataset / "out") == list(range(10))


def test_convert_append_of_the_same_settings_and_bad_mode(dataset: Path) -> None:
    convert(_config(dataset, "b/*.npy", mode="append", index_format="parquet", dtype="int32"))
    assert _values(dataset / "out") == list(range(20))
    with pytest.raises(ConfigError, match=r"output\.mode"):
        convert(_config(dataset, "b/*.npy", mode="upsert"))


def test_convert_append_needs_a_dataset(tmp_path: Path) -> None:
    _inputs(tmp_path, "b", range(3))
    with pytest.raises(acumen.DatasetNotFoundError, match="no dataset to change"):
        convert(_config(tmp_path, "b/*.npy", mode="append"))


# Where the conversion dies: (function patched, "enter" or "exit", which call); and whether
# the append is committed by then.
KILLS = [
    ("acumen.convert.appending.move_chunks", "enter", 1, False),
    ("os.replace", "enter", 2, False),  # half the chunk files moved
    ("acumen.write.append.Append._write_segment", "exit", 1, False),
    ("acumen.write.versioning.commit_version", "exit", 1, False),  # version 1 made of it
    ("acumen.write.versioning.commit_version", "exit", 2, True),  # the append committed
    ("acumen.write.append.Append._release", "enter", 1, True),
    ("shutil.rmtree", "enter", 1, True),  # the state being removed
]


def _die_at(target: str, phase: str, nth: int) -> None:
    """Patch ``target`` (in this forked child only) to SIGKILL the process at its nth call."""
    module_name, _, attribute = target.rpartition(".")
    owner: Any
    if module_name.endswith("Append"):
        from acumen.write.append import Append as owner
    else:
        import importlib

        owner = importlib.import_module(module_name)
    original = getattr(owner, attribute)
    calls = [0]

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == nth and phase == "enter":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if calls[0] == nth and phase == "exit":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, attribute, dying)


@pytest.mark.parametrize(("target", "phase", "nth", "committed"), KILLS)
def test_convert_append_killed_resumes_exactly_once(
    dataset: Path, target: str, phase: str, nth: int, committed: bool
) -> None:
    config = _config(dataset, "b/*.npy", mode="append")
    pid = os.fork()
    if pid == 0:  # the child: dies at the chosen step
        try:
            _die_at(target, phase, nth)
            convert(config)
        finally:
            os._exit(3)  # not killed: the test fails below
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    out = dataset / "out"
    assert _values(out) == list(range(20 if committed else 10))  # the old or the new version
    summary = convert(config)  # run again: finishes (or only tidies) the append
    assert summary.samples == 20 and _values(out) == list(range(20))
    assert list_versions(out) == [1, 2]  # one append, never two
    assert not (out / ".acumen-convert").exists()
    assert not any((out / "_writers").glob("*/.acumen-writing"))
    assert convert(_config(dataset, "a/*.npy", mode="append")).samples == 30  # a new one


# --- tiered segments ------------------------------------------------------------------------
def test_merge_span_keeps_few_segments_and_never_the_first() -> None:
    rows, rewritten, most = [1_000_000], 0, 0
    for _ in range(5000):
        rows.append(3)
        span = merge_span(rows)
        if span:
            assert span < len(rows)  # the first segment is never merged
            rewritten += sum(rows[-span:])
            rows[-span:] = [sum(rows[-span:])]
        most = max(most, len(rows))
        tiers = [tier(n) for n in rows[1:]]
        assert all(tiers.count(t) < FANOUT for t in set(tiers))
    assert rows[0] == 1_000_000 and sum(rows) == 1_000_000 + 3 * 5000
    assert most <= 1 + FANOUT * 6  # O(log n) segments
    assert rewritten <= 3 * 5000 * 6  # each row rewritten once per tier it climbs


@pytest.mark.parametrize("index_format", ["arrow", "csv"])
def test_many_appends_merge_segments_and_keep_every_version(
    tmp_path: Path, index_format: str
) -> None:
    out = tmp_path / "ds"
    with acumen.Writer(out, index_format=index_format, dtype="int32", checksums="sample") as w:
        for i in range(4):
            w.add(np.full(2, i), label=i)
    n = 4
    for k in range(2 * FANOUT + 3):
        with acumen.Writer(out, mode="append") as w:
            for _ in range(k % 2 + 1):
                extra = {"score": float(n)} if k >= FANOUT else {}  # a column added later
                w.add(np.full(2, n), label=n, **extra)
                n += 1
    with acumen.open(out) as ds:
        segments = ds.manifest.versioned.segments
        assert len(segments) < 2 * FANOUT and segments[0].n_rows == 4
        assert [int(ds[i][0][0]) for i in range(n)] == list(range(n))
        assert list(ds.table.metadata.column("label")) == list(range(n))
        score = ds.table.metadata.column("score")
        assert np.isnan(score[0]) and score[-1] == n - 1
        assert set(ds.manifest.files) >= {s.file for s in segments}
    for version in list_versions(out):  # older versions still name their small segments
        with acumen.open(out, version=version, verify="sample") as old:
            assert [int(old[i][0][0]) for i in range(len(old))] == list(range(len(old)))
