"""Editing a written dataset's files by hand, as damage or a hostile author would.

A hostile author writes valid checksums: ``save_manifest`` seals the manifest it saves,
and ``reseal`` records the new checksums of edited files, so the checks behind the
checksums are tested too. Damage (a flipped byte) keeps the old checksums.
"""

from __future__ import annotations

import json
from pathlib import Path

from acumen.format.checksums import file_checksum, sealed


def manifest_of(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


def save_manifest(root: Path, manifest: dict) -> None:
    (root / "manifest.json").write_text(json.dumps(sealed(manifest)), encoding="utf-8")


def reseal(root: Path) -> None:
    """Record the current checksums of the files the manifest names, then seal it."""
    path = root / "manifest.json"
    if not path.is_file():
        return  # an original dataset: nothing records checksums
    manifest = manifest_of(root)
    files = manifest.get("files")
    if isinstance(files, dict):
        for name in files:
            if (root / name).is_file():
                files[name] = file_checksum(root / name)
    save_manifest(root, manifest)


def edit_index(root: Path, row: int, column: str, value: str) -> None:
    """Set one cell of index.csv as text."""
    import pandas as pd

    frame = pd.read_csv(root / "index.csv", dtype=str, keep_default_na=False)
    frame.loc[row, column] = value
    frame.to_csv(root / "index.csv", index=False, lineterminator="\n")
    reseal(root)
