"""Finishing a dataset: its manifest is built from what was written, then committed.

Shared by :class:`acumen.Writer` and by the merge of a conversion's parts: the index goes
to a temporary name and is renamed, then ``manifest.json`` is written atomically (the commit
point), then the writing marker is removed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from acumen import plugins
from acumen.abc.codec import Codec
from acumen.abc.index_format import IndexFormat
from acumen.files.claim import Claim
from acumen.files.local import (
    fsync_directory,
    replace_durably,
    write_atomically,
    write_failed,
    writing,
)
from acumen.format.checksums import bytes_checksum, file_checksum
from acumen.format.index_table import IndexTable
from acumen.format.layout import resolve_inside
from acumen.format.manifest import ChunkEntry, Manifest


def build_manifest(
    table: IndexTable,
    codec: Codec,
    index_format: IndexFormat,
    chunks: list[ChunkEntry],
    chunk_size_bytes: int,
    fields: list | None,
    dtypes: list[np.dtype | None],
) -> Manifest:
    """The manifest of a dataset whose index is ``table``; ``fields`` are FieldSpecs."""
    dtype = dtypes[0] if len(dtypes) == 1 and dtypes[0] is not None else np.dtype("<f2")
    return Manifest(
        n_samples=len(table),
        dtype=dtype,
        shape=table.shapes.fixed if len(table) and table.shapes is not None else None,
        codec=codec.get_config(),
        index={**index_format.get_config(), "file": index_format.filename},
        chunks=chunks,
        chunk_size_bytes=chunk_size_bytes,
        metadata=table.metadata.specs,
        plugins=_provenances(codec, index_format, fields),
        fields=_field_entries(fields, dtypes, table) if fields is not None else None,
        files=_resource_checksums([codec, *(spec.codec for spec in fields or [])]),
    )


def commit_dataset(
    root: Path,
    table: IndexTable,
    index_format: IndexFormat,
    manifest: Manifest,
    claim: Claim,
    read_back: Callable[[Path], None] | None = None,
) -> None:
    """Index (renamed into place), then manifest (atomic, with the index's checksum), then
    the claim's marker goes.

    ``read_back(root)`` runs between the manifest and the marker's removal, allowed to
    open the dataset: if it raises (or the process dies), the folder stays incomplete.
    """
    index_file = index_format.filename
    temporary = root / f".{index_file}.tmp-{os.getpid()}"
    try:
        index_format.write(table, temporary)
        manifest.files[index_file] = file_checksum(temporary, "index file")
        replace_durably(temporary, root / index_file)
    except OSError as error:  # a full disk: no partial index left behind
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise write_failed(root, temporary, error) from error
    manifest.write(root)
    if read_back is not None:
        with claim.reading_back():
            read_back(root)
    claim.release()
    fsync_directory(root)


def _resource_checksums(codecs: list[Codec]) -> dict[str, str]:
    """The checksum of every file the codecs keep in the dataset (trained dictionaries)."""
    return {
        relative: bytes_checksum(data)
        for codec in codecs
        for relative, data in codec.resources().items()
    }


def _field_entries(fields: list, dtypes: list, table: IndexTable) -> list[dict[str, Any]]:
    entries = []
    for spec, dtype in zip(fields, dtypes, strict=True):
        shapes = table.fields[spec.name].shapes
        settled = type(spec)(spec.name, spec.type, dtype or np.dtype("<f2"), spec.codec)
        entries.append(settled.to_json(shapes.fixed if len(table) else None))
    return entries


def _provenances(codec: Codec, index_format: IndexFormat, fields: list | None) -> dict[str, Any]:
    found = {
        "codec": _provenance("codec", codec.name),
        "index": _provenance("index_format", index_format.name),
    }
    for spec in fields or []:
        found[f"codec:{spec.codec.name}"] = _provenance("codec", spec.codec.name)
    return found


def _provenance(kind: str, name: str) -> dict[str, str | None]:
    registration = plugins.registry().entries(kind).get(name)
    if registration is None:
        return {"distribution": None, "version": None}
    return {"distribution": registration.distribution, "version": registration.version}


def write_resource(path: Path, data: bytes, dataset: Path) -> None:
    """A file a plugin keeps in the dataset (a codec's dictionary), written durably and
    atomically: a write cut short (a full disk) never leaves a shorter file under its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data, dataset)


def store_resources(root: Path, codecs: list) -> None:
    """Write the files the codecs keep (trained dictionaries) into ``root``, once each; a
    file there with other bytes (an earlier run's) is replaced: the codecs' are the ones
    their frames need."""
    for codec in codecs:
        for relative, data in codec.resources().items():
            path = resolve_inside(root, relative, "codec resource")
            if not path.is_file() or path.read_bytes() != data:
                with writing(root, path):
                    write_resource(path, data, root)
