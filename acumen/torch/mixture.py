"""``MixtureSampler``: draws from the sources of an :class:`acumen.Mixture` by weight, each
source read in its own chunk-window order.

An epoch is a sequence of draws. Each draw picks a source at random by weight (among the
sources that can still be drawn from), and takes that source's next sample in the source's
own order: the chunk-window shuffle :class:`~acumen.torch.ChunkShuffleSampler` makes of it
(chunk order shuffled, samples shuffled within a window of its chunks), consumed in order.
So at any time a source is read from one window of its chunks (two at a window's edge).
``window`` is what the mixture holds at once, as for one dataset: its chunks are shared
among the sources by weight (each at least one), so a mixture reads about as many chunk
files a batch as one dataset with the same ``window`` (a list gives each source its own).

When a source's order runs out: with ``replacement=False`` it is not drawn from again (the
others share its weight, in their proportions); with ``replacement=True`` it starts over in
a new order of its own (a small source repeats: upsampling). An epoch ends after
``num_samples`` draws, or, without ``num_samples``, once a source has been read through:
``until="first"`` (the default) the first source to be, ``until=k`` source ``k``,
``until="all"`` every source. The order is a pure function of (seed, epoch, the mixture's
lengths, chunks and weights, the settings): every rank computes the same, takes it strided,
and resumes from a position in it (:mod:`acumen.torch.order`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from acumen.read.ahead import AHEAD_BYTES
from acumen.read.dataset import Dataset
from acumen.read.mixture import Mixture
from acumen.read.order import chunk_window_order
from acumen.torch.dataset import TorchDataset
from acumen.torch.order import EpochSampler


def _mixture_of(data: object) -> Mixture:
    """The :class:`acumen.Mixture` a sampler was given; a clear TypeError for anything else."""
    dataset = data.dataset if isinstance(data, TorchDataset) else data
    if isinstance(dataset, Mixture):
        return dataset
    kind = type(dataset).__name__
    hint = ""
    if isinstance(dataset, Dataset):
        hint = (
            "; for one dataset (or several read as one, without weights) use "
            "ChunkShuffleSampler; a Mixture's select/filter view has no weights"
        )
    raise TypeError(
        f"MixtureSampler takes an acumen.Mixture or a TorchDataset over one (it needs each "
        f"source's weight and samples), got {kind}{hint}"
    )


class MixtureSampler(EpochSampler):
    """Indices into an :class:`acumen.Mixture`, drawn from its sources by weight, each source
    read with chunk locality (the module's docstring says how an epoch is made).

    ``num_samples``: the draws of an epoch; without it the epoch ends once source ``until``
    (an index; ``"first"``: the first source, ``"all"``: every source) has been read through.
    ``replacement``: whether a source that runs out starts over in a new order (True) or is
    drawn from no more (False; then ``num_samples`` may not exceed the mixture's length).
    ``window``: the chunks read at once, shared among the sources by weight (at least one
    each: :attr:`windows`), or a list of each source's window. ``seed`` and :meth:`set_epoch`
    decide the order; ``num_replicas``/``rank`` split it strided into DDP shares of equal
    length (padded with the order's first samples, or cut with ``drop_last``);
    :meth:`state_dict`/:meth:`load_state_dict` resume on any number of ranks and workers.
    Over a remote mixture the next windows' bytes are fetched ahead (``prefetch`` bytes), as
    :class:`~acumen.torch.ChunkShuffleSampler` does.
    """

    def __init__(
        self,
        mixture: Mixture | TorchDataset,
        *,
        seed: int = 0,
        num_samples: int | None = None,
        until: int | str | None = None,
        replacement: bool = False,
        window: int | Sequence[int] = 4,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        prefetch: int = AHEAD_BYTES,
    ) -> None:
        dataset = _mixture_of(mixture)
        sources = len(dataset.weights)
        #: Each source's window: chunks of its order shuffled together.
        self.windows = source_windows(window, dataset.weights)
        if num_samples is not None:
            if until is not None:
                raise ValueError(
                    f"MixtureSampler: give num_samples (an epoch of that many draws) or until "
                    f"(an epoch until a source is read through), not both (got "
                    f"num_samples={num_samples!r}, until={until!r})"
                )
            if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
                raise TypeError(f"num_samples must be an int, got {num_samples!r}")
            if num_samples < 1:
                raise ValueError(f"num_samples must be at least 1, got {num_samples}")
            if not replacement and num_samples > len(dataset):
                raise ValueError(
                    f"num_samples={num_samples} is more than the mixture's {len(dataset)} "
                    "samples, and without replacement each is drawn once at most: use "
                    "replacement=True (sources that run out start over) or fewer samples"
                )
        else:
            until = "first" if until is None else until
            is_source = isinstance(until, (int, np.integer)) and not isinstance(until, bool)
            if until not in ("first", "all") and not (is_source and 0 <= until < sources):
                raise ValueError(
                    f"until must be 'first', 'all' or a source's index in [0, {sources}), "
                    f"got {until!r}"
                )
        super().__init__(
            mixture,
            dataset,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            drop_last=drop_last,
            prefetch=prefetch,
        )
        self.mixture = dataset
        self.chunk_ids = np.asarray(dataset.table.chunk_ids)
        self.num_samples = None if num_samples is None else int(num_samples)
        self.until = until if isinstance(until, (str, type(None))) else int(until)
        self.replacement = bool(replacement)
        self.window = window if isinstance(window, int) else sum(self.windows)

    def _settings(self) -> tuple:
        return (
            f"lengths={self.mixture.lengths.tolist()}",
            f"chunks={len(self.mixture.table.chunk_names or ())}",
            f"weights={[round(w, 12) for w in self.mixture.weights]}",
            f"num_samples={self.num_samples}",
            f"until={self.until!r}",
            f"replacement={self.replacement}",
            f"windows={self.windows}",
        )

    def _epoch_length(self, epoch: int) -> int:
        if self.num_samples is not None:
            return self.num_samples
        return len(self._plan(epoch)[0])

    def source_draws(self, epoch: int | None = None) -> np.ndarray:
        """Which source each draw of the epoch (this one by default) takes from."""
        epoch = self.epoch if epoch is None else epoch
        return draw_sources(
            self.mixture.lengths,
            self.mixture.weights,
            np.random.default_rng([self.seed, epoch, 0]),
            num_samples=self.num_samples,
            until=self.until,
            replacement=self.replacement,
        )

    def _compute(self, epoch: int) -> tuple[np.ndarray, list[int]]:
        """Each draw's sample: source ``k``'s ``j``-th draw takes the ``j``-th sample of its
        chunk-window orders (a new one for each pass through it, seeded by the pass)."""
        draws = self.source_draws(epoch)
        mixture = self.mixture
        starts, lengths = mixture.starts, mixture.lengths
        order = np.empty(len(draws), np.int64)
        cuts = []
        for k, (n, at) in enumerate(
            zip(lengths.tolist(), by_source(draws, len(lengths)), strict=True)
        ):
            # at: source k's draws, in the epoch's order
            if not len(at):
                continue
            ids = self.chunk_ids[starts[k] : starts[k] + n]
            pieces, ends, done = [], [], 0
            for passes in range(-(-len(at) // n)):
                seeds = (self.seed, epoch, 1, k)  # each source and pass its own order
                positions, window_ends = chunk_window_order(ids, self.windows[k], seeds, passes)
                take = min(n, len(at) - done)
                pieces.append(positions[:take] + starts[k])
                ends += [done + c for c in window_ends if c <= take]
                done += take
            order[at] = np.concatenate(pieces)
            ends_at = np.asarray([e for e in ends if 0 < e < len(at)], np.int64)
            cuts.append(at[ends_at])  # a window's first draw: a block of the fetch begins
        joined = np.unique(np.concatenate(cuts)) if cuts else np.zeros(0, np.int64)
        return order, joined.tolist()

    def __repr__(self) -> str:
        return f"<acumen.torch.MixtureSampler {', '.join(self._settings())}, seed={self.seed}>"


def source_windows(window: int | Sequence[int], weights: Sequence[float]) -> list[int]:
    """Each source's window: ``window`` chunks shared by weight (at least one each), or the
    list given, one per source."""
    if isinstance(window, (int, np.integer)) and not isinstance(window, bool):
        if window < 1:
            raise ValueError(f"window must be at least 1 chunk, got {window}")
        return [max(1, round(window * weight)) for weight in weights]
    given = list(window)
    if len(given) != len(weights) or not all(
        isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in given
    ):
        raise ValueError(
            f"window must be a number of chunks, or one per source ({len(weights)} whole "
            f"numbers of at least 1), got {window!r}"
        )
    return [int(w) for w in given]


def draw_sources(
    lengths: Any,
    weights: Any,
    rng: np.random.Generator,
    *,
    num_samples: int | None,
    until: int | str | None,
    replacement: bool,
) -> np.ndarray:
    """The source of each draw of an epoch (see the module's docstring). Drawn in blocks
    (vectorised); a block is cut where a source runs out without replacement (the next
    block draws among the others) or where the epoch ends."""
    lengths = np.asarray(lengths, np.int64)
    weights = np.asarray(weights, np.float64)
    sources = len(lengths)
    taken = np.zeros(sources, np.int64)
    active = lengths > 0
    targets = np.ones(sources, bool)
    if isinstance(until, int):
        targets[:] = False
        targets[until] = True
    pieces: list[np.ndarray] = []
    total = 0
    while active.any():
        picked = np.flatnonzero(active)
        chances = weights[picked] / weights[picked].sum()
        left = lengths - taken
        pending = targets & (left > 0)  # sources still to be read through
        share = np.zeros(sources)
        share[picked] = chances
        if num_samples is not None:
            size = num_samples - total
        else:
            expected = left[pending] / share[pending]
            size = int((expected.max() if until == "all" else expected.min()) * 1.05) + 64
        if not replacement:  # the block is cut where the first source runs out
            size = min(size, int((left[picked] / chances).min() * 1.05) + 64)
        if size <= 0:
            break
        draws = _pick(rng.random(size), picked, chances)
        groups = by_source(draws, sources)
        cut, finished = size, num_samples is not None
        if not replacement:
            for k in picked.tolist():
                if len(groups[k]) > left[k] and groups[k][left[k]] < cut:
                    cut, finished = int(groups[k][left[k]]), False
        if num_samples is None:
            # where each source still to be read through takes its last sample
            through = [
                int(groups[k][left[k] - 1])
                for k in np.flatnonzero(pending).tolist()
                if len(groups[k]) >= left[k]
            ]
            end = None
            if until == "all" and len(through) == int(pending.sum()):
                end = max(through) + 1
            elif until != "all" and through:
                end = min(through) + 1
            if end is not None and end <= cut:
                cut, finished = end, True
        pieces.append(draws[:cut])
        total += cut
        taken += [int(np.searchsorted(group, cut)) for group in groups]
        if not replacement:
            active &= taken < lengths
        if finished:
            break
    return np.concatenate(pieces) if pieces else np.zeros(0, np.int16)


def _pick(uniform: np.ndarray, picked: np.ndarray, chances: np.ndarray) -> np.ndarray:
    """The source of each draw: ``picked[j]`` where ``uniform`` falls in its share."""
    edges = np.cumsum(chances)[:-1]
    dtype = np.int16 if len(picked) < 1 << 15 else np.int32
    if len(edges) <= 16:  # a few comparisons beat a binary search per draw
        slot = np.zeros(len(uniform), dtype)
        for edge in edges.tolist():
            slot += uniform >= edge
    else:
        slot = np.searchsorted(edges, uniform, side="right").astype(dtype)
    return picked.astype(dtype)[slot]


def by_source(draws: np.ndarray, sources: int) -> list[np.ndarray]:
    """For each source, the indices of its draws in ``draws``, in order."""
    if sources <= 16:
        return [np.flatnonzero(draws == k) for k in range(sources)]
    order = np.argsort(draws, kind="stable")
    bounds = np.cumsum(np.bincount(draws, minlength=sources))[:-1]
    return np.split(order, bounds)
