"""The writer's two paths (arrays ready as they are, and arrays to check and cast) write
the same bytes, refuse the same samples, and seal chunks durably on a background thread."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.errors import IncompleteDatasetError, SampleError
from tests.conftest import CODECS


def dataset_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def as_slow_path_input(array: np.ndarray) -> np.ndarray:
    """The same values in a form the hot path does not take: big-endian, strided."""
    if array.ndim == 0:
        return array.astype(array.dtype.newbyteorder(">"))
    doubled = np.repeat(array, 2, axis=-1)[..., ::2]  # same values, not C-contiguous
    assert not doubled.flags.c_contiguous or doubled.size <= 1
    return doubled.astype(array.dtype.newbyteorder(">"))


@pytest.mark.parametrize("codec", CODECS)
def test_ready_arrays_and_arrays_to_cast_write_identical_datasets(tmp_path: Path, codec: str):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((4, int(rng.integers(1, 6)))).astype("<f4") for _ in range(300)]
    arrays.append(np.float32(3.5).reshape(()))  # a 0-d sample
    for name, convert in (("fast", lambda a: a), ("slow", as_slow_path_input)):
        with acumen.Writer(tmp_path / name, codec=codec, chunk_size_bytes=1000) as writer:
            for i, array in enumerate(arrays):
                assert writer.add(convert(array), i=i, even=i % 2 == 0, name=f"s{i}") == i
    assert dataset_files(tmp_path / "fast") == dataset_files(tmp_path / "slow")
    ds = acumen.open(tmp_path / "fast")
    for i, array in enumerate(arrays):
        got, metadata = ds[i]
        np.testing.assert_array_equal(got, array)
        assert metadata == {"i": i, "even": i % 2 == 0, "name": f"s{i}"}


def test_a_refused_sample_on_the_hot_path_leaves_no_trace(tmp_path: Path):
    with acumen.Writer(tmp_path / "ds", chunk_size_bytes=64) as writer:
        writer.add(np.zeros(4, "<i4"), label=0)
        with pytest.raises(SampleError, match="sample 1: metadata 'label'"):
            writer.add(np.ones(4, "<i4"), label=[1])
        with pytest.raises(SampleError, match="sample 1: metadata keys differ"):
            writer.add(np.ones(4, "<i4"), other=1)
        with pytest.raises(
            SampleError, match=r"sample 1: metadata 'label' = \d+ does not fit in int64"
        ):
            writer.add(np.ones(4, "<i4"), label=2**70 + 99999999999)
        assert writer.bytes_written == 16
        assert writer.add(np.full(4, 2, "<i4"), label=2) == 1
    ds = acumen.open(tmp_path / "ds")
    assert len(ds) == 2
    np.testing.assert_array_equal(ds.read(1), [2, 2, 2, 2])
    assert ds.metadata(1) == {"label": 2}


def test_a_refused_first_sample_does_not_fix_the_metadata_columns(tmp_path: Path):
    with acumen.Writer(tmp_path / "ds") as writer:
        with pytest.raises(SampleError, match="not valid Unicode"):
            writer.add(np.zeros(2), name="\ud800")
        with pytest.raises(SampleError, match="cannot be stored"):
            writer.add(np.zeros(2), label=1, other=None)
        writer.add(np.zeros(2), label=1)
        writer.add(np.zeros(2), label=3)
    assert acumen.open(tmp_path / "ds").metadata(0) == {"label": 1}


def test_arrays_of_another_dtype_still_cast_safely_after_the_first(tmp_path: Path):
    with acumen.Writer(tmp_path / "ds") as writer:
        writer.add(np.zeros(3, "<f8"))
        writer.add(np.arange(3, dtype="<i2"))  # casts safely to float64
        with pytest.raises(SampleError, match="does not cast safely"):
            writer.add(np.arange(3, dtype="<c16"))
        writer.add(np.ma.masked_array([1.0, 2.0, 3.0]))  # an ndarray subclass
    ds = acumen.open(tmp_path / "ds")
    assert [ds.read(i).tolist() for i in range(3)] == [[0, 0, 0], [0, 1, 2], [1, 2, 3]]


def test_a_closed_or_aborted_writer_refuses_ready_arrays(tmp_path: Path):
    writer = acumen.Writer(tmp_path / "a")
    writer.add(np.zeros(2))
    writer.close()
    with pytest.raises(ValueError, match="is closed"):
        writer.add(np.zeros(2))
    writer = acumen.Writer(tmp_path / "b")
    writer.add(np.zeros(2))
    writer.abort()
    with pytest.raises(ValueError, match="is closed"):
        writer.add(np.zeros(2))


def test_chunks_are_fsynced_before_they_get_their_names(tmp_path: Path, monkeypatch):
    """Each full chunk is sealed on another thread: fsync, then the rename to its name."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(
            ("fsync", os.readlink(f"/proc/self/fd/{fd}"), threading.current_thread().name)
        )
        real_fsync(fd)

    def replace(source, target) -> None:
        events.append(("replace", str(source), threading.current_thread().name))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with acumen.Writer(tmp_path / "ds", chunk_size_bytes=100) as writer:
        for i in range(10):
            writer.add(np.full(10, i, "<i8"))  # 80 bytes: one sample per chunk
    chunk_events = [e for e in events if ".chunk_" in e[1]]
    for k in range(10):
        temporary = str(tmp_path / "ds" / "chunks" / f".chunk_{k}.chnk.tmp")
        fsync_at = chunk_events.index(("fsync", temporary, chunk_events[2 * k][2]))
        assert chunk_events[fsync_at + 1][:2] == ("replace", temporary)
    assert any(e[2] == "acumen-seal" for e in chunk_events)  # the full chunks
    ds = acumen.open(tmp_path / "ds", verify="chunk")
    assert [int(ds.read(i)[0]) for i in range(10)] == list(range(10))


def test_a_failed_fsync_fails_the_write_and_keeps_it_incomplete(tmp_path: Path, monkeypatch):
    calls = []

    def failing_fsync(fd: int) -> None:
        calls.append(fd)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    writer = acumen.Writer(tmp_path / "ds", chunk_size_bytes=100)
    with pytest.raises(OSError, match="Input/output error"):
        for i in range(5):
            writer.add(np.full(10, i, "<i8"))
        writer.close()
    writer.abort()
    assert calls
    with pytest.raises(IncompleteDatasetError):
        acumen.open(tmp_path / "ds")
    assert (tmp_path / "ds" / "chunks" / ".chunk_0.chnk.tmp").exists()  # nothing deleted


def test_a_failed_fsync_of_the_last_chunk_fails_close(tmp_path: Path, monkeypatch):
    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    writer = acumen.Writer(tmp_path / "ds")
    writer.add(np.zeros(10))
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    writer.abort()  # nothing left to do: already stopped
    with pytest.raises(IncompleteDatasetError):
        acumen.open(tmp_path / "ds")


def test_without_durability_chunk_files_are_not_fsynced(tmp_path: Path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        assert not name.startswith(".chunk_"), "a chunk was fsynced"
        real_fsync(fd)  # the index and the manifest still are (docs/reliability.md)

    monkeypatch.setattr(os, "fsync", fsync)
    with acumen.Writer(tmp_path / "ds", chunk_size_bytes=100, durable=False) as writer:
        for i in range(5):
            writer.add(np.full(10, i, "<i8"))
    assert len(acumen.open(tmp_path / "ds")) == 5
