"""The local engine: parts written by a pool of worker processes on this machine.

The parts go through :func:`acumen.write.parallel.ordered_map` one at a time: at most
``2 * n_jobs`` are in flight, so memory stays bounded whatever the number of items, and
results come back in order (a part's error too). Workers report progress through a pipe a
few times a second. The workers end with this process, even when it is killed
(:mod:`acumen.write.worker_pool`): no server process (a ``multiprocessing.Manager``) is
needed, the pipe is handed to each worker as it starts.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from acumen.convert.config import ConvertConfig
from acumen.convert.parts import PartResult, PartTask, convert_part
from acumen.progress import BatchedReporter, Callback
from acumen.write.parallel import ordered_map

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


def run_parts(tasks: Iterable[PartTask], cfg: ConvertConfig, bar: Callback) -> list[PartResult]:
    """The parts' results, in order. For a URL output each part is uploaded as soon as
    it is placed (:class:`acumen.convert.upload.ThreadUploads`), while the next are written."""
    if cfg.output.url is None:
        return list(_written(tasks, cfg, bar))
    from acumen.convert.upload import ThreadUploads

    uploads = ThreadUploads(2 * cfg.run.n_jobs)
    results: list[PartResult] = []
    records: dict[int, str] = {}

    def remembered(tasks: Iterable[PartTask]) -> Iterator[PartTask]:
        for task in tasks:
            records[task.number] = task.directory
            yield task

    target = _target(cfg)
    try:
        for result in _written(remembered(tasks), cfg, bar):
            results += uploads.add(result, records.pop(result.number), target)
        results += uploads.finish()
    finally:
        uploads.close()
    return results


def _target(cfg: ConvertConfig) -> Any:
    from acumen.convert.upload import UploadTarget

    return UploadTarget(cfg.output.url or "", cfg.output.storage_options, cfg.output.cache)


def _written(tasks: Iterable[PartTask], cfg: ConvertConfig, bar: Callback) -> Iterator[PartResult]:
    """The parts written (or found done), in order."""
    n_jobs = cfg.run.n_jobs
    if n_jobs == 1:
        for task in tasks:
            result = convert_part(task, bar.update)
            if result.resumed:
                bar.update(result.samples, result.payload_bytes)
            yield result
        return
    # A put writes to the pipe before the part's result is sent: the poll before a result
    # is yielded, and the last one after the pool's shutdown, see every report. The pipe
    # is read while the pool winds down, too: a full pipe would block a worker's report,
    # and so the shutdown.
    channel = multiprocessing.SimpleQueue()
    parts = ordered_map(
        _convert_part_reporting,
        tasks,
        n_jobs,
        initializer=_set_channel,
        initargs=(channel,),
        batch_size=1,
        poll=lambda: _drain(channel, bar),
    )
    try:
        for result in parts:
            if result.resumed:
                bar.update(result.samples, result.payload_bytes)
            yield result
    finally:
        parts.close()  # winds the pool down (if this loop stopped early)
        channel.close()


def _drain(channel: Any, bar: Callback) -> None:
    while not channel.empty():  # this process is the only reader: get() does not wait
        with _ctrl_c_after():
            samples, nbytes = channel.get()
        bar.update(samples, nbytes)


@contextlib.contextmanager
def _ctrl_c_after() -> Iterator[None]:
    """Ctrl-C held back until a report is read whole: an interrupt inside ``get`` would
    leave half a message in the pipe, and the drain while the pool winds down would then
    fail on it (EOFError) instead of the conversion stopping as interrupted."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not (
        threading.main_thread()
    ):
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
