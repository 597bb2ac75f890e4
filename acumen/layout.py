"""Where things live inside a dataset folder, and how files are committed safely.

::

    DIR/manifest.json          written last, atomically: the commit point
    DIR/index.csv              (or index.parquet) the offset index
    DIR/chunks/chunk_N.chnk    concatenated sample payloads
    DIR/.acumen-writing        present only while a writer works on DIR
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from acumen.errors import CorruptDatasetError, DatasetWriteError

MANIFEST_FILE = "manifest.json"
WRITING_MARKER = ".acumen-writing"
ORIGINAL_INDEX_FILE = "index.csv"
CHUNK_FILE_PATTERN = "chunks/chunk_{n}.chnk"


def chunk_file_name(number: int) -> str:
    """The original's chunk name, relative to the dataset root."""
    return CHUNK_FILE_PATTERN.format(n=number)


def resolve_inside(root: Path, relative: str, what: str) -> Path:
    """``root / relative``, refusing names that would leave the dataset folder."""
    if not isinstance(relative, str):
        raise CorruptDatasetError(f"{root}: {what} {relative!r} is not a file name")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if not relative or pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0]:
        raise CorruptDatasetError(f"{root}: {what} {relative!r} is not a path inside the dataset")
    path = root.joinpath(*pure.parts)
    # Any part of the path may be a link (chunks/ itself): where it really leads counts.
    if not path.resolve().is_relative_to(root.resolve()):
        raise CorruptDatasetError(f"{root}: {what} {relative!r} links outside the dataset")
    return path


def fsync_directory(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_failed(dataset: Path, path: Path, error: OSError) -> DatasetWriteError:
    """The acumen error for ``error`` (a full disk...) met writing ``path`` of ``dataset``."""
    if isinstance(error, DatasetWriteError):
        return error
    reason = error.strerror or str(error)
    code = f" [{errno.errorcode.get(error.errno, error.errno)}]" if error.errno else ""
    return DatasetWriteError(
        error.errno,
        f"{dataset}: cannot write {path}: {reason}{code}; the folder is left incomplete (it "
        "never opens as a dataset): free space (or fix the cause), then remove it and write "
        "again",
        str(path),
    )


@contextlib.contextmanager
def writing(dataset: Path, path: Path) -> Iterator[None]:
    """Turn an OSError met while writing ``path`` into one that names it and the dataset."""
    try:
        yield
    except OSError as error:
        raise write_failed(dataset, path, error) from error


def write_atomically(path: Path, data: bytes, dataset: Path | None = None) -> None:
    """Write to a temporary name, fsync, rename into place: readers see all or nothing.
    A failed write (a full disk) leaves no temporary file behind."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise write_failed(dataset or path.parent, path, error) from error
    fsync_directory(path.parent)


def write_resource(path: Path, data: bytes, dataset: Path) -> None:
    """A file a plugin keeps in the dataset (a codec's dictionary), written durably and
    atomically: a write cut short (a full disk) never leaves a shorter file under its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data, dataset)


def store_resources(root: Path, codecs: list) -> None:
    """Write the files the codecs keep (trained dictionaries) into ``root``, once each; a
    file there with other bytes (an earlier run's) is replaced: the codecs' are the ones
    their frames need."""
    for codec in codecs:
        for relative, data in codec.resources().items():
            path = resolve_inside(root, relative, "codec resource")
            if not path.is_file() or path.read_bytes() != data:
                with writing(root, path):
                    write_resource(path, data, root)


def replace_durably(temporary: Path, final: Path) -> None:
    """fsync an already written file, then rename it into place."""
    with open(temporary, "rb+") as file:
        os.fsync(file.fileno())
    os.replace(temporary, final)


def describe_writer(marker: Path) -> str:
    """ " (writer pid N on HOST)" from a writing marker, or "" if it cannot be read."""
    try:
        who = json.loads(marker.read_text(encoding="utf-8"))
        return f" (writer pid {who.get('pid')} on {who.get('host')})"
    except (OSError, ValueError, AttributeError):
        return ""
