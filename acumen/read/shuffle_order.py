"""The chunk-window shuffle: one epoch's order of a dataset's samples, from its chunk ids.

One function, so that what reads in this order (``acumen.torch.ChunkShuffleSampler``) and
what measures it (:func:`acumen.shuffle_report`) cannot drift apart. No torch here.
"""

from __future__ import annotations

import numpy as np


def chunk_window_order(
    chunk_ids: np.ndarray, window: int, seed: int, epoch: int = 0
) -> tuple[np.ndarray, list[int]]:
    """Every sample's position in the order of epoch ``epoch``, and where each window ends.

    The chunks that hold samples are put in a random order, cut into windows of ``window``
    chunks, and the samples of each window shuffled among themselves: a reader then holds
    only one window of chunk files at a time. A window of every chunk is a full shuffle (a
    uniform random permutation). The order is a pure function of (``chunk_ids``,
    ``window``, ``seed``, ``epoch``).
    """
    if window < 1:
        raise ValueError(f"window must be at least 1 chunk, got {window}")
    chunk_ids = np.asarray(chunk_ids)
    n = len(chunk_ids)
    rng = np.random.default_rng([seed, epoch])
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
