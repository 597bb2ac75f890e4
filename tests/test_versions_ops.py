"""Delete, compact and vacuum (issue 16, item 4): every version reads exactly its samples.

Sample ``i`` is ``np.full((i % 3 + 1,), i)`` with metadata ``label = i % 4 - 1``,
``name = "s<i>"`` and ``score = i / 2``; a version is checked against the list of sample
numbers it must hold, in order.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acumen
from acumen import cli
from acumen.errors import CommitConflictError, CorruptDatasetError, SampleError
from acumen.files.claim import claim_new_folder, this_host
from acumen.format.layout import WRITING_MARKER
from acumen.format.versions import list_versions
from acumen.verify import verify
from acumen.versions.history import history
from acumen.versions.vacuum import vacuum
from acumen.write import versioning

REPO = Path(__file__).resolve().parents[1]
DTYPE = np.dtype("<i4")
CHUNK = 48  # bytes: a few samples per chunk file


def sample(i: int) -> np.ndarray:
    return np.full((i % 3 + 1,), i, dtype=DTYPE)


def meta(i: int) -> dict[str, Any]:
    return {"label": i % 4 - 1, "name": f"s{i}", "score": i / 2}


def write(path: Path, ids, codec: str = "zstd", index_format: str = "arrow") -> Path:
    with acumen.Writer(path, codec=codec, index_format=index_format, chunk_size_bytes=CHUNK) as w:
        for i in ids:
            w.add(sample(i), **meta(i))
    return path


def append(path: Path, ids) -> None:
    with acumen.Writer(path, mode="append") as w:
        for i in ids:
            w.add(sample(i), **meta(i))


def check(path: Path, ids: list[int], version: int | None = None) -> None:
    """The version holds exactly samples ``ids``, in order, values and metadata."""
    with acumen.open(path, version=version) as ds:
        assert len(ds) == len(ids)
        for k, i in enumerate(ids):
            array, got = ds[k]
            assert array.dtype == DTYPE and array.tolist() == sample(i).tolist(), (k, i)
            assert got == meta(i), (k, i)
        assert [a.tolist() for a, _ in ds] == [sample(i).tolist() for i in ids]


def n_versions(path: Path) -> int:
    return len(list_versions(path))


# --- delete --------------------------------------------------------------------------------
FORMATS = [("raw", "csv"), ("zstd", "parquet"), ("raw", "arrow"), ("zstd", "csv")]


@pytest.mark.parametrize(("codec", "index_format"), FORMATS, ids=[f"{c}-{i}" for c, i in FORMATS])
def test_delete_by_condition_and_numbers_every_version(tmp_path, codec, index_format):
    path = write(tmp_path / "ds", range(12), codec, index_format)
    acumen.delete(path, where="label == -1")  # 0, 4, 8
    v2 = [i for i in range(12) if i % 4 != 0]
    manifest = acumen.delete(path, indices=[0, 4, 8])  # samples 1, 6, 11 of version 2
    v3 = [i for k, i in enumerate(v2) if k not in (0, 4, 8)]
    assert manifest.versioned.operation == "delete" and manifest.n_samples == len(v3)
    assert manifest.versioned.deletions.file in manifest.files
    check(path, list(range(12)), 1)
    check(path, v2, 2)
    check(path, v3, 3)
    check(path, v3)
    assert [e.operation for e in history(path)] == ["write", "delete", "delete"]
    assert verify(path, progress=False).ok


def test_delete_then_append_then_delete(tmp_path):
    path = write(tmp_path / "ds", range(10))
    acumen.delete(path, indices=[1, 2])
    append(path, range(10, 14))
    acumen.delete(path, where="name == 's11' or name == 's3'")
    ids = [0, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    check(path, ids)
    acumen.delete(path, indices=[len(ids) - 1])
    check(path, ids[:-1])
    check(path, [0, *range(3, 14)], 3)


def test_delete_nothing_everything_and_refusals(tmp_path, capsys):
    path = write(tmp_path / "ds", range(6))
    assert acumen.delete(path, where="label == 7").versioned is None  # still written once
    assert n_versions(path) == 0
    with pytest.raises(ValueError, match="exactly one"):
        acumen.delete(path)
    with pytest.raises(ValueError, match="exactly one"):
        acumen.delete(path, where="label == 1", indices=[1])
    with pytest.raises(SampleError, match=r"samples \[6, -1\] are out of range.*6 samples"):
        acumen.delete(path, indices=[2, 6, -1])
    with pytest.raises(ValueError, match=r"samples \[3\] more than once"):
        acumen.delete(path, indices=[3, 1, 3])
    with pytest.raises(ValueError, match="colour"):
        acumen.delete(path, where="colour == 1")
    assert n_versions(path) == 0 and not list((path / "_writers").glob("*/*"))
    assert cli.main(["delete", str(path), "--where", "label >= -1"]) == 0
    assert (
        "deleted 6 of 6 samples (where label >= -1): version 2 (from version 1) has 0 samples"
        in capsys.readouterr().out
    )
    with acumen.open(path) as ds:
        assert len(ds) == 0 and list(ds) == []
    assert verify(path, progress=False).ok
    assert cli.main(["delete", str(path), "--where", "label == 1"]) == 0
    assert "nothing deleted: no sample matched where label == 1" in capsys.readouterr().out
    append(path, [20])
    check(path, [20])
    acumen.compact(path)
    check(path, [20])


def test_original_reader_reads_the_view_after_delete_and_compact(tmp_path):
    acumenindexer = pytest.importorskip("acumenindexer")
    for codec in ("raw", "gzip"):
        path = write(tmp_path / codec, range(15), codec, "csv")
        acumen.delete(path, where="label == 0")
        acumen.delete(path, indices=[0])
        ids = [i for i in range(15) if i % 4 != 1][1:]
        for step in ("delete", "compact"):
            index = acumenindexer.load_index(str(path / "index.csv"))
            read = acumenindexer.read_from_index(
                index, dtype=DTYPE, use_gzip=codec == "gzip", chunk_paths=str(path)
            )
            assert len(index) == len(ids), step
            for k, i in enumerate(ids):
                array, got = read(k)
                assert array.tolist() == sample(i).tolist() and got["name"] == f"s{i}"
            acumen.compact(path, min_live=1.0)
        check(path, ids)


# --- compact -------------------------------------------------------------------------------
def chunk_bytes(path: Path) -> int:
    with acumen.open(path) as ds:
        return sum(c.size_bytes for c in ds.manifest.chunks)


@pytest.mark.parametrize("index_format", ["parquet", "arrow"])
def test_compact_keeps_samples_and_frees_bytes(tmp_path, index_format):
    path = write(tmp_path / "ds", range(30), "zstd", index_format)
    append(path, range(30, 40))
    acumen.delete(path, where="label != 2")  # 3 of 4 go
    ids = [i for i in range(40) if i % 4 == 3]
    before = chunk_bytes(path)
    manifest = acumen.compact(path, min_live=0.9)
    info = manifest.versioned
    assert info.operation == "compact" and info.deletions is None and len(info.segments) == 1
    assert info.segments[0].file in manifest.files
    assert not any(name.startswith("_deletions/") for name in manifest.files)
    check(path, ids)
    check(path, list(range(40)), 2)  # older versions read as they did
    assert chunk_bytes(path) < before / 2
    fresh = acumen.open(write(tmp_path / "fresh", ids, "zstd", index_format)).manifest.chunks
    assert [(c.size_bytes, c.n_samples) for c in manifest.chunks] == [
        (c.size_bytes, c.n_samples) for c in fresh
    ]  # every chunk was rewritten: cut where a writer cuts them
    assert acumen.compact(path, min_live=0.9).versioned.version == info.version  # nothing left
    assert verify(path, progress=False).ok


def test_compact_merges_segments_without_deletions(tmp_path):
    path = write(tmp_path / "ds", range(5))
    for start in range(5, 20, 5):
        append(path, range(start, start + 5))
    chunks = [c.file for c in acumen.open(path).manifest.chunks]
    manifest = acumen.compact(path)
    assert len(manifest.versioned.segments) == 1 and manifest.versioned.operation == "compact"
    assert [c.file for c in manifest.chunks] == chunks  # nothing rewritten: all live
    check(path, list(range(20)))
    assert acumen.compact(tmp_path / "ds").versioned.version == manifest.versioned.version
    once = write(tmp_path / "once", range(3))
    assert acumen.compact(once).versioned is None and n_versions(once) == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=40), st.integers(1, 20))
def test_compaction_cuts_chunks_where_the_writer_does(sizes, limit):
    """The runs a compaction copies land in the chunks a payload-by-payload write makes
    (payloads larger than a chunk, and empty ones, included)."""
    from acumen.versions.compact import _cuts
    from acumen.write.chunk_writer import ChunkWriter

    with tempfile.TemporaryDirectory() as folder:
        writer = ChunkWriter(Path(folder), limit, durable=False)
        positions = []
        for size in sizes:
            writer.append(b"x" * size, size)
            positions.append(writer.position)
        writer.close()
    cuts = _cuts(np.array(sizes, dtype=np.int64), limit).tolist()
    assert cuts == [k for k in range(1, len(sizes)) if positions[k] != positions[k - 1]]


def test_compact_refuses_to_copy_a_damaged_chunk(tmp_path):
    path = write(tmp_path / "ds", range(12), "raw")
    acumen.delete(path, indices=list(range(1, 12, 2)))
    victim = path / "chunks" / "chunk_0.chnk"
    data = bytearray(victim.read_bytes())
    data[0] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(
        CorruptDatasetError, match=r"chunk_0\.chnk: checksum .* nothing was compacted"
    ):
        acumen.compact(path, min_live=1.0)
    assert n_versions(path) == 2 and not list(path.glob("chunks/*/*"))
    assert not list((path / "_writers").iterdir())


# --- vacuum --------------------------------------------------------------------------------
def files_under(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


def named_by(path: Path, version: int) -> set[str]:
    manifest = acumen.open(path, version=version).manifest
    info = manifest.versioned
    names = {c.file for c in manifest.chunks} | {s.file for s in info.segments}
    return names | set(manifest.files) | ({info.deletions.file} if info.deletions else set())


def test_vacuum_removes_exactly_what_no_kept_version_names(tmp_path, capsys):
    path = write(tmp_path / "ds", range(20), "zstd", "csv")
    acumen.delete(path, where="label != 0")
    append(path, range(20, 24))
    acumen.compact(path, min_live=0.9)
    acumen.delete(path, indices=[0])
    # A dead writer's claim and files, a running writer's, a stray temporary file.
    dead, live = "20260101T000000-00000000dead", "20260101T000000-0000000a11fe"
    (path / "_writers" / dead).mkdir(parents=True)
    (path / "_writers" / dead / WRITING_MARKER).write_text(
        json.dumps({"pid": 2**22 + 17, "host": this_host()})  # no such process
    )
    claim = claim_new_folder(path / "_writers" / live, "append")
    for token in (dead, live):
        (path / "chunks" / token).mkdir()
        (path / "chunks" / token / "chunk_0.chnk").write_bytes(b"x" * 10)
        (path / "_index" / f"{token}.csv").write_bytes(b"x")
    (path / ".manifest.json.tmp-4194321").write_bytes(b"{}")
    (path / "mine.txt").write_text("a file of the user's")
    everything = files_under(path)
    newest = n_versions(path)
    kept = named_by(path, newest) | named_by(path, newest - 1)
    assert cli.main(["vacuum", str(path), "--keep", "2", "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out and files_under(path) == everything
    report = vacuum(path, keep=2)
    protected = {"manifest.json", "index.csv", "mine.txt", f"_writers/{live}/{WRITING_MARKER}"}
    protected |= {f"chunks/{live}/chunk_0.chnk", f"_index/{live}.csv"}
    protected |= {name for name in everything if name.startswith("_versions/")}
    assert set(report.removed) == everything - kept - protected
    assert files_under(path) == (everything & kept) | protected
    assert f"_writers/{dead}/{WRITING_MARKER}" in report.removed
    assert report.bytes_freed > 0 and report.running_writers == [live]
    assert not (path / "_writers" / dead).exists() and not (path / "chunks" / dead).exists()
    claim.release()
    compacted = [i for i in range(20) if i % 4 == 1] + [20, 21, 22, 23]
    check(path, compacted[1:])
    check(path, compacted, newest - 1)
    assert verify(path, progress=False).ok
    with pytest.raises(CorruptDatasetError, match=r"index segment .*is missing"):
        acumen.open(path, version=1)
    assert len(history(path)) == newest
    (path / "_writers" / live).rmdir()  # as a finished writer leaves it: its files are orphans
    assert vacuum(path, keep=2).removed == [f"_index/{live}.csv", f"chunks/{live}/chunk_0.chnk"]


def test_commands_say_what_they_did(tmp_path, capsys):
    path = write(tmp_path / "ds", range(10))
    assert cli.main(["delete", str(path), "--indices", "3,5,7"]) == 0
    assert "deleted 3 of 10 samples (samples 3,5,7): version 2 (from version 1) has 7" in (
        capsys.readouterr().out
    )
    assert cli.main(["compact", str(path), "--min-live", "1"]) == 0
    out = capsys.readouterr().out
    assert "compacted version 2 into version 3: the index rewritten, 3 deleted rows" in out
    assert cli.main(["compact", str(path)]) == 0
    assert "nothing to compact" in capsys.readouterr().out
    assert cli.main(["vacuum", str(path)]) == 0
    assert "removed" in capsys.readouterr().out
    assert cli.main(["delete", str(path), "--indices", "9"]) == 1
    assert "samples [9] are out of range" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli.main(["delete", str(path), "--indices", "1", "--where", "label == 1"])
    assert usage.value.code == 2
    check(path, [0, 1, 2, 4, 6, 8, 9])


def test_vacuum_of_a_write_once_dataset_does_nothing(tmp_path, capsys):
    path = write(tmp_path / "ds", range(5))
    before = files_under(path)
    assert cli.main(["vacuum", str(path)]) == 0
    assert "nothing to vacuum" in capsys.readouterr().out
    assert files_under(path) == before


# --- conflicts -----------------------------------------------------------------------------
def landing_first(monkeypatch, other) -> None:
    """Run ``other()`` (a commit) just before this operation's first commit attempt."""
    real = versioning.commit_version
    pending = [other]

    def commit(root, manifest):
        if pending:
            pending.pop()()
        return real(root, manifest)

    monkeypatch.setattr(versioning, "commit_version", commit)


