"""How random a chunk-window shuffle is, and what it costs in I/O, measured from the index.

:func:`shuffle_report` computes the order a ``ChunkShuffleSampler`` gives (the same function,
:func:`~acumen.read.order.chunk_window_order`) from the index alone: chunk ids,
sample sizes and one metadata column. No payload is read, and every measure is a few numpy
passes, so a report on millions of samples takes seconds. Each measure comes with the same
measure of a full shuffle of the same dataset, the ideal to compare against. docs/shuffle.md
explains the measures and how to choose ``window`` from them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from acumen.progress import size_text
from acumen.read.dataset import Dataset
from acumen.read.order import chunk_window_order

#: The measures, in the order they are shown: (name, label, how to show a value).
MEASURES = (
    ("chunks_per_batch", "chunks per batch", "count"),
    ("bytes_read_ahead", "bytes read ahead per window", "bytes"),
    ("label_tv_distance", "label TV distance per batch", "share"),
    ("position_correlation", "position correlation (mean only)", "share"),
    ("displacement", "displacement per sample", "share"),
)
#: How the full-shuffle reference is made, as reports say it.
REFERENCE = (
    "full shuffle: a seeded simulation, the same order function with one window of every "
    "chunk (a uniform random permutation), same seed and epochs"
)


@dataclass(frozen=True)
class Measure:
    """A measure's distribution over its units (batches, windows or samples), and the same
    for a full shuffle of the same dataset (``full_shuffle``; None on the reference itself)."""

    mean: float
    p50: float
    p95: float
    max: float
    full_shuffle: Measure | None = None

    @classmethod
    def of(cls, values: np.ndarray, full_shuffle: Measure | None = None) -> Measure:
        p50, p95 = np.quantile(values, [0.5, 0.95]) if len(values) else (np.nan, np.nan)
        top = values.max() if len(values) else np.nan
        return cls(float(values.mean()), float(p50), float(p95), float(top), full_shuffle)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mean": _plain(self.mean),
            "p50": _plain(self.p50),
            "p95": _plain(self.p95),
            "max": _plain(self.max),
        }
        if self.full_shuffle is not None:
            out["full_shuffle"] = self.full_shuffle.to_json()
        return out


@dataclass(frozen=True)
class ShuffleReport:
    """What :func:`shuffle_report` measured (see there for each measure)."""

    dataset: str
    samples: int
    chunks: int
    window: int
    batch_size: int
    seed: int
    epochs: int
    by: str | None
    batches: int
    chunks_per_batch: Measure
    bytes_read_ahead: Measure
    label_tv_distance: Measure | None
    position_correlation: Measure | None
    displacement: Measure

    def measures(self) -> Iterator[tuple[str, Measure]]:
        for name, _, _ in MEASURES:
            measure = getattr(self, name)
            if measure is not None:
                yield name, measure

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict: the configuration, then each measure with its ``full_shuffle``
        (``label_tv_distance`` only with ``by``)."""
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "samples": self.samples,
            "chunks": self.chunks,
            "window": self.window,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "epochs": self.epochs,
            "by": self.by,
            "batches": self.batches,
            "reference": REFERENCE,
        }
        for name, measure in self.measures():
            out[name] = measure.to_json()
        return out

    def __str__(self) -> str:
        epochs = f"{self.epochs} epoch{'s' if self.epochs > 1 else ''}"
        lines = [
            f"shuffle report of {self.dataset}: {self.samples:,} samples in {self.chunks:,} "
            f"chunks; window {self.window} chunks, batches of {self.batch_size} "
            f"({self.batches:,} measured), seed {self.seed}, {epochs}",
            f"{'':<34}{'this order':^40}{'full shuffle':^40}",
            f"{'measure':<34}" + f"{'mean':>10}{'p50':>10}{'p95':>10}{'max':>10}" * 2,
        ]
        for name, label, kind in MEASURES:
            measure = getattr(self, name)
            if measure is None:
                continue
            if name == "label_tv_distance":
                label = f"{label} ({self.by})"
            row = f"{label:<34}"
            for shown in (measure, measure.full_shuffle):
                assert shown is not None
                row += "".join(
                    f"{_shown(v, kind):>10}" for v in (shown.mean, shown.p50, shown.p95, shown.max)
                )
            lines.append(row)
        lines.append(REFERENCE)
        return "\n".join(lines)


