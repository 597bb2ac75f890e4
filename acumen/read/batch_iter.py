"""``Dataset.batches``: an order cut into batches, each read while the caller uses the last.

One background thread per pass reads the batches in turn with ``read_batch``, at most
:data:`AHEAD` of them beyond the one the caller holds; the reads release the GIL for their
copies and decoding, so they overlap the caller's work. With a remote dataset the thread
also fetches the next batch's bytes while it gathers this one (``Dataset.prefetch``), so
the wait for the store overlaps too. An error is raised where its batch is handed out.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

# The dataset (acumen.read.dataset.Dataset, which imports this module): its read_batch,
# prefetch, positions, columns and storage.
Dataset = Any

#: Batches read ahead of the one the caller holds, at most.
AHEAD = 2


def target_values(dataset: Dataset, target: str) -> np.ndarray:
    """The metadata column ``target`` as a numpy array (an error naming the columns)."""
    if not isinstance(target, str) or target not in dataset.columns:
        raise ValueError(
            f"{dataset.root} has no metadata column {target!r}; its columns: {dataset.columns}"
        )
    return dataset.table.metadata.column(target)


def batches(
    dataset: Dataset,
    batch_size: int,
    order: Any = None,
    drop_last: bool = False,
    target: str | None = None,
) -> Iterator[Any]:
    """The batches of ``Dataset.batches`` (see there); checks run before the first batch."""
    size = int(batch_size)
    if size < 1 or size != batch_size:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    positions = dataset._positions(order) if order is not None else np.arange(len(dataset))
    values = target_values(dataset, target) if target is not None else None
    count = len(positions)
    last = count - count % size if drop_last else count
    bounds = [(start, min(start + size, count)) for start in range(0, last, size)]
    return _read_ahead(dataset, positions, bounds, values)


def _read_ahead(
    dataset: Dataset,
    positions: np.ndarray,
    bounds: list[tuple[int, int]],
    values: np.ndarray | None,
) -> Iterator[Any]:
    remote = dataset.storage.batched_reads
    fetches: dict[int, Future] = {}

    def read(k: int) -> Any:
        part = positions[bounds[k][0] : bounds[k][1]]
        fetch = fetches.pop(k, None)
        if fetch is not None:  # its bytes first: no second request for them
            with contextlib.suppress(Exception):  # the read fetches again and says why
                fetch.result()
        if remote and k + 1 < len(bounds):
            with contextlib.suppress(Exception):  # a damaged row: its read raises it
                fetches[k + 1] = dataset.prefetch(positions[bounds[k + 1][0] : bounds[k + 1][1]])
        batch = dataset.read_batch(part)
        return batch if values is None else (batch, values[part])

    with ThreadPoolExecutor(1, thread_name_prefix="acumen-batches") as ahead:
        pending: deque[Future] = deque()
        submitted = 0
        try:
            while True:
                # While the caller holds a batch, at most AHEAD are read or being read.
                while submitted < len(bounds) and len(pending) <= AHEAD:
                    pending.append(ahead.submit(read, submitted))
                    submitted += 1
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
