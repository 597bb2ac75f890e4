"""Per-sample shapes held compactly, as numpy arrays in one of three forms.

Their text form in the original index (``"(4, 3)"``) is parsed by
:func:`~acumen.format.columns.parse_shape`. The forms:

- **fixed**: one tuple, when every sample shares it (no memory per sample);
- **same ndim**: every sample has the same number of dimensions; the dimensions all samples
  share are kept once (a template), and only the varying axes per sample, in the narrowest
  unsigned or signed integer type that holds them (``(L, 17, 2)`` is one ``uint8`` or
  ``uint16`` per sample when L is small). An index format may instead hand over views of
  its own buffers (the ``arrow`` index's memory map), which are used as they are;
- **ragged**: flat dimensions plus offsets, when the number of dimensions varies.

Arithmetic on dimensions (element counts) is always done in int64 (exactly: a count beyond
2**62 is refused), whatever type the dimensions are kept in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from acumen.format.columns import MAX_DIMENSION, format_shape, parse_shape

_MAX_ELEMENTS = MAX_DIMENSION  # more elements than any file can hold; keeps int64 sums exact
MAX_NDIM = 64  # numpy's limit on dimensions: a shape with more cannot be an array
_NARROW = (np.uint8, np.uint16, np.int32)  # narrowest first; int64 beyond


def narrow_dtype(high: int) -> np.dtype:
    """The narrowest integer type of :data:`_NARROW` (else int64) holding ``0..high``."""
    for dtype in _NARROW:
        if high <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


class ShapeColumn:
    """The shapes of ``n`` samples (see the module docstring for the three forms).

    ``ShapeColumn(n, fixed=shape)``, ``ShapeColumn(n, dims=array_n_by_ndim)`` (kept compact)
    or ``ShapeColumn(n, dims=flat, offsets=offsets)`` (ragged); :meth:`from_tuples`,
    :meth:`from_ragged` and :meth:`from_dims` pick the form.
    """

    __slots__ = (
        "_axes",
        "_bound",
        "_dims",
        "_fixed",
        "_item",
        "_n",
        "_ndim",
        "_offsets",
        "_prefix",
        "_suffix",
        "_template",
        "_values",
    )

    def __init__(
        self,
        n: int,
        fixed: tuple[int, ...] | None = None,
        dims: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
    ) -> None:
        self._n = n
        self._fixed = None
        self._dims = None  # ragged: flat dims; same ndim: an in-place (n, ndim) view, if any
        self._offsets = None
        self._values = None
        self._item = None
        self._axes: tuple[int, ...] = ()
        self._template: tuple[int, ...] = ()
        self._prefix = self._suffix = ()
        self._ndim = 0
        self._bound = 0  # at least the largest element count of any sample
        if fixed is not None or dims is None:
            self._set_fixed(tuple(int(d) for d in (fixed or ())))
        elif offsets is None:
            dims = np.asarray(dims)
            self._set_same_ndim(dims.reshape(n, -1) if n else dims.reshape(0, -1), copy=True)
        else:
            self._dims = np.asarray(dims, dtype=np.int64)
            self._offsets = np.asarray(offsets, dtype=np.int64)
            self._bound = _MAX_ELEMENTS + 1  # unknown: counts are checked exactly

    # --- building ------------------------------------------------------------------------
    @classmethod
    def from_tuples(cls, shapes: Sequence[tuple[int, ...]]) -> ShapeColumn:
        n = len(shapes)
        if n == 0:
            return cls(0, fixed=())
        first = shapes[0]
        if all(s == first for s in shapes):
            return cls(n, fixed=tuple(first))
        ndims = {len(s) for s in shapes}
        if len(ndims) == 1:
            ndim = len(first)
            dims = np.fromiter((d for s in shapes for d in s), dtype=np.int64, count=n * ndim)
            return cls(n, dims=dims.reshape(n, ndim))
        lengths = np.fromiter((len(s) for s in shapes), dtype=np.int64, count=n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((d for s in shapes for d in s), dtype=np.int64, count=int(offsets[-1]))
        return cls(n, dims=flat, offsets=offsets)

    @classmethod
    def from_ragged(cls, offsets: np.ndarray, flat: np.ndarray) -> ShapeColumn:
        """From list-column form: sample i has dims ``flat[offsets[i]:offsets[i+1]]``."""
        offsets = np.asarray(offsets, dtype=np.int64)
        flat = np.asarray(flat)
        n = len(offsets) - 1
        if n <= 0:
            return cls(0, fixed=())
        first, last = int(offsets[0]), int(offsets[-1])
        ndim = int(offsets[1] - offsets[0])
        if last - first == n * ndim and np.all(np.diff(offsets) == ndim):
            return cls(n, dims=flat[first:last].reshape(n, ndim))
        return cls(n, dims=flat[first:last], offsets=offsets - first)

    @classmethod
    def from_dims(
        cls, dims: np.ndarray, low: np.ndarray | None = None, high: np.ndarray | None = None
    ) -> ShapeColumn:
        """From an ``(n, ndim)`` array used in place (views of it, no copy); ``low`` and
        ``high``, each axis's minimum and maximum, when the caller has them already."""
        column = cls(0)
        column._n = len(dims)
        column._set_same_ndim(dims, copy=False, low=low, high=high)
        return column

    @classmethod
    def from_parts(cls, n: int, template: Sequence[int | None], values: np.ndarray) -> ShapeColumn:
        """From :meth:`parts`: ``values`` (``(n,)`` for one varying axis, else ``(n, k)``)
        used in place, as an index file's map hands them over: unchecked, so element counts
        and signs are checked block by block (:meth:`counts_of`) as samples are read."""
        axes = [j for j, d in enumerate(template) if d is None]
        if not axes:
            return cls(n, fixed=tuple(int(d) for d in template))
        column = cls(0)
        column._n = n
        shared = tuple(0 if d is None else int(d) for d in template)
        column._set_varying(shared, axes, values.reshape(n, len(axes)), _MAX_ELEMENTS + 1)
        return column

    def parts(self) -> tuple[list[int | None], np.ndarray | None] | None:
        """``(template, values)`` for samples of one number of dimensions: the template has
        None at each varying axis, ``values`` their dimensions per sample (``(n,)`` for one
        axis, else ``(n, k)``; None when no axis varies). None for ragged shapes."""
        if self._offsets is not None:
            return None
        if self._fixed is not None:
            return list(self._fixed), None
        template: list[int | None] = list(self._template)
        for axis in self._axes:
            template[axis] = None
        values = self._values
        if values.dtype.kind == "i" and len(values) and values.min() >= 0:
            values = values.astype(narrow_dtype(int(values.max())), copy=False)
        return template, np.ascontiguousarray(values)

    def _set_fixed(self, shape: tuple[int, ...]) -> None:
        self._fixed = shape
        self._ndim = len(shape)
        self._bound = math.prod(shape) if self._n else 0

    def _set_same_ndim(
        self,
        dims: np.ndarray,
        copy: bool,
        low: np.ndarray | None = None,
        high: np.ndarray | None = None,
    ) -> None:
        n, ndim = dims.shape
        if n == 0 or ndim == 0:
            self._set_fixed(tuple(int(d) for d in dims[0]) if n else ())
            return
        if low is None or high is None:
            # Per axis: 1-D strided reductions, much faster than min(axis=0) on (n, 2).
            low = np.array([dims[:, j].min() for j in range(ndim)])
            high = np.array([dims[:, j].max() for j in range(ndim)])
        if low.min() < 0:
            raise ValueError("a dimension is negative")
        varying = [j for j in range(ndim) if low[j] != high[j]]
        if not varying:
            self._set_fixed(tuple(int(d) for d in low))
            return
        if copy:
            dtype = narrow_dtype(int(max(high[j] for j in varying)))
            values = np.ascontiguousarray(dims[:, varying], dtype=dtype)
        else:  # views only: one varying axis, or all of them
            self._dims = dims
            if len(varying) == 1:
                values = dims[:, varying[0] : varying[0] + 1]
            else:
                varying = list(range(ndim))
                values = dims
        template = tuple(0 if j in varying else int(low[j]) for j in range(ndim))
        shared = math.prod(d for j, d in enumerate(template) if j not in varying)
        bound = shared * math.prod(int(high[j]) for j in varying)
        self._set_varying(template, varying, values, bound)

    def _set_varying(
        self, template: tuple[int, ...], axes: list[int], values: np.ndarray, bound: int
    ) -> None:
        """The same-ndim form: ``template`` (0 at the varying ``axes``), ``values`` the
        ``(n, len(axes))`` varying dimensions, ``bound`` at least the largest element count
        (beyond 2**62 when unknown: counts are then checked exactly)."""
        self._fixed = None
        self._ndim = len(template)
        self._axes = tuple(axes)
        self._template = template
        self._bound = bound
        if len(axes) == 1:
            axis = axes[0]
            values = values[:, 0]
            self._prefix, self._suffix = template[:axis], template[axis + 1 :]
            self._item = values.item
        self._values = values

    def _shared(self) -> int:
        """The product of the dimensions every sample shares (same ndim form)."""
        return math.prod(d for j, d in enumerate(self._template) if j not in self._axes)

    @classmethod
    def parse_texts(cls, texts: Sequence[str] | np.ndarray) -> ShapeColumn:
        """From the original's tuple text, parsing each distinct text once.

        Raises ``ValueError`` naming the first row whose text is not a shape.
        """
        codes, uniques = _factorize(texts)
        parsed = []
        for code, text in enumerate(uniques):
            try:
                parsed.append(parse_shape(text))
            except ValueError as error:
                row = int(np.argmax(codes == code))
                raise ValueError(f"row {row}: {error}") from None
        if len(parsed) == 1:
            return cls(len(codes), fixed=parsed[0])
        ndims = {len(s) for s in parsed}
        if len(ndims) == 1:  # one (distinct shapes, ndim) table, gathered by code
            table = np.array(parsed, dtype=np.int64)  # dimensions are at most 2**62
            return cls(len(codes), dims=table[codes])
        return cls.from_tuples([parsed[c] for c in codes])

    # --- reading -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def fixed(self) -> tuple[int, ...] | None:
        """The shape every sample shares, or ``None``."""
        return self._fixed

    @property
    def ndim(self) -> int | None:
        """The number of dimensions every sample has, or ``None`` (ragged)."""
        return None if self._offsets is not None else self._ndim

    def __getitem__(self, i: int) -> tuple[int, ...]:
        if self._fixed is not None:
            return self._fixed
        if self._item is not None:  # one varying axis: the common case, kept fast
            return (*self._prefix, self._item(i), *self._suffix)
        if self._offsets is None:
            if len(self._axes) == self._ndim:
                return tuple(self._values[i].tolist())
            shape = list(self._template)
            for axis, value in zip(self._axes, self._values[i].tolist(), strict=True):
                shape[axis] = value
            return tuple(shape)
        return tuple(self._dims[self._offsets[i] : self._offsets[i + 1]].tolist())

    def nbytes(self) -> int:
        """Bytes of the per-sample arrays (views of an index file's map included)."""
        if self._fixed is not None:
            return 0
        if self._offsets is not None:
            return self._dims.nbytes + self._offsets.nbytes
        return self._values.nbytes

    def counts_of(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(counts, impossible)`` for samples ``start:end``: element counts as int64, and a
        mask of the samples with a negative dimension, more than 2**62 elements or more than
        :data:`MAX_NDIM` dimensions (their count is 0), or None when there is none. Exact: no
        product wraps around int64."""
        count = end - start
        if self._ndim > MAX_NDIM:  # no array has that many (ragged: checked per row below)
            return np.zeros(count, np.int64), np.ones(count, dtype=np.bool_)
        if self._fixed is not None:
            total = math.prod(self._fixed)
            if total > _MAX_ELEMENTS or min(self._fixed, default=0) < 0:
                return np.zeros(count, np.int64), np.ones(count, dtype=np.bool_)
            return np.full(count, total, dtype=np.int64), None
        if self._offsets is None and self._bound <= _MAX_ELEMENTS:
            return self._element_counts(start, end), None  # bounds known: all possible
        impossible = np.zeros(count, dtype=np.bool_)
        if self._offsets is None:
            approx = np.full(count, float(self._shared()))
            values = self._values[start:end].reshape(count, -1)
            for k in range(values.shape[1]):
                column = values[:, k]
                if column.dtype.kind == "i":
                    impossible |= column < 0
                approx *= column
        else:
            offsets = self._offsets[start : end + 1]
            lengths = np.diff(offsets)
            nonempty = lengths > 0
            dims = self._dims[offsets[0] : offsets[-1]]
            starts = (offsets[:-1] - offsets[0])[nonempty]
            approx = np.ones(count)
            if len(starts):
                impossible[nonempty] = np.minimum.reduceat(dims, starts) < 0
                approx[nonempty] = np.multiply.reduceat(dims.astype(np.float64), starts)
            impossible |= lengths > MAX_NDIM
        impossible |= approx > _MAX_ELEMENTS
        if not impossible.any():
            return self._element_counts(start, end), None
        counts = self._element_counts(start, end)
        counts[impossible] = 0
        return counts, impossible

    def _element_counts(self, start: int, end: int) -> np.ndarray:
        count = end - start
        if self._fixed is not None:
            return np.full(count, math.prod(self._fixed), dtype=np.int64)
        if self._offsets is None:
            # A shared product beyond 2**62 (int64 cannot hold it) makes every sample either
            # impossible (zeroed by counts_of) or empty (a zero varying dimension): clipped,
            # the product stays exact for every sample whose count is kept.
            shared = min(self._shared(), _MAX_ELEMENTS + 1)
            counts = np.full(count, shared, dtype=np.int64)
            values = self._values[start:end].reshape(count, -1)
            for k in range(values.shape[1]):
                counts *= values[:, k]
            return counts
        offsets = self._offsets[start : end + 1]
        lengths = np.diff(offsets)
        counts = np.ones(count, dtype=np.int64)
        nonempty = lengths > 0
        if np.any(nonempty):
            dims = self._dims[: offsets[-1]].astype(np.int64, copy=False)
            products = np.multiply.reduceat(dims, offsets[:-1][nonempty])
            counts[nonempty] = products
        return counts

    def to_dims(self) -> np.ndarray:
        """The ``(n, ndim)`` int64 dimensions (same number of dimensions only)."""
        if self._offsets is not None:
            raise ValueError("the samples have different numbers of dimensions")
        if self._dims is not None:
            return np.asarray(self._dims, dtype=np.int64)
        if self._fixed is not None:
            return np.broadcast_to(np.array(self._fixed, dtype=np.int64), (self._n, self._ndim))
        return self._full_dims(self._values)

    def _full_dims(self, values: np.ndarray) -> np.ndarray:
        """The template with the varying axes filled from ``values`` (rows of samples)."""
        dims = np.empty((len(values), self._ndim), dtype=np.int64)
        dims[:] = self._template
        dims[:, list(self._axes)] = values.reshape(len(values), -1)
        return dims

    def to_ragged(self) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, flat dims): the list-column form used by columnar index formats."""
        if self._offsets is not None:
            return self._offsets, self._dims
        offsets = np.arange(self._n + 1, dtype=np.int64) * self._ndim
        dims = self.to_dims()
        return offsets, (dims.reshape(-1) if dims.flags.c_contiguous else dims.ravel())

    def to_texts(self) -> list[str]:
        """The original's tuple text for every sample."""
        if self._fixed is not None:
            return [format_shape(self._fixed)] * self._n
        return [format_shape(self[i]) for i in range(self._n)]

    def take(self, indices: np.ndarray) -> ShapeColumn:
        indices = np.asarray(indices, dtype=np.int64)
        if self._fixed is not None:
            return ShapeColumn(len(indices), fixed=self._fixed)
        if self._offsets is None:
            if not len(indices):
                return ShapeColumn(0, fixed=())
            return ShapeColumn(len(indices), dims=self._full_dims(self._values[indices]))
        return ShapeColumn.from_tuples([self[int(i)] for i in indices])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ShapeColumn):
            return NotImplemented
        if len(self) != len(other):
            return False
        if self._fixed is not None and other._fixed is not None:
            return self._fixed == other._fixed or not len(self)
        a, b = self.to_ragged(), other.to_ragged()
        return bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))

    def __repr__(self) -> str:
        if self._fixed is not None:
            return f"ShapeColumn(n={self._n}, fixed={self._fixed})"
        if self._offsets is None:
            template = tuple("?" if j in self._axes else d for j, d in enumerate(self._template))
            return f"ShapeColumn(n={self._n}, {template}, {self._values.dtype})"
        return f"ShapeColumn(n={self._n}, ragged)"


def _factorize(values: Sequence[str] | np.ndarray) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return codes, list(uniques)
