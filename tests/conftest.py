"""Shared test set-up.

Only acumen's own plugins load (``ACUMEN_PLUGINS=builtin``), so whatever else is installed
on a machine cannot change a test's outcome; plugin tests widen it themselves.
"""

from __future__ import annotations

import json
import os
import sys
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


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh site directory on ``sys.path`` for throwaway plugin distributions
    (``tests.test_plugins.make_distribution``); their modules are forgotten afterwards."""
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    yield directory
    for name in [m for m in sys.modules if m.startswith("acumen_test")]:
        del sys.modules[name]
    # Back to acumen's own plugins before the shared fixture reloads them, so a broken
    # test plugin cannot warn during teardown.
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin")
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
