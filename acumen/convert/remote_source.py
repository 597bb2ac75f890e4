"""A conversion's source in object storage (``s3://``, ``gs://``, ``http(s)://``...).

- A ``glob`` under a URL is listed once (one flat listing of its fixed prefix, filtered by
  the pattern) and put in the order a local glob walks (sorted by path part), so a dataset
  made from a bucket is byte for byte the one made from the same files on disk.
- The conversion records what it lists in its state (``source-listing.jsonl``: URL and
  size of each item; a table at a URL is copied there whole), before the first part: a
  resumed conversion reads the record, never the store again, so it makes the same parts
  from the same items even if objects were added since.
- The items are :class:`SourceURL` (a ``str``: the URL, with the size the listing gave).
  Workers fetch them whole, several at once and ahead of the reader (:func:`opened`), and
  hand the reader a :class:`SourceFile` (a binary file object, ``name`` = the URL): no
  local copy of the source is made. A missing object, or one whose size changed since
  the listing, is that item's error, naming its URL.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from acumen.errors import RemoteError
from acumen.files.local import write_atomically
from acumen.files.remote import RemoteStore
from acumen.files.remote_objects import shared_store

LISTING_FILE = "source-listing.jsonl"  # in the conversion's state: [url, size] per line
TABLE_FILE = "source-table"  # ... or the table at a URL, copied (with its suffix)

#: Items fetched ahead of the reader: at most this many ...
FETCH_ITEMS = 64
#: ... and about this many bytes (by the sizes the listing gave) per batch of requests.
FETCH_BYTES = 64 * 1024 * 1024


class SourceURL(str):
    """An item of a source at a URL: the URL itself, and its size when the listing gave it."""

    size: int | None

    def __new__(cls, url: str, size: int | None = None) -> SourceURL:
        item = super().__new__(cls, url)
        item.size = size
        return item

    def __reduce__(self) -> tuple:
        return (SourceURL, (str(self), self.size))


class SourceFile(io.BytesIO):
    """What a reader gets for an item at a URL: its bytes as a binary file object, with
    ``name`` (and ``url``) the item's URL."""

    def __init__(self, data: bytes, url: str) -> None:
        super().__init__(data)
        self.name = self.url = url

    def __repr__(self) -> str:
        return f"SourceFile({self.url!r})"


def _split(parts: list[str], fixed: int) -> tuple[str, str]:
    """The leading parts without wildcards (at least ``fixed``, never the last), the rest."""
    for part in parts[fixed:-1]:
        if any(c in part for c in "*?["):
            break
        fixed += 1
    return "/".join(parts[:fixed]), "/".join(parts[fixed:])


def split_pattern(pattern: str) -> tuple[str, str]:
    """``"s3://b/data/**/*.npy"`` -> (``"s3://b/data"``, ``"**/*.npy"``): the fixed part (no
    wildcards; the bucket at least) and the rest, as a local glob splits them."""
    scheme, _, rest = pattern.partition("://")
    fixed, rest = _split(rest.split("/"), 1)
    return f"{scheme}://{fixed}", rest


def list_glob(
    root: str,
    pattern: str,
    storage_options: Mapping[str, Any] | None,
    glob_regex: Callable[[str], re.Pattern[str]],
) -> list[tuple[str, int | None]]:
    """The objects under ``root`` that ``pattern`` matches (as ``glob_regex`` reads a
    pattern), as (URL, size), in the order a local glob of the same tree gives (sorted by
    path part, as a walk sorts each folder)."""
    from acumen.files.remote_objects import list_objects

    if "://" in pattern:
        root, pattern = split_pattern(pattern)
    fixed, rest = _split(pattern.split("/"), 0)
    store = RemoteStore(root.rstrip("/"), storage_options)
    matcher = glob_regex(rest)
    found = []
    for name, size in list_objects(store, fixed):
        if fixed and not name.startswith(fixed + "/"):
            continue  # (a sibling a prefix listing may give: "data-2/" for "data")
        relative = name[len(fixed) + 1 :] if fixed else name
        if matcher.fullmatch(relative):
            found.append((name, size))
    found.sort(key=lambda entry: entry[0].split("/"))
    return [(store.url_of(name), size) for name, size in found]


