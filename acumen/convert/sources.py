"""Where a conversion's items come from: a glob, a listing table, or a callable; or rows (a
table read by the ``column`` reader, a saved Hugging Face dataset: :mod:`.arrow_rows`,
:mod:`.huggingface`) or webdataset samples (:mod:`.webdataset`).

A glob or table at a URL is read through :mod:`acumen.convert.remote_source`: listed (or
copied) once into the conversion's state, its items are :class:`SourceURL`.

Items stream: a glob walks directories in sorted order (one directory listing in memory at
a time), a table is read in batches, a callable's generator is consumed as it goes; so ten
million items are never held at once, and the order is the same on every run (which is what
makes a resumed conversion identical to an uninterrupted one).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from acumen.convert.config import ConfigError, SourceConfig
from acumen.files.remote import is_url

SourceItem = tuple[Any, dict[str, Any]]  # (what the reader reads, metadata from the source)
_TABLE_BATCH = 50_000


Listing = list[tuple[str, "int | None"]]  # a glob at a URL, listed: (URL, size) in order


def iter_items(
    source: SourceConfig, state: Path | None = None, listing: Listing | None = None
) -> Iterator[SourceItem]:
    """The source's items in order. A source at a URL reads what ``state`` (the
    conversion's state folder) recorded of it, else ``listing`` (a glob listed already),
    else the store."""
    if source.kind == "glob" and source.remote:
        yield from _remote_glob_items(source, state, listing)
    elif source.kind == "glob":
        yield from _glob_items(source)
    elif source.kind == "table":
        yield from _table_items(source, state)
    elif source.kind == "huggingface":
        from acumen.convert.huggingface import huggingface_rows

        for row in huggingface_rows(Path(source.value), source.root):
            yield row, {}
    elif source.kind == "webdataset":
        from acumen.convert.webdataset import webdataset_items

        shards = _glob_items(source, with_metadata=False)
        yield from webdataset_items((p for p, _ in shards), source.root, source.path_metadata)
    else:
        yield from _callable_items(source)


def list_source(source: SourceConfig, state: Path | None) -> Listing | None:
    """A glob at a URL not recorded in ``state`` yet, listed now (None for any other)."""
    from acumen.convert.remote_source import LISTING_FILE, list_glob

    if source.kind != "glob" or not source.remote:
        return None
    if state is not None and (state / LISTING_FILE).is_file():
        return None
    return list_glob(source.root_url or "", source.value, source.storage_options, glob_regex)


def record_source(source: SourceConfig, state: Path, listing: Listing | None) -> None:
    """Record a source at a URL in ``state`` (once): a glob's listing, a table's copy."""
    from acumen.convert import remote_source

    if not source.remote:
        return
    if source.kind == "glob":
        recorded = state / remote_source.LISTING_FILE
        if not recorded.is_file():
            found = listing if listing is not None else list_source(source, None)
            remote_source.write_listing(recorded, found or [])
        return
    recorded = state / (remote_source.TABLE_FILE + Path(source.value).suffix.lower())
    if is_url(source.value) and not recorded.is_file():
        remote_source.fetch_table(source.value, source.storage_options, recorded)


def first_item(
    source: SourceConfig, state: Path | None = None, listing: Listing | None = None
) -> SourceItem | None:
    """The source's first item (None if it has none), closing what it opened."""
    items = iter_items(source, state, listing)
    try:
        return next(items, None)
    finally:
        items.close()


def count_items(
    source: SourceConfig, limit: int, state: Path | None = None, listing: Listing | None = None
) -> int:
    """How many items the source gives, counting no further than ``limit``.

    A parquet table's row count is in its footer; a glob is listed (no file is opened), a
    CSV table read in batches and a callable's generator run, up to ``limit`` items.
    """
    local = not is_url(source.value)
    if source.kind == "table" and Path(source.value).suffix.lower() != ".csv" and local:
        from acumen.convert.arrow_rows import count_rows

        return min(limit, count_rows(Path(source.value)))
    if source.kind == "huggingface":
        from acumen.convert.huggingface import huggingface_count

        return min(limit, huggingface_count(Path(source.value)))
    if source.kind == "glob" and not source.remote:
        return sum(1 for _ in itertools.islice(_glob_items(source, with_metadata=False), limit))
    items = iter_items(source, state, listing)
    try:
        return sum(1 for _ in itertools.islice(items, limit))
    finally:
        items.close()


