"""Shared test set-up.

Only acumen's own plugins load (``ACUMEN_PLUGINS=builtin``), so whatever else is installed
on a machine cannot change a test's outcome; plugin tests widen it themselves.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ["ACUMEN_PLUGINS"] = "builtin"

import numpy as np
import pytest

from acumen import plugins

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "original"
CODECS = ("raw", "gzip", "zstd", "lz4")
STORAGES = ("seek", "mmap", "memory")
INDEX_FORMATS = ("csv", "parquet", "arrow")


@pytest.fixture(autouse=True)
def _builtin_plugins_only(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin")
    plugins.reload()
    yield
    plugins.reload()


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def load_fixture(name: str) -> tuple[Path, dict, list[np.ndarray], list[dict]]:
    """(folder, params, expected arrays, expected metadata with None for NaN)."""
    folder = FIXTURES / name
    params = json.loads((folder / "params.json").read_text())
    with np.load(folder / "expected.npz") as npz:
        arrays = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    meta = json.loads((folder / "expected_meta.json").read_text(encoding="utf-8"))
    return folder, params, arrays, meta
