"""Checks made once when a dataset opens, so damage is reported instead of returned.

All are vectorised over the index (a few numpy passes), so opening stays fast; the read
path then needs no per-sample checks for raw payloads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from acumen.errors import CorruptDatasetError
from acumen.index_table import IndexTable
from acumen.manifest import Manifest
from acumen.shapes import ShapeColumn


def check_chunk_files(
    root: Path, table: IndexTable, paths: list[Path], manifest: Manifest | None
) -> None:
    """Every chunk file exists, has the manifest's size, and holds every range the index names."""
    declared = {c.file: c.size_bytes for c in manifest.chunks} if manifest else {}
    file_sizes = np.zeros(len(paths), dtype=np.int64)
    for chunk_id, (name, path) in enumerate(zip(table.chunk_names, paths, strict=True)):
        try:
            file_sizes[chunk_id] = path.stat().st_size
        except FileNotFoundError:
            first = int(np.argmax(table.chunk_ids == chunk_id))
            raise CorruptDatasetError(
                f"{path}: chunk file is missing (sample {first} and others are in it)"
            ) from None
        if manifest is not None:
            if name not in declared:
                raise CorruptDatasetError(
                    f"{root}: the index names chunk {name!r}, which the manifest does not list"
                )
            if declared[name] != file_sizes[chunk_id]:
                raise CorruptDatasetError(
                    f"{path}: chunk file is {file_sizes[chunk_id]} bytes, the manifest says "
                    f"{declared[name]}: it was truncated or overwritten"
                )
    if len(table) == 0:
        return
    ends = table.offsets + table.sizes
    past = ends > file_sizes[table.chunk_ids]
    if np.any(past):
        sample = int(np.argmax(past))
        path = paths[table.chunk_ids[sample]]
        raise CorruptDatasetError(
            f"{path}: sample {sample} needs bytes {table.offsets[sample]}..{ends[sample]} but the "
            f"file has {file_sizes[table.chunk_ids[sample]]}: truncated chunk or wrong index"
        )


def _element_counts(index_path: Path, shapes: ShapeColumn, label: str) -> np.ndarray:
    try:
        return shapes.element_counts()
    except ValueError as error:
        raise CorruptDatasetError(f"{index_path}: {label}{error}") from None


def _check_uncompressed_sizes(
    index_path: Path,
    sizes: np.ndarray,
    shapes: ShapeColumn,
    dtype: np.dtype,
    label: str,
    hint: str = "",
) -> None:
    """Uncompressed payloads hold exactly elements x itemsize bytes, sample by sample."""
    expected = _element_counts(index_path, shapes, label) * dtype.itemsize
    wrong = sizes != expected
    if np.any(wrong):
        sample = int(np.argmax(wrong))
        raise CorruptDatasetError(
            f"{index_path}: sample {sample} {label}has {sizes[sample]} bytes, but shape "
            f"{shapes[sample]} of {dtype} needs {expected[sample]}{hint}"
        )


def check_raw_sizes(index_path: Path, table: IndexTable, dtype: np.dtype) -> None:
    """For uncompressed payloads, size must equal elements x itemsize for every sample."""
    _check_uncompressed_sizes(
        index_path,
        table.sizes,
        table.shapes,
        dtype,
        "",
        "; is the dtype right (original datasets do not record it: pass dtype=...)?",
    )


def check_shapes(index_path: Path, table: IndexTable) -> None:
    """Every shape's element count fits (a compressed sample's decoded size derives from it)."""
    _element_counts(index_path, table.shapes, "")


def check_field_sizes(index_path: Path, table: IndexTable, readers: list) -> None:
    """Field sizes add up to record sizes; uncompressed fields have shape x dtype bytes."""
    total = np.zeros(len(table), dtype=np.int64)
    for reader in readers:
        total += reader.sizes
        label = f"field {reader.name!r} "
        if reader.codec.is_identity:
            _check_uncompressed_sizes(index_path, reader.sizes, reader.shapes, reader.dtype, label)
        else:
            _element_counts(index_path, reader.shapes, label)
    wrong = total != table.sizes
    if np.any(wrong):
        sample = int(np.argmax(wrong))
        raise CorruptDatasetError(
            f"{index_path}: sample {sample}: field sizes add up to {total[sample]} bytes, "
            f"the record has {table.sizes[sample]}"
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
