"""What ``acumen info`` says about a dataset, as a JSON-able dict: schema, plugins, sizes,
chunks, metadata statistics and versions. Everything comes from the manifest, the index
and file sizes: no sample's payload is read, so it stays fast on millions of samples."""

from __future__ import annotations

import os
import stat
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from acumen.files.remote import is_url
from acumen.format.shapes import ShapeColumn
from acumen.read.dataset import Dataset

#: How many of the most common values of a text column are shown, and how many versions.
COMMON_VALUES = 3
LAST_VERSIONS = 5


def summarize(
    ds: Dataset, path: str | os.PathLike[str], storage_options: dict | None = None
) -> dict[str, Any]:
    """The summary of ``ds`` (opened from ``path``): ``samples`` first, then the rest."""
    manifest = ds.manifest
    table = ds.table
    n = len(ds)
    summary: dict[str, Any] = {"path": str(path), "samples": n}
    if ds.field_readers:
        summary["dtype"] = summary["shape"] = summary["codec"] = None
        summary["fields"] = [
            {
                "name": r.name,
                "type": r.type,
                "dtype": None if r.type == "bytes" else str(r.dtype),
                "codec": r.codec.get_config(),
                "shape": shape_summary(r.shapes),
            }
            for r in ds.field_readers
        ]
        raw = sum(raw_bytes(r.shapes, r.dtype.itemsize) for r in ds.field_readers)
    else:
        assert table.shapes is not None and ds.dtype is not None
        summary["dtype"] = str(ds.dtype)
        summary["shape"] = shape_summary(table.shapes)
        summary["codec"] = ds.codec.get_config()
        summary["fields"] = None
        raw = raw_bytes(table.shapes, ds.dtype.itemsize)
    if manifest is not None:
        summary["index"] = dict(manifest.index)
        summary["written_by"] = {
            "acumen_version": manifest.acumen_version,
            "format_version": manifest.format_version,
        }
    else:
        summary["index"] = {"name": "csv", "configuration": {}, "file": "index.csv"}
        summary["written_by"] = None  # the original acumenindexer: no manifest
    summary["storage"] = ds.storage.name
    chunk_sizes = np.asarray(ds.chunk_files.sizes, dtype=np.int64)
    summary["size"] = _size(path, ds, int(chunk_sizes.sum()), raw)
    summary["chunks"] = _chunks(table.chunk_ids, chunk_sizes, manifest)
    summary["metadata"] = [
        {"name": spec.name, "type": spec.type, **column_stats(spec.type, raw_column(ds, spec.name))}
        for spec in table.metadata.specs
    ]
    summary["versions"] = _versions(ds, path, storage_options)
    return summary


def shape_summary(shapes: ShapeColumn) -> dict[str, Any]:
    """``{"fixed": [...]}``, or each axis's ``min`` and ``max`` (one number of dimensions),
    or the range of the number of dimensions (``ndim_min``, ``ndim_max``)."""
    if shapes.fixed is not None:
        return {"fixed": list(shapes.fixed)}
    parts = shapes.parts()
    if parts is None:  # the number of dimensions varies
        offsets, _ = shapes.to_ragged()
        lengths = np.diff(offsets)
        return {"ndim_min": int(lengths.min()), "ndim_max": int(lengths.max())}
    template, values = parts
    assert values is not None
    values = values.reshape(len(values), -1)
    low, high = list(template), list(template)
    for k, axis in enumerate(j for j, d in enumerate(template) if d is None):
        column = values[:, k]
        low[axis], high[axis] = int(column.min()), int(column.max())
    return {"min": low, "max": high}


def shape_text(shape: dict[str, Any]) -> str:
    """``(2, 3)``, ``(1..512, 3)`` (an axis's range) or ``2 to 3 dimensions``."""
    if "fixed" in shape:
        return str(tuple(shape["fixed"]))
    if "ndim_min" in shape:
        return f"{shape['ndim_min']} to {shape['ndim_max']} dimensions"
    axes = [
        str(low) if low == high else f"{low}..{high}"
        for low, high in zip(shape["min"], shape["max"], strict=True)
    ]
    return f"({', '.join(axes)}{',' if len(axes) == 1 else ''})"


