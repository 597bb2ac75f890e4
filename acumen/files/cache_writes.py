"""Fetched spans written to a :class:`~acumen.files.cache.SpanCache` in the background.

Writing a span to disk (a file, its block checksums, a row) costs about as long as fetching
it on a fast link, so the fetch that got it does not wait: :class:`BackgroundWrites` hands
each span to a writer thread (two at most) and returns. Until it is written a span is still
served to this process (:meth:`BackgroundWrites.get`); other processes find it once written.

- At most ``bound`` bytes wait: a fetch that would exceed it waits for room, so memory stays
  bounded when the disk is slower than the link.
- The thread is started when there is work and ends when there is none; it is not a daemon
  thread, so a process that exits (a DataLoader worker too: multiprocessing joins its
  threads) writes what it fetched first. ``flush`` waits for the writes; a forked child
  drops what its parent had waiting (the parent writes it).
- A write that fails (a full or read-only disk) is dropped: the cache is only a cache.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from typing import Any

from acumen.files.cache import SpanCache

#: Spans a writer thread takes at once (listed in one transaction).
_AT_ONCE = 64


class BackgroundWrites:
    """Spans on their way to ``cache`` (see the module's docstring)."""

    def __init__(self, cache: SpanCache, bound: int = 64 << 20, threads: int = 2) -> None:
        self.cache = cache
        self.bound = max(1, int(bound))
        self.threads = max(1, int(threads))
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._queue: deque[tuple[str, int, Any, str]] = deque()
        self._waiting = 0  # bytes queued or being written
        self._by_key: dict[tuple[str, str], dict[int, Any]] = {}  # (url, version): start -> data
        self._running: set[threading.Thread] = set()
        self._queued = 0  # spans queued so far
        self._unwritten: set[int] = set()  # their numbers, while queued or being written

    def _mine(self) -> None:
        if self._pid != os.getpid():  # a forked child: the parent writes what it queued
            self._reset()

    def put(self, url: str, start: int, data: Any, version: str) -> None:
        """Queue ``data`` (bytes that are never changed) as the span at ``start``."""
        self._mine()
        size = len(memoryview(data).cast("B"))
        if not size or size > self.cache.max_bytes:
            return
        with self._cond:
            while self._waiting and self._waiting + size > self.bound:
                self._cond.wait()
            self._queue.append((url, start, data, version, self._queued))
            self._unwritten.add(self._queued)
            self._queued += 1
            self._by_key.setdefault((url, version), {})[start] = data
            self._waiting += size
            if len(self._running) < min(self.threads, len(self._queue)):
                thread = threading.Thread(target=self._work, name="acumen-cache-writes")
                self._running.add(thread)
                thread.start()

    def get(self, url: str, start: int, size: int, version: str) -> memoryview | None:
        """The bytes ``start..start + size`` from a span still waiting, or None."""
        self._mine()
        if not self._waiting:
            return None
        with self._cond:
            spans = list(self._by_key.get((url, version), {}).items())
        for first, data in spans:
            view = memoryview(data).cast("B")
            if first <= start and start + size <= first + len(view):
                return view[start - first : start - first + size]
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._running.discard(threading.current_thread())
                    self._cond.notify_all()
                    return
                taken = [self._queue.popleft() for _ in range(min(len(self._queue), _AT_ONCE))]
            with contextlib.suppress(Exception):  # a failed write is a miss later, not an error
                self.cache.put_many([span[:4] for span in taken])
            with self._cond:
                for url, start, data, version, number in taken:
                    self._unwritten.discard(number)
                    kept = self._by_key.get((url, version), {})
                    if kept.get(start) is data:
                        del kept[start]
                        if not kept:
                            del self._by_key[(url, version)]
                    self._waiting -= len(memoryview(data).cast("B"))
                self._cond.notify_all()

    def queued(self) -> int:
        """How many spans were queued so far (for :meth:`wait_written`)."""
        self._mine()
        return self._queued

    def wait_written(self, count: int) -> None:
        """Wait until the first ``count`` spans queued are written (or dropped): other
        processes then find them, while later ones may still be on their way."""
        self._mine()
        with self._cond:
            while self._unwritten and min(self._unwritten) < count:
                self._cond.wait()

    def flush(self) -> None:
        """Wait until every queued span is written."""
        self._mine()
        with self._cond:
            while self._running - {threading.current_thread()}:
                self._cond.wait()
