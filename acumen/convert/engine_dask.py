"""The Dask engine: parts written by the workers of a ``dask.distributed`` cluster.

The scheduler is ``run.scheduler``, else Dask's own ``DASK_SCHEDULER_ADDRESS`` (the config
key ``scheduler-address``), else a ``LocalCluster`` of ``run.n_jobs`` worker processes that
this engine starts and closes. Each part is one Dask task; a worker writes the part into
its own directory under the output, so a local output must be on a filesystem that the
driver and every worker share (automatically true for a ``LocalCluster``). For a URL
output, a worker writes the part in its own cache and, once the parts before it are
written (its chunk numbers follow theirs), a second task on the same worker uploads its
chunk files to their final names (:mod:`acumen.convert.upload`); the driver records it.

At most twice as many parts as the cluster has worker threads are in flight, so the items
(which travel inside the tasks) never all sit in the scheduler's memory. Workers report
progress a few times a second through Dask's event log; the count of each part is corrected
to its exact result when the part finishes. Results come back in part order. Parts done
already (a resumed conversion) are read on the driver, not sent to the cluster.

When a part fails, no more parts are submitted; the parts in flight are allowed to finish
(so none is left half written by a task that outlives the run, and the finished ones are
reused when the conversion is run again), then the error of the first failed part is raised.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import logging
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from acumen.convert.config import ConfigError, ConvertConfig
from acumen.convert.parts import ConversionError, PartResult, PartTask, convert_part
from acumen.progress import BatchedReporter, Callback

logger = logging.getLogger(__name__)

PROGRESS_TOPIC = "acumen-convert-progress"  # one topic: the scheduler keeps a bounded log of it
_REPORT_EVERY = 0.25  # seconds between a worker's progress messages
_POLL = 0.25  # seconds between the driver's looks at progress while parts run


def _event_sender(run: str, number: int) -> Callable[[int, int], None]:
    """On a worker: sends a part's progress as Dask events for the driver (never fails)."""
    try:
        from distributed import get_worker

        worker: Any = get_worker()
    except ValueError:  # not inside a Dask worker: progress is reported per part only
        return lambda samples, nbytes: None

    def send(samples: int, nbytes: int) -> None:
        with contextlib.suppress(Exception):  # progress must never fail a part
            worker.log_event(PROGRESS_TOPIC, [run, number, samples, nbytes])

    return send


def _convert_part_reporting(task: PartTask, run: str) -> PartResult:
    """The Dask task: one part, written by the worker that runs it."""
    reporter = BatchedReporter(_event_sender(run, task.number), every=_REPORT_EVERY)
    try:
        result = convert_part(task, reporter)
    finally:
        reporter.flush()
    if result.attempt is not None:  # uploaded later, from this worker
        with contextlib.suppress(Exception):
            from distributed import get_worker

            result.address = get_worker().address
    return result


