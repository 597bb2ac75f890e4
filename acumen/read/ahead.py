"""Reads that know their order: the bytes of a planned order fetched ahead, block by block.

A sampler knows the samples it will hand out next. :func:`ahead` takes such an order (one
epoch of positions), cuts it into blocks (whole windows of chunk files where the order
stays within windows, else runs of about ``ahead_bytes / 2``), and yields the positions
block by block: each block only once its bytes are fetched, while the next blocks are
fetched in the background (at most ``ahead_bytes`` beyond the block being handed out).
A block's samples are merged into spans first (a window of chunk files becomes a few large
GETs, whatever its order within the window), so the link moves large transfers.

What is handed out is then read with no request: from memory in the process that
prefetched, from the disk cache (``<cache>/chunks``, shared by every process on the machine)
in another one, such as a DataLoader worker, which reads with :func:`load_chunks` the
chunks of its batch into memory whole, one read each.

A failed fetch does not stop the order: its block is handed out anyway, and the reads that
need those bytes fetch them again and raise the error, naming the sample.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

import numpy as np

from acumen.errors import CorruptDatasetError

if TYPE_CHECKING:
    from acumen.read.dataset import Dataset

#: Bytes fetched ahead of the samples handed out, by default.
AHEAD_BYTES = 128 << 20
#: Fetches outstanding at once (the dataset's prefetcher runs one, holds one more).
_IN_FLIGHT = 2
#: Samples handed out between two looks at whether another block can be fetched.
_LOOK_EVERY = 256


def spans(dataset: Dataset, positions: np.ndarray) -> list[tuple[int, int, int]]:
    """The byte ranges of ``positions`` merged per chunk file where they touch or overlap:
    (chunk id, start, size), sorted. A window's samples, in any order, become a few spans."""
    table = dataset.table
    chunks = table.chunk_ids[positions].astype(np.int64)
    starts = table.offsets[positions].astype(np.int64)
    ends = starts + table.sizes[positions].astype(np.int64)
    order = np.lexsort((starts, chunks))
    chunks, starts, ends = chunks[order], starts[order], ends[order]
    # Chunk id above the offsets: a running maximum of ends that restarts with each chunk.
    reach = np.maximum.accumulate((chunks << 40) | ends)
    cut = np.flatnonzero(
        (chunks[1:] != chunks[:-1]) | ((chunks[1:] << 40 | starts[1:]) > reach[:-1])
    )
    first = np.concatenate([[0], cut + 1]) if len(chunks) else np.zeros(0, np.int64)
    last = np.concatenate([cut, [len(chunks) - 1]]) if len(chunks) else first
    span_ends = reach[last] & ((1 << 40) - 1)
    return list(
        zip(
            chunks[first].tolist(),
            starts[first].tolist(),
            (span_ends - starts[first]).tolist(),
            strict=True,
        )
    )


