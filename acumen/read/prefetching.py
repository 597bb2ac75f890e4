"""``Dataset.prefetch``: a dataset's byte ranges fetched in the background.

One :class:`Prefetcher` per dataset (per process) runs its fetches one after another on a
single daemon thread, started when there is work and gone when there is none. At most
``bound`` fetches are outstanding (the one running and those waiting); asking for another
then waits for a place, which holds a sampler running ahead to what the store can serve.
A fetch's error stays in its future: the read that needs those bytes fetches them again and
reports it, with the sample it was for.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

#: Fetches outstanding per dataset at most (one running, one waiting).
PREFETCH_BOUND = 2

Ranges = Sequence[tuple[int, int, int]]


def done() -> Future:
    """A future already finished (a prefetch with nothing to fetch)."""
    future: Future = Future()
    future.set_result(None)
    return future


class Prefetcher:
    """Runs ``fetch(ranges)`` in the background, one at a time (see the module docstring)."""

    def __init__(self, fetch: Callable[[Ranges], Any], bound: int = PREFETCH_BOUND) -> None:
        self.pid = os.getpid()  # a forked child makes its own (this one's thread is not there)
        self._fetch = fetch
        self._bound = max(1, int(bound))
        self._cond = threading.Condition()
        self._waiting: deque[tuple[Future, Ranges]] = deque()
        self._running = False
        self._thread: threading.Thread | None = None

    def submit(self, ranges: Ranges) -> Future:
        future: Future = Future()
        with self._cond:
            while len(self._waiting) + self._running >= self._bound:
                self._cond.wait()
            self._waiting.append((future, ranges))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="acumen-prefetch", daemon=True
                )
                self._thread.start()
        return future

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._waiting:
                    self._thread = None
                    self._cond.notify_all()
                    return
                future, ranges = self._waiting.popleft()
                if not future.set_running_or_notify_cancel():
                    self._cond.notify_all()
                    continue
                self._running = True
            error: BaseException | None = None
            try:
                self._fetch(ranges)
            except BaseException as failed:  # kept in the future; the later read reports it
                error = failed
            with self._cond:
                self._running = False
                self._cond.notify_all()
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def stop(self) -> None:
        """Cancel the fetches not started and wait for the running one to end."""
        with self._cond:
            while self._waiting:
                future, _ = self._waiting.popleft()
                future.cancel()
            self._cond.notify_all()
            while self._thread is not None and self._thread is not threading.current_thread():
                self._cond.wait()
