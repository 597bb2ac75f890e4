"""Where things live inside a dataset folder: the names of its files.

::

    DIR/manifest.json          written last, atomically: the commit point
    DIR/index.csv              (or index.parquet) the offset index
    DIR/chunks/chunk_N.chnk    concatenated sample payloads
    DIR/.acumen-writing        present only while a writer works on DIR
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from acumen.errors import CorruptDatasetError, quote, shorten
from acumen.files.claim import WRITING_MARKER

MANIFEST_FILE = "manifest.json"
ORIGINAL_INDEX_FILE = "index.csv"
CHUNK_FILE_PATTERN = "chunks/chunk_{n}.chnk"


def chunk_file_name(number: int, folder: str = "chunks") -> str:
    """The original's chunk name, relative to the dataset root; a later commit of a
    versioned dataset writes its chunks in a folder of its own (``chunks/<token>``)."""
    if folder == "chunks":
        return CHUNK_FILE_PATTERN.format(n=number)
    return f"{folder}/chunk_{number}.chnk"


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


__all__ = [
    "CHUNK_FILE_PATTERN",
    "MANIFEST_FILE",
    "MAX_NAME_LENGTH",
    "ORIGINAL_INDEX_FILE",
    "WRITING_MARKER",
    "chunk_file_name",
    "resolve_inside",
]
