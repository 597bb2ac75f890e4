"""Checks made once when a dataset opens, each O(chunk files), not O(samples).

The index rows are checked block by block when first read (:mod:`acumen.read.index_checks`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from acumen.errors import CorruptDatasetError, quote
from acumen.files.local import stat_regular
from acumen.format.checksums import file_checksum
from acumen.format.index_table import IndexTable
from acumen.format.layout import resolve_inside
from acumen.format.manifest import Manifest


def check_chunk_files(
    root: Path,
    table: IndexTable,
    paths: list[str],
    sizes: np.ndarray,
    manifest: Manifest | None,
) -> None:
    """Every chunk file exists (``sizes`` -1 where missing) and has the manifest's size."""
    declared = {c.file: c.size_bytes for c in manifest.chunks} if manifest else {}
    for chunk_id, (name, path, size) in enumerate(
        zip(table.chunk_names, paths, sizes.tolist(), strict=True)
    ):
        if size < 0:
            first = int(np.argmax(table.chunk_ids == chunk_id))
            raise CorruptDatasetError(
                f"{path}: chunk file is missing (sample {first} and others are in it)"
            )
        if manifest is not None:
            if name not in declared:
                raise CorruptDatasetError(
                    f"{root}: the index names chunk {quote(name)}, which the manifest does not list"
                )
            if declared[name] != size:
                raise CorruptDatasetError(
                    f"{path}: chunk file is {size} bytes, the manifest says "
                    f"{declared[name]}: it was truncated or overwritten"
                )


def check_manifest_agrees(manifest_path: Path, manifest: Manifest, table: IndexTable) -> None:
    if manifest.n_samples != len(table):
        raise CorruptDatasetError(
            f"{manifest_path}: n_samples is {manifest.n_samples}, the index has {len(table)} rows"
        )
    if (
        manifest.shape is not None
        and len(table)
        and table.shapes is not None
        and table.shapes.fixed != manifest.shape
    ):
        raise CorruptDatasetError(
            f"{manifest_path}: shape is {list(manifest.shape)}, but the index holds other shapes"
        )


#: Files the manifest names (the index, codec resources) are hashed at every open while
#: they add up to at most this many bytes (~3 ms at XXH3's speed); larger ones are hashed
#: by ``acumen verify`` and by ``acumen.open(..., verify=...)``.
HASH_AT_OPEN_BYTES = 32 << 20


def check_named_files(
    root: Path, manifest: Manifest, names: list[str], what: str, everything: bool
) -> None:
    """Each of ``names`` whose checksum the manifest records (the index, a dictionary)
    matches it: always when they are small, whatever their size when ``everything``."""
    recorded = [name for name in names if name in manifest.files]
    paths = {name: resolve_inside(root, name, what) for name in recorded}
    sizes = {}
    for name, path in paths.items():
        try:
            sizes[name] = stat_regular(path, what).st_size
        except FileNotFoundError:
            raise CorruptDatasetError(f"{path}: {what} is missing") from None
    if not everything and sum(sizes.values()) > HASH_AT_OPEN_BYTES:
        return
    for name, path in paths.items():
        actual = file_checksum(path, what)
        if actual != manifest.files[name]:
            raise CorruptDatasetError(
                f"{path}: checksum {actual} differs from the manifest's "
                f"{manifest.files[name]}: the file was damaged or changed after it was written"
            )
