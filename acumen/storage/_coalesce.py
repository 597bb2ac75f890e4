"""Which GETs a set of byte ranges becomes: the ``remote`` storage's coalescing rule.

The ranges are sorted per chunk file; ranges that overlap or touch always share a GET.
With a fixed ``gap`` (the user's ``coalesce_gap``) two ranges less than ``gap`` bytes apart
share one too. By default the rule follows the batch's density instead:

1. ranges at most :data:`TINY_GAP` bytes apart share a GET (a request's own headers cost
   about as much);
2. while the GETs would take more than :data:`WAVES` waves of ``max_requests`` requests in
   flight, the two nearest neighbours merge (the smallest gap first), as long as the bytes
   so added stay within the bytes the ranges themselves hold (so a batch downloads at most
   about twice its bytes), and never across a gap over :data:`MAX_GAP` bytes (fetching
   that many costs more than another wave's round trip on a fast link).

So a batch whose ranges lie close together fits in three waves of round trips, merging its
nearest ranges first, and a sparse one fetches its own bytes and little else, in as many
waves as its ranges need (256 samples of 1 KiB spread over 100 MB: about 240 GETs, four
waves of 64, twice the bytes; ``max_requests=128`` makes it two waves where the server
takes that many requests at once). Each merge trades the bytes of a gap for a request:
merging the smallest gaps first buys the most requests for the fewest bytes.

A GET is then cut, between two ranges, into parts of about :data:`PART` bytes, so that a
long run is fetched by several GETs at once (a single long GET leaves the link idle while
its first bytes come back, and one connection seldom fills it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Ranges this close always share a GET.
TINY_GAP = 4096
#: By default, the GETs of one read fit in this many waves of ``max_requests`` requests.
WAVES = 3
#: Never merged across a gap larger than this (a round trip at ~400 MB/s and ~20 ms).
MAX_GAP = 8 << 20
#: A merged GET is cut into parts of about this many bytes, fetched concurrently.
PART = 8 << 20

_SHIFT = 1 << 40  # offsets below 1 TiB: (chunk, offset) as one increasing int64


def plan(
    requests: Sequence[tuple[int, int, int]],
    indices: Sequence[int],
    max_requests: int,
    gap: int | None = None,
    part: int | None = None,
) -> list[tuple[int, int, int, list[int]]]:
    """The GETs that fetch ``requests[n]`` (chunk_id, offset, size) for ``n`` in
    ``indices``: ``[(chunk_id, start, end, [the n it answers, by offset])]``. ``gap``:
    a fixed coalescing gap (None: the rule of the module's docstring); ``part``: the
    bytes of a part (default :data:`PART`)."""
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
        extra = int(len(gaps) - merge.sum()) + 1 - WAVES * max(1, int(max_requests))
        if extra > 0:
            candidates = np.flatnonzero(~merge & ~other_chunk & (gaps <= MAX_GAP))
            candidates = candidates[np.argsort(gaps[candidates], kind="stable")[:extra]]
            # within the budget: the bytes the ranges hold
            added = np.cumsum(gaps[candidates])
            merge[candidates[: int(np.searchsorted(added, sizes.sum(), side="right"))]] = True
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
