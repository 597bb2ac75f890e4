"""The storage contract: reads byte ranges of a dataset's chunk files."""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from acumen.abc.codec import Buffer
from acumen.abc.plugin import Plugin

_LIVE_STORAGES: weakref.WeakSet[Storage] = weakref.WeakSet()


def _forget_handles_in_child() -> None:
    # A forked child must not share file descriptors or maps with its parent:
    # each storage reopens lazily on its first read in the child.
    for storage in list(_LIVE_STORAGES):
        storage._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_handles_in_child)


class Storage(Plugin, ABC):
    """Serves ``read(chunk_id, offset, size)`` over a fixed list of chunk files.

    Handles are opened lazily, one per chunk, on first use; they are dropped on ``close()``
    (a later read reopens them) and in a forked child, and never pickled: a storage pickles
    as its paths plus its configuration, so it crosses into ``DataLoader`` workers under
    fork, spawn and forkserver alike.
    Subclasses implement :meth:`_open_chunk` and :meth:`read`; a ``zero_copy`` storage also
    :meth:`_chunk_view` (readers then slice :attr:`views`), and one that can read straight
    into memory :meth:`read_into`.
    """

    #: True when ``read`` returns views on memory the storage holds (no copy per read), so a
    #: reader may ask for a whole chunk at once and index it.
    zero_copy: ClassVar[bool] = False

    #: For ``zero_copy`` storages: each open chunk's bytes as one read-only memoryview (None
    #: until the chunk is opened). Dropping the handles replaces the list, so a reader that
    #: looks it up on each read never sees a closed chunk. Readers may slice it instead of
    #: calling :meth:`read`.
    views: list[memoryview | None]

    #: True when one :meth:`read_many` of many ranges costs much less than as many
    #: :meth:`read` calls (a remote storage: one request per read, ranges merged and fetched
    #: concurrently by ``read_many``), so readers should hand it a batch's ranges at once.
    batched_reads: ClassVar[bool] = False

    # A storage is bound to open files: two are the same only if they are one object.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        self.paths: list[str] = [os.fspath(p) for p in paths]
        self._handles: list[Any] = [None] * len(self.paths)
        self.views = [None] * len(self.paths)
        self._lock = threading.Lock()
        _LIVE_STORAGES.add(self)

    @abstractmethod
    def _open_chunk(self, path: str) -> Any:
        """Open one chunk file and return the handle :meth:`read` uses."""

    def _close_handle(self, handle: Any) -> None:
        """Release a handle from :meth:`_open_chunk` that the storage no longer lists.

        It must not invalidate memory or a descriptor still in use: a read in another
        thread may hold the handle, and a zero-copy array may view its memory. The built-in
        storages release nothing here; their handles free themselves when the last
        reference goes (an mmap when its last array does, a descriptor after its last read).
        """

    def _chunk_view(self, handle: Any) -> memoryview | None:
        """The whole chunk as a memoryview (``zero_copy`` storages), for :attr:`views`."""
        return None

    @abstractmethod
    def read(self, chunk_id: int, offset: int, size: int) -> Buffer:
        """Return ``size`` bytes at ``offset`` of chunk ``chunk_id``.

        A range past the end of the file raises :class:`acumen.errors.CorruptDatasetError`
        naming the file.
        """

    def read_many(self, requests: Sequence[tuple[int, int, int]]) -> list[Buffer]:
        """The bytes of each ``(chunk_id, offset, size)`` in ``requests``, in their order.

        The same as ``[self.read(*r) for r in requests]``, which is the default; a storage
        for which one read is costly (a request over the network) merges near ranges and
        fetches them at once, and says so with :attr:`batched_reads`. Errors as
        :meth:`read`.
        """
        return [self.read(chunk_id, offset, size) for chunk_id, offset, size in requests]

    def prefetch(self, requests: Sequence[tuple[int, int, int]]) -> None:
        """Fetch these (chunk id, offset, size) ranges ahead of the reads that will ask for
        them (a batch, the next block of an iteration). A storage with
        :attr:`batched_reads` fetches them at once and serves those reads from memory; by
        default it does nothing (local reads need no warning)."""

    def read_into(self, chunk_id: int, offset: int, buffers: Sequence[memoryview]) -> None:
        """Fill the writable byte ``buffers`` in turn with the bytes from ``offset`` of chunk
        ``chunk_id`` on (a scattered read of one range, as ``os.preadv``).

        Storages that can read straight into memory override it; by default it copies
        from :meth:`read`.
        """
        sizes = [len(buffer) for buffer in buffers]
        data = memoryview(self.read(chunk_id, offset, sum(sizes))).cast("B")
        start = 0
        for buffer, size in zip(buffers, sizes, strict=True):
            buffer[:] = data[start : start + size]
            start += size

    def read_runs(
        self,
        chunk_ids: Sequence[int],
        offsets: Sequence[int],
        sizes: Sequence[int],
        buffers: Iterable[Sequence[memoryview]],
    ) -> None:
        """:meth:`read_into` for each run in turn: ``sizes[k]`` bytes from ``offsets[k]`` of
        chunk ``chunk_ids[k]`` into the buffers ``buffers[k]`` (which hold that many bytes).

        A batch's reads in one call, so that a storage can make them with little Python
        between the system calls (the seek storage: one ``preadv`` each, in a loop run
        in C); by default a loop of :meth:`read_into`. Errors as :meth:`read_into`.
        """
        read_into = self.read_into
        for chunk_id, offset, parts in zip(chunk_ids, offsets, buffers, strict=True):
            read_into(chunk_id, offset, parts)

    def handle(self, chunk_id: int) -> Any:
        """The open handle of a chunk, opening it on first use (thread-safe)."""
        handle = self._handles[chunk_id]
        if handle is None:
            with self._lock:
                handle = self._handles[chunk_id]
                if handle is None:
                    handle = self._open_chunk(self.paths[chunk_id])
                    self._handles[chunk_id] = handle
                    self.views[chunk_id] = self._chunk_view(handle)
        return handle

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's handles (reopened on first read)."""
        self._drop_handles()

    def _drop_handles(self) -> None:
        handles, self._handles = self._handles, [None] * len(self.paths)
        self.views = [None] * len(self.paths)
        self._lock = threading.Lock()
        for handle in handles:
            if handle is not None:
                self._close_handle(handle)

    def close(self) -> None:
        self._drop_handles()

    def __del__(self) -> None:
        # File descriptors are plain ints: close them when the storage goes away.
        with contextlib.suppress(Exception):
            self._drop_handles()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_storage, (type(self), self.paths, self.configuration))


def _rebuild_storage(cls: type[Storage], paths: list[str], configuration: dict) -> Storage:
    return cls(paths, **configuration)
