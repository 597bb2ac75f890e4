"""``[source] huggingface = "folder"``: a dataset saved by ``datasets``' ``save_to_disk``.

Its layout is read directly, without importing ``datasets``: ``state.json`` lists the Arrow
files (``_data_files``, in order; ``load_from_disk`` concatenates them), each in Arrow's
stream format; a ``DatasetDict`` folder has ``dataset_dict.json`` (``{"splits": [...]}``)
and a folder per split. ``save_to_disk`` writes a selection or a shuffle with its rows in
place (no indices file), so the rows are the Arrow files' rows, in order. Each row becomes a
:class:`~acumen.convert.arrow_rows.Row`, for the ``column`` reader (or a ``callable`` one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from acumen.convert.arrow_rows import Row, count_rows, table_rows

STATE_FILE = "state.json"
DICT_FILE = "dataset_dict.json"


def saved_dataset(folder: Path, split: str | None) -> Path:
    """The folder of the saved dataset (a ``DatasetDict``'s split) that ``folder`` and
    ``split`` name; ValueError saying what is there otherwise."""
    if (folder / DICT_FILE).is_file():
        splits = _splits(folder)
        if split is None:
            raise ValueError(
                f"{folder} is a DatasetDict: choose a split with source.split; its splits: "
                f"{', '.join(splits)}"
            )
        if split not in splits:
            raise ValueError(f"{folder} has no split {split!r}; its splits: {', '.join(splits)}")
        folder = folder / split
    elif split is not None:
        raise ValueError(f"{folder} is one dataset, not a DatasetDict: leave source.split out")
    if not (folder / STATE_FILE).is_file():
        raise ValueError(
            f"{folder} is not a dataset saved with datasets' save_to_disk (no {STATE_FILE} "
            f"or {DICT_FILE} in it)"
        )
    for path in data_files(folder):
        if not path.is_file():
            raise ValueError(f"{folder}: {STATE_FILE} lists {path.name}, which is missing")
    return folder


def _splits(folder: Path) -> list[str]:
    try:
        splits = json.loads((folder / DICT_FILE).read_text(encoding="utf-8"))["splits"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{folder / DICT_FILE} does not parse: {error}") from None
    return [str(s) for s in splits]


def data_files(folder: Path) -> list[Path]:
    """The Arrow files of a saved dataset, in the order its rows are in."""
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        names = [entry["filename"] for entry in state["_data_files"]]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{folder / STATE_FILE} is not the state save_to_disk writes: {error}"
        ) from None
    return [folder / name for name in names]


def huggingface_rows(folder: Path, root: Path) -> Iterator[Row]:
    """The rows of the saved dataset in ``folder`` (checked by :func:`saved_dataset`), each
    numbered within its Arrow file (the item's position counts across files)."""
    for path in data_files(folder):
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        yield from table_rows(path, name)


def huggingface_count(folder: Path) -> int:
    """How many rows the saved dataset has (from the Arrow batches' headers)."""
    return sum(count_rows(path) for path in data_files(folder))
