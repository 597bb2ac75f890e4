"""``acumen.open``: the one door from a path to a :class:`Dataset`.

Precedence, stated once: explicit arguments, then the manifest, then defaults. A folder
with ``manifest.json`` is an acumen dataset; one with only ``index.csv`` is an original
acumenindexer dataset, whose dtype and gzip flag the caller supplies (defaults: float16,
raw, as the original reader).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from acumen import plugins
from acumen.dataset import Dataset
from acumen.encoding import storage_dtype
from acumen.errors import DatasetNotFoundError, IncompleteDatasetError
from acumen.layout import MANIFEST_FILE, ORIGINAL_INDEX_FILE, WRITING_MARKER, resolve_inside
from acumen.manifest import Manifest
from acumen.plugins import PluginSpec
from acumen.validation import check_chunk_files, check_manifest_agrees, check_raw_sizes

DEFAULT_STORAGE = "mmap"
ORIGINAL_DEFAULT_DTYPE = np.float16


def open_dataset(
    path: str | os.PathLike[str],
    storage: PluginSpec | None = None,
    *,
    dtype: Any = None,
    codec: PluginSpec | None = None,
    use_gzip: bool | None = None,
    index_format: PluginSpec | None = None,
) -> Dataset:
    """Open the dataset at ``path`` (its folder, its manifest or its index file).

    ``storage`` picks how chunk bytes are read: ``"mmap"`` (default, zero-copy),
    ``"seek"`` (positional reads) or ``"memory"`` (chunks held in RAM). ``dtype``,
    ``codec`` / ``use_gzip`` and ``index_format`` override the manifest; for an original
    dataset, which has no manifest, they say what the original reader would be told.
    """
    root = _dataset_root(Path(path))
    codec = _codec_from_flags(codec, use_gzip)
    manifest_path = root / MANIFEST_FILE
    if manifest_path.is_file():
        manifest: Manifest | None = Manifest.load(manifest_path)
        asked_by = str(root)
        codec_plugin = plugins.codec(
            codec or manifest.codec, asked_by=asked_by, install_hint=manifest.install_hint("codec")
        )
        index_plugin = plugins.index_format(
            index_format or manifest.index,
            asked_by=asked_by,
            install_hint=manifest.install_hint("index"),
        )
        index_path = resolve_inside(root, manifest.index["file"], "index file")
        columns = manifest.metadata
        dtype = storage_dtype(dtype) if dtype is not None else manifest.dtype
    else:
        manifest = None
        codec_plugin = plugins.codec(codec or "raw")
        index_plugin = plugins.index_format(index_format or "csv")
        index_path = root / index_plugin.filename
        columns = None
        dtype = storage_dtype(dtype if dtype is not None else ORIGINAL_DEFAULT_DTYPE)
    table = index_plugin.read(index_path, columns)
    if manifest is not None:
        check_manifest_agrees(manifest_path, manifest, table)
    chunk_paths = [resolve_inside(root, name, "chunk file") for name in table.chunk_names]
    check_chunk_files(root, table, chunk_paths, manifest)
    if codec_plugin.is_identity:
        check_raw_sizes(index_path, table, dtype)
    backend = plugins.storage(storage or DEFAULT_STORAGE, [str(p) for p in chunk_paths])
    return Dataset(root, table, dtype, codec_plugin, backend, manifest)


def _dataset_root(path: Path) -> Path:
    if path.is_file() and path.name in (MANIFEST_FILE, ORIGINAL_INDEX_FILE, "index.parquet"):
        path = path.parent
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no such dataset (the path does not exist)")
    if not path.is_dir():
        raise DatasetNotFoundError(f"{path}: not a dataset folder")
    marker = path / WRITING_MARKER
    if marker.exists():
        try:
            who = json.loads(marker.read_text(encoding="utf-8"))
            writer = f" (writer pid {who.get('pid')} on {who.get('host')})"
        except (OSError, ValueError, AttributeError):
            writer = ""
        raise IncompleteDatasetError(
            f"{path}: incomplete dataset: a write started{writer} and did not finish "
            f"({WRITING_MARKER} is present, {MANIFEST_FILE} is not final); write it again"
        )
    if not (path / MANIFEST_FILE).is_file() and not (path / ORIGINAL_INDEX_FILE).is_file():
        raise DatasetNotFoundError(
            f"{path}: not a dataset: it has neither {MANIFEST_FILE} (acumen) nor "
            f"{ORIGINAL_INDEX_FILE} (original acumenindexer)"
        )
    return path


def _codec_from_flags(codec: PluginSpec | None, use_gzip: bool | None) -> PluginSpec | None:
    if use_gzip is None:
        return codec
    implied = "gzip" if use_gzip else "raw"
    if codec is not None:
        name = (
            codec if isinstance(codec, str) else getattr(codec, "name", None) or codec.get("name")
        )
        if name != implied:
            raise ValueError(f"use_gzip={use_gzip} contradicts codec={name!r}; give one of them")
    return codec or implied
