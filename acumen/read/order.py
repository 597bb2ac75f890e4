"""A chunk-local shuffle of a dataset's samples, without torch.

Chunk files are taken in a shuffled order, a window of ``window`` of them at a time, and the
samples of each window shuffled together: reads stay within a few chunk files at once (which
matters on disks and remote storage) while the order is still well mixed. This is the one
place the algorithm lives: ``acumen.torch.ChunkShuffleSampler`` plans its epochs with
:func:`window_order`, and :func:`chunk_shuffle_order` gives the same order to a loop without
torch (``ds.batches(256, order=...)`` for JAX or numpy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from acumen.read.dataset import Dataset


def window_order(
    chunk_ids: np.ndarray, window: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    """Every position once, chunks shuffled and samples shuffled within windows of
    ``window`` chunks, and where each window ends in the order (for reading ahead)."""
    n = len(chunk_ids)
    by_chunk = np.argsort(chunk_ids, kind="stable")
    bounds = np.flatnonzero(np.diff(chunk_ids[by_chunk])) + 1
    groups = np.split(by_chunk, bounds) if n else []
    groups = [groups[i] for i in rng.permutation(len(groups))]
    pieces = []
    cuts: list[int] = []
    for start in range(0, len(groups), window):
        joined = np.concatenate(groups[start : start + window])
        pieces.append(joined[rng.permutation(len(joined))])
        cuts.append((cuts[-1] if cuts else 0) + len(joined))
    order = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
    return order, cuts


def chunk_shuffle_order(
    dataset: Dataset, *, seed: int = 0, epoch: int = 0, window: int = 4
) -> np.ndarray:
    """One epoch's positions in a chunk-local shuffled order, for ``ds.batches(order=...)``
    in a loop without torch: the order ``ChunkShuffleSampler(dataset, seed=seed,
    window=window)`` hands out in ``epoch`` on one rank, a function of ``(seed, epoch)``
    alone. Split it between processes yourself (e.g. equal contiguous shares)."""
    if window < 1:
        raise ValueError(f"window must be at least 1 chunk, got {window}")
    table = getattr(dataset, "table", None)
    if table is None:
        raise TypeError(
            "chunk_shuffle_order takes an acumen dataset (acumen.open(path); it needs the "
            f"chunk of each sample), got {type(dataset).__name__}"
        )
    chunk_ids = np.asarray(table.chunk_ids)
    return window_order(chunk_ids, window, np.random.default_rng([seed, epoch]))[0]
