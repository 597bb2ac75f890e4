"""What a progress callback costs the Writer's hot loop (issue 18).

    .venv/bin/python benchmarks/progress_overhead.py [--samples 200000] [--repeats 7]

Writes ``--samples`` small samples (float32, 8 values: 32 bytes, raw codec, no metadata,
``durable=False``, in a temporary folder) with ``acumen.Writer`` and ``progress=`` None,
a callback that counts what it is told, and ``True`` (acumen's line, to a log: stderr
sent to a StringIO), in turn, ``--repeats`` times each (interleaved, so the machine's
drift falls on all alike, each first in turn). Prints the median and the fastest time per
``add`` of each, their difference from none, and how many times the callback was told.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import acumen
from acumen.progress import Callback


class Counting(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def update(self, n: int = 1, nbytes: int = 0) -> None:
        super().update(n, nbytes)
        self.calls += 1


def run(folder: Path, samples: list[np.ndarray], progress: object) -> float:
    start = time.perf_counter()
    with acumen.Writer(folder, durable=False, progress=progress) as writer:  # type: ignore[arg-type]
        add = writer.add
        for sample in samples:
            add(sample)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    samples = [np.full(8, i, dtype=np.float32) for i in range(args.samples)]
    times: dict[str, list[float]] = {"none": [], "callback": [], "acumen line": []}
    calls = 0
    with tempfile.TemporaryDirectory() as tmp:
        names = list(times)
        for repeat in range(args.repeats):
            for name in names[repeat % 3 :] + names[: repeat % 3]:  # each goes first in turn
                counting = Counting()
                progress = {"none": None, "callback": counting, "acumen line": True}[name]
                with contextlib.redirect_stderr(io.StringIO()):
                    times[name].append(run(Path(tmp) / f"{name}-{repeat}", samples, progress))
                calls = max(calls, counting.calls)
    base = statistics.median(times["none"]) / args.samples * 1e6
    print(f"{args.samples:,} samples of 32 bytes, median of {args.repeats}:")
    best = min(times["none"]) / args.samples * 1e6
    for name, values in times.items():
        per = statistics.median(values) / args.samples * 1e6
        low = min(values) / args.samples * 1e6
        print(
            f"  {name:12s} median {per:6.3f} µs per add ({per - base:+.3f} µs, {per / base:.3f}x)"
            f"; fastest {low:6.3f} µs ({low - best:+.3f} µs)"
        )
    print(f"  the callback was told {calls} times per run")


if __name__ == "__main__":
    main()
