"""Merging finished parts into one dataset without copying chunk bytes.

Chunk files are renamed into the output's ``chunks/`` with one global numbering (in part
order, so the index stays in source order); the parts' indexes are concatenated with the new
chunk names; then the manifest commits the dataset. The renames follow a plan written before
the first one, so a merge interrupted half way finishes when the conversion is run again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from acumen import plugins
from acumen.convert.parts import ConversionError, WriterSettings
from acumen.errors import CorruptDatasetError
from acumen.files.claim import Claim
from acumen.files.local import write_atomically
from acumen.format.dtypes import dtype_from_json
from acumen.format.fields import FieldSpec
from acumen.format.index_concat import concat_tables as join_tables
from acumen.format.index_table import FieldColumns, IndexTable
from acumen.format.layout import MANIFEST_FILE, chunk_file_name
from acumen.format.manifest import ChunkEntry, Manifest
from acumen.format.metadata import MetadataTable
from acumen.format.shapes import ShapeColumn
from acumen.write.commit import build_manifest, commit_dataset

PLAN_FILE = "merge-plan.json"


def merge_parts(
    output: Path, part_dirs: list[Path], settings: WriterSettings, state_dir: Path, claim: Claim
) -> Manifest:
    """Move the parts' chunk files into ``output`` and commit it (``claim`` is released)."""
    plan = move_chunks(output, part_dirs, state_dir)
    return _commit(output, plan["parts"], settings, claim)


def move_chunks(
    output: Path, part_dirs: list[Path], state_dir: Path, folder: str = "chunks"
) -> dict[str, Any]:
    """The parts' chunk files renamed into ``output/folder`` with one numbering, as planned
    (the plan is saved first: a rerun finishes the renames); the plan is returned."""
    plan_path = state_dir / PLAN_FILE
    if plan_path.is_file():
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
    else:
        plan = _plan(output, part_dirs, folder)
        write_atomically(plan_path, json.dumps(plan).encode("utf-8"))
    (output / folder).mkdir(parents=True, exist_ok=True)
    for source, target in plan["moves"]:
        if (output / source).exists():
            os.replace(output / source, output / target)
        elif not (output / target).exists():
            raise CorruptDatasetError(f"{output / source}: a part's chunk file is missing")
    return plan


def merge_uploaded(
    output: Path, part_dirs: list[Path], firsts: list[int], settings: WriterSettings, claim: Claim
) -> Manifest:
    """Commit ``output`` from the records of parts whose chunk files were uploaded under
    their final names, part ``k`` from chunk number ``firsts[k]`` (``claim`` is released).
    No chunk file is here: the manifest names them, the publication checks them."""
    parts, number = [], 0
    for directory, first in zip(part_dirs, firsts, strict=True):
        manifest = Manifest.load(directory / MANIFEST_FILE)
        if first != number:
            raise CorruptDatasetError(
                f"{directory}: its chunk files were uploaded from number {first}, where the "
                f"parts before it end at {number}"
            )
        renamed = {c.file: chunk_file_name(first + n) for n, c in enumerate(manifest.chunks)}
        number += len(manifest.chunks)
        parts.append({"directory": directory.relative_to(output).as_posix(), "chunks": renamed})
    return _commit(output, parts, settings, claim)


def _commit(
    output: Path, parts: list[dict[str, Any]], settings: WriterSettings, claim: Claim
) -> Manifest:
    """The parts' indexes as one, with their chunks' new names; then the commit."""
    index_format = plugins.index_format(settings.index_format)
    table, chunks = joined_parts(output, parts, settings)
    # The codecs with their trained resources opened: the manifest checksums each one (and
    # a publication uploads the files it names).
    codec = _opened(settings.codec, settings)
    fields, dtypes = _field_specs(settings)
    manifest = build_manifest(
        table, codec, index_format, chunks, settings.chunk_size_bytes, fields, dtypes
    )
    commit_dataset(output, table, index_format, manifest, claim)
    return manifest