def shuffle_report(
    data: Any,
    *,
    window: int = 4,
    batch_size: int = 256,
    by: str | None = None,
    seed: int = 0,
    epochs: int = 1,
    **options: Any,
) -> ShuffleReport:
    """Measure the order of ``ChunkShuffleSampler(data, window=window, seed=seed)`` (one
    replica, epochs 0 to ``epochs - 1``) cut into batches of ``batch_size``, against a full
    shuffle. Reads the index only. ``data``: a path or URL (opened with ``options``, as
    :func:`acumen.open` takes them), an :class:`acumen.Dataset` or what holds one
    (``TorchDataset``). Only whole batches are measured (a dataset smaller than one batch is
    one batch).

    Measures (each a :class:`Measure`: mean, p50, p95 and max over its units, and
    ``full_shuffle``, the same for a full shuffle, by a seeded simulation):

    - ``chunks_per_batch``: the distinct chunk files a batch's samples are in (per batch):
      the files a batch reads from. A full shuffle touches about as many as the batch has
      samples.
    - ``bytes_read_ahead``: per window, the bytes of its samples (the sum of their index
      sizes): what the sampler fetches before it hands out a window's first sample, and the
      memory or cache a reader needs to serve the window without a request per sample. For
      the full shuffle the one window is the whole dataset.
    - ``label_tv_distance`` (with ``by``, a metadata column): per batch, the total-variation
      distance between the batch's distribution of the column's values and the dataset's,
      half the sum of the absolute differences of their shares: 0 is a batch mixed like the
      dataset, 1 a batch of values the dataset barely has. A full shuffle's is above 0 too
      (a random batch is not a perfect mix); the gap to it is what the window costs.
    - ``position_correlation``: the correlation between the storage positions of two
      different samples of one batch, over all batches (an intraclass correlation, taken
      against the dataset's positions: mean (n - 1) / 2, variance (n² - 1) / 12). It is the
      share of the positions' variance that lies between batches: 0 for a full shuffle
      (-1 / (n - 1) expected), 1 for batches of one position each, about 1 / (chunks in a
      batch) for batches of a few whole chunks. Samples stored near each other share a
      source, a class, a time: this says how much a batch is made of neighbours. One number
      (p50, p95 and max are None: one batch's share is no correlation); None for batches of
      one sample.
    - ``displacement``: per sample, |position in the order - storage position| / n. A full
      shuffle's expected mean is (n² - 1) / (3n²), about 1/3; an order that keeps samples
      near where they are stored (no shuffle, a small shuffle buffer) is near 0.
    """
    for name, value in (("window", window), ("batch_size", batch_size), ("epochs", epochs)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            unit = " chunk" if name == "window" else ""
            raise ValueError(f"{name} must be at least 1{unit}, got {value!r}")
    if isinstance(data, (str, os.PathLike)):
        from acumen.read.opening import open_dataset

        with open_dataset(data, **options) as dataset:
            return _report(dataset, str(data), window, batch_size, by, seed, epochs)
    if options:
        raise TypeError(f"options {sorted(options)} are for opening a path; {data!r} is open")
    dataset = getattr(data, "dataset", data)  # a TorchDataset holds its dataset
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"shuffle_report takes a path, a URL or an acumen.Dataset, got {type(data).__name__}"
        )
    return _report(dataset, str(dataset.root), window, batch_size, by, seed, epochs)


