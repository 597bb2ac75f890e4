"""``BatchLoader``: a DataLoader's batches gathered on threads, with no worker processes.

For data that needs no Python per sample, a batch is a few large copies (``read_batch``
into one new array; numpy's copies release the GIL), so threads in the training process
gather batches as fast as worker processes would, without pickling each batch across a
process boundary or starting workers each epoch. The batches are exactly those of
``DataLoader(ds, batch_size=None, sampler=BatchSampler(sampler, batch_size, drop_last))``
(see :mod:`acumen.torch.dataset`), in the same order: ``threads`` threads gather the next
batches while the loop trains on this one, at most ``2 * threads`` ahead.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any

import numpy as np
import torch

from acumen.read.dataset import Dataset
from acumen.torch.batch import Padded
from acumen.torch.dataset import TorchDataset
from acumen.torch.order import EpochSampler

#: Threads by default for batches of TASK_BYTES or more: measured on 2 cores
#: (docs/benchmarks.md, issue 15), two threads gather images faster than one; smaller
#: batches are mostly Python work under the GIL, and one thread gathers them fastest.
DEFAULT_THREADS = 2
#: Bytes of samples a thread gathers per task: small batches go several to a task, since
#: handing a task to a thread and its result back costs tens of microseconds.
TASK_BYTES = 1 << 20


class BatchLoader:
    """Batches of ``dataset`` (a :class:`TorchDataset`, an ``acumen.Dataset`` or a path),
    ``batch_size`` samples each, in the order of ``sampler`` (any sampler of indices, e.g.
    :class:`ChunkShuffleSampler`; the dataset's order by default).

    Each batch is what the DataLoader batch path yields: a tensor ``(batch_size, *shape)``,
    or ``(tensor, target)`` when the dataset has a target (fields: a dict; varying shapes:
    :class:`Padded`). ``drop_last`` drops a last, smaller batch. ``pin_memory`` puts each
    batch in page-locked memory (needs CUDA); ``device`` moves it there, a CUDA device's
    copies made on a side stream, the next batch's while the loop uses this one.

    Resuming: :meth:`state_dict` counts the batches this loader has yielded (not those
    gathered ahead); :meth:`load_state_dict` hands the sampler where to start. Leaving the
    loop early stops the threads and rewinds a :class:`ChunkShuffleSampler` to the first
    sample not yielded, so iterating again goes on from there.
    """

    def __init__(
        self,
        dataset: TorchDataset | Dataset | str | os.PathLike[str],
        batch_size: int,
        *,
        sampler: Iterable[int] | None = None,
        threads: int | None = None,
        drop_last: bool = False,
        pin_memory: bool = False,
        device: str | torch.device | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.dataset = dataset if isinstance(dataset, TorchDataset) else TorchDataset(dataset)
        self.batch_size = batch_size
        self.sampler = sampler
        self.drop_last = drop_last
        self.threads = threads or (DEFAULT_THREADS if self._batches_per_task() == 1 else 1)
        self.device = torch.device(device) if device is not None else None
        cuda = torch.cuda.is_available()
        if self.device is not None and self.device.type == "cuda" and not cuda:
            raise ValueError(f"device={device!r}: torch sees no CUDA device here")
        if pin_memory and not cuda:
            warnings.warn(
                "BatchLoader(pin_memory=True) needs CUDA (torch.cuda.is_available() is False "
                "here): batches are left in ordinary memory",
                stacklevel=2,
            )
            pin_memory = False
        self.pin_memory = pin_memory
        #: Samples of this epoch yielded (counting where the sampler started), while a pass runs.
        self._at: int | None = None
        self._buffers: Buffers | None = None

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        return self._epoch()

    def _epoch(self) -> Iterator[Any]:
        sampler = self.sampler
        self._at = int(getattr(sampler, "start", 0))
        pending: deque[tuple[Future, list[int]]] = deque()
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="acumen-batch")
        finished = False
        per_task = self._batches_per_task()
        buffers = None
        if self._reuses_arrays():
            buffers = self._buffers
            if buffers is None:  # kept from one pass to the next
                buffers = self._buffers = Buffers((2 * self.threads + 2) * per_task + 2)
        try:
            tasks = _grouped(self._orders(), per_task)
            gather = functools.partial(self._gather, buffers=buffers)
            batches = _gathered(pool, pending, tasks, gather, 2 * self.threads)
            if self.device is not None:
                batches = _moved(batches, self.device)
            for count, batch in batches:
                self._at += count
                yield batch
            finished = True
        finally:
            for future, _ in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            if not finished and hasattr(sampler, "start"):
                # Resume at the first sample not yielded (all of them: the next pass is whole).
                sampler.start = self._at  # type: ignore[attr-defined]
            self._at = None

    def _orders(self) -> Iterator[np.ndarray]:
        """Each batch's positions, in order."""
        size = self.batch_size
        if self.sampler is None:
            n = len(self.dataset)
            stop = n - n % size if self.drop_last else n
            for start in range(0, stop, size):
                yield np.arange(start, min(start + size, n))
            return
        if isinstance(self.sampler, EpochSampler):  # cuts its order in arrays itself
            yield from self.sampler.batches(size, self.drop_last)
            return
        order = iter(self.sampler)
        while True:
            positions = np.fromiter(islice(order, size), dtype=np.int64)
            if not len(positions) or (self.drop_last and len(positions) < size):
                return
            yield positions

    def _reuses_arrays(self) -> bool:
        """Whether batches are read into reused arrays: samples of one shape, read as they
        are (no per-sample transform), where ``read_batch`` takes ``out=``."""
        data = self.dataset
        return data.dataset.shape is not None and data.transform is None

    def _batches_per_task(self) -> int:
        """How many batches a thread gathers at once: about TASK_BYTES of samples."""
        sizes = self.dataset.dataset.table.sizes[:4096]
        batch_bytes = float(sizes.mean()) * self.batch_size if len(sizes) else 1.0
        return max(1, int(TASK_BYTES // max(batch_bytes, 1.0)))

    def _gather(
        self, task: list[np.ndarray], buffers: Buffers | None
    ) -> tuple[list[Any], BaseException | None]:
        """A task's batches, on a thread of the pool; a failure comes back after the
        batches before it (the loop gets those first, then the error)."""
        out: list[Any] = []
        data = self.dataset
        try:
            for positions in task:
                array = None
                if buffers is not None:
                    array = buffers.take((len(positions), *data.dataset.shape), data.dataset.dtype)
                batch = data._batch(data.dataset._positions(positions), array)
                if self.pin_memory:
                    batch = _apply(batch, torch.Tensor.pin_memory)
                out.append(batch)
        except Exception as error:
            return out, error
        return out, None

    def state_dict(self) -> dict[str, int]:
        """The sampler's state at the first sample of the batches not yet yielded."""
        sampler = self.sampler
        if sampler is None or not hasattr(sampler, "state_dict"):
            raise TypeError("resuming needs a sampler with state_dict (ChunkShuffleSampler)")
        if self._at is None:
            return sampler.state_dict()
        return sampler.state_dict(consumed=self._at)

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Start the next pass where ``state`` (from :meth:`state_dict`) stood."""
        if self.sampler is None or not hasattr(self.sampler, "load_state_dict"):
            raise TypeError("resuming needs a sampler with load_state_dict (ChunkShuffleSampler)")
        self.sampler.load_state_dict(state)


class Buffers:
    """Batch arrays read into again once nothing refers to them: a tensor over one (and
    every view of that tensor) holds a reference to it, so a batch the loop still holds,
    or keeps, is never overwritten. At most ``keep`` arrays are kept."""

    #: References to a free array while ``take`` looks at it: the list's, the loop's and
    #: ``sys.getrefcount``'s own argument (CPython's counting).
    FREE = 3

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.arrays: list[np.ndarray] = []
        self.lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        with self.lock:
            for array in self.arrays:
                if sys.getrefcount(array) <= self.FREE and array.shape == shape:
                    return array
            array = np.empty(shape, dtype)
            if len(self.arrays) < self.keep:
                self.arrays.append(array)
            return array


def _grouped(orders: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Batches' positions in lists of ``size`` (the last one shorter)."""
    while group := list(islice(orders, size)):
        yield group


def _gathered(
    pool: ThreadPoolExecutor,
    pending: deque[tuple[Future, list[int]]],
    tasks: Iterator[list[np.ndarray]],
    gather: Callable[[list[np.ndarray]], tuple[list[Any], BaseException | None]],
    ahead: int,
) -> Iterator[tuple[int, Any]]:
    """(samples, batch) in order, ``ahead`` tasks submitted beyond the one waited for; a
    thread's error is raised here, in the loop's thread."""
    for task in tasks:
        pending.append((pool.submit(gather, task), [len(p) for p in task]))
        if len(pending) > ahead:
            yield from _delivered(*pending.popleft())
    while pending:
        yield from _delivered(*pending.popleft())


def _delivered(future: Future, counts: list[int]) -> Iterator[tuple[int, Any]]:
    batches, error = future.result()
    yield from zip(counts, batches, strict=False)
    if error is not None:
        raise error


def _moved(batches: Iterator[tuple[int, Any]], device: torch.device) -> Iterator[tuple[int, Any]]:
    """Batches on ``device``. CUDA: each copied on a side stream while the loop uses the
    batch before it (pinned batches copy asynchronously). Untested here: no GPU."""
    if device.type != "cuda":
        for count, batch in batches:
            yield count, _apply(batch, lambda t: t.to(device))
        return
    stream = torch.cuda.Stream(device)
    previous = None
    for count, batch in batches:
        with torch.cuda.stream(stream):
            moved = _apply(batch, lambda t: t.to(device, non_blocking=True))
        event = stream.record_event()
        if previous is not None:
            yield _ready(*previous, device)
        previous = (count, moved, event)
    if previous is not None:
        yield _ready(*previous, device)


def _ready(count: int, batch: Any, event: Any, device: torch.device) -> tuple[int, Any]:
    """A batch copied on the side stream, made safe to use on the loop's stream."""
    current = torch.cuda.current_stream(device)
    current.wait_event(event)
    _apply(batch, lambda t: t.record_stream(current))
    return count, batch


def _apply(batch: Any, function: Callable[[torch.Tensor], Any]) -> Any:
    """``function`` applied to every tensor of a batch (its structure kept)."""
    if isinstance(batch, torch.Tensor):
        return function(batch)
    if isinstance(batch, Padded):
        return Padded(function(batch.values), function(batch.shapes))
    if isinstance(batch, tuple):
        return tuple(_apply(part, function) for part in batch)
    if isinstance(batch, dict):
        return {key: _apply(value, function) for key, value in batch.items()}
    return batch
