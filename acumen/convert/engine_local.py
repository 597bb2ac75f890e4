"""The local engine: parts written by a pool of worker processes on this machine.

At most ``2 * n_jobs`` parts are in flight, so memory stays bounded whatever the number of
items; workers report progress through a pipe a few times a second. The workers end with
this process, even when it is killed (:mod:`acumen.write.worker_pool`): no server process (a
``multiprocessing.Manager``) is needed, the pipe is handed to each worker as it starts.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from acumen.convert.config import ConvertConfig
from acumen.convert.parts import PartResult, PartTask, convert_part
from acumen.progress import BatchedReporter, Progress
from acumen.write.worker_pool import process_pool

_channel: Any = None  # in a worker: where it reports progress (set as the worker starts)


def _set_channel(channel: Any) -> None:
    global _channel
    _channel = channel


def _convert_part_reporting(task: PartTask) -> PartResult:
    channel = _channel
    reporter = BatchedReporter(lambda samples, nbytes: channel.put((samples, nbytes)))
    try:
        return convert_part(task, reporter)
    finally:
        reporter.flush()


def run_parts(tasks: Iterable[PartTask], cfg: ConvertConfig, bar: Progress) -> list[PartResult]:
    n_jobs = cfg.run.n_jobs
    results: list[PartResult] = []
    if n_jobs == 1:
        for task in tasks:
            result = convert_part(task, bar.update)
            if result.resumed:
                bar.update(result.samples, result.payload_bytes)
            results.append(result)
        return results
    # A put writes to the pipe before the part's result is sent: a drain after the last
    # result sees every report.
    channel = multiprocessing.SimpleQueue()
    pool = process_pool(n_jobs, _set_channel, (channel,))
    pending: deque[Future[PartResult]] = deque()
    try:
        iterator = iter(tasks)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < 2 * n_jobs:
                task = next(iterator, None)
                if task is None:
                    exhausted = True
                else:
                    pending.append(pool.submit(_convert_part_reporting, task))
            if pending:
                wait([pending[0]], timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(channel, bar)
            while pending and pending[0].done():
                result = pending.popleft().result()  # raises the part's error, in order
                if result.resumed:
                    bar.update(result.samples, result.payload_bytes)
                results.append(result)
    finally:
        _stop(pool, pending, channel, bar)
    return results


def _stop(pool: Any, pending: deque[Future[PartResult]], channel: Any, bar: Progress) -> None:
    """Shut the pool down, reading the pipe until no part runs (a full pipe would block
    a worker's report, and so the shutdown)."""
    for future in pending:
        future.cancel()  # parts not started yet never start
    while not all(future.done() for future in pending):
        wait(pending, timeout=0.2)
        _drain(channel, bar)
    pool.shutdown(wait=True)
    _drain(channel, bar)
    channel.close()


def _drain(channel: Any, bar: Progress) -> None:
    while not channel.empty():  # this process is the only reader: get() does not wait
        samples, nbytes = channel.get()
        bar.update(samples, nbytes)
