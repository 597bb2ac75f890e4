"""Checks made once when a dataset opens, so damage is reported instead of returned.

All are vectorised over the index, so opening stays fast; the read path then needs no
per-sample checks for raw payloads. Large columns are checked in blocks that stay in the
CPU cache (no temporary the size of the index), and every sum or product is computed so
that it cannot wrap around int64 (an index claiming huge values is reported, not read).
"""

from __future__ import annotations

import math
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
    sample = _first_past_end(table.chunk_ids, table.offsets, table.sizes, file_sizes)
    if sample >= 0:
        chunk = int(table.chunk_ids[sample])
        offset, size = int(table.offsets[sample]), int(table.sizes[sample])
        raise CorruptDatasetError(
            f"{paths[chunk]}: sample {sample} needs bytes {offset}..{offset + size} but the "
            f"file has {file_sizes[chunk]}: truncated chunk or wrong index"
        )


_BLOCK = 1 << 15  # samples per block: a few hundred KiB of temporaries, cache-resident


def _first_past_end(
    chunk_ids: np.ndarray, offsets: np.ndarray, sizes: np.ndarray, file_sizes: np.ndarray
) -> int:
    """The first sample whose range ends past its chunk file, or -1.

    ``offset > file_size - size`` rather than ``offset + size > file_size``: offsets, sizes
    and file sizes are non-negative int64, so the difference cannot wrap around."""
    n = len(offsets)
    limits = np.empty(min(n, _BLOCK), dtype=np.int64)
    past = np.empty(min(n, _BLOCK), dtype=np.bool_)
    for start in range(0, n, _BLOCK):
        end = min(n, start + _BLOCK)
        limit, mask = limits[: end - start], past[: end - start]
        np.take(file_sizes, chunk_ids[start:end], out=limit)
        np.subtract(limit, sizes[start:end], out=limit)
        np.greater(offsets[start:end], limit, out=mask)
        if mask.any():
            return start + int(np.argmax(mask))
    return -1


def _check_counts(index_path: Path, shapes: ShapeColumn, label: str) -> None:
    try:
        shapes.check_element_counts()
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
    _check_counts(index_path, shapes, label)
    sample = _first_wrong_size(sizes, shapes, dtype.itemsize)
    if sample >= 0:
        expected = math.prod(shapes[sample]) * dtype.itemsize
        raise CorruptDatasetError(
            f"{index_path}: sample {sample} {label}has {sizes[sample]} bytes, but shape "
            f"{shapes[sample]} of {dtype} needs {expected}{hint}"
        )


def _first_wrong_size(sizes: np.ndarray, shapes: ShapeColumn, itemsize: int) -> int:
    """The first sample whose size is not its element count x ``itemsize``, or -1 (element
    counts are known to be at most 2**62)."""
    n = len(sizes)
    if n == 0:
        return -1
    shared, per_sample = shapes.element_count_parts()
    if per_sample is None:  # one shape: every size is the same number
        expected = shared * itemsize
        if int(sizes.min()) == expected == int(sizes.max()):
            return -1
        return int(np.argmax(sizes != expected))
    factor = shared * itemsize
    if per_sample.dtype == np.int64 and factor and int(per_sample.max()) > (2**63 - 1) // factor:
        # Products beyond int64: exact Python integers (only a hostile index gets here).
        expected_exact = per_sample.astype(object) * factor
        return int(np.argmax(sizes.astype(object) != expected_exact))
    expected = np.empty(min(n, _BLOCK), dtype=np.int64)
    wrong = np.empty(min(n, _BLOCK), dtype=np.bool_)
    for start in range(0, n, _BLOCK):
        end = min(n, start + _BLOCK)
        block, mask = expected[: end - start], wrong[: end - start]
        np.multiply(per_sample[start:end], factor, out=block, dtype=np.int64)
        np.not_equal(sizes[start:end], block, out=mask)
        if mask.any():
            return start + int(np.argmax(mask))
    return -1


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
    _check_counts(index_path, table.shapes, "")


def check_field_sizes(index_path: Path, table: IndexTable, readers: list) -> None:
    """Field sizes add up to record sizes; uncompressed fields have shape x dtype bytes."""
    total = np.zeros(len(table), dtype=np.int64)
    for reader in readers:
        total += reader.sizes
        label = f"field {reader.name!r} "
        if reader.codec.is_identity:
            _check_uncompressed_sizes(index_path, reader.sizes, reader.shapes, reader.dtype, label)
        else:
            _check_counts(index_path, reader.shapes, label)
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
