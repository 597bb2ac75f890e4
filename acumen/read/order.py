"""A chunk-local shuffle of a dataset's samples, without torch.

Chunk files are taken in a shuffled order, a window of ``window`` of them at a time, and the
samples of each window shuffled together: reads stay within a few chunk files at once (which
matters on disks and remote storage) while the order is still well mixed. This is the one
place the algorithm lives: ``acumen.torch.ChunkShuffleSampler`` plans its epochs with
:func:`chunk_window_order`, :func:`acumen.shuffle_report` measures that order, and
:func:`chunk_shuffle_order` gives it to a loop without torch (``ds.batches(256,
order=...)`` for JAX or numpy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from acumen.read.dataset import Dataset


def chunk_window_order(
    chunk_ids: np.ndarray, window: int, seed: int | Sequence[int], epoch: int = 0
) -> tuple[np.ndarray, list[int]]:
    """Every sample's position in the order of epoch ``epoch``, and where each window ends.

    The chunks that hold samples are put in a random order, cut into windows of ``window``
    chunks, and the samples of each window shuffled among themselves: a reader then holds
    only one window of chunk files at a time. A window of every chunk is a full shuffle (a
    uniform random permutation). The order is a pure function of (``chunk_ids``,
    ``window``, ``seed``, ``epoch``). ``seed`` may be several numbers (a mixture gives each
    source and pass its own order: ``(seed, epoch, 1, source)``, the pass as ``epoch``).
    """
    if window < 1:
        raise ValueError(f"window must be at least 1 chunk, got {window}")
    chunk_ids = np.asarray(chunk_ids)
    n = len(chunk_ids)
    rng = np.random.default_rng([*(seed if isinstance(seed, Sequence) else [seed]), epoch])
    if n == 0:
        rng.permutation(0)
        return np.zeros(0, np.int64), []
    if np.all(chunk_ids[1:] >= chunk_ids[:-1]):  # storage order: the stable sort is itself
        by_chunk = np.arange(n)
    else:
        by_chunk = np.argsort(chunk_ids, kind="stable")
    starts = np.concatenate([[0], np.flatnonzero(np.diff(chunk_ids[by_chunk])) + 1])
    lengths = np.diff(np.append(starts, n))
    chosen = rng.permutation(len(starts))  # the chunks' order
    lengths = lengths[chosen]
    ends = np.cumsum(lengths)
    # Each chunk's samples, chunk after chunk in the new order (a gather, no Python loop).
    joined = by_chunk[np.repeat(starts[chosen] - (ends - lengths), lengths) + np.arange(n)]
    cuts = ends[window - 1 :: window].tolist()
    if not cuts or cuts[-1] != n:
        cuts.append(n)
    order = np.empty(n, np.int64)
    begin = 0
    for end in cuts:  # each window's samples shuffled among themselves
        order[begin:end] = joined[begin:end][rng.permutation(end - begin)]
        begin = end
    return order, cuts


def chunk_shuffle_order(
    dataset: Dataset, *, seed: int = 0, epoch: int = 0, window: int = 4
) -> np.ndarray:
    """One epoch's positions in a chunk-local shuffled order, for ``ds.batches(order=...)``
    in a loop without torch: the order ``ChunkShuffleSampler(dataset, seed=seed,
    window=window)`` hands out in ``epoch`` on one rank, a function of ``(seed, epoch)``
    alone. Split it between processes yourself: strided (process ``r`` of ``world`` takes
    ``order[r::world]``) as the samplers do, so that a run resumes on any number of them."""
    table = getattr(dataset, "table", None)
    if table is None:
        raise TypeError(
            "chunk_shuffle_order takes an acumen dataset (acumen.open(path); it needs the "
            f"chunk of each sample), got {type(dataset).__name__}"
        )
    return chunk_window_order(table.chunk_ids, window, seed, epoch)[0]
