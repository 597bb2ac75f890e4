"""Only acumen's built-ins and this distribution's entry point load, so whatever else is
installed cannot change a test's outcome."""

from __future__ import annotations

import os

os.environ["ACUMEN_PLUGINS"] = "builtin,image"

import pytest
from acumen import plugins

plugins.reload()


@pytest.fixture(autouse=True)
def _only_builtin_and_image(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin,image")
    plugins.reload()
    yield
    plugins.reload()