def test_delete_by_condition_is_evaluated_again_on_the_newer_version(tmp_path, monkeypatch):
    path = write(tmp_path / "ds", range(8))
    acumen.delete(path, indices=[7])
    landing_first(monkeypatch, lambda: append(path, range(8, 12)))
    manifest = acumen.delete(path, where="label == 0")  # 1, 5 and the appended 9
    assert manifest.versioned.version == 4 and manifest.versioned.parent == 3
    check(path, [0, 2, 3, 4, 6, 8, 10, 11])


def test_delete_by_numbers_replayed_over_appends_only(tmp_path, monkeypatch):
    path = write(tmp_path / "ds", range(8))
    acumen.delete(path, indices=[0])
    landing_first(monkeypatch, lambda: append(path, range(8, 10)))
    acumen.delete(path, indices=[0, 6])  # samples 1 and 7: the appended ones stay
    check(path, [2, 3, 4, 5, 6, 8, 9])


def test_delete_by_numbers_refused_after_another_delete(tmp_path, monkeypatch):
    path = write(tmp_path / "ds", range(8))
    acumen.delete(path, indices=[0])
    landing_first(monkeypatch, lambda: acumen.delete(path, indices=[3]))
    with pytest.raises(CommitConflictError, match=r"version 2, but version 3 \(delete\)"):
        acumen.delete(path, indices=[1, 2])
    check(path, [1, 2, 3, 5, 6, 7])
    assert not list((path / "_writers").iterdir())
    assert len(list((path / "_deletions").iterdir())) == 2  # the failed one's file is gone


