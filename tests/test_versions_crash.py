"""An append killed by SIGKILL at every step: the dataset opens at the version before it or
at the new one, never a mix; every sample it returns is right; it verifies; the next
append works; a csv dataset's ``index.csv`` (what the original reader sees) holds exactly
one of the two versions' samples."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import acumenindexer
import numpy as np
import pytest

import acumen
from acumen.verify import verify
from tests.crash_helpers import DTYPE, sample, sample_shape
from tests.test_crash_safety import Server, kill_points, trace_of

BASE, ADDED, CHUNK = 4, 3, 64
CONFIGS = [("raw", "csv"), ("zstd", "parquet"), ("gzip", "arrow")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    started = Server(tmp_path_factory.mktemp("server") / "stderr.log")
    yield started
    started.stop()


def base_dataset(path: Path, codec: str, index_format: str) -> Path:
    with acumen.Writer(
        path, codec=codec, index_format=index_format, chunk_size_bytes=CHUNK, durable=False
    ) as writer:
        for i in range(BASE):
            writer.add(sample(i), i=i)
    return path


def append_spec(path: Path) -> dict:
    return {"path": str(path), "start": BASE, "n": ADDED}


def check_version(path: Path, codec: str) -> str:
    """The invariant after a killed append; which version it left ("before" or "after")."""
    with acumen.open(path) as dataset:
        n = len(dataset)
        assert n in (BASE, BASE + ADDED), n
        for i in range(n):
            array, metadata = dataset[i]
            assert array.dtype == DTYPE and array.shape == sample_shape(i), i
            assert array.tobytes() == sample(i).tobytes(), f"sample {i} returned wrong bytes"
            assert metadata == {"i": i}
    report = verify(path, progress=False)
    assert report.ok, str(report)
    if (path / "index.csv").exists():  # the original reader sees one version, whole
        index = acumenindexer.load_index(str(path / "index.csv"))
        assert len(index) in (BASE, BASE + ADDED)
        read = acumenindexer.read_from_index(
            index, dtype=DTYPE, use_gzip=codec == "gzip", chunk_paths=str(path)
        )
        for i in range(len(index)):
            got, _ = read(i)
            assert np.array_equal(np.asarray(got).reshape(sample_shape(i)), sample(i))
    return "before" if n == BASE else "after"


@pytest.mark.parametrize(("codec", "index_format"), CONFIGS, ids=[f"{c}-{i}" for c, i in CONFIGS])
def test_sigkill_at_every_step_of_an_append(server, tmp_path, codec, index_format):
    traced = base_dataset(tmp_path / "t", codec, index_format)
    trace = trace_of(server, tmp_path, "append", append_spec(traced), "append")
    assert check_version(traced, codec) == "after"
    points = kill_points(trace)
    if codec != "raw":  # the steps before the commit are the same: the format's steps only
        points = points[trace.index("acumen.write.append.Append.finish|enter") :]
    seen: Counter = Counter()
    for k, point in enumerate(points):
        path = base_dataset(tmp_path / f"k{k}", codec, index_format)
        result = server.run({"job": "append", "spec": append_spec(path), "kill": list(point)})
        assert result["killed"], f"{point}: not killed ({result}): {server.stderr()}"
        try:
            state = check_version(path, codec)
            seen[state] += 1
            if state == "before" and k % 4 == 0:  # what a dead append left blocks nothing
                with acumen.Writer(path, mode="append") as writer:
                    for i in range(BASE, BASE + ADDED):
                        writer.add(sample(i), i=i)
                assert check_version(path, codec) == "after"
        except AssertionError as error:
            raise AssertionError(f"killed at {point}: {error}") from error
        shutil.rmtree(path, ignore_errors=True)
    assert set(seen) == {"before", "after"}, seen
    assert sum(seen.values()) == len(points) > 15