def blocks(sizes: np.ndarray, cuts: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """``[start, end)`` blocks of an order whose samples have ``sizes`` bytes: whole windows
    (``cuts``: where each window ends) gathered while they fit ``limit`` bytes; a window
    larger than ``limit`` split into runs of about ``limit`` bytes."""
    n = len(sizes)
    total = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    ends = sorted({int(c) for c in cuts if 0 < c < n} | {n}) if n else []
    out: list[tuple[int, int]] = []
    start = 0
    for end in ends:
        if out and out[-1][1] == start and total[end] - total[out[-1][0]] <= limit:
            out[-1] = (out[-1][0], end)  # this window joins the block before
        elif total[end] - total[start] <= limit:
            out.append((start, end))
        else:
            at = start
            while at < end:
                stop = int(np.searchsorted(total, total[at] + limit, side="right")) - 1
                stop = min(end, max(stop, at + 1))
                out.append((at, stop))
                at = stop
        start = end
    return out


def ahead(
    dataset: Dataset,
    positions: np.ndarray,
    cuts: Sequence[int] = (),
    ahead_bytes: int = AHEAD_BYTES,
    for_others: Callable[[], bool] | None = None,
) -> Iterator[int]:
    """The ``positions`` in order, each block once its bytes are fetched (module docstring).
    ``cuts``: where the order's windows end (indices into ``positions``). ``for_others``:
    while it says True (the samples are read by other processes, DataLoader workers), a block
    is handed out only once its bytes are also written to the disk cache, where those
    processes look (written in the background, while the next blocks are fetched)."""
    for piece in ahead_pieces(dataset, positions, cuts, ahead_bytes, for_others):
        yield from piece.tolist()


def ahead_pieces(
    dataset: Dataset,
    positions: np.ndarray,
    cuts: Sequence[int] = (),
    ahead_bytes: int = AHEAD_BYTES,
    for_others: Callable[[], bool] | None = None,
) -> Iterator[np.ndarray]:
    """:func:`ahead`'s positions as arrays of at most a few hundred, for a reader of whole
    batches (no Python step per sample)."""
    positions = np.asarray(positions, dtype=np.int64)
    sizes = dataset.table.sizes[positions]
    planned = blocks(sizes, cuts, max(1, ahead_bytes // 2))
    weight = [int(sizes[a:b].sum()) for a, b in planned]
    futures: dict[int, Future | None] = {}
    submitted = 0

    def fetch(k: int) -> Future | None:
        block = positions[planned[k][0] : planned[k][1]]
        try:
            dataset._checks.check_positions(block)
        except CorruptDatasetError:
            return None  # a damaged row: the read raises it, naming the sample
        return dataset._prefetch_ranges(spans(dataset, block))

    def top_up(k: int) -> None:
        """Submit blocks after ``k`` while they fit ``ahead_bytes`` (block ``k`` and the one
        after always) and fewer than _IN_FLIGHT fetches are outstanding."""
        nonlocal submitted
        while submitted < len(planned):
            if submitted > k + 1 and sum(weight[k + 1 : submitted + 1]) > ahead_bytes:
                return
            busy = sum(1 for f in futures.values() if f is not None and not f.done())
            if busy >= _IN_FLIGHT:
                return
            futures[submitted] = fetch(submitted)
            submitted += 1

    for k, (start, end) in enumerate(planned):
        top_up(k)
        future = futures.pop(k, None)
        if future is not None:
            with contextlib.suppress(Exception):  # the read fetches again and says why
                future.result()
            wait = getattr(dataset.storage, "wait_written", None)
            if wait is not None and for_others is not None and for_others():
                wait()
        top_up(k)
        for at in range(start, end, _LOOK_EVERY):
            yield positions[at : min(end, at + _LOOK_EVERY)]
            top_up(k)


def chunk_extents(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per chunk file, the first and the end byte its samples cover (0, 0 when none)."""
    table = dataset.table
    count = len(table.chunk_names) if table.chunk_names else 0
    count = max(count, int(table.chunk_ids.max()) + 1 if len(table.chunk_ids) else 0)
    first = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.zeros(count, dtype=np.int64)
    chunk_ids = table.chunk_ids.astype(np.int64)
    np.minimum.at(first, chunk_ids, table.offsets.astype(np.int64))
    np.maximum.at(last, chunk_ids, table.offsets.astype(np.int64) + table.sizes.astype(np.int64))
    first[first > last] = 0
    return first, last


def load_chunks(
    dataset: Dataset, extents: tuple[np.ndarray, np.ndarray], positions: np.ndarray, limit: int
) -> None:
    """Bring the chunks of ``positions`` from the disk cache into memory whole (each one
    read, requesting nothing), those of at most ``limit`` bytes; the others are read as
    usual. For an order that stays within a few chunks (a window), a process then reads
    one chunk at a time from disk instead of one sample at a time."""
    load = getattr(dataset.storage, "load_cached", None)
    if load is None or not len(positions):
        return
    first, last = extents
    chunks = np.unique(dataset.table.chunk_ids[positions]).tolist()
    ranges = [(c, int(first[c]), int(last[c] - first[c])) for c in chunks]
    load([r for r in ranges if 0 < r[2] <= limit])