def test_compact_keeps_appends_that_landed_first(tmp_path, monkeypatch):
    path = write(tmp_path / "ds", range(12))
    append(path, range(12, 15))
    acumen.delete(path, where="label != 1")
    landing_first(monkeypatch, lambda: append(path, range(15, 19)))
    manifest = acumen.compact(path, min_live=0.9)
    assert manifest.versioned.parent == 4 and len(manifest.versioned.segments) == 2
    check(path, [i for i in range(15) if i % 4 == 2] + list(range(15, 19)))
    monkeypatch.undo()
    acumen.delete(path, indices=[0])  # positions still consistent after it
    append(path, [30])
    check(path, [*[i for i in range(15) if i % 4 == 2][1:], *range(15, 19), 30])
    assert verify(path, progress=False).ok


def test_compact_refused_after_another_delete(tmp_path, monkeypatch):
    path = write(tmp_path / "ds", range(12))
    acumen.delete(path, indices=[0])
    landing_first(monkeypatch, lambda: acumen.delete(path, indices=[0]))
    with pytest.raises(CommitConflictError, match="compaction was made on version 2"):
        acumen.compact(path, min_live=1.0)
    check(path, list(range(2, 12)))
    assert not list(path.glob("chunks/*/*")) and not list(path.glob("_index/*"))


