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
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from acumen.errors import CorruptDatasetError, DatasetWriteError, quote, shorten

MANIFEST_FILE = "manifest.json"
WRITING_MARKER = ".acumen-writing"
ORIGINAL_INDEX_FILE = "index.csv"
CHUNK_FILE_PATTERN = "chunks/chunk_{n}.chnk"


def chunk_file_name(number: int) -> str:
    """The original's chunk name, relative to the dataset root."""
    return CHUNK_FILE_PATTERN.format(n=number)


#: The longest name a file inside a dataset may have (Linux's PATH_MAX; longer names
#: cannot be opened on any common system).
MAX_NAME_LENGTH = 4096


def resolve_inside(root: Path, relative: str, what: str) -> Path:
    """``root / relative``, refusing names that would leave the dataset folder, and names
    no file can have (a NUL byte, longer than :data:`MAX_NAME_LENGTH`)."""
    if not isinstance(relative, str) or "\0" in relative or len(relative) > MAX_NAME_LENGTH:
        raise CorruptDatasetError(f"{root}: {what} {quote(relative)} is not a file name")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if not relative or pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0]:
        raise CorruptDatasetError(
            f"{root}: {what} {quote(relative)} is not a path inside the dataset"
        )
    path = root.joinpath(*pure.parts)
    # Any part of the path may be a link (chunks/ itself): where it really leads counts.
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError) as error:  # a name too long, a link loop (3.11)
        raise CorruptDatasetError(
            f"{root}: {what} {quote(relative)} cannot be resolved: {shorten(str(error))}"
        ) from None
    if not inside:
        raise CorruptDatasetError(f"{root}: {what} {quote(relative)} links outside the dataset")
    return path


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# Opening a FIFO for reading blocks until a writer comes, a tty may become the controlling
# terminal: O_NONBLOCK and O_NOCTTY make the open itself harmless, the fstat then decides.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def check_regular(path: str | os.PathLike[str], mode: int, what: str) -> None:
    """Refuse a ``mode`` (from ``stat``) that is not a regular file's: reading a FIFO or a
    character device hangs or never ends, a directory cannot be read as bytes."""
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise CorruptDatasetError(f"{path}: the {what} is {kind}, not a regular file")


def stat_regular(path: str | os.PathLike[str], what: str) -> os.stat_result:
    """``os.stat`` (links followed) of a file acumen will read; raise
    :class:`CorruptDatasetError` unless it is a regular file (``OSError`` if it cannot be
    stat-ed at all, ``FileNotFoundError`` when missing). For files a plugin opens itself."""
    info = os.stat(path)
    check_regular(path, info.st_mode, what)
    return info


def open_regular(path: str | os.PathLike[str], what: str) -> int:
    """A read-only descriptor on ``path``, which must be a regular file (see
    :func:`check_regular`). Opened without blocking and checked with ``fstat`` on the open
    descriptor, so no FIFO can stall the open and nothing can swap the file in between."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        check_regular(path, os.fstat(fd).st_mode, what)
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_for_reading(path: str | os.PathLike[str], what: str) -> BinaryIO:
    """:func:`open_regular` as a binary file object (``with open_for_reading(...) as f``)."""
    return os.fdopen(open_regular(path, what), "rb")


def read_regular_bytes(path: str | os.PathLike[str], what: str) -> bytes:
    """The whole of a regular file (a manifest, a dictionary): see :func:`open_regular`."""
    with open_for_reading(path, what) as file:
        return file.read()


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
