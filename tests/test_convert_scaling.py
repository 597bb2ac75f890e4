"""Issue 15: what makes conversion fast must not change what it produces.

The npy reader's remembered headers give exactly what ``np.load`` gives (or hand the file
to ``np.load``, errors included); the parts are sized so that every worker gets some;
the dataset is the same whatever ``n_jobs``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from acumen.readers import npy
from acumen.readers.npy import NpyReader, read_npy_file

ARRAYS = {
    "float16 (32, 16)": np.arange(512, dtype=np.float16).reshape(32, 16),
    "0-d": np.array(3.5),
    "empty": np.zeros((0, 4), np.int32),
    "big-endian": np.arange(6, dtype=">i4").reshape(2, 3),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
    "structured": np.array([(1, 2.5), (3, 4.5)], dtype=[("a", "<i2"), ("b", "<f8")]),
    "bool": np.array([True, False, True]),
    "larger than the first read": np.arange(5000, dtype=np.float64),
    "bytes": np.array([b"ab", b"cde"]),
}


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and a.flags.c_contiguous == b.flags.c_contiguous
        and a.flags.f_contiguous == b.flags.f_contiguous
        and a.tobytes() == b.tobytes()
    )


@pytest.mark.parametrize("name", list(ARRAYS))
def test_npy_reader_gives_what_np_load_gives(tmp_path: Path, name: str) -> None:
    path = tmp_path / "a.npy"
    np.save(path, ARRAYS[name])
    for _ in range(2):  # the header parsed, then remembered
        array, metadata = NpyReader().read(str(path))
        assert same(array, np.load(path)) and metadata == {}
        assert array.flags.writeable
    assert same(NpyReader().read(path)[0], np.load(path))  # a Path too


def test_npy_reader_version_2_header_and_file_objects(tmp_path: Path) -> None:
    path = tmp_path / "v2.npy"
    array = np.arange(10, dtype=np.uint8)
    with open(path, "wb") as file:
        np.lib.format.write_array(file, array, version=(2, 0))
    assert same(NpyReader().read(str(path))[0], array)
    buffer = io.BytesIO(path.read_bytes())  # not a path: np.load reads it
    assert same(NpyReader().read(buffer)[0], array)


def test_npy_reader_refuses_what_np_load_refuses(tmp_path: Path) -> None:
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        NpyReader().read(str(pickled))
    short = tmp_path / "short.npy"
    np.save(short, np.arange(100, dtype=np.int64))
    short.write_bytes(short.read_bytes()[:-8])  # one value missing
    assert read_npy_file(short) is None
    with pytest.raises(ValueError):
        NpyReader().read(str(short))
    text = tmp_path / "text.npy"
    text.write_bytes(b"not an array")
    with pytest.raises((ValueError, OSError)):
        NpyReader().read(str(text))


def test_npy_reader_remembers_a_bounded_number_of_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(npy, "_known", {})
    monkeypatch.setattr(npy, "_KNOWN_LIMIT", 3)
    for n in range(6):
        path = tmp_path / f"{n}.npy"
        np.save(path, np.zeros(n + 1))
        assert same(NpyReader().read(str(path))[0], np.zeros(n + 1))
    assert len(npy._known) == 3


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_progress_counts_every_sample_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n_jobs: int
) -> None:
    """Parts tell progress in batches of samples: the totals still count each sample
    written exactly once, and its payload bytes, skipped items left out."""
    from acumen.convert import convert, run
    from tests.test_convert import base_config, save_npys, spoil, write_json

    bars: list[run.Progress] = []

    class Recorded(run.Progress):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            bars.append(self)

    monkeypatch.setattr(run, "Progress", Recorded)
    paths = save_npys(tmp_path / "data", 300, shape=(4,))
    for k in (5, 130, 131):
        spoil(paths[k])
    config = base_config(run={"n_jobs": n_jobs, "part_size": 70, "on_error": "skip"})
    summary = convert(write_json(tmp_path / "c.json", config))
    assert summary.samples == 297 and len(summary.skipped) == 3
    assert [(b.samples, b.nbytes) for b in bars] == [(297, summary.payload_bytes)]