# --- a model: random appends, deletes and compactions --------------------------------------
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(0, 4)),
            st.tuples(st.just("delete"), st.lists(st.integers(0, 30), max_size=4)),
            st.tuples(st.just("compact"), st.sampled_from([0.0, 0.5, 1.0])),
        ),
        max_size=6,
    )
)
def test_random_changes_read_like_a_list(tmp_path_factory, steps):
    path = write(tmp_path_factory.mktemp("model") / "ds", range(4), "zstd", "parquet")
    model, following = list(range(4)), 100
    for kind, argument in steps:
        if kind == "append":
            append(path, range(following, following + argument))
            model += list(range(following, following + argument))
            following += argument
        elif kind == "delete":
            chosen = sorted({k for k in argument if k < len(model)})
            acumen.delete(path, indices=chosen)
            model = [i for k, i in enumerate(model) if k not in chosen]
        else:
            acumen.compact(path, min_live=argument)
        check(path, model)


# --- SIGKILL at every step -----------------------------------------------------------------
class Server:
    """``python -m tests.versions_crash_helpers serve``: one forked child per request."""

    def __init__(self, log: Path) -> None:
        self.log = open(log, "wb")  # noqa: SIM115  (closed in stop)
        env = {**os.environ, "PYTHONPATH": str(REPO), "ACUMEN_PLUGINS": "builtin"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.versions_crash_helpers", "serve"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.run_raw(None) == {"ready": True}

    def run_raw(self, request: dict | None) -> dict:
        if request is not None:
            self.process.stdin.write(json.dumps({"timeout": 60, **request}) + "\n")
            self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], 90)
        line = self.process.stdout.readline() if ready else ""
        assert line, f"the crash server did not answer: {Path(self.log.name).read_text()[-2000:]}"
        return json.loads(line)

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    started = Server(tmp_path_factory.mktemp("server") / "stderr.log")
    yield started
    started.stop()


