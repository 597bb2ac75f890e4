"""A full disk, for real: a small tmpfs is mounted and filled (root only; skipped elsewhere).

Every writer kind (``Writer``, ``split_into_chunks``, ``recode``) that runs out of space
raises :class:`acumen.errors.DatasetWriteError`, an ``OSError`` with ``errno.ENOSPC`` whose
message names the dataset and the file being written; the folder is left incomplete (never
opened as a dataset) and can be removed. A conversion that runs out of space, wherever it
stops (writing parts, storing its zstd dictionary), resumes once space is freed, to the
files of an uninterrupted run, byte for byte.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acumen
from acumen.convert import convert
from acumen.errors import DatasetWriteError, IncompleteDatasetError
from acumen.recode import recode

PAGE = 4096  # tmpfs allocates whole pages


class SmallDisk:
    """A 2 MiB tmpfs, with a filler file to leave exactly as much room as a test wants."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def free(self) -> int:
        stat = os.statvfs(self.root)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave: int) -> None:
        """Leave ``leave`` bytes (whole pages) free."""
        with open(self.filler, "ab") as file:
            file.write(b"\0" * (self.free() - leave))
        assert self.free() == leave

    def empty(self) -> None:
        self.filler.unlink()


@pytest.fixture
def disk(tmp_path: Path):
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def sample(i: int) -> np.ndarray:
    return np.full((32, 32), i, dtype=np.float32)  # 4096 bytes: one page


def items(count: int) -> list[tuple[np.ndarray, dict[str, Any]]]:
    return [(sample(i), {"i": i}) for i in range(count)]


def write_with_writer(path: Path, count: int, chunk: int) -> None:
    with acumen.Writer(path, chunk_size_bytes=chunk) as writer:
        for array, metadata in items(count):
            writer.add(array, **metadata)


def write_with_split(path: Path, count: int, chunk: int) -> None:
    acumen.split_into_chunks(items(count), path, chunk_size_bytes=chunk, dtype=None)


def recoder(source: Path):
    def write_with_recode(path: Path, count: int, chunk: int) -> None:
        recode(source, path, chunk_size_bytes=chunk, progress=False)

    return write_with_recode


def assert_left_incomplete_and_removable(error: DatasetWriteError, path: Path, disk: SmallDisk):
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    message = str(error)
    assert message.startswith(f"{path}: cannot write {path}/"), message
    assert "No space left on device" in message and "left incomplete" in message
    assert error.filename is not None and error.filename.startswith(str(path))
    with pytest.raises(IncompleteDatasetError):
        acumen.open(path)
    shutil.rmtree(path)
    disk.empty()
    write_with_writer(path, 3, 3 * PAGE)  # the space is back: the same path writes
    with acumen.open(path) as ds:
        assert len(ds) == 3


@pytest.mark.parametrize("kind", ["Writer", "split_into_chunks", "recode"])
def test_a_full_disk_names_the_dataset_and_the_chunk_file(disk, tmp_path, kind):
    """Bug: ``OSError: [Errno 28] No space left on device`` with no file name."""
    write = {"Writer": write_with_writer, "split_into_chunks": write_with_split}.get(kind)
    if write is None:
        source = tmp_path / "source"
        write_with_split(source, 100, 8 * PAGE)
        write = recoder(source)
    path = disk.root / "ds"
    disk.fill(16 * PAGE)
    with pytest.raises(DatasetWriteError) as raised:
        write(path, 100, 8 * PAGE)  # 100 pages of samples
    assert "/chunks/.chunk_" in str(raised.value)
    assert_left_incomplete_and_removable(raised.value, path, disk)


def test_a_full_disk_while_the_index_is_written(disk):
    """Room for the marker and the chunks, none for the index: the error names the index
    file, and no partial index is left behind."""
    path = disk.root / "ds"
    disk.fill(9 * PAGE)  # the marker, then 8 samples of one page in two chunk files
    with pytest.raises(DatasetWriteError) as raised:
        write_with_writer(path, 8, 4 * PAGE)
    assert f"{path}/.index.csv.tmp-" in str(raised.value)
    assert sorted(p.name for p in (path / "chunks").iterdir()) == [
        "chunk_0.chnk",
        "chunk_1.chnk",
    ]
    assert not list(path.glob(".index*"))
    assert_left_incomplete_and_removable(raised.value, path, disk)


# --- conversions resume --------------------------------------------------------------------
def npy_source(folder: Path, count: int = 60) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(count):
        np.save(folder / f"s{i:03d}.npy", (rng.normal(size=(32, 32)) * 10).astype(np.float32))
    return folder


def conversion(source: Path, out: Path, codec: Any = "raw") -> dict[str, Any]:
    return {
        "source": {"glob": str(source / "*.npy")},
        "reader": {"name": "npy"},
        "output": {"path": str(out), "codec": codec, "chunk_size": 16 * PAGE},
        "run": {"progress": False, "part_size": 10},
    }


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def run_out_of_space_then_resume(
    disk: SmallDisk, tmp_path: Path, codec: Any, leave: int, stopped_at: str
) -> None:
    source = npy_source(tmp_path / "npys")
    convert(conversion(source, tmp_path / "clean", codec))
    out = disk.root / "out"
    disk.fill(leave)
    with pytest.raises(DatasetWriteError) as raised:
        convert(conversion(source, out, codec))
    message = str(raised.value)
    assert message.startswith(f"{out}: the conversion stopped: cannot write {out}/"), message
    assert stopped_at in message and "run the same conversion again" in message
    assert raised.value.errno == errno.ENOSPC
    # What the failed attempt wrote is given back (kept, every attempt would fill the disk
    # again) and no file is left cut short under its final name.
    assert not list(out.rglob("*.attempt-*")) and not list(out.rglob(".*.tmp-*"))
    with pytest.raises(IncompleteDatasetError):
        acumen.open(out)
    disk.empty()
    summary = convert(conversion(source, out, codec))
    assert summary.samples == 60
    got, expected = all_files(out), all_files(tmp_path / "clean")
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == []


def test_a_conversion_out_of_space_in_its_parts_resumes_identically(disk, tmp_path):
    """Bug: each run left its failed part attempt behind, filling the freed space again."""
    run_out_of_space_then_resume(disk, tmp_path, "raw", 40 * PAGE, "/chunks/.chunk_")


@pytest.mark.parametrize("leave", [2 * PAGE, 3 * PAGE])
def test_a_conversion_out_of_space_storing_its_dictionary_resumes_identically(
    disk, tmp_path, leave
):
    """Bug: the dictionary file cut short by the full disk stayed, and the resumed run
    compressed with that smaller dictionary: other bytes than an uninterrupted run."""
    codec = {"name": "zstd", "configuration": {"dictionary_size": 4 * PAGE, "train_samples": 40}}
    run_out_of_space_then_resume(disk, tmp_path, codec, leave, "codecs/data.zstd.dict")


def test_a_full_disk_while_claiming_the_folder(disk):
    """No room even for the marker: an error naming it, and no marker naming no one left
    behind (it would refuse the folder for ever); the same path writes once there is room."""
    path = disk.root / "ds"
    path.mkdir()
    disk.fill(0)
    with pytest.raises(DatasetWriteError, match=f"cannot write {path}/.acumen-writing: No space"):
        write_with_writer(path, 3, 3 * PAGE)
    assert list(path.iterdir()) == []
    disk.empty()
    write_with_writer(path, 3, 3 * PAGE)
    with acumen.open(path) as ds:
        assert len(ds) == 3