class _ProgressInbox:
    """Collects the workers' progress events (delivered on the client's event-loop thread);
    the driver applies them to the bar from its own thread, and sets each finished part's
    count to its exact result (events may be late, lost, or from an attempt Dask re-ran)."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.lock = threading.Lock()
        self.events: collections.deque[tuple[int, int, int]] = collections.deque()
        self.shown: dict[int, tuple[int, int]] = {}  # part -> (samples, bytes) on the bar
        self.finished: set[int] = set()

    def handler(self, event: tuple[float, Any]) -> None:
        _timestamp, message = event
        if isinstance(message, (list, tuple)) and len(message) == 4 and message[0] == self.run:
            with self.lock:
                self.events.append((int(message[1]), int(message[2]), int(message[3])))

    def drain(self, bar: Callback) -> None:
        with self.lock:
            events, self.events = list(self.events), collections.deque()
        for number, samples, nbytes in events:
            if number in self.finished:
                continue
            shown_samples, shown_bytes = self.shown.get(number, (0, 0))
            self.shown[number] = (shown_samples + samples, shown_bytes + nbytes)
            bar.update(samples, nbytes)

    def finish(self, result: PartResult, bar: Callback) -> None:
        self.drain(bar)
        self.finished.add(result.number)
        shown_samples, shown_bytes = self.shown.pop(result.number, (0, 0))
        bar.update(result.samples - shown_samples, result.payload_bytes - shown_bytes)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise ConfigError(
            "run.engine = 'dask' needs dask.distributed, which is not installed: "
            "pip install 'dask[distributed]' (acumen's 'dask' extra)"
        ) from error
    return distributed


@contextlib.contextmanager
def _client(cfg: ConvertConfig) -> Iterator[Any]:
    """A client of the configured scheduler, or of a LocalCluster started (and closed) here."""
    distributed = _import_distributed()
    import dask

    address = cfg.run.scheduler
    where = "run.scheduler"
    if address is None:
        address = dask.config.get("scheduler-address", None)
        where = "DASK_SCHEDULER_ADDRESS (Dask config 'scheduler-address')"
    if address:
        try:
            client = distributed.Client(address, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise ConfigError(
                f"cannot reach the Dask scheduler {address!r} given by {where}: {error}"
            ) from error
        try:
            logger.info("converting on the Dask scheduler at %s", address)
            yield client
        finally:
            client.close()
        return
    try:
        cluster = distributed.LocalCluster(
            n_workers=cfg.run.n_jobs,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: never a clash (and warning) over 8787
        )
    except Exception as error:
        raise ConversionError(
            f"could not start a local Dask cluster: {type(error).__name__}: {error} (its worker "
            "processes import the main script again: a script that calls acumen.convert must "
            "do so under 'if __name__ == \"__main__\":')"
        ) from error
    try:
        dashboard = (
            f" (dashboard: {cluster.dashboard_link})"
            if importlib.util.find_spec("bokeh") is not None  # Dask's dashboard needs it
            else ""
        )
        logger.info(
            "no Dask scheduler given (run.scheduler, DASK_SCHEDULER_ADDRESS): started a local "
            "cluster of %d worker processes for this conversion%s",
            cfg.run.n_jobs,
            dashboard,
        )
        client = distributed.Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        with warnings.catch_warnings():
            # Closing a LocalCluster stops worker processes that may still be shutting down
            # their own connections; distributed can report that with a RuntimeWarning or
            # ResourceWarning about a closed loop or unclosed socket. The cluster is ours and
            # being thrown away, so these say nothing about the conversion.
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", ResourceWarning)
            cluster.close()


def _capacity(client: Any) -> int:
    """Parts to keep in flight: twice the cluster's worker threads (at least 2)."""
    try:
        threads = sum(client.nthreads().values())
    except Exception:  # the scheduler is busy or restarting: keep the last guess
        return 0
    return max(2, 2 * threads)


def run_parts(tasks: Iterable[PartTask], cfg: ConvertConfig, bar: Callback) -> list[PartResult]:
    _import_distributed()  # a clear error before any work if Dask is not installed
    run = uuid.uuid4().hex
    inbox = _ProgressInbox(run)
    results: list[PartResult] = []
    with _client(cfg) as client:
        if not client.nthreads():
            logger.warning("the Dask cluster has no workers yet: parts wait until some join")
        client.subscribe_topic(PROGRESS_TOPIC, inbox.handler)
        parts = _Parts(client, run, inbox, bar, results)
        try:
            iterator = iter(tasks)
            exhausted = False
            limit = _capacity(client) or 2
            while parts.in_flight or (not exhausted and not parts.failed):
                # A part counts from its submission until it is done (for a URL output:
                # uploaded, and then twice as many may be open: a slow part holds the
                # uploads of those after it), so the parts waiting on disk are bounded.
                room = limit * (2 if parts.placement is not None else 1)
                while not exhausted and not parts.failed and len(parts.open) < room:
                    task = next(iterator, None)
                    if task is None:
                        exhausted = True
                    else:
                        parts.start(task)
                if not parts.in_flight:
                    continue
                if parts.wait() and not parts.failed:  # workers may have joined or left
                    limit = _capacity(client) or limit
            if parts.failed:
                parts.failed.sort(key=lambda entry: entry[0])
                number, future = parts.failed[0]
                future.result()  # raises the part's own error (e.g. ConversionError)
                raise RuntimeError(f"part {number} ended as {future.status}")
        except BaseException:
            # Interrupted (or the error above): nothing more must run for this conversion.
            if parts.in_flight:
                client.cancel(list(parts.in_flight))
            raise
        finally:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(PROGRESS_TOPIC)
    return sorted(results, key=lambda r: r.number)


