"""Atheris harness: random bytes as manifest.json.

``python tests/fuzz/fuzz_manifest.py -atheris_runs=20000``: ``Manifest.load`` returns a
Manifest or raises ManifestError, nothing else.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import _common  # noqa: F401
import atheris
import numpy  # noqa: F401  (not instrumented: acumen is)

with atheris.instrument_imports(include=["acumen"]):
    from acumen.errors import ManifestError
    from acumen.format.manifest import Manifest

PATH = Path(tempfile.mkdtemp(prefix="acumen-fuzz-")) / "manifest.json"


def one_input(data: bytes) -> None:
    PATH.write_bytes(data)
    with contextlib.suppress(ManifestError):
        Manifest.load(PATH)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
