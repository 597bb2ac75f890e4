"""An ordered, bounded parallel map over process workers.

Items are sent in batches and at most ``2 * n_jobs`` batches are in flight, so a long
input is never materialised and memory stays bounded; results come back in input order.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from acumen.write.worker_pool import process_pool

T = TypeVar("T")
R = TypeVar("R")


def _run_batch(function: Callable[[Any], R], batch: list[Any]) -> list[R]:
    return [function(item) for item in batch]


def ordered_map(
    function: Callable[[T], R],
    items: Iterable[T],
    n_jobs: int,
    *,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    batch_size: int = 32,
) -> Iterator[R]:
    """``map(function, items)`` on ``n_jobs`` processes, in order, with bounded memory.

    The workers end with this process, even when it is killed (:mod:`acumen.write.worker_pool`).
    """
    iterator = iter(items)
    pool = process_pool(n_jobs, initializer, initargs)
    pending: deque[Future[list[R]]] = deque()
    try:
        while True:
            batch = list(itertools.islice(iterator, batch_size))
            if batch:
                pending.append(pool.submit(_run_batch, function, batch))
            if pending and (not batch or len(pending) >= 2 * n_jobs):
                yield from pending.popleft().result()
            elif not batch:
                return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
