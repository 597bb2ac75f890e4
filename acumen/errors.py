"""Errors acumen raises.

Every error derives from :class:`AcumenError`, and each also derives from the built-in
exception a caller would naturally catch (``FileNotFoundError``, ``KeyError``,
``ValueError``...), so ``except ValueError`` keeps working around acumen calls.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable


class AcumenError(Exception):
    """Root of every error acumen raises on purpose."""


class DatasetNotFoundError(AcumenError, FileNotFoundError):
    """The path holds neither an acumen dataset nor an original acumenindexer one."""

    def __str__(self) -> str:  # FileNotFoundError would otherwise print "[Errno None]"
        return str(self.args[0]) if self.args else ""


class DatasetExistsError(AcumenError, FileExistsError, ValueError):
    """A writer was pointed at a path that already holds something.

    Also a ``ValueError``: the original ``split_into_chunks`` raised that.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class IncompleteDatasetError(AcumenError, ValueError):
    """The dataset was being written and the write never finished."""


class ManifestError(AcumenError, ValueError):
    """``manifest.json`` is missing a key, has a wrong value, or does not parse."""

    def __init__(self, path: object, key: str | None, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"key '{key}'" if key else "the file"
        super().__init__(f"{self.path}: {where}: {problem}")


class CorruptDatasetError(AcumenError, ValueError):
    """A chunk or index file is truncated, damaged, or disagrees with the manifest."""


class RecodeMismatchError(AcumenError, ValueError):
    """A recoded copy reads back different from its source (a lossy codec): nothing is
    damaged, the copy is only not the same data, so it is not committed."""


class SampleError(AcumenError, ValueError):
    """A sample handed to a writer cannot be stored (bad metadata, object dtype...)."""


class ArgumentConflictError(AcumenError, ValueError):
    """An argument contradicts what the dataset records (``acumen.open(path, dtype=...)``
    on a dataset whose manifest holds another dtype): the caller's mistake, not damage."""


class PluginNotFoundError(AcumenError, KeyError):
    """No installed plugin of that kind has that name."""

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0]) if self.args else ""


class PluginConflictError(AcumenError, ValueError):
    """A name is registered already and the caller did not ask to replace it."""


class PluginLoadError(AcumenError, ImportError):
    """A plugin is installed but failed to import: the message carries the import error,
    so that a broken install (a missing native library) is not mistaken for a missing one."""


#: How many characters of a value taken from a file an error message quotes.
QUOTE_LIMIT = 200


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for an error message, at most about ``limit`` characters: a value
    read from a hostile file may be millions of characters long (or deeply nested), and a
    message that echoes it whole is useless and costly. A cut value ends with ``...`` and
    says how long it is."""
    if isinstance(value, (str, bytes, bytearray)):
        if len(value) <= limit:
            return repr(value)
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:limit]!r}... ({len(value)} {unit})"
    if isinstance(value, int) and value.bit_length() > 4 * limit:  # repr would be slow
        return f"<an integer of {value.bit_length()} bits>"
    try:
        text = _SHORT_REPR.repr(value)
    except Exception:  # a huge int inside a list: repr itself refuses it
        text = f"<{type(value).__name__}>"
    return shorten(text, limit)


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Free text for an error message (another library's error, a path), cut to about
    ``limit`` characters with ``...`` and the full length."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def sample_error(root: object, i: int, problem: object) -> CorruptDatasetError:
    """A problem with sample ``i`` of the dataset at ``root`` (a read's error, a checksum
    that differs) as the error reads raise: ``ROOT: sample I: PROBLEM``."""
    return CorruptDatasetError(f"{root}: sample {i}: {problem}")


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``"did you mean 'lz4'?"`` when ``word`` is close to one of ``choices`` (a misspelt
    name or option), else ``""``."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=3)
    if not close:
        return ""
    return f"did you mean {' or '.join(map(quote, close))}?"


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxlevel = 3
    short.maxstring = short.maxother = short.maxlong = QUOTE_LIMIT
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = short.maxfrozenset = 8
    return short


_SHORT_REPR = _short_repr()


class DatasetWriteError(AcumenError, OSError):
    """Writing a dataset's file failed (disk full, quota, I/O error): names the dataset and
    the file; ``errno`` is the system's (``errno.ENOSPC`` for a full disk)."""

    def __init__(self, errno: int | None, message: str, filename: str | None = None) -> None:
        super().__init__(errno, message)
        self.filename = filename

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple:  # crosses from worker processes intact
        return (type(self), (self.errno, self.strerror, self.filename))


class RemoteError(AcumenError, OSError):
    """Reading from object storage (``s3://``, ``gs://``, ``https://``...) failed for a
    reason other than a missing object: access denied or no credentials (the message says
    which storage_options or environment variables to set), or a server or network failure
    that outlasted the retries. Names the URL, what was read and the HTTP status or error."""

    def __str__(self) -> str:  # OSError would print "[Errno ...]" for two arguments
        return str(self.args[0]) if self.args else ""


class CommitConflictError(AcumenError):
    """Another writer committed the version this change was based on first, and the change
    cannot be replayed on the newer version (a delete by positions, a compaction): nothing
    of it was committed; read the dataset again and redo it."""
