"""Per-sample shapes held compactly, and their text form in the original index.

The original index stores a shape as Python tuple text (``"(4, 3)"``, ``"(5,)"``, ``"()"``).
acumen parses that text with a strict pattern, never ``eval``, and keeps shapes as numpy
arrays: one tuple when every sample shares it, an ``(n, ndim)`` array when only the
number of dimensions is shared, and flat dims plus offsets otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

_MAX_ELEMENTS = 2**62  # more elements than any file can hold; keeps int64 sums exact
_SHAPE_TEXT = re.compile(r"^\(\s*(?:\d+\s*,\s*)*(?:\d+\s*,?\s*)?\)$")


def format_shape(shape: tuple[int, ...]) -> str:
    """Tuple text exactly as the original writer produced it (``str(tuple)``)."""
    return str(tuple(int(d) for d in shape))


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse tuple text such as ``"(4, 3)"``; raise ``ValueError`` on anything else."""
    if not isinstance(text, str) or not _SHAPE_TEXT.match(text.strip()):
        raise ValueError(f"not a shape: {text!r}")
    inner = text.strip()[1:-1]
    dims = tuple(int(part) for part in inner.split(",") if part.strip())
    if any(d > _MAX_ELEMENTS for d in dims):
        raise ValueError(f"not a shape: {text!r} (a dimension beyond 2**62)")
    if len(dims) == 1 and "," not in inner:
        raise ValueError(f"not a shape: {text!r} (a one-element tuple needs a trailing comma)")
    return dims


class ShapeColumn:
    """The shapes of ``n`` samples."""

    __slots__ = ("_dims", "_fixed", "_n", "_offsets")

    def __init__(
        self,
        n: int,
        fixed: tuple[int, ...] | None = None,
        dims: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
    ) -> None:
        self._n = n
        self._fixed = fixed
        self._dims = dims
        self._offsets = offsets

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
            return cls(n, dims=np.array(shapes, dtype=np.int64).reshape(n, len(first)))
        lengths = np.fromiter((len(s) for s in shapes), dtype=np.int64, count=n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((d for s in shapes for d in s), dtype=np.int64, count=int(offsets[-1]))
        return cls(n, dims=flat, offsets=offsets)

    @classmethod
    def from_ragged(cls, offsets: np.ndarray, flat: np.ndarray) -> ShapeColumn:
        """From list-column form: sample i has dims ``flat[offsets[i]:offsets[i+1]]``."""
        offsets = np.asarray(offsets, dtype=np.int64)
        flat = np.asarray(flat, dtype=np.int64)
        n = len(offsets) - 1
        lengths = np.diff(offsets)
        if n == 0:
            return cls(0, fixed=())
        if np.all(lengths == lengths[0]):
            ndim = int(lengths[0])
            dims = flat[offsets[0] : offsets[-1]].reshape(n, ndim)
            if n == 1 or np.all(dims == dims[0]):
                return cls(n, fixed=tuple(int(d) for d in dims[0]))
            return cls(n, dims=np.ascontiguousarray(dims))
        return cls(n, dims=flat[offsets[0] : offsets[-1]], offsets=offsets - offsets[0])

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
        return cls.from_tuples([parsed[c] for c in codes])

    def __len__(self) -> int:
        return self._n

    @property
    def fixed(self) -> tuple[int, ...] | None:
        """The shape every sample shares, or ``None``."""
        return self._fixed

    def __getitem__(self, i: int) -> tuple[int, ...]:
        if self._fixed is not None:
            return self._fixed
        if self._offsets is None:
            return tuple(self._dims[i].tolist())
        return tuple(self._dims[self._offsets[i] : self._offsets[i + 1]].tolist())

    def element_counts(self) -> np.ndarray:
        """Number of elements of every sample, as int64; ``ValueError`` naming the first
        sample whose count would not fit (a damaged or hostile index)."""
        counts = self._element_counts()
        if self._fixed is not None:
            exact = math.prod(self._fixed)
            if exact > _MAX_ELEMENTS:
                raise ValueError(f"sample 0: shape {self._fixed} has too many elements")
            return counts
        dims = self._dims.astype(np.float64)
        if self._offsets is None:
            approx = np.prod(dims, axis=1) if dims.size else np.zeros(self._n)
        else:
            approx = np.ones(self._n)
            lengths = np.diff(self._offsets)
            if np.any(lengths > 0):
                approx[lengths > 0] = np.multiply.reduceat(dims, self._offsets[:-1][lengths > 0])
        too_big = approx > _MAX_ELEMENTS
        if np.any(too_big):
            sample = int(np.argmax(too_big))
            raise ValueError(f"sample {sample}: shape {self[sample]} has too many elements")
        return counts

    def _element_counts(self) -> np.ndarray:
        if self._fixed is not None:
            return np.full(self._n, int(np.prod(self._fixed, dtype=np.int64)), dtype=np.int64)
        if self._offsets is None:
            # Column by column: much faster than np.prod(axis=1) over a narrow (n, ndim) array.
            counts = np.ones(self._n, dtype=np.int64)
            for dim in range(self._dims.shape[1]):
                counts *= self._dims[:, dim]
            return counts
        lengths = np.diff(self._offsets)
        counts = np.ones(self._n, dtype=np.int64)
        nonempty = lengths > 0
        if np.any(nonempty):
            products = np.multiply.reduceat(self._dims, self._offsets[:-1][nonempty])
            counts[nonempty] = products
        return counts

    def to_ragged(self) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, flat dims): the list-column form used by columnar index formats."""
        if self._fixed is not None:
            ndim = len(self._fixed)
            offsets = np.arange(self._n + 1, dtype=np.int64) * ndim
            return offsets, np.tile(np.array(self._fixed, dtype=np.int64), self._n)
        if self._offsets is None:
            ndim = self._dims.shape[1]
            return np.arange(self._n + 1, dtype=np.int64) * ndim, self._dims.reshape(-1)
        return self._offsets, self._dims

    def to_texts(self) -> list[str]:
        """The original's tuple text for every sample."""
        if self._fixed is not None:
            return [format_shape(self._fixed)] * self._n
        return [format_shape(self[i]) for i in range(self._n)]

    def take(self, indices: np.ndarray) -> ShapeColumn:
        if self._fixed is not None:
            return ShapeColumn(len(indices), fixed=self._fixed)
        return ShapeColumn.from_tuples([self[int(i)] for i in indices])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ShapeColumn):
            return NotImplemented
        if len(self) != len(other):
            return False
        a, b = self.to_ragged(), other.to_ragged()
        return bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))

    def __repr__(self) -> str:
        if self._fixed is not None:
            return f"ShapeColumn(n={self._n}, fixed={self._fixed})"
        return f"ShapeColumn(n={self._n}, variable)"


def _factorize(values: Sequence[str] | np.ndarray) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return codes, list(uniques)