def raw_bytes(shapes: ShapeColumn, itemsize: int) -> int:
    """The bytes of every array as numpy holds them (element counts from the index)."""
    n = len(shapes)
    if shapes.fixed is not None:
        return n * int(np.prod(shapes.fixed, dtype=np.int64)) * itemsize
    total = 0
    block = 1 << 20  # bounded memory at any size
    for start in range(0, n, block):
        counts, _ = shapes.counts_of(start, min(n, start + block))
        total += int(counts.sum())
    return total * itemsize


def raw_column(ds: Dataset, name: str) -> Any:
    return ds.table.metadata.raw_column(name)


def column_stats(kind: str, column: Any) -> dict[str, Any]:
    """A few statistics of a metadata column: numbers' min/max/mean, booleans' share true,
    texts' distinct count and most common values."""
    if len(column) == 0:
        return {}
    if kind == "bool":
        return {"share_true": float(np.asarray(column, dtype=np.bool_).mean())}
    if kind in ("int", "float"):
        values = np.asarray(column)
        stats: dict[str, Any] = {}
        if kind == "float":
            nan = np.isnan(values)
            if nan.any():
                stats["nan"] = int(nan.sum())
                values = values[~nan]
                if not len(values):
                    return stats
        cast = int if kind == "int" else float
        low, high = cast(values.min()), cast(values.max())
        return {"min": low, "max": high, "mean": float(values.mean(dtype=np.float64)), **stats}
    values, counts = _value_counts(column)
    order = np.argsort(-counts, kind="stable")[:COMMON_VALUES]
    common = [[str(values[k]), int(counts[k])] for k in order]
    return {"distinct": len(values), "most_common": common}


def _value_counts(column: Any) -> tuple[Any, np.ndarray]:
    """Each distinct text and how many rows hold it, counted in C (Arrow or pandas)."""
    if hasattr(column, "__arrow_array__"):  # an Arrow column: counted where it lies
        import pyarrow.compute as pc

        counted = pc.value_counts(column.__arrow_array__())
        values = counted.field("values")
        if hasattr(values, "dictionary_decode"):
            values = values.dictionary_decode()
        return values.to_pylist(), np.asarray(counted.field("counts"), dtype=np.int64)
    import pandas as pd

    counted = pd.Series(np.asarray(column), copy=False).value_counts(sort=False)
    return counted.index.tolist(), counted.to_numpy(dtype=np.int64)


def _size(path: Any, ds: Dataset, chunk_bytes: int, raw: int) -> dict[str, Any]:
    """Bytes on disk (every file of a local folder; a URL's chunk files as the manifest
    lists them: listing a store is not cheap) and their ratio to the arrays' raw bytes."""
    if is_url(path):
        total, what = chunk_bytes, "chunk files, as the manifest lists them"
    else:
        total, what = folder_bytes(Path(ds.root)), "every file in the folder"
    return {
        "bytes": total,
        "counted": what,
        "chunk_bytes": chunk_bytes,
        "raw_bytes": raw,
        "ratio": round(total / raw, 4) if raw else None,
    }


def folder_bytes(root: Path) -> int:
    """The bytes of the regular files under ``root`` (links not followed)."""
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            try:
                status = os.lstat(os.path.join(folder, name))
            except OSError:  # removed meanwhile
                continue
            if stat.S_ISREG(status.st_mode):  # (one lstat: a link is not followed)
                total += status.st_size
    return total


def _chunks(chunk_ids: np.ndarray, sizes: np.ndarray, manifest: Any) -> dict[str, Any]:
    count = len(sizes)
    per_chunk = np.bincount(chunk_ids, minlength=count) if count else np.zeros(0, np.int64)
    found: dict[str, Any] = {
        "count": count,
        "target_bytes": manifest.chunk_size_bytes if manifest is not None else None,
    }
    if count:
        found.update(
            min_bytes=int(sizes.min()),
            median_bytes=int(np.median(sizes)),
            max_bytes=int(sizes.max()),
            min_samples=int(per_chunk.min()),
            max_samples=int(per_chunk.max()),
        )
    return found


def _versions(ds: Dataset, path: Any, storage_options: dict | None) -> dict[str, Any] | None:
    """The current version, how many there are, and the last few; None for a dataset that
    never changed."""
    if ds.manifest is None or ds.manifest.versioned is None:
        return None
    from acumen.versions.history import history

    entries = history(path, storage_options=storage_options)
    return {
        "current": ds.version,
        "count": len(entries),
        "last": [asdict(entry) for entry in entries[-LAST_VERSIONS:]],
    }
