"""How acumen reaches the files of a dataset on a local file system.

Every open, read, write and rename of a dataset's files goes through here (or through the
claim beside it), so a check (a regular file, not a FIFO; a full disk named by file) is
written once. The remote-storage issue adds object stores next to this module.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from acumen.errors import CorruptDatasetError, DatasetWriteError

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


def replace_durably(temporary: Path, final: Path) -> None:
    """fsync an already written file, then rename it into place."""
    with open(temporary, "rb+") as file:
        os.fsync(file.fileno())
    os.replace(temporary, final)
