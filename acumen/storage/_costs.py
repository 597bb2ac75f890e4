"""What a store's requests cost, learned from their timings: the ``remote`` storage merges
a batch's ranges into the GETs that take the least predicted time (:mod:`._coalesce`).

A batch of ``gets`` GETs carrying ``bytes`` bytes, at most ``max_requests`` in flight, is
predicted to take :func:`predict`: ``waves x rtt + gets / rate + bytes / bandwidth``, where

- ``rtt`` is a small GET's round trip (first byte back, seconds);
- ``rate`` the GETs per second the server (and this client) complete when many are in
  flight: past it, more requests queue instead of overlapping;
- ``bandwidth`` the bytes per second of many large GETs at once.

:class:`Learned` keeps a running estimate of the three for one storage, from each batch of
GETs. The round trip: from its fastest small GET (in a batch whose bytes take less than a
round trip), averaged in log space (the mean of the samples so far, then a running
average weighing the last :data:`WEIGHT`: the first measurement replaces the guess, and
the estimate follows a server that changes). The rate and the bandwidth: from batches of
many GETs or many bytes (the first left out: it opens the connections), their wall time
less their waves' round trips fitted by ``gets / rate + bytes / bandwidth``, least squares
over the recent batches (:data:`FORGET`), pulled weakly towards the first guess. One
batch cannot tell a slow server from a slow link; batches of other shapes can, and the
plan changes their shape as the estimate moves.

Until measured, :data:`DEFAULT` holds, an object store in the reader's cloud region: a
small GET's first byte in 20-40 ms (S3's own figure for small objects is tens of ms); 1,000
GETs per second, which is what one Python process gets through s3fs or aiohttp, whose
client spends about 1 ms of CPU per GET (S3 itself takes 5,500 per second per prefix); and
200 MB/s, what one such process gets from a few dozen GETs at once.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Costs(NamedTuple):
    """The cost of a store's requests."""

    rtt: float  # seconds: a small GET's round trip
    rate: float  # GETs per second completed when many are in flight
    bandwidth: float  # bytes per second of large GETs at once


#: Before any measurement: an object store in the reader's region.
DEFAULT = Costs(rtt=0.030, rate=1000.0, bandwidth=200e6)
#: The estimates stay within these bounds (a sample past them is clipped).
LOW = Costs(rtt=1e-4, rate=10.0, bandwidth=1e6)
HIGH = Costs(rtt=5.0, rate=1e5, bandwidth=20e9)
#: A GET of at most this many bytes times its round trip (its transfer is negligible).
SMALL = 64 << 10
#: A batch of at least this many GETs, or this many bytes, samples the rate and bandwidth.
RATE_GETS = 16
BANDWIDTH_BYTES = 4 << 20
#: The weight of a new sample in the running (log) average of the round trip.
WEIGHT = 0.3
#: The rate and bandwidth: the weight a batch keeps per batch after it...
FORGET = 0.8
#: ...and the pull towards the defaults (in seconds squared: a batch of about 3 ms).
PULL = 1e-5


def predict(costs: Costs, gets: float, nbytes: float, max_requests: int) -> float:
    """Seconds to fetch ``nbytes`` in ``gets`` GETs, at most ``max_requests`` at once."""
    waves = math.ceil(gets / max(1, max_requests))
    return waves * costs.rtt + gets / costs.rate + nbytes / costs.bandwidth


class Learned:
    """A running estimate of one store's :class:`Costs` (thread-safe)."""

    def __init__(self, initial: Costs = DEFAULT, weight: float = WEIGHT) -> None:
        self.costs = self.initial = Costs(*initial)
        self.weight = float(weight)
        self.samples = [0, 0, 0]
        self.batches = 0
        self._normal = np.zeros((2, 2))
        self._moment = np.zeros(2)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        rtt, rate, bandwidth = self.costs
        return f"Learned({rtt * 1e3:.1f} ms, {rate:.0f} GETs/s, {bandwidth / 1e6:.0f} MB/s)"

    def _mix(self, field: int, sample: float) -> None:
        sample = min(max(sample, LOW[field]), HIGH[field])
        values = list(self.costs)
        self.samples[field] += 1
        w = max(self.weight, 1 / self.samples[field])
        values[field] = math.exp((1 - w) * math.log(values[field]) + w * math.log(sample))
        self.costs = Costs(*values)

    def observe(
        self, seconds: float, timings: Sequence[tuple[float, int]], max_requests: int
    ) -> None:
        """A batch of GETs took ``seconds`` in all; ``timings``: each GET's ``(seconds,
        bytes)``, from its sending (a place among the ``max_requests`` in flight taken) to
        its last byte."""
        if not timings or seconds <= 0:
            return
        gets = len(timings)
        nbytes = sum(size for _, size in timings)
        small = [t for t, size in timings if size <= SMALL]
        with self._lock:
            rtt = self.costs.rtt
            if small and nbytes <= SMALL * gets:  # else its GETs wait for others' bytes
                self._mix(0, min(small))
                rtt = self.costs.rtt
            if gets < RATE_GETS and nbytes < BANDWIDTH_BYTES:
                return  # a round trip's noise would swamp the other terms
            self.batches += 1
            if self.batches == 1:
                return  # the first one also opened the connections
            # busy = gets / rate + bytes / bandwidth: least squares over the last batches
            # (each keeping FORGET of its weight per batch after it), in multiples of the
            # first guess, with a weak pull towards it (a run of batches of one shape tells only a
            # line of answers); the plan varies the shapes as the costs move.
            first = self.initial
            x = np.array([gets / first.rate, nbytes / first.bandwidth])
            busy = max(seconds - math.ceil(gets / max(1, max_requests)) * rtt, 0.0)
            self._normal = FORGET * self._normal + np.outer(x, x)
            self._moment = FORGET * self._moment + x * busy
            pull = PULL * np.eye(2)
            u, v = np.linalg.solve(self._normal + pull, self._moment + pull @ np.ones(2))
            rate = min(max(first.rate / max(u, 1e-9), LOW.rate), HIGH.rate)
            bandwidth = first.bandwidth / max(v, 1e-9)
            self.costs = Costs(rtt, rate, min(max(bandwidth, LOW.bandwidth), HIGH.bandwidth))