def kill_points(trace: list[str]) -> list[tuple[str, str, int]]:
    """(probe, phase, nth) just before each probed step of an uninterrupted run, and after
    the last (after one step and before the next, nothing probed changes the files)."""
    counts: Counter = Counter()
    points = []
    for k, event in enumerate(trace):
        counts[event] += 1
        probe, phase = event.split("|")
        if phase == "enter" or k == len(trace) - 1:
            points.append((probe, phase, counts[event]))
    return points


CRASHES = {
    # job: (codec, index format, spec, samples before, samples after)
    "delete": ("raw", "csv", {"indices": [1, 4, 5]}),
    "compact": ("zstd", "parquet", {"min_live": 0.9}),
}


@pytest.mark.parametrize("job", list(CRASHES))
def test_sigkill_at_every_step(server, tmp_path, job):
    """Kill a delete (a compaction) before and after each probed step; the dataset opens at
    the previous or the new version, never a mix, verifies, and vacuum clears what the dead
    operation left."""
    codec, index_format, spec = CRASHES[job]
    template = write(tmp_path / "template", range(12), codec, index_format)
    acumen.delete(template, where="label == 0")  # versioned, with a deletion vector
    before = [i for i in range(12) if i % 4 != 1]
    after = [i for k, i in enumerate(before) if k not in (1, 4, 5)] if job == "delete" else before
    first = n_versions(template)
    traced = tmp_path / "traced"
    shutil.copytree(template, traced)
    trace_file = tmp_path / "trace.json"
    result = server.run_raw(
        {"job": job, "spec": {**spec, "path": str(traced)}, "trace": str(trace_file)}
    )
    assert result["exit"] == 0, Path(server.log.name).read_text()[-2000:]
    check(traced, after)
    seen: Counter = Counter()
    points = kill_points(json.loads(trace_file.read_text()))
    for k, point in enumerate(points):
        path = tmp_path / f"k{k}"
        shutil.copytree(template, path)
        result = server.run_raw(
            {"job": job, "spec": {**spec, "path": str(path)}, "kill": list(point)}
        )
        assert result["killed"], (point, result)
        try:
            version = n_versions(path)
            assert version in (first, first + 1)
            check(path, before if version == first else after)
            vacuum(path)  # a claim folder killed before its marker stays a while: empty
            assert not list(path.glob("_writers/*/*"))
            left = {n for n in files_under(path) if n.startswith(("chunks/", "_index/", "_del"))}
            assert left <= named_by(path, n_versions(path)), "vacuum left a dead writer's file"
            check(path, before if version == first else after)
            assert verify(path, progress=False).ok
        except AssertionError as error:
            raise AssertionError(f"killed at {point}: {error}") from error
        seen[version - first] += 1
        shutil.rmtree(path)
    assert seen[0] and seen[1] and len(points) > 12, seen
