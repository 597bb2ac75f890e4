"""Shared set-up of the atheris harnesses (not collected by pytest: no test_ names)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("ACUMEN_PLUGINS", "builtin")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root


def small_dataset(codec: str, index_format: str) -> Path:
    """A four-sample dataset in a fresh temporary folder."""
    import numpy as np

    import acumen

    root = Path(tempfile.mkdtemp(prefix="acumen-fuzz-")) / "ds"
    with acumen.Writer(root, codec=codec, index_format=index_format, durable=False) as writer:
        for i in range(4):
            writer.add(np.full((2, 3), i, np.int32), i=i, name=f"s{i}")
    return root
