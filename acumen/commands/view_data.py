"""What ``acumen view``'s JSON API answers, from an open dataset: the summary, pages of index
rows (filtered with ``ds.filter``'s query language, checked first), one sample's parts, a
thumbnail, a metadata column's histogram. Every argument arrives as text from a request and
is checked here; a bad one is a :class:`ViewError` (HTTP 400), never a traceback."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from acumen.commands.view_images import (
    describe,
    encoded_thumbnail,
    image_type,
    is_image,
    plain,
    thumbnail_png,
)
from acumen.errors import AcumenError
from acumen.read.query_check import QueryError, check_query

#: The most rows one page may ask for, the thumbnail sizes allowed, and how many filters'
#: results are kept.
MAX_PAGE = 500
THUMBNAIL_SIZES = range(16, 1025)
KEPT_FILTERS = 8
TOP_VALUES = 10
BINS = 20


class ViewError(AcumenError, ValueError):
    """A request the viewer cannot answer: a bad parameter, a filter it refuses."""


class Viewer:
    """A dataset as the viewer's pages ask for it; safe to call from the server's threads."""

    def __init__(self, ds: Any, path: str) -> None:
        self.ds = ds
        self.path = path
        self._lock = threading.Lock()  # reads, index checks and the filter cache
        self._filters: OrderedDict[str, np.ndarray] = OrderedDict()
        specs = ds.table.metadata.specs
        self.types = {spec.name: spec.type for spec in specs}
        self.numeric = [spec.name for spec in specs if spec.type in ("int", "float", "bool")]

    # --- arguments --------------------------------------------------------------------
    @staticmethod
    def number(text: str | None, name: str, low: int, high: int, default: int | None = None) -> int:
        """``text`` as a whole number in [low, high] (``default`` when absent)."""
        if text is None or text == "":
            if default is None:
                raise ViewError(f"{name} is missing")
            return default
        if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 20:
            raise ViewError(f"{name} is not a whole number: {text[:40]!r}")
        value = int(text)
        if not low <= value <= high:
            raise ViewError(f"{name} {value} is out of range [{low}, {high}]")
        return value

    def sample_position(self, text: str | None) -> int:
        if not len(self.ds):
            raise ViewError(f"{self.path} holds no samples")
        return self.number(text, "sample", 0, len(self.ds) - 1)

    def field(self, text: str | None) -> str | None:
        fields = [r.name for r in self.ds.field_readers]
        if not fields:
            if text:
                raise ViewError(f"{self.path} holds one array per sample: it has no fields")
            return None
        if text not in fields:
            raise ViewError(f"no field {str(text)[:40]!r}; the fields: {', '.join(fields)}")
        return text

    # --- answers ----------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        ds, manifest = self.ds, self.ds.manifest
        chunks = manifest.chunks if manifest is not None else []
        fields = [
            {
                "name": r.name,
                "type": r.type,
                "dtype": str(r.dtype) if r.type != "bytes" else "bytes",
                "codec": r.codec.name,
            }
            for r in ds.field_readers
        ]
        return {
            "path": self.path,
            "samples": len(ds),
            "dtype": str(ds.dtype) if ds.dtype is not None else None,
            "shape": list(ds.shape) if ds.shape is not None else None,
            "fields": fields,
            "codec": ds.codec.name,
            "index_format": manifest.index["name"] if manifest is not None else "csv (original)",
            "storage": ds.storage.name,
            "chunks": len(chunks) if manifest is not None else len(ds.table.chunk_names),
            "chunk_bytes": sum(c.size_bytes for c in chunks) or None,
            "columns": [{"name": n, "type": t} for n, t in self.types.items()],
            "version": ds.version,
            "acumen_version": manifest.acumen_version if manifest is not None else None,
        }

    def positions(self, expression: str | None) -> np.ndarray | None:
        """The positions ``expression`` keeps (None: every sample), cached by expression."""
        expression = (expression or "").strip()
        if not expression:
            return None
        with self._lock:
            if expression in self._filters:
                self._filters.move_to_end(expression)
                return self._filters[expression]
            try:
                check_query(expression, self.ds.columns, self.numeric)
                kept = self.ds.filter(expression).positions
            except QueryError as error:
                raise ViewError(str(error)) from None
            except ValueError as error:  # what pandas refused, as ds.filter words it
                raise ViewError(str(error).splitlines()[0]) from None
            self._filters[expression] = kept
            if len(self._filters) > KEPT_FILTERS:
                self._filters.popitem(last=False)
            return kept

    def rows(self, expression: str | None, offset: int, limit: int) -> dict[str, Any]:
        kept = self.positions(expression)
        total = len(self.ds) if kept is None else len(kept)
        page = range(offset, min(offset + limit, total))
        picked = list(page) if kept is None else kept[page.start : page.stop].tolist()
        table = self.ds.table
        rows = []
        with self._lock:
            for p in picked:
                metadata = {k: plain(v) for k, v in self.ds.metadata(p).items()}
                chunk, at, size = table.locate(p)
                rows.append(
                    {
                        "position": p,
                        "chunk": table.chunk_names[chunk],
                        "offset": at,
                        "size": size,
                        "shape": self._shape_text(p),
                        "metadata": metadata,
                    }
                )
        return {"total": total, "offset": offset, "limit": limit, "rows": rows}

    def _shape_text(self, p: int) -> str:
        table = self.ds.table
        if table.shapes is not None:
            return "x".join(map(str, table.shapes[p])) or "scalar"
        return ", ".join(
            f"{r.name} {'x'.join(map(str, table.fields[r.name].shapes[p])) or 'scalar'}"
            if r.type != "bytes"
            else f"{r.name} {int(table.fields[r.name].sizes[p])} B"
            for r in self.ds.field_readers
        )

    def sample(self, i: int) -> dict[str, Any]:
        """Sample ``i``'s parts (one, or one per field) as :func:`describe` gives them."""
        with self._lock:
            sample = self.ds.read(i)
            metadata = {k: plain(v) for k, v in self.ds.metadata(i).items()}
        parts = sample.items() if isinstance(sample, dict) else [(None, sample)]
        return {
            "position": i,
            "metadata": metadata,
            "parts": [self._part(name, value) for name, value in parts],
        }

    @staticmethod
    def _part(name: str | None, value: Any) -> dict[str, Any]:
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            kind = image_type(data)
            return {
                "field": name,
                "kind": "image" if kind else "bytes",
                "bytes": len(data),
                "type": kind,
                "head": data[:32].hex(" "),
            }
        return {"field": name, **describe(np.asarray(value))}

    def thumbnail(self, i: int, field: str | None, size: int) -> tuple[str, bytes]:
        """Sample ``i``'s image (``field``'s, in a dataset of fields) as (MIME type, bytes)."""
        with self._lock:
            value = self.ds.read(i, fields=[field]) if field else self.ds.read(i)
        if field:
            value = value[field]
        if isinstance(value, bytes | bytearray | memoryview):
            try:
                return encoded_thumbnail(bytes(value), size)
            except ValueError as error:
                raise ViewError(f"sample {i}: {error}") from None
        array = np.asarray(value)
        if not is_image(array):
            raise ViewError(f"sample {i} is not an image (uint8 (H, W), (H, W, 3) or (H, W, 4))")
        return "image/png", thumbnail_png(array, size)

    def histogram(self, column: str | None, expression: str | None) -> dict[str, Any]:
        """A column's histogram over the samples ``expression`` keeps: bins of numbers,
        counts of the most frequent values of strings and booleans."""
        if column not in self.types:
            raise ViewError(f"no metadata column {str(column)[:40]!r}")
        kept = self.positions(expression)
        values = self.ds.table.metadata.column(column)
        if kept is not None:
            values = values[kept]
        kind = self.types[column]
        answer: dict[str, Any] = {"column": column, "type": kind, "total": len(values)}
        if kind in ("int", "float"):
            numbers = values.astype(np.float64)
            finite = numbers[np.isfinite(numbers)]
            answer["missing"] = len(numbers) - len(finite)
            if not finite.size:
                return {**answer, "kind": "bins", "edges": [], "counts": []}
            low, high = float(finite.min()), float(finite.max())
            if kind == "int" and high - low < BINS:  # one bar per whole number
                edges = np.arange(low - 0.5, high + 1.5)
                answer["values"] = list(range(int(low), int(high) + 1))
            else:
                edges = np.linspace(low, high if high > low else low + 1, BINS + 1)
            counts, edges = np.histogram(finite, bins=edges)
            return {**answer, "kind": "bins", "edges": edges.tolist(), "counts": counts.tolist()}
        labels, counts = np.unique(np.asarray(values).astype(str), return_counts=True)
        order = np.argsort(-counts, kind="stable")[:TOP_VALUES]
        shown = int(counts[order].sum())
        return {
            **answer,
            "kind": "counts",
            "labels": labels[order].tolist(),
            "counts": counts[order].tolist(),
            "other": len(values) - shown,
            "distinct": len(labels),
        }