def _report(
    dataset: Dataset, name: str, window: int, size: int, by: str | None, seed: int, epochs: int
) -> ShuffleReport:
    table = dataset.table
    n = len(table)
    if by is not None and by not in dataset.columns:
        known = ", ".join(dataset.columns) if dataset.columns else "none"
        raise ValueError(f"{name} has no metadata column {by!r}; its columns: {known}")
    if n == 0:
        raise ValueError(f"{name} has no samples: there is no order to measure")
    chunk_ids = np.asarray(table.chunk_ids)
    sizes = np.asarray(table.sizes, dtype=np.int64)
    labels = _codes(table.metadata.column(by)) if by is not None else None
    chunks = int(np.count_nonzero(np.bincount(chunk_ids)))
    size = min(size, n)
    found: dict[str, list[list[np.ndarray]]] = {m: [[], []] for m, _, _ in MEASURES}
    for epoch in range(epochs):
        for k, span in enumerate((window, chunks)):  # this window, then one of every chunk
            order, cuts = chunk_window_order(chunk_ids, span, seed, epoch)
            for measure, values in _measures(order, cuts, size, chunk_ids, sizes, labels):
                found[measure][k].append(values)
    measured: dict[str, Measure | None] = {}
    for measure, (mine, ideal) in found.items():
        if not mine:
            measured[measure] = None
            continue
        reference = Measure.of(np.concatenate(ideal))
        found_here = Measure.of(np.concatenate(mine), reference)
        if measure == "position_correlation":  # a mean over batches, and nothing else
            nan = float("nan")
            reference = Measure(reference.mean, nan, nan, nan)
            found_here = Measure(found_here.mean, nan, nan, nan, reference)
        measured[measure] = found_here
    return ShuffleReport(
        dataset=name,
        samples=n,
        chunks=chunks,
        window=window,
        batch_size=size,
        seed=seed,
        epochs=epochs,
        by=by,
        batches=(n // size) * epochs,
        **measured,  # type: ignore[arg-type]
    )


def _measures(
    order: np.ndarray,
    cuts: list[int],
    size: int,
    chunk_ids: np.ndarray,
    sizes: np.ndarray,
    labels: tuple[np.ndarray, np.ndarray] | None,
) -> Iterator[tuple[str, np.ndarray]]:
    """Each measure's values for one epoch's order (see :func:`shuffle_report`)."""
    n = len(order)
    count = n // size
    batches = order[: count * size].reshape(count, size)
    rows, _, _ = _runs(chunk_ids[batches])
    yield "chunks_per_batch", np.bincount(rows, minlength=count).astype(np.float64)
    ends = np.cumsum(sizes[order])[np.asarray(cuts) - 1]
    yield "bytes_read_ahead", np.diff(ends, prepend=0).astype(np.float64)
    if labels is not None:
        codes, shares = labels
        rows, values, counts = _runs(codes[batches])
        gap = np.abs(counts / size - shares[values]) - shares[values]
        # Values a batch lacks count their whole share: 1 - the shares of those it has.
        yield "label_tv_distance", 0.5 * (1 + np.bincount(rows, gap, minlength=count))
    if size > 1:
        spread = batches.astype(np.float64)
        spread -= (n - 1) / 2
        total = spread.sum(axis=1)
        squares = np.einsum("ij,ij->i", spread, spread)
        variance = (n * n - 1) / 12
        yield "position_correlation", (total * total - squares) / (size * (size - 1) * variance)
    moved = order - np.arange(n)
    np.abs(moved, out=moved)
    yield "displacement", moved / n


def _runs(batches: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct values of each row of ``batches``: (row, value, how many) per run."""
    width = batches.shape[1]
    flat = np.sort(batches, axis=1).ravel()
    new = np.ones(len(flat), bool)
    new[1:] = flat[1:] != flat[:-1]
    new[::width] = True  # every row starts a run
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, len(flat)))
    return starts // width, flat[starts], counts


def _codes(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's value as a small integer, and each value's share of the dataset."""
    import pandas as pd  # here: a report without a column never needs pandas

    codes, _ = pd.factorize(column, use_na_sentinel=False)
    codes = codes.astype(np.int32 if codes.max(initial=0) < 2**31 else np.int64)
    return codes, np.bincount(codes) / len(codes)


def _plain(value: float) -> float | None:
    """JSON has no NaN: an undefined value is null."""
    return None if np.isnan(value) else value


def _shown(value: float, kind: str) -> str:
    if np.isnan(value):
        return "-"
    if kind == "bytes":
        return size_text(value)
    if kind == "count":
        return f"{value:.1f}" if value != int(value) else f"{int(value)}"
    return f"{value:.3f}"
