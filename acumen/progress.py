"""Progress for long jobs: a live bar on a terminal, plain lines in logs and CI.

On a terminal the line redraws at most ten times a second with samples/s, bytes written and
the time left; otherwise one line every ``interval`` seconds, so a log stays readable.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Progress:
    """Counts samples and bytes; ``with Progress(total, "writing") as p: p.update(1, n)``."""

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
        self.unit = unit
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.samples = 0
        self.nbytes = 0
        self.start = time.monotonic()
        self._shown = -math.inf  # the first update always shows

    def update(self, samples: int = 1, nbytes: int = 0) -> None:
        self.samples += samples
        self.nbytes += nbytes
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._shown >= (0.1 if self.tty else self.interval):
            self._shown = now
            self._show(now)

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        rate = self.samples / elapsed
        done = f"{self.samples:,}" + (f"/{self.total:,}" if self.total is not None else "")
        text = f"{self.label}: {done} {self.unit}, {rate:,.0f}/s"
        if self.nbytes:
            text += f", {_size(self.nbytes)}"
        if self.total and rate > 0 and self.samples < self.total:
            text += f", {_duration((self.total - self.samples) / rate)} left"
        return text

    def _show(self, now: float) -> None:
        if self.tty:
            bar = ""
            if self.total:
                filled = int(20 * min(self.samples / self.total, 1.0))
                bar = "[" + "#" * filled + "." * (20 - filled) + "] "
            self.stream.write("\r" + bar + self.line(now) + "\x1b[K")
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Print the final line (a terminal's bar is left complete); once: a bar closed
        early (recode's, before its copy is read back) stays quiet after."""
        if not self.enabled:
            return
        self.enabled = False
        elapsed = time.monotonic() - self.start
        text = f"{self.line()} in {_duration(elapsed)}"
        self.stream.write(("\r" + text + "\x1b[K\n") if self.tty else text + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BatchedReporter:
    """Adds up (samples, bytes) and hands the sums to ``send`` at most every ``every`` seconds.

    Workers report progress through it (a queue, a Dask event) without a message per sample;
    :meth:`flush` sends what is left.
    """

    def __init__(self, send: Callable[[int, int], None], every: float = 0.25) -> None:
        self.send = send
        self.every = every
        self.samples = 0
        self.nbytes = 0
        self.last = time.monotonic()

    def __call__(self, samples: int, nbytes: int) -> None:
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
