"""Which GETs a set of byte ranges becomes: the ``remote`` storage's coalescing rule.

The ranges are sorted per chunk file; ranges that overlap or touch always share a GET.
With a fixed ``gap`` (the user's ``coalesce_gap``) two ranges less than ``gap`` bytes apart
share one too. By default the rule follows what the store's requests cost
(:mod:`._costs`: a round trip, a request, a byte; learned from the store's own timings):

1. ranges at most :data:`TINY_GAP` bytes apart share a GET (a request's own headers cost
   about as much);
2. the nearest neighbours merge, the smallest gap first, as far as the batch's predicted
   time (:func:`._costs.predict`: ``waves x rtt + gets / rate + bytes / bandwidth``, the
   waves those of ``max_requests`` in flight) is least, and never across a gap over
   :data:`MAX_GAP` bytes.

Each merge trades the bytes of a gap for a request, and merging the smallest gaps first
buys the most requests for the fewest bytes; the costs say how many to buy. A server that
answers few requests per second, or a long round trip, merges more (256 random samples of
1 KiB among 100,000, 10 MiB chunks, at 24 ms, 300 GETs/s and 300 MB/s: about 30 GETs in
one wave, 260 times the batch's bytes, predicted 0.36 s against 0.85 s for 230 GETs and
twice the bytes, were it allowed); a fast server on a slow link fetches little beyond the
batch's own bytes. Whatever the costs, a batch fetches at most :data:`MAX_OVERREAD` (16)
times its own bytes (or 8 MiB, :data:`OVERREAD_FLOOR`): the bytes fetched also fill the
memory and disk caches, pushing out what may be read again, and a metered link bills them.

A GET is then cut, between two ranges, into parts of about :data:`PART` bytes, so that a
long run is fetched by several GETs at once (a single long GET leaves the link idle while
its first bytes come back, and one connection seldom fills it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from acumen.storage._costs import DEFAULT, Costs

#: Ranges this close always share a GET.
TINY_GAP = 4096
#: Never merged across a gap larger than this (a round trip at ~400 MB/s and ~20 ms).
MAX_GAP = 8 << 20
#: A merged GET is cut into parts of about this many bytes, fetched concurrently.
PART = 8 << 20
#: A batch never fetches more than this many times its own bytes (or OVERREAD_FLOOR).
MAX_OVERREAD = 16
OVERREAD_FLOOR = 8 << 20

_SHIFT = 1 << 40  # offsets below 1 TiB: (chunk, offset) as one increasing int64


def plan(
    requests: Sequence[tuple[int, int, int]],
    indices: Sequence[int],
    max_requests: int,
    gap: int | None = None,
    part: int | None = None,
    costs: Costs | None = None,
) -> list[tuple[int, int, int, list[int]]]:
    """The GETs that fetch ``requests[n]`` (chunk_id, offset, size) for ``n`` in
    ``indices``: ``[(chunk_id, start, end, [the n it answers, by offset])]``. ``gap``:
    a fixed coalescing gap (None: the rule of the module's docstring); ``part``: the
    bytes of a part (default :data:`PART`); ``costs``: the store's (default
    :data:`._costs.DEFAULT`)."""
    if not len(indices):
        return []
    picked = np.asarray(indices, dtype=np.int64)
    table = np.asarray(requests, dtype=np.int64).reshape(-1, 3)[picked]
    chunks, offsets, sizes = table[:, 0], table[:, 1], table[:, 2]
    order = np.lexsort((offsets, chunks))
    chunks, members = chunks[order], picked[order]
    starts = chunks * _SHIFT + offsets[order]
    ends = np.maximum.accumulate(starts + sizes[order])  # the furthest end so far
    # gaps[k]: bytes between range k + 1 and every range before it (<= 0: they overlap).
    gaps = starts[1:] - ends[:-1]
    other_chunk = chunks[1:] != chunks[:-1]
    if gap is not None:
        merge = (gaps <= gap) & ~other_chunk
    else:
        merge = (gaps <= TINY_GAP) & ~other_chunk
        candidates = np.flatnonzero(~merge & ~other_chunk & (gaps <= MAX_GAP))
        if len(candidates):
            merge[_cheapest(candidates, gaps, merge, sizes, max_requests, costs)] = True
    # Cut into parts of about ``part`` bytes, between ranges.
    cut = ~merge
    first_of_span = np.flatnonzero(np.concatenate([[True], cut]))
    span_of = np.cumsum(np.concatenate([[0], cut]))
    part = PART if part is None else part
    piece = (starts - starts[first_of_span][span_of]) // max(1, int(part))
    cut |= piece[1:] != piece[:-1]
    firsts = np.flatnonzero(np.concatenate([[True], cut]))
    lasts = np.concatenate([firsts[1:], [len(starts)]])
    bases = chunks[firsts] * _SHIFT
    members_list = members.tolist()
    return [
        (chunk, first_byte, end_byte, members_list[a:b])
        for chunk, first_byte, end_byte, a, b in zip(
            chunks[firsts].tolist(),
            (starts[firsts] - bases).tolist(),
            (ends[lasts - 1] - bases).tolist(),
            firsts.tolist(),
            lasts.tolist(),
            strict=True,
        )
    ]


def _cheapest(
    candidates: np.ndarray,
    gaps: np.ndarray,
    merge: np.ndarray,
    sizes: np.ndarray,
    max_requests: int,
    costs: Costs | None,
) -> np.ndarray:
    """The gaps to merge: the ``k`` smallest of ``candidates``, ``k`` the one whose GETs
    take the least predicted time (:func:`._costs.predict`, the parts counted)."""
    rtt, rate, bandwidth = DEFAULT if costs is None else costs
    candidates = candidates[np.argsort(gaps[candidates], kind="stable")]
    gets = int(len(merge) - merge.sum()) + 1 - np.arange(len(candidates) + 1)
    nbytes = int(sizes.sum() + np.maximum(gaps[merge], 0).sum()) + np.concatenate(
        [[0], np.cumsum(gaps[candidates])]
    )
    gets = gets + nbytes // PART  # long GETs are cut into parts
    waves = -(-gets // max(1, int(max_requests)))
    seconds = waves * rtt + gets / rate + nbytes / bandwidth
    # Never more than MAX_OVERREAD times the batch's own bytes (a floor for tiny batches):
    # what is fetched also fills the memory and disk caches, and a metered link pays it.
    seconds[nbytes > max(MAX_OVERREAD * int(sizes.sum()), OVERREAD_FLOOR)] = np.inf
    seconds[0] = min(seconds[0], 1e300)  # merging nothing more is always allowed
    return candidates[: int(np.argmin(seconds))]
