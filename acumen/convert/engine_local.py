"""The local engine: parts written by a pool of worker processes on this machine.

At most ``2 * n_jobs`` parts are in flight, so memory stays bounded whatever the number of
items; workers report progress through a queue a few times a second.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections import deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from acumen.convert.config import ConvertConfig
from acumen.convert.parts import PartResult, PartTask, convert_part
from acumen.progress import BatchedReporter, Progress


def _convert_part_reporting(task: PartTask, channel: Any) -> PartResult:
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
    with multiprocessing.Manager() as manager, ProcessPoolExecutor(n_jobs) as pool:
        channel = manager.Queue()
        pending: deque[Future[PartResult]] = deque()
        iterator = iter(tasks)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < 2 * n_jobs:
                task = next(iterator, None)
                if task is None:
                    exhausted = True
                else:
                    pending.append(pool.submit(_convert_part_reporting, task, channel))
            if pending:
                wait([pending[0]], timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(channel, bar)
            while pending and pending[0].done():
                result = pending.popleft().result()  # raises the part's error, in order
                if result.resumed:
                    bar.update(result.samples, result.payload_bytes)
                results.append(result)
        _drain(channel, bar)
    return results


def _drain(channel: Any, bar: Progress) -> None:
    while True:
        try:
            samples, nbytes = channel.get_nowait()
        except queue.Empty:
            return
        bar.update(samples, nbytes)