def describe(item: Any) -> str:
    text = str(item) if isinstance(item, (str, os.PathLike)) else repr(item)
    return text if len(text) <= 120 else text[:117] + "..."


# --- glob -------------------------------------------------------------------------------
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a relative glob: ``*`` and ``?`` within one path part, ``**`` across parts,
    ``[...]`` character sets."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def sorted_glob(root: Path, pattern: str) -> Iterator[Path]:
    """Files under ``root`` matching ``pattern``, in sorted path order, lazily."""
    for path in _sorted_glob_text(root, pattern):
        yield Path(path)


def _sorted_glob_text(root: Path, pattern: str) -> Iterator[str]:
    """The files :func:`sorted_glob` gives, as text: a path object per file would cost
    more than the listing itself (3 µs a file, the walk 1 µs)."""
    start, rest = _split_glob(root, pattern)
    matcher = glob_regex(rest)
    depth = None if "**" in rest else rest.count("/")
    if start.is_dir():
        yield from _walk(str(start), "", matcher.fullmatch, depth)


def _walk(
    directory: str, prefix: str, match: Callable[[str], Any], depth: int | None
) -> Iterator[str]:
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=_name)
    except OSError:
        return
    for entry in entries:
        relative = prefix + entry.name
        if entry.is_dir():
            if depth is None or relative.count("/") < depth:
                yield from _walk(entry.path, relative + "/", match, depth)
        elif match(relative):
            yield entry.path


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _glob_items(source: SourceConfig, with_metadata: bool = True) -> Iterator[SourceItem]:
    root = source.root
    pattern = source.value
    if Path(pattern).is_absolute():
        root, pattern = Path(pattern).anchor, str(Path(pattern).relative_to(Path(pattern).anchor))
        root = Path(root)
    key = source.path_metadata if with_metadata else None
    # Paths are text here (see _sorted_glob_text): each one's path relative to the
    # (absolute) root is what follows the root's text and a slash.
    inside = os.path.join(str(source.root), "")
    cut = len(inside)
    for path in _sorted_glob_text(root, pattern):
        if not key:
            yield path, {}
        elif path.startswith(inside):
            yield path, {key: path[cut:].replace(os.sep, "/")}
        else:
            yield path, {key: path}


def _split_glob(root: Path, pattern: str) -> tuple[Path, str]:
    """The folder a glob is walked from (its folders before the first wildcard) and the
    rest of the pattern, matched below it."""
    parts = pattern.replace("\\", "/").split("/")
    fixed = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return root.joinpath(*fixed), "/".join(parts[len(fixed) :])


def _remote_glob_items(
    source: SourceConfig, state: Path | None, listing: Listing | None
) -> Iterator[SourceItem]:
    from acumen.convert.remote_source import LISTING_FILE, SourceURL, read_listing

    recorded = state / LISTING_FILE if state is not None else None
    if recorded is not None and recorded.is_file():
        urls: Iterator[SourceURL] = read_listing(recorded)
    else:
        found = listing if listing is not None else list_source(source, None) or []
        urls = (SourceURL(url, size) for url, size in found)
    prefix = source.root_url + "/" if source.root_url else None
    for url in urls:
        metadata = {}
        if source.path_metadata:
            relative = url[len(prefix) :] if prefix and url.startswith(prefix) else str(url)
            metadata[source.path_metadata] = relative
        yield url, metadata


