"""Compressed batches decoded on threads: a process-wide pool, and how many threads pay.

A batch's payloads are split into one slice per thread, each decoded with one
``codec.decode_batch`` call (zstd: one call into C for the whole slice, the GIL released);
the calling thread decodes the first slice itself, so two threads cost one hand-off. The
pool lives as long as the process (made again in a forked child), so a call pays no thread
start. Threads pay only where the codec releases the GIL while it decodes
(``Codec.threads_from_bytes``) and the batch is large enough to outweigh the hand-off.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from acumen.abc.codec import Codec

#: At most this many threads decode one batch by default (more where asked).
MAX_DEFAULT_THREADS = 8
#: Each default thread gets at least this many decoded bytes: a hand-off to a pool thread
#: (and the GIL hand-offs it brings) costs tens of microseconds on a VM, a share of this
#: size takes from 0.1 ms (lz4) to 1 ms (gzip) to decode.
MIN_BYTES_PER_THREAD = 128 << 10

_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(codec: Codec, decoded_size: int, count: int) -> int:
    """How many threads decode ``count`` samples of ``decoded_size`` bytes by default."""
    start = codec.threads_from_bytes
    if start is None or decoded_size < start:
        return 1
    by_size = decoded_size * count // MIN_BYTES_PER_THREAD
    return max(1, min(cpus(), MAX_DEFAULT_THREADS, by_size, count))


def pool(workers: int) -> ThreadPoolExecutor:
    """The process's decoding pool, with at least ``workers`` threads."""
    global _pool
    current = _pool
    pid = os.getpid()
    if current is not None and current[0] == pid and current[1] >= workers:
        return current[2]
    with _lock:
        current = _pool
        if current is None or current[0] != pid or current[1] < workers:
            if current is not None and current[0] == pid:
                current[2].shutdown(wait=False)  # its threads end once their work is done
            size = max(workers, cpus())
            current = (pid, size, ThreadPoolExecutor(size, thread_name_prefix="acumen-decode"))
            _pool = current
    return current[2]


def in_slices(work: Callable[[int, int], None], count: int, threads: int) -> None:
    """``work(start, end)`` over ``threads`` slices of ``range(count)``: the first on the
    calling thread, the others on the pool; the first error raised (after all ended)."""
    threads = max(1, min(threads, count))
    bounds = [count * k // threads for k in range(threads + 1)]
    if threads == 1:
        work(0, count)
        return
    executor = pool(threads - 1)
    futures: Sequence[Future] = [
        executor.submit(work, bounds[k], bounds[k + 1]) for k in range(1, threads)
    ]
    error: BaseException | None = None
    try:
        work(bounds[0], bounds[1])
    except BaseException as failed:
        error = failed
    for future in futures:
        failed = future.exception()
        if error is None and failed is not None:
            error = failed
    if error is not None:
        raise error