def joined_parts(
    output: Path, parts: list[dict[str, Any]], settings: WriterSettings
) -> tuple[IndexTable, list[ChunkEntry]]:
    """The parts' indexes as one and their chunk files, under the names the plan gave."""
    tables, chunks, names = [], [], []
    for part in parts:
        directory = output / part["directory"]
        manifest = Manifest.load(directory / MANIFEST_FILE)
        table = plugins.index_format(manifest.index).read(
            directory / manifest.index["file"], manifest.metadata
        )
        renamed = part["chunks"]
        table.chunk_names = [renamed[name] for name in table.chunk_names]
        tables.append(table)
        names.append(part["directory"])
        chunks += [
            ChunkEntry(renamed[c.file], c.size_bytes, c.n_samples, c.checksum)
            for c in manifest.chunks
        ]
    return concat_tables(tables, settings, names), chunks


def _plan(output: Path, part_dirs: list[Path], folder: str) -> dict[str, Any]:
    moves, parts, number = [], [], 0
    for directory in part_dirs:
        manifest = Manifest.load(directory / MANIFEST_FILE)
        renamed = {}
        for entry in manifest.chunks:
            target = chunk_file_name(number, folder)
            number += 1
            moves.append([(directory / entry.file).relative_to(output).as_posix(), target])
            renamed[entry.file] = target
        parts.append({"directory": directory.relative_to(output).as_posix(), "chunks": renamed})
    return {"moves": moves, "parts": parts}


def _opened(spec: Any, settings: WriterSettings) -> Any:
    codec = plugins.codec(spec)
    codec.open_resources(Path(settings.resources_root))
    return codec


def _field_specs(settings: WriterSettings) -> tuple[list[FieldSpec] | None, list]:
    if settings.fields is None:
        dtype = dtype_from_json(settings.dtype) if settings.dtype is not None else None
        return None, [dtype]
    specs, dtypes = [], []
    for name, spec in settings.fields.items():
        dtype = dtype_from_json(spec["dtype"]) if spec.get("dtype") is not None else None
        specs.append(FieldSpec(name, spec["type"], dtype, _opened(spec["codec"], settings)))
        dtypes.append(dtype)
    return specs, dtypes


def concat_tables(
    tables: list[IndexTable], settings: WriterSettings, part_names: list[str] | None = None
) -> IndexTable:
    """One index from the parts' indexes (their chunk names already global)."""
    names = part_names or [f"part {n}" for n in range(len(tables))]
    _check_metadata([t.metadata for t in tables], names)
    field_names = list(settings.fields) if settings.fields is not None else None
    if not tables:
        return IndexTable(
            [],
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            None if field_names else ShapeColumn(0),
            MetadataTable.empty(0),
            {
                name: FieldColumns(np.zeros(0, np.int64), ShapeColumn(0))
                for name in field_names or []
            },
        )
    return join_tables(tables, field_names, names)


def _check_metadata(tables: list[MetadataTable], part_names: list[str]) -> None:
    """The parts share the columns the conversion's
    first item fixed, so they agree; parts written by an acumen that did not fix them may
    not, and then no column is converted to agree: an int column made float would read
    ``1`` back as ``1.0`` for every sample of the int parts."""
    filled = [  # a part whose items were all skipped has no rows
        (table, name) for table, name in zip(tables, part_names, strict=True) if len(table)
    ]
    if not filled:
        return
    first, first_name = filled[0]
    for table, name in filled[1:]:
        if table.specs != first.specs:
            raise ConversionError(
                f"the parts' metadata columns differ: {first_name} has {_describe(first)}, "
                f"{name} has {_describe(table)}; the reader (or source) gave other keys or "
                "types for some items. Make every item's metadata have the same keys and types "
                "(floats as 1.0, not 1), remove the output folder and run the conversion again"
            )


def _describe(table: MetadataTable) -> str:
    return ", ".join(f"{spec.name!r} ({spec.type})" for spec in table.specs) or "no columns"
