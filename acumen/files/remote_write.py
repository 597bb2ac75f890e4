"""Writing objects to a store (``s3://``, ``gs://``, ``az://``...) through fsspec, with the
retries :class:`acumen.files.remote.RemoteStore` gives reads (exponential backoff with
jitter, transient failures only), and errors naming the URL.

A sibling of ``remote.py`` (which stays a reader, under the size limit).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from acumen.errors import RemoteError
from acumen.files.remote import RemoteStore
from acumen.files.retry import (
    code_of,
    credentials_hint,
    describe,
    is_transient,
    status_of,
    with_retries,
)

T = TypeVar("T")


class RemoteWriter:
    """Objects under one root URL, written, checked for and deleted, each with retries.

    ``part_size``: the part size of a multipart upload (s3fs: a file of at least twice
    this is sent in parts; by default 50 MiB, so files from 100 MiB). A failed part fails
    the upload, which is aborted and retried whole.
    """

    def __init__(self, store: RemoteStore, part_size: int | None = None) -> None:
        self.store = store
        self.part_size = part_size

    @property
    def url(self) -> str:
        return self.store.url

    def url_of(self, relative: str) -> str:
        return self.store.url_of(relative)

    def _path(self, relative: str) -> str:
        return self.store.fs._strip_protocol(self.url_of(relative))

    def _retry(
        self, call: Callable[[], T], relative: str, what: str, *, again: tuple[str, ...] = ()
    ) -> T:
        """``call()``, tried again after a transient failure (or one whose botocore error
        code is in ``again``)."""
        try:
            return with_retries(
                call, self.store.retries, self.store.backoff, lambda e: code_of(e) in again
            )
        except Exception as error:
            raise self._failure(error, relative, what) from error

    def _failure(self, error: BaseException, relative: str, what: str) -> BaseException:
        if isinstance(error, (FileExistsError, FileNotFoundError)):
            return error  # the caller decides what these mean
        url = self.url_of(relative)
        message = f"{url}: writing {what} failed: {describe(error)}"
        if isinstance(error, PermissionError) or status_of(error) in (401, 403):
            message += f"; access denied or no credentials: {credentials_hint(url)}"
        elif is_transient(error):
            message += f" (gave up after {self.store.retries} retries)"
        return RemoteError(message)

    def exists(self, relative: str) -> bool:
        return self.store.size(self.url_of(relative)) is not None

    def read(self, relative: str, what: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        try:
            return self.store.read_bytes(self.url_of(relative), what)
        except FileNotFoundError:
            return None

    def put_file(self, local: Path, relative: str, what: str) -> None:
        """Upload one local file (the backend splits a big one into parts: s3fs does a
        multipart upload above its block size)."""
        fs, path = self.store.fs, self._path(relative)
        parts = {} if self.part_size is None else {"chunksize": self.part_size}
        # NoSuchUpload: a multipart upload whose completion landed but whose reply was lost
        # is aborted by s3fs, too late: sent again whole, it overwrites itself.
        self._retry(
            lambda: fs.put_file(os.fspath(local), path, **parts),
            relative,
            what,
            again=("NoSuchUpload",),
        )

    def put_bytes(self, relative: str, data: bytes, what: str, *, create: bool = False) -> None:
        """Write ``data``; ``create=True`` only if no object is there yet, else
        ``FileExistsError``.

        The create is conditional where the store can do it atomically: s3fs sends
        ``If-None-Match: *`` (AWS S3 and moto honour it; some S3-compatible stores ignore
        it), fsspec's memory and local file systems open the file exclusively. Where a
        backend's ``pipe_file`` has no ``mode`` (an older one), this is a check, then a
        put: another writer may slip in between (fsspec's own fallback for ``mode="create"``
        is the same check-then-put).
        """
        fs, path = self.store.fs, self._path(relative)
        if not create:
            self._retry(lambda: fs.pipe_file(path, data), relative, what)
            return

        def conditional() -> None:
            try:
                fs.pipe_file(path, data, mode="create")
            except TypeError:  # no mode= in this backend: check, then put (not atomic)
                if fs.exists(path):
                    raise FileExistsError(self.url_of(relative)) from None
                fs.pipe_file(path, data)

        try:
            self._retry(conditional, relative, what)
        except FileExistsError:
            # A retried create whose first try did land finds its own bytes: that is ours.
            if self.read(relative, what) != data:
                raise

    def names(self) -> list[str]:
        """Every object under the root, by its name relative to it (sorted)."""
        fs, root = self.store.fs, self.store.fs._strip_protocol(self.url)

        def find() -> list[str]:
            try:
                found = fs.find(root)
            except FileNotFoundError:
                return []
            return sorted(p[len(root) :].lstrip("/") for p in found if p.startswith(root))

        return self._retry(find, "", "the list of objects")

    def delete_many(self, relative: list[str], what: str) -> None:
        """Remove these objects (a batch request where the store has one, as S3 does)."""
        if relative:
            fs, paths = self.store.fs, [self._path(name) for name in relative]
            self._retry(lambda: fs.rm(paths), relative[0], what)

    def delete(self, relative: str, what: str) -> None:
        """Remove one object; one already gone is fine."""
        fs, path = self.store.fs, self._path(relative)

        def remove() -> Any:
            try:
                return fs.rm_file(path)
            except FileNotFoundError:
                return None

        self._retry(remove, relative, what)