class _Parts:
    """The parts submitted to the cluster: each a writing task, then, for a URL output, an
    upload task on the worker that wrote it (:mod:`acumen.convert.upload`), submitted once
    the parts before it are written (its chunk numbers follow theirs)."""

    def __init__(
        self, client: Any, run: str, inbox: _ProgressInbox, bar: Callback, results: list
    ) -> None:
        self.client, self.run, self.inbox, self.bar, self.results = client, run, inbox, bar, results
        self.in_flight: dict[Any, tuple[str, int]] = {}  # future -> (kind, part number)
        self.open: dict[int, PartTask] = {}  # parts submitted and not done yet
        self.failed: list[tuple[int, Any]] = []  # (part number, future) of parts that raised
        self.placed: dict[int, tuple[PartResult, int]] = {}  # uploading: (result, first chunk)
        self.placement: Any = None
        self.finished = threading.Event()  # a task finished (Dask calls back from its thread)

    def _submit(self, kind: str, number: int, function: Callable, *args: Any, **how: Any):
        future = self.client.submit(
            function, *args, key=f"acumen-{kind}-{number:06d}-{self.run}", pure=False, **how
        )
        future.add_done_callback(lambda _: self.finished.set())
        self.in_flight[future] = (kind, number)

    def start(self, task: PartTask) -> None:
        if task.upload is not None and self.placement is None:
            from acumen.convert.upload import Placement

            self.placement = Placement(Path(task.directory).parent)
        if not task.items:  # done already: read it here, no need for a worker
            result = convert_part(task)
            if self.placement is not None:
                self._place(result)  # (checks its chunk numbers still follow)
            self._done(result)
            return
        self.open[task.number] = task
        self._submit("part", task.number, _convert_part_reporting, task, self.run)

    def wait(self) -> bool:
        """Wait a little for tasks to finish, and take those that did; True if any did."""
        self.finished.clear()  # set again by any task finishing from here on
        done = [f for f in self.in_flight if f.done()]
        if not done:
            self.finished.wait(_POLL)
            done = [f for f in self.in_flight if f.done()]
        self.inbox.drain(self.bar)
        for future in done:
            kind, number = self.in_flight.pop(future)
            if future.status != "finished":
                if not self.failed:
                    logger.info(
                        "part %d failed; waiting for the %d task(s) in flight to finish",
                        number,
                        len(self.in_flight),
                    )
                self.failed.append((number, future))
            elif kind == "upload":
                self._uploaded(number, future.result())
            elif self.placement is None:
                self._done(future.result())
            else:
                self._place(future.result())
        return bool(done)

    def _place(self, result: PartResult) -> None:
        from acumen.convert.upload import upload_part

        for part, first in self.placement.add(result):
            self.placed[part.number] = (part, first)
            where = {"workers": [part.address], "allow_other_workers": True} if part.address else {}
            upload = self.open[part.number].upload
            self._submit("upload", part.number, upload_part, part.attempt, first, upload, **where)

    def _uploaded(self, number: int, uploaded: dict[str, Any]) -> None:
        from acumen.convert.upload import record_part

        part, first = self.placed.pop(number)
        record_part(Path(self.open[number].directory), uploaded)
        part.first, part.attempt = first, None
        self._done(part)

    def _done(self, result: PartResult) -> None:
        self.open.pop(result.number, None)
        self.inbox.finish(result, self.bar)
        self.results.append(result)
