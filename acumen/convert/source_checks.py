"""The config checks of the sources whose items are not files: a table's rows (the ``column``
reader), a saved Hugging Face dataset, webdataset shards; and which readers read them.

:func:`check_rows_and_shards` runs inside :func:`acumen.convert.config.load_config`; every
problem is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from acumen.files.remote import is_url

TABLE_SUFFIXES = (".csv", ".parquet", ".arrow", ".feather")
ROW_SUFFIXES = (".parquet", ".arrow", ".feather")  # tables whose rows are items (no CSV)
#: Readers that read a file (a path, or a file object) and so no row or webdataset sample.
FILE_READERS = ("npy", "image", "bytes")


def check_rows_and_shards(
    kind: str,
    value: str,
    source: dict[str, Any],
    reader: Any,
    base: Path,
    fail: Callable[[str, str], Exception],
) -> tuple[str, str | None]:
    """``(value, path_column)`` for the source: the saved dataset's folder (its split's) for
    ``huggingface``, and ``path_column`` None where the items are rows, not paths."""
    name = reader.get("name") if isinstance(reader, dict) else None
    path_column = source.get("path_column", "path")
    if "split" in source and kind != "huggingface":
        raise fail("source.split", "is for a huggingface source (a DatasetDict's split)")
    if name == "column" and kind not in ("table", "huggingface"):
        raise fail(
            "reader.name",
            "the column reader reads the rows of a source.table (Parquet or Arrow) or of a "
            f"source.huggingface, not of a source.{kind}",
        )
    if kind == "table":
        suffixes = ROW_SUFFIXES if name == "column" else TABLE_SUFFIXES
        if not value.lower().endswith(suffixes):
            rows = " (the column reader reads rows of arrays: no CSV)" if name == "column" else ""
            allowed = ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}"
            got = value if is_url(value) else Path(value).name
            raise fail("source.table", f"must be a {allowed} file{rows}, got {got}")
        if name == "column":
            if "path_column" in source:
                raise fail("source.path_column", "the column reader takes whole rows: leave it out")
            path_column = None
    elif kind in ("huggingface", "webdataset"):
        if is_url(value) or ("root" in source and is_url(str(source["root"]))):
            raise fail(f"source.{kind}", f"must be a local path for now, got {value}")
        if "path_column" in source:
            raise fail("source.path_column", f"is for a table source, not a {kind} one")
        wanted = "column" if kind == "huggingface" else "webdataset"
        if name in FILE_READERS or (name in ("column", "webdataset") and name != wanted):
            raise fail(
                "reader.name",
                f"a {kind} source's items are {'rows' if kind == 'huggingface' else 'samples'}"
                f", not files: use the {wanted} reader (or a callable one)",
            )
        if kind == "huggingface":
            from acumen.convert.huggingface import saved_dataset

            folder = Path(value) if Path(value).is_absolute() else base / value
            split = source.get("split")
            if split is not None and not isinstance(split, str):
                raise fail("source.split", f"must be a split's name, got {split!r}")
            try:
                value = str(saved_dataset(folder, split))
            except ValueError as error:
                raise fail("source.huggingface", str(error)) from None
            path_column = None
    return value, path_column
