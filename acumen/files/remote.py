"""How acumen reaches the files of a dataset in object storage (``s3://``, ``gs://``,
``az://``, ``https://``...), through fsspec.

fsspec and its backends are an optional extra (``pip install acumen-indexer[s3]``): they are
imported on first use, so ``import acumen`` stays light. A :class:`RemoteStore` reads whole
objects and exact byte ranges: each range is one ranged GET, a body of another length is
never returned, and transient failures are retried with exponential backoff and jitter
(:mod:`acumen.files.retry`: which failures, how long, the layers below kept from retrying).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from acumen.errors import CorruptDatasetError, RemoteError
from acumen.files.remote_pool import pooled
from acumen.files.retry import (
    CREDENTIAL_CLASSES,
    WrongLength,
    code_of,
    credentials_hint,
    deadline,
    default_backoff,
    default_retries,
    default_timeout,
    delay,
    describe,
    error_names,
    filesystem,
    is_transient,
    status_of,
)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")

#: At most this many requests in flight at once, by default.
MAX_REQUESTS = 64

#: The filesystems a forked child inherited, kept until it ends and never closed. fsspec
#: closes a filesystem's session when the filesystem is collected (its cache is cleared in
#: a child, acumen makes a new filesystem there), and closing takes the session's sockets
#: out of the event loop's epoll, which a child shares with its parent: the parent then
#: waits for ever for the replies on them (seen as a DataLoader epoch that hung).
_INHERITED: list[Any] = []


def _keep_inherited_filesystems() -> None:
    """In a forked child: hold every fsspec filesystem the parent had cached."""
    spec = sys.modules.get("fsspec.spec")
    if spec is None:
        return
    pending = [spec.AbstractFileSystem]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        cache = cls.__dict__.get("_cache")
        if isinstance(cache, dict):
            _INHERITED.extend(cache.values())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_keep_inherited_filesystems)


def _text(path: object) -> str | None:
    if isinstance(path, str):
        return path
    if isinstance(path, os.PathLike):
        text = os.fspath(path)
        return text if isinstance(text, str) else None
    return None


def is_url(path: object) -> bool:
    """True for a URL acumen reads through fsspec: ``scheme://...`` other than ``file://``
    (a one-letter scheme is a Windows drive, ``C://x``, not a URL)."""
    text = _text(path)
    if text is None:
        return False
    match = _SCHEME.match(text)
    return bool(match) and len(match.group(1)) > 1 and match.group(1).lower() != "file"


def local_path(path: Any) -> Any:
    """``file:///x`` as ``/x``, with ``~`` expanded (``~/x`` too); other paths as they are."""
    text = _text(path)
    if text is None or not text.lower().startswith(("file://", "~")):
        return path
    rest = text[len("file://") :] if text[:7].lower() == "file://" else text
    if rest.startswith("localhost/"):
        rest = rest[len("localhost") :]
    if re.match(r"^/[A-Za-z]:[/\\]", rest):  # file:///C:/x on Windows
        rest = rest[1:]
    return os.path.expanduser(rest)


def _range_text(start: int, size: int) -> str:
    return f"bytes {start}..{start + size}"


class RemoteStore:
    """One root location in object storage and its fsspec filesystem.

    Pickles as its URL and options; the filesystem is made on first use in each process
    (never pickled, never shared across a fork).
    """

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        retries: int | None = None,
        backoff: float | None = None,
        timeout: float | None = None,
        max_requests: int = MAX_REQUESTS,
    ) -> None:
        self.url = str(url).rstrip("/")
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self.retries = default_retries() if retries is None else int(retries)
        self.backoff = default_backoff() if backoff is None else float(backoff)
        self.timeout = default_timeout() if timeout is None else float(timeout)
        self.max_requests = max(1, int(max_requests))
        self._fs: Any = None
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fs"] = state["_pid"] = None
        return state

    def __repr__(self) -> str:
        return f"RemoteStore({self.url!r})"

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, made in this process on first use."""
        if self._fs is None or self._pid != os.getpid():
            try:
                import fsspec  # noqa: F401  (the extra is installed)
            except ImportError as error:
                raise RemoteError(
                    f"{self.url}: reading object storage needs fsspec: "
                    "pip install 'acumen-indexer[remote]' (or [s3], [gcs], [azure])"
                ) from error
            try:
                fs = filesystem(self.url, pooled(self))
            except ImportError as error:
                raise RemoteError(f"{self.url}: {error}") from error
            if self._fs is not None:  # the parent's: never closed here (see _INHERITED)
                _INHERITED.append(self._fs)
            self._fs, self._pid = fs, os.getpid()
        return self._fs

    def url_of(self, relative: str) -> str:
        return f"{self.url}/{relative.replace(os.sep, '/').lstrip('/')}"

    # --- the requests ---------------------------------------------------------------
    def _run(self, jobs: list[tuple[str, str, int, int]], timings: list | None = None) -> list:
        """Run ``(kind, url, start, size)`` requests concurrently with retries: kind
        "range" (a ranged GET), "whole" (the object) or "info" (its size, by HEAD). Each
        item is its bytes, its info, or the exception it failed with in the end. With
        ``timings``, each request that succeeds adds ``(seconds, size)`` to it."""
        fs = self.fs
        from fsspec.asyn import get_loop, sync

        if getattr(fs, "async_impl", False):
            return sync(fs.loop, self._gather, fs, jobs, True, timings)
        return sync(get_loop(), self._gather, fs, jobs, False, timings)

    async def _gather(
        self, fs: Any, jobs: list, is_async: bool, timings: list | None = None
    ) -> list[Any]:
        limit = asyncio.Semaphore(self.max_requests)

        def call(kind: str, url: str, start: int, size: int) -> Any:
            path = fs._strip_protocol(url)
            if kind == "info":
                return fs._info(path) if is_async else asyncio.to_thread(fs.info, path)
            if kind == "whole":
                if not is_async:
                    return asyncio.to_thread(fs.cat_file, path)
                # s3fs asks a whole object's size first (a HEAD) to fetch it in parts: one
                # GET instead, a round trip less for the manifest and the index at open.
                return fs._cat_file(path, **_one_stream(fs))
            end = start + size
            if is_async:
                return fs._cat_file(path, start=start, end=end)
            return asyncio.to_thread(fs.cat_file, path, start, end)

        async def one(kind: str, url: str, start: int, size: int) -> Any:
            attempt = 0
            while True:
                try:
                    async with limit:
                        sent = time.perf_counter()
                        request = call(kind, url, start, size)
                        # A whole object's size is unknown here: the backend's timeout.
                        limit_s = None if kind == "whole" else deadline(self.timeout, size)
                        if limit_s is not None:
                            result = await asyncio.wait_for(request, limit_s)
                        else:
                            result = await request
                    if kind == "range" and len(result) != size:
                        raise WrongLength(len(result))
                    if timings is not None:
                        timings.append((time.perf_counter() - sent, size))
                    return result
                except Exception as error:
                    if attempt >= self.retries or not is_transient(error):
                        return error
                    if isinstance(error, WrongLength) and attempt == 0:
                        # Past the end of the object: no retry can help.
                        known = await _size_or_none(fs, url, is_async)
                        if known is not None and known < start + size:
                            return error
                await asyncio.sleep(delay(self.backoff, attempt))
                attempt += 1

        return await asyncio.gather(*(one(*job) for job in jobs))

    def _failure(
        self, error: BaseException, url: str, start: int | None, size: int | None, what: str
    ) -> BaseException:
        """The error a failed request raises, in acumen's words."""
        if isinstance(error, FileNotFoundError) and not isinstance(error, RemoteError):
            missing = FileNotFoundError(errno.ENOENT, f"no such object ({what})", url)
            missing.__cause__ = error
            return missing
        if start is not None and size is not None:
            bad_range = status_of(error) == 416 or code_of(error) == "InvalidRange"
            if isinstance(error, WrongLength) or bad_range:
                return self._wrong_length(url, start, size, what, error)
        message = f"{url}: reading {what}"
        if start is not None and size is not None:
            message += f" ({_range_text(start, size)})"
        message += f" failed: {describe(error)}"
        status = status_of(error)
        if (
            isinstance(error, PermissionError)
            or status in (401, 403)
            or error_names(error) & CREDENTIAL_CLASSES
        ):
            message += f"; access denied or no credentials: {credentials_hint(url)}"
        elif is_transient(error):
            message += f" (gave up after {self.retries} retries)"
        failed = RemoteError(message)
        failed.__cause__ = error
        return failed

    def _wrong_length(
        self, url: str, start: int, size: int, what: str, error: BaseException
    ) -> CorruptDatasetError:
        known = None
        with contextlib.suppress(Exception):  # the message only loses the object's size
            known = self.size(url)
        where = f"{url}: {_range_text(start, size)}"
        if known is not None and known < start + size:
            problem = (
                f"{where} are past the end of the file ({known} bytes): the chunk file is "
                "truncated or the index is wrong"
            )
        else:
            got = f"got {error.got} bytes" if isinstance(error, WrongLength) else describe(error)
            problem = (
                f"{where} of {what}: {got}: the object is shorter than the index says, "
                "or the server ignores Range requests"
            )
        failed = CorruptDatasetError(problem)
        failed.__cause__ = error
        return failed

    # --- the public reads -----------------------------------------------------------
    def read_bytes(self, url: str, what: str) -> bytes:
        """The whole object at ``url``; ``FileNotFoundError`` when there is none."""
        (result,) = self._run([("whole", url, 0, 0)])
        if isinstance(result, BaseException):
            raise self._failure(result, url, None, None, what)
        return bytes(result)

    def read_range(self, url: str, start: int, size: int, what: str) -> bytes:
        """Exactly ``size`` bytes from ``start`` of ``url``, by one ranged GET."""
        return self.read_ranges([url], [start], [size], what)[0]

    def read_ranges(
        self,
        urls: Sequence[str],
        starts: Sequence[int],
        sizes: Sequence[int],
        what: str,
        timings: list | None = None,
    ) -> list[bytes]:
        """Each ``(url, start, size)`` exactly, fetched concurrently (at most
        ``max_requests`` at once); failed ones retried alone. ``timings``: as for
        :meth:`_run`."""
        if not (len(urls) == len(starts) == len(sizes)):
            raise ValueError("read_ranges: urls, starts and sizes differ in length")
        out: list[Any] = [b""] * len(urls)
        jobs, where = [], []
        for n, (url, start, size) in enumerate(zip(urls, starts, sizes, strict=True)):
            if start < 0 or size < 0:
                raise ValueError(f"{url}: a negative byte range ({start}, {size})")
            if size:
                jobs.append(("range", url, int(start), int(size)))
                where.append(n)
        for n, result in zip(where, self._run(jobs, timings) if jobs else [], strict=True):
            out[n] = result
        for n, result in enumerate(out):
            if isinstance(result, BaseException):
                raise self._failure(result, urls[n], starts[n], sizes[n], what)
        return out

    def names_in(self, relative: str) -> list[str]:
        """The names of the objects in the folder ``relative`` (none when it is absent),
        listed afresh: a listing fsspec cached would miss what another writer added."""
        fs = self.fs
        folder = fs._strip_protocol(self.url_of(relative))
        fs.invalidate_cache(folder)
        try:
            found = fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        return [str(path).rstrip("/").rsplit("/", 1)[-1] for path in found]

    def size(self, url: str) -> int | None:
        """The object's size in bytes, or None when there is no such object."""
        return self.sizes([url])[0]

    def sizes(self, urls: Sequence[str]) -> list[int | None]:
        """The sizes of several objects, asked concurrently (None for a missing one)."""
        found: list[int | None] = []
        results = self._run([("info", url, 0, 0) for url in urls]) if urls else []
        for url, result in zip(urls, results, strict=True):
            if isinstance(result, FileNotFoundError):
                found.append(None)
            elif isinstance(result, BaseException):
                raise self._failure(result, url, None, None, "the object's size")
            else:
                size = result.get("size")
                found.append(None if size is None else int(size))
        return found


async def _size_or_none(fs: Any, url: str, is_async: bool) -> int | None:
    path = fs._strip_protocol(url)
    try:
        info = await (fs._info(path) if is_async else asyncio.to_thread(fs.info, path))
        size = info.get("size")
        return None if size is None else int(size)
    except Exception:
        return None


def _one_stream(fs: Any) -> dict[str, int]:
    """``max_concurrency=1`` where the filesystem's ``_cat_file`` takes it (s3fs)."""
    import inspect

    try:
        takes = "max_concurrency" in inspect.signature(fs._cat_file).parameters
    except (TypeError, ValueError):
        takes = False
    return {"max_concurrency": 1} if takes else {}