def write_listing(path: Path, entries: Sequence[tuple[str, int | None]]) -> None:
    lines = "".join(json.dumps([url, size]) + "\n" for url, size in entries)
    write_atomically(path, lines.encode("utf-8"))


def read_listing(path: Path) -> Iterator[SourceURL]:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            url, size = json.loads(line)
            yield SourceURL(url, size)


def fetch_table(url: str, storage_options: Mapping[str, Any] | None, target: Path) -> None:
    """Copy the table at ``url`` to ``target`` (atomically)."""
    store = shared_store(url, storage_options)
    write_atomically(target, store.read_bytes(url, "the source table"))


# --- the workers' side ------------------------------------------------------------------
def _windows(items: Sequence[tuple[int, Any, dict[str, Any]]]) -> Iterator[list[int]]:
    """Runs of item numbers fetched together: up to FETCH_ITEMS, about FETCH_BYTES."""
    window: list[int] = []
    size = 0
    for number, (_, item, _) in enumerate(items):
        window.append(number)
        size += (item.size or 0) if isinstance(item, SourceURL) else 0
        if len(window) >= FETCH_ITEMS or size >= FETCH_BYTES:
            yield window
            window, size = [], 0
    if window:
        yield window


def _fetch(store: RemoteStore, items: Sequence[SourceURL]) -> list[Any]:
    from acumen.files.remote_objects import fetch_objects

    out = []
    for item, data in zip(items, fetch_objects(store, list(items), "source item"), strict=True):
        if isinstance(data, bytes) and item.size is not None and len(data) != item.size:
            data = RemoteError(
                f"{item}: the object has {len(data):,} bytes where the conversion's listing "
                f"says {item.size:,}: it changed after the conversion started (a resumed "
                "conversion reads the items it listed first)"
            )
        out.append(data)
    return out


def opened(
    items: Sequence[tuple[int, Any, dict[str, Any]]], storage_options: Mapping[str, Any] | None
) -> Iterator[tuple[int, Any, dict[str, Any], Any]]:
    """``(position, item, metadata, what the reader reads)`` for each item: a
    :class:`SourceFile` for an item at a URL (fetched ahead, a batch at a time, while the
    batch before is read), the error it failed with (to be raised when it is read), or the
    item itself. At most two batches are in memory."""
    remote = [item for _, item, _ in items if isinstance(item, SourceURL)]
    if not remote:
        for position, item, metadata in items:
            yield position, item, metadata, item
        return
    store = shared_store(remote[0], storage_options)
    windows = list(_windows(items))

    def fetch(window: list[int]) -> list[Any]:
        urls = [items[n][1] for n in window if isinstance(items[n][1], SourceURL)]
        return _fetch(store, urls)

    with ThreadPoolExecutor(1, thread_name_prefix="acumen-source") as pool:
        ahead: Future[list[Any]] = pool.submit(fetch, windows[0])
        try:
            for index, window in enumerate(windows):
                fetched = iter(ahead.result())
                if index + 1 < len(windows):
                    ahead = pool.submit(fetch, windows[index + 1])
                for n in window:
                    position, item, metadata = items[n]
                    if isinstance(item, SourceURL):
                        data = next(fetched)
                        got = SourceFile(data, str(item)) if isinstance(data, bytes) else data
                        yield position, item, metadata, got
                    else:
                        yield position, item, metadata, item
        finally:
            ahead.cancel()


def raise_if_failed(got: Any) -> Any:
    """What the reader reads; an item's fetch error is raised here (as the reader would)."""
    if isinstance(got, BaseException):
        raise got
    return got


def open_item(item: Any, storage_options: Mapping[str, Any] | None) -> Any:
    """What the reader reads for one ``item``: one at a URL fetched (its error raised)."""
    if not isinstance(item, SourceURL):
        return item
    ((*_, got),) = opened([(0, item, {})], storage_options)
    return raise_if_failed(got)


__all__ = [
    "LISTING_FILE",
    "TABLE_FILE",
    "SourceFile",
    "SourceURL",
    "fetch_table",
    "list_glob",
    "open_item",
    "opened",
    "raise_if_failed",
    "read_listing",
    "write_listing",
]