# --- table ------------------------------------------------------------------------------
def _table_batches(path: Path) -> Iterator[list[dict[str, Any]]]:
    if path.suffix.lower() != ".csv":
        from acumen.convert.arrow_rows import table_batches

        for batch in table_batches(path, _TABLE_BATCH):
            yield batch.to_pylist()
        return
    import pandas as pd

    dtypes = _csv_column_types(path)
    with pd.read_csv(path, chunksize=_TABLE_BATCH, dtype=dtypes) as frames:
        for frame in frames:
            for name in frame.columns:
                if frame[name].dtype.kind not in "biuf":  # text: empty fields are "", not NaN
                    frame[name] = frame[name].astype(object).where(frame[name].notna(), "")
            yield frame.to_dict("records")


def _csv_column_types(path: Path) -> dict[str, Any]:
    """The whole file's type of each column whose type pandas infers differently from batch
    to batch (it infers per batch). A conversion's first item fixes the metadata types, so a
    column of ints in the first batch and of 2.5 (or an empty cell) in a later one must be
    float from the first row: a column of ints and floats is float, one of other mixed kinds
    is text (as pandas reads a whole file). Mixed ints and unsigned ints past int64 stay as
    inferred: the writer refuses what does not fit, rather than round it through a float."""
    import pandas as pd

    kinds: dict[str, set[str]] = {}
    with pd.read_csv(path, chunksize=_TABLE_BATCH) as frames:
        for frame in frames:
            for name in frame.columns:
                kinds.setdefault(name, set()).add(frame[name].dtype.kind)
    types: dict[str, Any] = {}
    for name, seen in kinds.items():
        if len(seen) == 1:
            continue
        if seen <= {"i", "f"}:
            types[name] = "float64"
        elif not seen <= {"i", "u", "f"}:  # (numbers past int64: as inferred)
            types[name] = str
    return types


def _table_items(source: SourceConfig, state: Path | None) -> Iterator[SourceItem]:
    if not is_url(source.value):
        yield from _table_rows(source, Path(source.value))
        return
    from acumen.convert.remote_source import TABLE_FILE, fetch_table

    suffix = Path(source.value).suffix.lower()
    recorded = state / (TABLE_FILE + suffix) if state is not None else None
    if recorded is not None and recorded.is_file():
        yield from _table_rows(source, recorded)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="acumen-table-") as folder:
        copy = Path(folder) / (TABLE_FILE + suffix)
        fetch_table(source.value, source.storage_options, copy)
        yield from _table_rows(source, copy)


def _table_rows(source: SourceConfig, table: Path) -> Iterator[SourceItem]:
    from acumen.convert.remote_source import SourceURL

    where = source.value
    if source.path_column is None:  # the column reader's: each row is an item
        from acumen.convert.arrow_rows import table_rows

        name = source.value.rsplit("/", 1)[-1]
        yield from ((row, {}) for row in table_rows(table, name))
        return
    for rows in _table_batches(table):
        for row in rows:
            if source.path_column not in row:
                raise ConfigError(
                    f"{where}: no column {source.path_column!r} (set source.path_column); "
                    f"columns: {list(row)}"
                )
            relative = str(row.pop(source.path_column))
            metadata = {k: _plain(v) for k, v in row.items()}
            if source.path_metadata:
                metadata[source.path_metadata] = relative
            if is_url(relative):
                yield SourceURL(relative), metadata
            elif source.root_url is not None:
                yield SourceURL(f"{source.root_url}/{relative.lstrip('/')}"), metadata
            else:
                path = Path(relative)
                yield str(path if path.is_absolute() else source.root / path), metadata


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --- callable ---------------------------------------------------------------------------
def _callable_items(source: SourceConfig) -> Iterator[SourceItem]:
    from acumen.readers.callable import config_folder_on_path, load_callable

    with config_folder_on_path(source.import_path):
        function = load_callable(source.value, "source.callable")
    for item in function(**dict(source.arguments)):
        metadata = {}
        if source.path_metadata and isinstance(item, (str, os.PathLike)):
            metadata[source.path_metadata] = str(item)
        yield item, metadata
