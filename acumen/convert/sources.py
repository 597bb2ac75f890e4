"""Where a conversion's items come from: a glob, a listing table, or a callable.

Items stream: a glob walks directories in sorted order (one directory listing in memory at
a time), a table is read in batches, a callable's generator is consumed as it goes; so ten
million items are never held at once, and the order is the same on every run (which is what
makes a resumed conversion identical to an uninterrupted one).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from acumen.convert.config import ConfigError, SourceConfig

SourceItem = tuple[Any, dict[str, Any]]  # (what the reader reads, metadata from the source)
_TABLE_BATCH = 50_000


def iter_items(source: SourceConfig) -> Iterator[SourceItem]:
    if source.kind == "glob":
        yield from _glob_items(source)
    elif source.kind == "table":
        yield from _table_items(source)
    else:
        yield from _callable_items(source)


def first_item(source: SourceConfig) -> SourceItem | None:
    """The source's first item (None if it has none), closing what it opened."""
    items = iter_items(source)
    try:
        return next(items, None)
    finally:
        items.close()


def count_items(source: SourceConfig, limit: int) -> int:
    """How many items the source gives, counting no further than ``limit``.

    A parquet table's row count is in its footer; a glob is listed (no file is opened), a
    CSV table read in batches and a callable's generator run, up to ``limit`` items.
    """
    if source.kind == "table" and Path(source.value).suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return min(limit, pq.ParquetFile(source.value).metadata.num_rows)
    items = iter_items(source)
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
    parts = pattern.replace("\\", "/").split("/")
    fixed = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    start = root.joinpath(*fixed)
    rest = "/".join(parts[len(fixed) :])
    matcher = glob_regex(rest)
    depth = None if "**" in rest else rest.count("/")
    if start.is_dir():
        yield from _walk(start, "", matcher, depth)


def _walk(directory: Path, prefix: str, matcher: re.Pattern[str], depth: int | None):
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        relative = prefix + entry.name
        if entry.is_dir():
            if depth is None or relative.count("/") < depth:
                yield from _walk(Path(entry.path), relative + "/", matcher, depth)
        elif matcher.fullmatch(relative):
            yield Path(entry.path)


def _glob_items(source: SourceConfig) -> Iterator[SourceItem]:
    root = source.root
    pattern = source.value
    if Path(pattern).is_absolute():
        root, pattern = Path(pattern).anchor, str(Path(pattern).relative_to(Path(pattern).anchor))
        root = Path(root)
    for path in sorted_glob(root, pattern):
        metadata = (
            {source.path_metadata: path.relative_to(source.root).as_posix()}
            if (source.path_metadata and path.is_relative_to(source.root))
            else ({source.path_metadata: str(path)} if source.path_metadata else {})
        )
        yield str(path), metadata


# --- table ------------------------------------------------------------------------------
def _table_batches(path: Path) -> Iterator[list[dict[str, Any]]]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=_TABLE_BATCH):
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


def _table_items(source: SourceConfig) -> Iterator[SourceItem]:
    table = Path(source.value)
    for rows in _table_batches(table):
        for row in rows:
            if source.path_column not in row:
                raise ConfigError(
                    f"{table}: no column {source.path_column!r} (set source.path_column); "
                    f"columns: {list(row)}"
                )
            relative = str(row.pop(source.path_column))
            metadata = {k: _plain(v) for k, v in row.items()}
            if source.path_metadata:
                metadata[source.path_metadata] = relative
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
