"""An ordered, bounded parallel map over process workers.

Items are sent in batches and at most ``2 * n_jobs`` batches are in flight, so a long
input is never materialised and memory stays bounded; results come back in input order.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, wait
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
    poll: Callable[[], None] | None = None,
    poll_interval: float = 0.2,
) -> Iterator[R]:
    """``map(function, items)`` on ``n_jobs`` processes, in order, with bounded memory.

    The first error of ``function`` (in input order) is raised here, where its result would
    have come; the batches not started are cancelled and the running ones waited for. The
    workers end with this process, even when it is killed (:mod:`acumen.write.worker_pool`).

    ``poll``, when given, is called every ``poll_interval`` seconds while a result is
    awaited, before each batch's results are yielded, and while the pool winds down, to the
    end: e.g. to read what the workers report through a pipe, which must not fill up (a
    worker blocked on it would never finish, nor the wind-down).
    """
    iterator = iter(items)
    pool = process_pool(n_jobs, initializer, initargs)
    pending: deque[Future[list[R]]] = deque()
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < 2 * n_jobs:
                batch = list(itertools.islice(iterator, batch_size))
                if batch:
                    pending.append(pool.submit(_run_batch, function, batch))
                else:
                    exhausted = True
            if not pending:
                return
            head = pending[0]
            while poll is not None:
                wait([head], timeout=poll_interval)
                poll()
                if head.done():
                    break
            results = head.result()  # raises the batch's error, in order
            pending.popleft()
            yield from results
    finally:
        _wind_down(pool, pending, poll, poll_interval)


def _wind_down(
    pool: Executor,
    pending: deque[Future[Any]],
    poll: Callable[[], None] | None,
    poll_interval: float,
) -> None:
    for future in pending:
        future.cancel()  # batches not started yet never start
    if poll is not None:
        while not all(future.done() for future in pending):
            wait(pending, timeout=poll_interval)
            poll()
    pool.shutdown(wait=True, cancel_futures=True)
    if poll is not None:
        poll()
