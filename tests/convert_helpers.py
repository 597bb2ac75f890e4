"""Importable helpers for the conversion tests (sources, readers named in configs as
``tests.convert_helpers:NAME``; worker processes import them by that name)."""

from __future__ import annotations

# --- helpers for tests/test_convert.py and tests/test_convert_real_data.py -----------------
# (callable sources and readers named in conversion configs)
from pathlib import Path as _Path
from typing import Any as _Any

import numpy as _np


def numbered_items(count: int = 3, prefix: str = "item") -> _Any:
    """A callable source: a generator of items that are not paths."""
    for number in range(count):
        yield f"{prefix}-{number}"


def read_numbered(item: str) -> tuple[_np.ndarray, dict[str, _Any]]:
    """A callable reader for :func:`numbered_items`: a small array made from the item."""
    number = int(item.rsplit("-", 1)[1])
    return _np.arange(number + 1, dtype=_np.int32) * 3, {"name": item, "number": number}


def read_image_and_mask(path: str) -> tuple[dict[str, _np.ndarray], dict[str, _Any]]:
    """A callable reader returning two fields from one .npy file, and metadata of its own."""
    image = _np.load(path, allow_pickle=False)
    return {"image": image, "mask": (image > 0).astype(_np.uint8)}, {
        "positive": int((image > 0).sum())
    }


def read_with_stem(path: str) -> tuple[_np.ndarray, dict[str, _Any]]:
    """A callable reader adding metadata to the source's (the file's stem)."""
    return _np.load(path, allow_pickle=False), {"stem": _Path(path).stem}


def leave_marker(path: str) -> str:
    """Called only if a pickle is loaded: proves the npy reader never unpickles."""
    _Path(path).write_text("unpickled")
    return path


class Booby:
    """An object whose pickle calls :func:`leave_marker` when loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (leave_marker, (self.marker,))


NOT_CALLABLE = 42


# --- helpers for tests/test_convert_dask.py -----------------------------------------------
# (readers run on Dask workers, which import them by name; no state shared with the driver
# but the files they read, so a test changes a reader's behaviour with a marker file)


def read_npy_unless_marked(path: str) -> tuple[_np.ndarray, dict[str, _Any]]:
    """A callable reader that fails for ``X.npy`` while a file ``X.npy.fail`` exists."""
    if _Path(path + ".fail").exists():
        raise OSError(f"marked as failing: {_Path(path).name}")
    return _np.load(path, allow_pickle=False), {}


# --- helpers for tests/test_convert_settings.py --------------------------------------------


def read_npy_slowly_with_pid(path: str) -> tuple[_np.ndarray, dict[str, _Any]]:
    """A slow callable reader (2 ms an item) that records which process read the item."""
    import os
    import time

    time.sleep(0.002)
    return _np.load(path, allow_pickle=False), {"pid": os.getpid()}


def read_npy_or_stop(path: str) -> tuple[_np.ndarray, dict[str, _Any]]:
    """A callable reader that fails for ``X.npy`` while ``X.npy.fail`` exists, and
    interrupts the conversion (as Ctrl-C would) while ``X.npy.stop`` exists."""
    if _Path(path + ".stop").exists():
        raise KeyboardInterrupt(f"stopped at {_Path(path).name}")
    return read_npy_unless_marked(path)
