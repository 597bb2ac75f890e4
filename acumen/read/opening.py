"""``acumen.open``: the one door from a path to a :class:`Dataset`.

Precedence, stated once: the manifest, which explicit arguments may only agree with, then
explicit arguments, then defaults. A folder with ``manifest.json`` is an acumen dataset; one
with only ``index.csv`` is an original acumenindexer dataset, whose dtype and gzip flag the
caller supplies (defaults: float16, raw, as the original reader).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acumen import plugins
from acumen.abc.codec import Codec
from acumen.errors import (
    CorruptDatasetError,
    DatasetNotFoundError,
    IncompleteDatasetError,
    quote,
)
from acumen.files.cache_dir import cache_root
from acumen.files.claim import owner_of, read_back_allowed
from acumen.files.remote import is_url, local_path
from acumen.format.dtypes import dtype_from_json, storage_dtype
from acumen.format.index_table import IndexTable
from acumen.format.layout import MANIFEST_FILE, ORIGINAL_INDEX_FILE, WRITING_MARKER, resolve_inside
from acumen.format.manifest import Manifest
from acumen.format.version_files import load_version, version_path
from acumen.index_formats.segments import read_index_file, read_version_table
from acumen.plugins import PluginSpec
from acumen.read.chunk_paths import locate_chunks
from acumen.read.dataset import Dataset
from acumen.read.file_checks import check_chunk_files, check_manifest_agrees, check_named_files
from acumen.read.index_checks import ChunkFiles
from acumen.read.overrides import OpenOverrides
from acumen.read.remote import RemoteMirror
from acumen.read.sample import FieldReader

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
    fields: Sequence[str] | None = None,
    verify: str | None = None,
    storage_options: dict[str, Any] | None = None,
    cache: str | os.PathLike[str] | None = None,
    cache_size: int | None = None,
    version: int | None = None,
) -> Dataset:
    """Open the dataset at ``path`` (its folder, its manifest or its index file, or a URL).

    ``storage`` picks how chunk bytes are read: ``"mmap"`` (default, zero-copy),
    ``"seek"`` (positional reads) or ``"memory"`` (chunks held in RAM). ``dtype``,
    ``codec`` / ``use_gzip`` and ``index_format`` are for an original dataset, which records
    none of them (what the original reader would be told); on a dataset with a manifest a
    value that disagrees with it is an :class:`ArgumentConflictError` (see
    :mod:`acumen.read.overrides`): convert with ``read(i).astype`` or ``acumen recode``.
    ``fields`` picks which fields of a multi-field dataset are read (only their bytes are).
    ``verify="chunk"`` checks each chunk file's checksum the first time it is read from;
    ``verify="sample"`` checks every sample read against its checksum in the index (datasets
    written with ``checksums="sample"``). The default, None, costs nothing on the read path;
    ``acumen verify`` checks everything.

    ``path`` may be a URL (``s3://``, ``gs://``, ``az://``, ``http(s)://``; ``file://`` and
    ``~`` name local paths): ``storage_options`` go to the store's filesystem (fsspec:
    credentials, ``endpoint_url``, ``anon``...), the manifest, index and codec resources are
    mirrored under ``cache`` (default ``$ACUMEN_CACHE`` or ``~/.cache/acumen``) and the
    chunks are read where they are, one ranged GET per sample (the ``remote`` storage).
    The bytes fetched are kept under ``cache``/chunks, shared by every process, at most
    ``cache_size`` bytes (default 10 GiB; 0: none kept on disk).

    ``version``: a dataset that changed (appends, deletes) keeps its versions; None opens
    the newest, a number that version (``acumen history`` lists them). The dataset keeps
    reading the version it opened while writers commit newer ones.
    """
    if verify not in (None, "chunk", "sample"):
        raise ValueError(f"verify must be None, 'chunk' or 'sample', got {verify!r}")
    asked = OpenOverrides.given(dtype, codec, use_gzip, index_format)
    if is_url(path):
        if verify == "chunk":
            raise ValueError(
                f"verify='chunk' would download every chunk file of {path}: use "
                "verify='sample' (datasets written with checksums='sample'), or check every "
                f"chunk object once, streamed: `acumen verify {path}`"
            )
        mirror = RemoteMirror.fetch(str(os.fspath(path)), storage_options, cache, asked, version)
        parts = _read_parts(mirror.root, asked, verify, mirror.manifest)
        chunk_paths, file_sizes = mirror.locate_chunks(parts.table.chunk_names)
        options = {
            "storage_options": dict(storage_options or {}),
            **_disk_cache(mirror, cache, cache_size, parts.table.chunk_names, file_sizes),
        }
        return _finish(
            mirror.root,
            parts,
            chunk_paths,
            file_sizes,
            storage or {"name": "remote", "configuration": options},
            asked,
            fields,
            verify,
            shown_as=mirror.url,
        )
    if storage_options is not None:
        raise ValueError(f"storage_options is for URLs (s3://, https://...), not {path!r}")
    root = _dataset_root(Path(local_path(path)))
    while True:
        parts = _read_parts(root, asked, verify, version=version)
        if parts.manifest is not None or not _written_meanwhile(root):
            break
    chunk_paths, file_sizes = locate_chunks(root, parts.table.chunk_names)
    return _finish(
        root, parts, chunk_paths, file_sizes, storage or DEFAULT_STORAGE, asked, fields, verify
    )


def _disk_cache(
    mirror: RemoteMirror, cache: Any, cache_size: int | None, names: list[str], sizes: np.ndarray
) -> dict[str, Any]:
    """The ``remote`` storage's disk cache: ``<cache>/chunks``, each chunk's version its size
    and checksum from the manifest (an original dataset: its size in the store)."""
    if cache_size is not None and cache_size <= 0:
        return {}
    checksums = {c.file: c.checksum for c in mirror.manifest.chunks} if mirror.manifest else {}
    versions = [
        "" if size < 0 else f"{size}:{checksums.get(name) or ''}"
        for name, size in zip(names, sizes.tolist(), strict=True)
    ]
    return {
        "disk_cache": str(cache_root(cache) / "chunks"),
        **({} if cache_size is None else {"disk_cache_bytes": int(cache_size)}),
        "chunk_versions": versions,
    }


@dataclass
class _Parts:
    """What the manifest (or, for an original dataset, the caller) says, and the index."""

    manifest: Manifest | None
    codec: Codec
    index_path: Path
    table: IndexTable
    dtype: Any


def _read_parts(
    root: Path,
    asked: OpenOverrides,
    verify: str | None,
    loaded: Manifest | None = None,
    version: int | None = None,
) -> _Parts:
    """``loaded``: the manifest of ``root`` when the caller has read it already (a remote
    dataset's mirror); ``version``: which version of a local dataset (None: the newest)."""
    manifest_path = root / MANIFEST_FILE
    if loaded is not None or manifest_path.exists():  # a manifest that is no file is refused
        if loaded is None:
            manifest_path = version_path(root, version)
        manifest = loaded if loaded is not None else load_version(root, path=manifest_path)
        asked_by = str(manifest_path.parent)
        codec_plugin = plugins.named_by(manifest, "codec", manifest_path, asked_by)
        index_plugin = plugins.named_by(manifest, "index", manifest_path, asked_by)
        asked.check_index_format(root, index_plugin, manifest.index["file"])
        if not manifest.fields:
            asked.check_array(root, manifest.dtype, codec_plugin)
        if manifest.versioned is not None:
            index_path, table = _read_version(root, manifest, index_plugin, verify)
            check_manifest_agrees(manifest_path, manifest, table)
            return _Parts(manifest, codec_plugin, index_path, table, manifest.dtype)
        index_path = resolve_inside(root, manifest.index["file"], "index file")
        # Before a parser reads it: a damaged index is refused by its checksum.
        check_named_files(
            root, manifest, [manifest.index["file"]], "index file", verify is not None
        )
        table = read_index_file(index_plugin, index_path, manifest.metadata)
        check_manifest_agrees(manifest_path, manifest, table)
        return _Parts(manifest, codec_plugin, index_path, table, manifest.dtype)
    if version not in (None, 1):
        raise DatasetNotFoundError(f"{root}: no version {version}: an original dataset has one")
    index_plugin = asked.original_index_format()
    index_path = root / index_plugin.filename
    table = read_index_file(index_plugin, index_path, None)
    dtype = storage_dtype(asked.dtype if asked.dtype is not None else ORIGINAL_DEFAULT_DTYPE)
    return _Parts(None, asked.original_codec(), index_path, table, dtype)


def _finish(
    root: Path,
    parts: _Parts,
    chunk_paths: list[str],
    file_sizes: np.ndarray,
    storage: PluginSpec,
    asked: OpenOverrides,
    fields: Sequence[str] | None,
    verify: str | None,
    shown_as: str | None = None,
) -> Dataset:
    """The checks every open makes once the index is read, then the Dataset. ``root`` is
    where the manifest, index and codec resources are (a remote dataset's mirror);
    ``shown_as`` is what messages call the dataset (its URL) when that differs."""
    manifest, table = parts.manifest, parts.table
    check_chunk_files(root, table, chunk_paths, file_sizes, manifest)
    parts.codec.open_resources(root)
    readers = _field_readers(root, manifest, table) if manifest and manifest.fields else []
    if readers:
        asked.check_fields(root, readers)
    if manifest is not None:
        resources = [name for name in manifest.files if name not in _index_files(manifest)]
        check_named_files(root, manifest, resources, "codec resource", verify is not None)
    return assemble(
        shown_as if shown_as is not None else root,
        parts.index_path,
        table,
        parts.dtype,
        parts.codec,
        storage,
        chunk_paths,
        file_sizes,
        manifest=manifest,
        field_readers=readers,
        fields=fields,
        verify=verify,
    )


def assemble(
    root: Path,
    index_path: Path,
    table: IndexTable,
    dtype: Any,
    codec: Codec,
    storage: PluginSpec,
    chunk_paths: list[str],
    file_sizes: np.ndarray,
    *,
    manifest: Manifest | None = None,
    field_readers: Sequence[FieldReader] = (),
    fields: Sequence[str] | None = None,
    verify: str | None = None,
) -> Dataset:
    """The :class:`Dataset` over an index and its chunk files (from :func:`locate_chunks`,
    checked), read with the ``storage`` plugin; the first block of index rows is checked at
    once, so that damage there is raised when the dataset is opened. ``acumen.open`` and
    :mod:`acumen.compat` build theirs here."""
    return Dataset(
        root,
        table,
        dtype,
        codec,
        plugins.storage(storage, chunk_paths),
        manifest,
        field_readers,
        fields,
        verify,
        ChunkFiles(index_path, chunk_paths, file_sizes),
        check_first_block=True,
    )


def _index_files(manifest: Manifest) -> set[str]:
    """The files of the index (hashed with it, not again as codec resources)."""
    info = manifest.versioned
    return {manifest.index["file"], *(info.index_files() if info is not None else [])}


def _read_version(
    root: Path, manifest: Manifest, index_plugin: Any, verify: str | None
) -> tuple[Path, IndexTable]:
    """A versioned dataset's index: segments and deletion vector checked against their
    checksums, then read (the path returned names the index in messages)."""
    info = manifest.versioned
    assert info is not None
    check_named_files(root, manifest, info.index_files(), "index segment", verify is not None)
    table = read_version_table(root, manifest, index_plugin)
    first = info.segments[0].file if info.segments else manifest.index["file"]
    return resolve_inside(root, first, "index segment"), table


def _written_meanwhile(root: Path) -> bool:
    """After an index was read as an original dataset's (no manifest): did a writer get
    there first? Its marker is present from before its index appears until after its
    manifest does, so a marker now means the index read is a writer's, not an original's
    (refused); a manifest now means the writer committed meanwhile (True: open it again).
    """
    _refuse_if_being_written(root)
    return (root / MANIFEST_FILE).exists()


def _field_readers(root: Path, manifest: Manifest, table: IndexTable) -> list[FieldReader]:
    declared = [entry["name"] for entry in manifest.fields or []]
    if declared != list(table.fields):
        raise CorruptDatasetError(
            f"{root / MANIFEST_FILE}: fields {quote(declared)} differ from the index's "
            f"{quote(list(table.fields))}"
        )
    readers = []
    for i, entry in enumerate(manifest.fields or []):
        name = entry["name"]
        codec = plugins.named_by(manifest, f"fields[{i}].codec", root / MANIFEST_FILE, str(root))
        codec.open_resources(root)
        columns = table.fields[name]
        readers.append(
            FieldReader(
                name,
                entry["type"],
                dtype_from_json(entry["dtype"]),
                codec,
                columns.sizes,
                columns.shapes,
            )
        )
    return readers


def _dataset_root(path: Path) -> Path:
    if path.is_file() and (
        path.name in (MANIFEST_FILE, ORIGINAL_INDEX_FILE) or path.name.startswith("index.")
    ):
        path = path.parent  # a dataset's manifest or index file stands for the dataset
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no such dataset (the path does not exist)")
    if not path.is_dir():
        raise DatasetNotFoundError(f"{path}: not a dataset folder")
    _refuse_if_being_written(path)
    if not (path / MANIFEST_FILE).exists() and not (path / ORIGINAL_INDEX_FILE).exists():
        raise DatasetNotFoundError(
            f"{path}: not a dataset: it has neither {MANIFEST_FILE} (acumen) nor "
            f"{ORIGINAL_INDEX_FILE} (original acumenindexer)"
        )
    return path


def _refuse_if_being_written(path: Path) -> None:
    owner = owner_of(path)
    if owner is not None and not read_back_allowed(path):
        who = f" (writer pid {owner.pid} on {owner.host})" if owner.pid is not None else ""
        raise IncompleteDatasetError(
            f"{path}: incomplete dataset: a write started{who} and did not "
            "finish "
            f"({WRITING_MARKER} is present, {MANIFEST_FILE} is not final); write it again"
        )
