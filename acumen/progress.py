"""Progress of long jobs as callbacks, as fsspec's: acumen tells, the callback shows.

Every long operation (:class:`acumen.Writer`, ``split_into_chunks``, ``convert``,
``recode``, ``verify``, ``compact``, uploads to a URL) takes ``progress=``: ``None`` or
``False`` shows nothing, ``True`` acumen's own line (:class:`Progress`), and any
:class:`Callback` is told instead (:class:`TqdmCallback` for a tqdm bar). acumen calls a
callback only from the thread that called the operation, so it need not be thread-safe,
and at most a few times a second from loops over samples, so it costs nothing there.

acumen's line: on a terminal it redraws at most ten times a second with samples/s, bytes
and the time left; otherwise one line every ``interval`` seconds, so a log stays readable.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


class Callback:
    """Told the progress of one operation; subclass it and override what you need.

    acumen calls :meth:`set_size` first (``size`` None: not known; it may be called again
    once known), then :meth:`update` as work is done, :meth:`branch` for a nested job (an
    upload, a check after the write) whose callback acumen sizes, updates and closes, and
    :meth:`close` once at the end, also when the operation fails. The base keeps the
    counts (``size``, ``value``, ``nbytes``, ``unit``): an override calls ``super()``.
    """

    def __init__(self) -> None:
        self.size: int | None = None
        self.value = 0
        self.nbytes = 0
        self.unit = "samples"

    def set_size(self, size: int | None, unit: str = "samples") -> None:
        """The amount of work, counted in ``unit`` (``samples``, ``bytes``, ``chunk files``)."""
        self.size = size
        self.unit = unit

    def update(self, n: int = 1, nbytes: int = 0) -> None:
        """``n`` more units done; ``nbytes``: the bytes they were (for a rate in bytes)."""
        self.value += n
        self.nbytes += nbytes

    def absolute_update(self, value: int) -> None:
        """Set the units done to ``value`` (for callers that know totals, not steps)."""
        self.update(value - self.value)

    def branch(self, name: str) -> Callback:
        """The callback of a nested job named ``name``; the base shows none of them."""
        return NoProgress()

    def close(self) -> None:
        """The operation ended (done or failed)."""

    def __enter__(self) -> Callback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NoProgress(Callback):
    """Shows nothing: what ``progress=None`` or ``False`` means."""


class Progress(Callback):
    """acumen's own line: ``with Progress(total, "writing") as p: p.update(1, n)``."""

    def __init__(
        self,
        total: int | None,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        interval: float = 10.0,
        unit: str = "samples",
    ) -> None:
        super().__init__()
        self.size, self.unit, self.label = total, unit, label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.shows = enabled  # shows: its branches too, also once it is closed
        self.interval = interval
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._shown = -math.inf  # the first update always shows
        self._parent: Progress | None = None  # a branch's: its line ends when this one starts
        self._started = True  # a branch's starts with set_size: one never started stays quiet

    def set_size(self, size: int | None, unit: str = "samples") -> None:
        super().set_size(size, unit)
        self._started = True
        if not self.value:  # the clock of the rate starts with the work
            self.start = time.monotonic()

    @property
    def total(self) -> int | None:
        return self.size

    @property
    def samples(self) -> int:
        return self.value

    def update(self, n: int = 1, nbytes: int = 0) -> None:
        self.value += n
        self.nbytes += nbytes
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._shown >= (0.1 if self.tty else self.interval):
            if self._parent is not None:
                self._parent.close()
                self._parent = None
            self._shown, self._started = now, True
            self._show(now)

    def branch(self, name: str) -> Progress:
        """A line of its own, labelled ``name``: once it shows, this one's line is final (a
        terminal's bar is redrawn in place, so the two cannot take turns)."""
        child = Progress(None, name, stream=self.stream, enabled=self.shows)
        child.interval, child._parent, child._started = self.interval, self, False
        return child

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        rate = self.value / elapsed
        done = f"{self.value:,}" + (f"/{self.size:,}" if self.size is not None else "")
        if self.unit == "bytes":
            done = _size(self.value) + (f"/{_size(self.size)}" if self.size is not None else "")
            text = f"{self.label}: {done}, {_size(rate)}/s"
        else:
            text = f"{self.label}: {done} {self.unit}, {rate:,.0f}/s"
        if self.nbytes:
            text += f", {_size(self.nbytes)}"
        if self.size and rate > 0 and self.value < self.size:
            text += f", {_duration((self.size - self.value) / rate)} left"
        return text

    def _show(self, now: float) -> None:
        if self.tty:
            bar = ""
            if self.size:
                filled = int(20 * min(self.value / self.size, 1.0))
                bar = "[" + "#" * filled + "." * (20 - filled) + "] "
            self.stream.write("\r" + bar + self.line(now) + "\x1b[K")
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Print the final line (a terminal's bar is left complete); once: a bar closed
        early (recode's, before its copy is read back) stays quiet after."""
        if not self.enabled or not self._started:
            self.enabled = False
            return
        if self._parent is not None:
            self._parent.close()
            self._parent = None
        self.enabled = False
        elapsed = time.monotonic() - self.start
        text = f"{self.line()} in {_duration(elapsed)}"
        self.stream.write(("\r" + text + "\x1b[K\n") if self.tty else text + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None and self._shown == -math.inf:
            self.enabled = False  # failed before it showed anything: the error says it all
        self.close()


class TqdmCallback(Callback):
    """Progress shown by a tqdm bar (``pip install tqdm``): ``progress=TqdmCallback()``.

    ``tqdm_kwargs`` go to the bar (``desc=``, ``leave=``, ``position=``...); ``tqdm_cls``
    makes it: ``tqdm.tqdm`` by default (imported only then), ``tqdm.auto.tqdm`` in a
    notebook, a subclass, or anything with tqdm's ``total``, ``update(n)`` and ``close()``.
    The bar appears with the first update (the size may be told more than once before);
    a nested job gets a bar of its own, described by its name.
    """

    def __init__(
        self,
        tqdm_kwargs: dict[str, Any] | None = None,
        *,
        tqdm_cls: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        self.tqdm_kwargs = dict(tqdm_kwargs or {})
        self.tqdm_cls = tqdm_cls
        self.bar: Any = None

    def _open(self) -> Any:
        if self.bar is None:
            make = self.tqdm_cls
            if make is None:
                from tqdm import tqdm as make  # only for this adapter: not a dependency
            shown: dict[str, Any] = {"unit": " " + self.unit}
            if self.unit == "bytes":
                shown = {"unit": "B", "unit_scale": True, "unit_divisor": 1024}
            self.bar = make(**{"total": self.size, **shown, **self.tqdm_kwargs})
        return self.bar

    def set_size(self, size: int | None, unit: str = "samples") -> None:
        super().set_size(size, unit)
        if self.bar is not None and self.bar.total != size:  # (else: made at the first update)
            self.bar.total = size
            getattr(self.bar, "refresh", lambda: None)()

    def update(self, n: int = 1, nbytes: int = 0) -> None:
        super().update(n, nbytes)
        self._open().update(n)

    def branch(self, name: str) -> TqdmCallback:
        return TqdmCallback({**self.tqdm_kwargs, "desc": name}, tqdm_cls=self.tqdm_cls)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


#: What an operation's ``progress=`` takes.
ProgressArg = bool | Callback | None


def as_callback(
    progress: bool | Callback | None,
    label: str,
    size: int | None = None,
    unit: str = "samples",
) -> Callback:
    """``progress=`` as given to an operation made a callback, sized: ``True`` is acumen's
    line labelled ``label``; ``None``/``False`` nothing; a :class:`Callback` itself."""
    if isinstance(progress, Callback):
        callback = progress
    elif progress is None or progress is False:
        callback = NoProgress()
    elif progress is True:
        callback = Progress(size, label, unit=unit)
    else:
        raise TypeError(
            f"progress must be True, False, None or an acumen.progress.Callback, got "
            f"{type(progress).__name__} (a tqdm bar: acumen.progress.TqdmCallback())"
        )
    callback.set_size(size, unit)
    return callback


class Lent(Callback):
    """A callback lent to a step of an operation (``recode``'s write, ``split_into_chunks``'s
    Writer): its updates and branches pass to the owner, who alone sizes and closes it."""

    def __init__(self, owner: Callback) -> None:
        super().__init__()
        self.owner = owner

    def update(self, n: int = 1, nbytes: int = 0) -> None:
        self.owner.update(n, nbytes)

    def branch(self, name: str) -> Callback:
        return self.owner.branch(name)


def lend(callback: Callback) -> Lent | None:
    """``callback`` for a step to tell (None: it shows nothing, so the step need not count)."""
    return None if isinstance(callback, NoProgress) else Lent(callback)


class Ticker:
    """Tells ``callback`` the running totals of a loop over samples at most every ``every``
    seconds, for a few nanoseconds per sample: the loop calls it with its totals (samples,
    bytes) once its count reaches the number the last call returned (about 20 ms of work
    later, at the rate seen), and :meth:`close` at the end."""

    def __init__(self, callback: Callback, every: float = 0.1) -> None:
        self.callback = callback
        self.every = every
        self.told = (0, 0, -math.inf)  # (samples, bytes, when) told so far: the first at once
        self.looked = (0, time.monotonic())  # (samples, when) at the last call

    def __call__(self, count: int, nbytes: int) -> int:
        now = time.monotonic()
        looked, looked_at = self.looked
        rate = (count - looked) / max(now - looked_at, 1e-9)
        self.looked = (count, now)
        if now - self.told[2] >= self.every:
            self.tell(count, nbytes, now)
        return count + max(1, min(int(rate * 0.02), 100_000))

    def tell(self, count: int, nbytes: int, now: float = 0.0) -> None:
        told, told_bytes, _ = self.told
        if count > told or nbytes > told_bytes:
            self.callback.update(count - told, nbytes - told_bytes)
        self.told = (count, nbytes, now)

    def close(self, count: int, nbytes: int) -> None:
        """Tell what is left, then close the callback (also when telling fails)."""
        try:
            self.tell(count, nbytes)
        finally:
            self.callback.close()


class BatchedReporter:
    """Adds up (samples, bytes) and hands the sums to ``send`` at most every ``every`` seconds.

    Workers report progress through it (a queue, a Dask event) without a message per sample,
    and loops over samples tell a callback through it; :meth:`flush` sends what is left.
    """

    def __init__(self, send: Callable[[int, int], None], every: float = 0.25) -> None:
        self.send = send
        self.every = every
        self.samples = 0
        self.nbytes = 0
        self.last = -math.inf  # the first at once: a display starts with the work

    def __call__(self, samples: int, nbytes: int = 0) -> None:
        self.samples += samples
        self.nbytes += nbytes
        now = time.monotonic()
        if now - self.last >= self.every:
            self.flush()
            self.last = now

    def flush(self) -> None:
        if self.samples or self.nbytes:
            self.send(self.samples, self.nbytes)
            self.samples = self.nbytes = 0


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def size_text(n: int | float) -> str:
    """``1.5 MiB``: bytes for people, in binary units (reports; the progress line counts
    in decimal ones, as download tools do)."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n:.0f} B"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
