"""Editing a written dataset's files by hand, as damage or a hostile author would."""

from __future__ import annotations

import json
from pathlib import Path


def manifest_of(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


def save_manifest(root: Path, manifest: dict) -> None:
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def edit_index(root: Path, row: int, column: str, value: str) -> None:
    """Set one cell of index.csv as text."""
    import pandas as pd

    frame = pd.read_csv(root / "index.csv", dtype=str, keep_default_na=False)
    frame.loc[row, column] = value
    frame.to_csv(root / "index.csv", index=False, lineterminator="\n")
