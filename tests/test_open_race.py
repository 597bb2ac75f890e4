"""A reader never takes a folder that a writer is filling for an original dataset.

The writer's marker is present from before its index appears until after its manifest
does; a reader that looked for the marker a moment too early must still not read the
writer's index as an original dataset's (float16, no manifest).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.errors import AcumenError, DatasetNotFoundError, IncompleteDatasetError
from acumen.format.layout import MANIFEST_FILE, WRITING_MARKER
from acumen.read import opening

SAMPLES = [np.arange(6, dtype=np.int16) * (i + 1) for i in range(5)]


def write_int16(path: Path) -> None:
    with acumen.Writer(path) as writer:
        for array in SAMPLES:
            writer.add(array)


def writer_between_index_and_manifest(tmp_path: Path) -> tuple[Path, Path]:
    """A folder as a writer leaves it between its index rename and its manifest rename,
    without the marker yet (the reader looked before it), and the manifest set aside."""
    complete = tmp_path / "complete"
    write_int16(complete)
    folder = tmp_path / "being-written"
    shutil.copytree(complete, folder)
    manifest = tmp_path / "manifest.json"
    (folder / MANIFEST_FILE).rename(manifest)
    return folder, manifest


def after_the_marker_check(monkeypatch: pytest.MonkeyPatch, then) -> None:
    """Run ``then`` just after ``open`` has checked the folder for a writer's marker."""
    checked = opening._dataset_root

    def checked_then(path: Path) -> Path:
        root = checked(path)
        then()
        return root

    monkeypatch.setattr(opening, "_dataset_root", checked_then)


def test_a_writer_claiming_after_the_marker_check_is_not_read_as_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = writer_between_index_and_manifest(tmp_path)
    after_the_marker_check(monkeypatch, lambda: (folder / WRITING_MARKER).write_text("{}"))
    with pytest.raises(IncompleteDatasetError, match="incomplete dataset"):
        acumen.open(folder)


def test_a_writer_committing_during_the_open_is_read_from_its_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open saw no manifest and read the index as an original's; the writer committed
    meanwhile: the dataset opens from its manifest, as what the writer wrote."""
    folder, manifest = writer_between_index_and_manifest(tmp_path)
    read_index = opening.read_index_file
    reads = []

    def commit_after_the_first_read(*args):
        reads.append(args)
        table = read_index(*args)
        if len(reads) == 1:
            manifest.rename(folder / MANIFEST_FILE)
        return table

    monkeypatch.setattr(opening, "read_index_file", commit_after_the_first_read)
    ds = acumen.open(folder)
    assert len(reads) == 2
    assert ds.dtype == np.int16
    for i, array in enumerate(SAMPLES):
        np.testing.assert_array_equal(ds.read(i), array)


def test_opens_racing_real_writers_never_misread(tmp_path: Path) -> None:
    """Real writers fill fresh folders while a reader opens each as fast as it can: every
    open is a correct int16 dataset or an acumen error, never float16 data."""
    folders = [tmp_path / f"ds{k}" for k in range(40)]
    for folder in folders:
        folder.mkdir()  # empty folders: a writer may claim them, a reader sees no dataset
    done = threading.Event()

    def write_all() -> None:
        for folder in folders:
            write_int16(folder)
        done.set()

    writer = threading.Thread(target=write_all)
    writer.start()
    opened = 0
    while not done.is_set():
        for folder in folders:
            try:
                ds = acumen.open(folder)
            except (DatasetNotFoundError, IncompleteDatasetError):
                continue
            except AcumenError:
                continue
            assert ds.dtype == np.int16, f"{folder} opened as {ds.dtype}"
            np.testing.assert_array_equal(ds.read(4), SAMPLES[4])
            opened += 1
    writer.join()
    assert opened > 0
