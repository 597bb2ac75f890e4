"""``acumen.Mixture``: several datasets read as one, each with a weight for sampling.

A mixture is a :class:`~acumen.read.many.ConcatDataset` (sample ``i`` is sample ``i -
starts[k]`` of source ``k``: ``mixture.locate(i)``), so everything that reads a dataset
reads it: ``read``, ``read_batch``, ``TorchDataset``, ``BatchLoader``, DataLoader workers
(it pickles with its weights). The weights say how often :class:`acumen.torch.MixtureSampler`
draws from each source; the mixture itself holds no order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from acumen.errors import quote
from acumen.read.dataset import Dataset
from acumen.read.many import ConcatDataset
from acumen.read.opening import open_dataset

Source = str | os.PathLike[str] | Dataset


class Mixture(ConcatDataset):
    """Datasets (or paths, opened with ``acumen.open(path, **open_kwargs)``) with a weight
    each, read as one dataset: index ``i`` is ``locate(i) == (source, position)``.

    ``weights``: one positive, finite number per source, normalised to sum to 1
    (:attr:`weights`); None weighs each source by its number of samples. The sources must
    share what decoding needs, as for :func:`acumen.open_many` (local or remote, not both).
    Sample with :class:`acumen.torch.MixtureSampler`.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        weights: Sequence[float] | None = None,
        **open_kwargs: Any,
    ) -> None:
        if isinstance(sources, (str, os.PathLike, Dataset)):
            raise TypeError(f"Mixture takes a list of datasets or paths, got {quote(sources)}")
        given = list(sources)
        if not given:
            raise ValueError("Mixture needs at least one dataset")
        for k, source in enumerate(given):
            if not isinstance(source, (str, os.PathLike, Dataset)):
                raise TypeError(
                    f"Mixture: source {k} is a {type(source).__name__}, not an acumen dataset "
                    "or a path"
                )
        if open_kwargs and any(isinstance(s, Dataset) for s in given):
            raise ValueError(
                f"Mixture: the options {sorted(open_kwargs)} are for paths; a dataset already "
                "opened keeps its own (give them to acumen.open)"
            )
        parts = [s if isinstance(s, Dataset) else open_dataset(s, **open_kwargs) for s in given]
        lengths = [len(part) for part in parts]
        #: Each source's weight, normalised (they sum to 1).
        self.weights = normalised_weights(weights, lengths, [str(part.root) for part in parts])
        super().__init__(parts)

    @property
    def lengths(self) -> np.ndarray:
        """Each source's number of samples."""
        return np.diff(self.starts)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "weights": self.weights}

    def __repr__(self) -> str:
        shares = ", ".join(
            f"{root} ({n} samples, {w:.3g})"
            for root, n, w in zip(self.root, self.lengths.tolist(), self.weights, strict=True)
        )
        return f"<acumen.Mixture of {len(self.root)} datasets: {shares}>"


def normalised_weights(
    weights: Sequence[float] | None, lengths: Sequence[int], names: Sequence[str]
) -> tuple[float, ...]:
    """``weights`` checked (one positive, finite number per source; no weight on an empty
    source) and scaled to sum to 1; None: each source's share of the samples."""
    empty = [k for k, n in enumerate(lengths) if n == 0]
    if empty:
        k = empty[0]
        raise ValueError(
            f"Mixture: source {k} ({names[k]}) has no samples, so it cannot be drawn from: "
            "leave it out"
        )
    if weights is None:
        total = sum(lengths)
        return tuple(n / total for n in lengths)
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
        raise TypeError(f"Mixture: weights must be a list of numbers, got {quote(weights)}")
    values = list(weights)
    if len(values) != len(lengths):
        raise ValueError(
            f"Mixture: {len(values)} weights for {len(lengths)} sources: give one per source"
        )
    checked = []
    for k, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"Mixture: the weight of source {k} ({names[k]}) is {quote(value)}, not a number"
            ) from None
        if not math.isfinite(number) or number <= 0:
            raise ValueError(
                f"Mixture: the weight of source {k} ({names[k]}) is {value!r}; weights must be "
                "positive and finite (leave a source out rather than weigh it 0)"
            )
        checked.append(number)
    total = math.fsum(checked)
    return tuple(w / total for w in checked)
