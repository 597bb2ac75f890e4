"""Many objects of a store at once, for ``acumen convert``'s sources: a listing under a
prefix, and whole objects fetched concurrently, each failure kept for its own object.

A sibling of ``remote.py`` (which reads one dataset's files, and stays under the size
limit); the same retries with backoff, the same errors naming the URL.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from acumen.errors import RemoteError
from acumen.files.remote import RemoteStore
from acumen.files.retry import (
    CREDENTIAL_CLASSES,
    credentials_hint,
    describe,
    error_names,
    is_transient,
    status_of,
    with_retries,
)

_shared: dict[tuple[str, str], RemoteStore] = {}
_shared_lock = threading.Lock()


def shared_store(url: str, storage_options: Mapping[str, Any] | None) -> RemoteStore:
    """A :class:`RemoteStore` for ``url`` whose filesystem is shared by every store of this
    process with the same root (``scheme://bucket``) and options: the parts a process
    writes share one session and its connections (a new one costs ~0.1-0.3 s, and fsspec's
    own instance cache may be off: ``skip_instance_cache``). Remade after a fork."""
    scheme, _, rest = url.partition("://")
    root = f"{scheme}://{rest.split('/', 1)[0]}"
    key = (root, json.dumps(storage_options or {}, sort_keys=True, default=repr))
    with _shared_lock:
        base = _shared.get(key)
        if base is None:
            base = _shared[key] = RemoteStore(root, storage_options)
        fs = base.fs  # (made again in a forked child: RemoteStore checks the pid)
    store = RemoteStore(url, storage_options)
    store._fs, store._pid = fs, os.getpid()
    return store


def list_objects(store: RemoteStore, relative: str = "") -> list[tuple[str, int | None]]:
    """Every object under ``store.url/relative`` (a "folder": a prefix ending at ``/``), as
    (name relative to ``store.url``, size in bytes). Unsorted; none when nothing is there."""
    url = store.url_of(relative) if relative else store.url
    fs = store.fs
    base = fs._strip_protocol(store.url).rstrip("/")
    path = fs._strip_protocol(url).rstrip("/")
    try:
        found = with_retries(lambda: fs.find(path, detail=True), store.retries, store.backoff)
    except FileNotFoundError:
        return []
    except Exception as error:
        message = f"{url}: listing the objects under it failed: {describe(error)}"
        if (
            isinstance(error, PermissionError)
            or status_of(error) in (401, 403)
            or error_names(error) & CREDENTIAL_CLASSES
        ):
            message += f"; access denied or no credentials: {credentials_hint(url)}"
        elif is_transient(error):
            message += f" (gave up after {store.retries} retries)"
        raise RemoteError(message) from error
    out = []
    for name, info in found.items():
        name = name.rstrip("/")
        if info.get("type") == "directory" or not name.startswith(base + "/"):
            continue
        size = info.get("size")
        out.append((name[len(base) + 1 :], None if size is None else int(size)))
    return out


def fetch_objects(store: RemoteStore, urls: Sequence[str], what: str) -> list[Any]:
    """The whole objects at ``urls``, fetched concurrently (at most ``store.max_requests``
    at once, each retried alone): each item is its bytes, or the error it failed with in
    acumen's words (``FileNotFoundError`` naming the URL for a missing one)."""
    results = store._run([("whole", url, 0, 0) for url in urls]) if urls else []
    return [
        store._failure(result, url, None, None, what)
        if isinstance(result, BaseException)
        else bytes(result)
        for url, result in zip(urls, results, strict=True)
    ]
