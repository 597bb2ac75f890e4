"""``remote``: chunk files in object storage (``s3://``, ``gs://``, ``az://``,
``https://``...), read by ranged GETs through fsspec.

``read`` is one ranged GET. ``read_many`` merges nearby ranges of one chunk into one GET
(by the batch's density, :mod:`acumen.storage._coalesce`; or those at most ``coalesce_gap``
bytes apart, when given) and sends all its GETs at once (at most ``max_requests`` in
flight); ``prefetch`` does the same and keeps the bytes, so that later
reads of those ranges are served from memory (at most ``cache_bytes`` kept, oldest dropped
first). With ``disk_cache`` (a folder) fetched spans are also kept on local disk, shared by
every process on the machine (:class:`acumen.files.cache.SpanCache`, at most
``disk_cache_bytes``; written in the background, :mod:`acumen.files.cache_writes`), and
looked up there before any request; a chunk's span is keyed by
its URL and its version (``chunk_versions``: the manifest's size and checksum, given by
``acumen.open``), and a chunk of unknown version is never cached on disk, since the object
may have changed. Nothing is opened per chunk: a storage pickles as its URLs and options, and each
process makes its own connections.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from acumen.abc.codec import Buffer
from acumen.abc.storage import Storage
from acumen.errors import CorruptDatasetError
from acumen.files.cache import SpanCache
from acumen.files.cache_maps import take_rows
from acumen.files.cache_writes import BackgroundWrites
from acumen.files.remote import MAX_REQUESTS, RemoteStore
from acumen.storage._coalesce import plan
from acumen.storage._costs import Learned
from acumen.storage._ranges import past_end

_WHAT = "chunk file"
_SHIFT = 1 << 40  # (chunk, offset) as one increasing int64 (offsets below 1 TiB)
# storage_options keys whose values are secrets: left out of repr.
_SECRET_WORDS = ("key", "secret", "token", "password", "credential", "sas", "auth", "header")


class RemoteStorage(Storage):
    """Chunk files at URLs, read by ranged GETs (see the module's docstring)."""

    name = "remote"
    zero_copy = False
    batched_reads = True

    def __init__(
        self,
        paths: Sequence[str],
        storage_options: Mapping[str, Any] | None = None,
        coalesce_gap: int | None = None,
        max_requests: int = MAX_REQUESTS,
        cache_bytes: int = 256 << 20,
        disk_cache: str | None = None,
        disk_cache_bytes: int = 10 << 30,
        chunk_versions: Sequence[str] | None = None,
    ) -> None:
        super().__init__(paths)
        self.storage_options = dict(storage_options or {})
        self.coalesce_gap = None if coalesce_gap is None else max(0, int(coalesce_gap))
        self.max_requests = max(1, int(max_requests))
        self.cache_bytes = max(0, int(cache_bytes))
        self.disk_cache = None if disk_cache is None else str(disk_cache)
        self.disk_cache_bytes = max(0, int(disk_cache_bytes))
        self.chunk_versions = None if chunk_versions is None else [str(v) for v in chunk_versions]
        if self.chunk_versions is not None and len(self.chunk_versions) != len(self.paths):
            raise ValueError(
                f"chunk_versions has {len(self.chunk_versions)} entries for "
                f"{len(self.paths)} chunk files"
            )
        self.disk = (
            SpanCache(self.disk_cache, self.disk_cache_bytes)
            if self.disk_cache and self.disk_cache_bytes
            else None
        )
        self.writes = None if self.disk is None else BackgroundWrites(self.disk)
        root = self.paths[0].rsplit("/", 1)[0] if self.paths else ""
        self.store = RemoteStore(root, self.storage_options, max_requests=self.max_requests)
        # What this store's requests cost (round trip, request rate, bandwidth), learned
        # from their timings: how a batch's ranges merge into GETs (_coalesce.plan).
        self.costs = Learned()
        self._reset_cache()

    @property
    def configuration(self) -> dict[str, Any]:
        return {
            "storage_options": dict(self.storage_options),
            "coalesce_gap": self.coalesce_gap,
            "max_requests": self.max_requests,
            "cache_bytes": self.cache_bytes,
            "disk_cache": self.disk_cache,
            "disk_cache_bytes": self.disk_cache_bytes,
            "chunk_versions": None if self.chunk_versions is None else list(self.chunk_versions),
        }

    def __repr__(self) -> str:
        shown = {
            key: "***" if any(w in key.lower() for w in _SECRET_WORDS) else value
            for key, value in self.storage_options.items()
        }
        return (
            f"RemoteStorage(storage_options={shown!r}, coalesce_gap={self.coalesce_gap}, "
            f"max_requests={self.max_requests}, cache_bytes={self.cache_bytes}, "
            f"disk_cache={self.disk_cache!r}, disk_cache_bytes={self.disk_cache_bytes})"
        )

    # --- the cache of prefetched spans ---------------------------------------------
    def _reset_cache(self, new_lock: bool = False) -> None:
        """Forget the bytes held in memory. The containers are replaced under the current
        lock, so a prefetch finishing in another thread never edits half-replaced ones; a
        new lock only where none is held (at creation, in a forked child)."""
        if new_lock or not hasattr(self, "_cache_lock"):
            self._cache_lock = threading.Lock()
        with self._cache_lock:
            # (chunk_id, start) -> bytes, oldest first; per chunk the sorted starts.
            self._spans: OrderedDict[tuple[int, int], bytes] = OrderedDict()
            self._starts: dict[int, list[int]] = {}
            self._cached = 0
            self._sizes: dict[int, int | None] = {}
            # Every span held, as arrays to look up many ranges at once: (chunk << 40 |
            # start, chunk << 40 | end, the spans' bytes); made on demand, dropped on change.
            self._table: tuple[np.ndarray, np.ndarray, list] | None = None

    def _from_cache(self, chunk_id: int, offset: int, size: int) -> memoryview | None:
        starts = self._starts.get(chunk_id)
        if not starts:
            return None
        with self._cache_lock:
            at = bisect.bisect_right(starts, offset) - 1
            if at < 0:
                return None
            start = starts[at]
            data = self._spans.get((chunk_id, start))
            if data is None or start + len(data) < offset + size:
                return None
            return memoryview(data)[offset - start : offset - start + size]

    def _keep(self, chunk_id: int, start: int, data: bytes) -> None:
        if len(data) > self.cache_bytes:
            return
        with self._cache_lock:
            starts = self._starts.setdefault(chunk_id, [])
            old = self._spans.pop((chunk_id, start), None)
            if old is not None:
                self._cached -= len(old)
                starts.remove(start)
            # Spans inside the new one go: a read finds the span starting last before it.
            first = bisect.bisect_left(starts, start)
            last = bisect.bisect_right(starts, start + len(data))
            for inner in starts[first:last]:
                held = self._spans[(chunk_id, inner)]
                if inner + len(held) <= start + len(data):
                    del self._spans[(chunk_id, inner)]
                    self._cached -= len(held)
                    starts.remove(inner)
            bisect.insort(starts, start)
            self._table = None
            self._spans[(chunk_id, start)] = data
            self._cached += len(data)
            while self._cached > self.cache_bytes and self._spans:
                (gone_chunk, gone_start), gone = self._spans.popitem(last=False)
                self._cached -= len(gone)
                self._starts[gone_chunk].remove(gone_start)

    def _held(
        self, chunks: np.ndarray, offsets: np.ndarray, sizes: Any
    ) -> tuple[np.ndarray, tuple]:
        """For each range, which span held in memory covers it (an index into the table
        returned, ``(chunk << 40 | start, chunk << 40 | end, bytes)`` per span; -1: none),
        in one lookup for them all."""
        with self._cache_lock:
            table = self._table
            if table is None:
                keys = sorted(self._spans)
                datas = [self._spans[key] for key in keys]
                firsts = np.array([c * _SHIFT + s for c, s in keys], dtype=np.int64)
                lengths = np.array([len(memoryview(d).cast("B")) for d in datas], dtype=np.int64)
                table = self._table = (firsts, firsts + lengths, datas)
        firsts, ends, datas = table
        if not len(firsts):
            return np.full(len(chunks), -1, dtype=np.int64), table
        starts = chunks.astype(np.int64) * _SHIFT + offsets
        at = np.searchsorted(firsts, starts, side="right") - 1
        found = (at >= 0) & (ends[np.maximum(at, 0)] >= starts + sizes)
        return np.where(found, at, -1), table

    def gather(self, chunks: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Fill the rows of ``out`` (uint8, one row of ``size`` bytes per range) with the
        bytes at ``offsets`` of ``chunks`` that memory or the disk cache holds, one ``take``
        per span that holds them (no lookup per sample). Which rows were filled: the others
        are for :meth:`read` (nothing is fetched here)."""
        size = out.shape[1]
        offsets = offsets.astype(np.int64)
        which, (firsts, _, datas) = self._held(chunks, offsets, size)
        filled = which >= 0
        if filled.any():
            arrays = {
                k: (np.frombuffer(datas[k], np.uint8), int(firsts[k]) % _SHIFT)
                for k in np.unique(which[filled]).tolist()
            }
            take_rows(which, offsets, out, arrays)
        if self.disk is None or self.chunk_versions is None or filled.all():
            return filled
        for chunk in np.unique(chunks[~filled]).tolist():
            version = self._version(chunk)
            if version is None:
                continue
            rows = np.flatnonzero(~filled & (chunks == chunk))
            found, spans = self.disk.rows_for(self.paths[chunk], version, offsets[rows], size)
            arrays = {}
            listed = np.unique(found[found >= 0]).tolist()
            for k in listed:  # each span mapped, checked
                start = spans[k][0]
                array = self.disk.array(spans[k], offsets[rows[found == k]] - start, size)
                if array is not None:
                    arrays[k] = (array, start)
            gone = [k for k in listed if k not in arrays]
            if gone:  # damaged or missing (dropped): read, and fetched, again
                found[np.isin(found, gone)] = -1
            which = np.full(len(offsets), -1, dtype=np.int64)
            which[rows] = found
            take_rows(which, offsets, out, arrays)
            filled |= which >= 0
        return filled

    def hold(self, chunk_id: int, start: int, data: bytes) -> None:
        """Serve reads inside ``data`` (chunk ``chunk_id`` from ``start``) from memory, as a
        prefetch's bytes are (``acumen verify`` decodes from the blocks it streams)."""
        self._keep(chunk_id, start, data)

    def drop_held(self) -> None:
        """Forget every span held in memory."""
        self._reset_cache()

    # --- the cache on disk (shared by processes) -------------------------------------
    def _version(self, chunk_id: int) -> str | None:
        """The chunk's version for the disk cache; None: not cached on disk."""
        if self.disk is None or self.chunk_versions is None:
            return None
        return self.chunk_versions[chunk_id] or None

    def _from_disk(self, chunk_id: int, offset: int, size: int) -> memoryview | None:
        version = self._version(chunk_id)
        if version is None:
            return None
        url = self.paths[chunk_id]
        found = self.disk.get(url, offset, size, version)
        return found if found is not None else self.writes.get(url, offset, size, version)

    def _to_disk(self, chunk_id: int, start: int, data: Any, background: bool = True) -> None:
        """Keep a fetched span on disk: in the background (a batch's or a read-ahead's
        spans), or at once (a single sample's, small)."""
        version = self._version(chunk_id)
        if version is not None:
            keep = self.writes.put if background else self.disk.put
            keep(self.paths[chunk_id], start, data, version)

    def _on_disk(self, chunk_id: int, offset: int, size: int) -> bool:
        """Whether the disk cache lists a span covering the range (or one waits to be
        written); its bytes are checked when read."""
        version = self._version(chunk_id)
        if version is None:
            return False
        url = self.paths[chunk_id]
        return (
            self.disk.has(url, offset, size, version)
            or self.writes.get(url, offset, size, version) is not None
        )

    def wait_written(self) -> None:
        """Wait until the spans fetched so far are in the disk cache (written in the
        background), where other processes find them; at once without a disk cache."""
        if self.writes is not None:
            self.writes.wait_written(self.writes.queued())

    def _after_fork(self) -> None:
        super()._after_fork()
        self._reset_cache(new_lock=True)

    def close(self) -> None:
        super().close()
        self._reset_cache()
        if self.disk is not None:
            self.writes.flush()
            self.disk.close()

    # --- reads -----------------------------------------------------------------------
    def _open_chunk(self, path: str) -> str:
        return path  # nothing to open: each read is a request

    def _empty(self, chunk_id: int, offset: int) -> bytes:
        """An empty range: b"" when it lies within the chunk (its size asked once)."""
        if offset:
            if chunk_id not in self._sizes:
                self._sizes[chunk_id] = self.store.size(self.paths[chunk_id])
            known = self._sizes[chunk_id]
            if known is None:
                raise _missing(FileNotFoundError(2, "no such object", self.paths[chunk_id]))
            if offset > known:
                raise past_end(self.paths[chunk_id], offset, 0, known)
        return b""

    def read(self, chunk_id: int, offset: int, size: int) -> Buffer:
        if size == 0:
            return self._empty(chunk_id, offset)
        cached = self._from_cache(chunk_id, offset, size)
        if cached is None:
            cached = self._from_disk(chunk_id, offset, size)
        if cached is not None:
            return cached
        return self._get([(chunk_id, offset, offset + size)], background=False)[0]

    def _get(self, spans: Sequence[tuple[int, ...]], background: bool = True) -> list[bytes]:
        """Fetch the spans ``(chunk_id, start, end, ...)`` at once, their timings learned
        from; each is then written to the disk cache (in the background)."""
        timings: list = []
        began = time.perf_counter()
        try:
            datas = self.store.read_ranges(
                [self.paths[span[0]] for span in spans],
                [span[1] for span in spans],
                [span[2] - span[1] for span in spans],
                _WHAT,
                timings,
            )
        except FileNotFoundError as error:
            raise _missing(error) from None
        self.costs.observe(time.perf_counter() - began, timings, self.max_requests)
        for (chunk_id, start, *_), data in zip(spans, datas, strict=True):
            self._to_disk(chunk_id, start, data, background)
        return datas

    def _fetch(self, requests: Sequence[tuple[int, int, int]], indices: list[int]) -> list:
        """Merge the ranges ``requests[i]`` for ``i`` in ``indices`` into spans and fetch
        them at once: [(chunk_id, start, data, [indices it answers])]."""
        spans = plan(
            requests, indices, self.max_requests, self.coalesce_gap, costs=self.costs.costs
        )
        return [
            (c, start, data, members)
            for (c, start, _, members), data in zip(spans, self._get(spans), strict=True)
        ]

    def read_many(self, requests: Sequence[tuple[int, int, int]]) -> list[Buffer]:
        out: list[Any] = [None] * len(requests)
        wanted = []
        for n, (chunk_id, offset, size) in enumerate(requests):
            if size == 0:
                out[n] = self._empty(chunk_id, offset)
            else:
                out[n] = self._from_cache(chunk_id, offset, size)
                if out[n] is None:
                    out[n] = self._from_disk(chunk_id, offset, size)
                if out[n] is None:
                    wanted.append(n)
        if wanted:
            for _, start, data, members in self._fetch(requests, wanted):
                view = memoryview(data)
                for n in members:
                    _, offset, size = requests[n]
                    out[n] = view[offset - start : offset - start + size]
        return out

    def prefetch(self, requests: Sequence[tuple[int, int, int]]) -> None:
        """Fetch these ranges as :meth:`read_many` does and keep them in memory (up to
        ``cache_bytes``): later reads within them need no request. The ranges are merged
        into GETs as a batch's are, and each GET's span is fetched unless memory or the disk
        cache holds it whole (reads then find it there): a run of adjacent ranges lands in
        one span, so a run read at once (as iteration does) is found whole, not in pieces of
        earlier reads."""
        self._prefetch(requests, fetch=True)

    def load_cached(self, requests: Sequence[tuple[int, int, int]]) -> None:
        """:meth:`prefetch` without requests: the spans the disk cache holds whole are
        kept in memory (a torch worker reading a chunk's batch finds them in one lookup);
        the others are left alone, nothing is fetched."""
        self._prefetch(requests, fetch=False)

    def _prefetch(self, requests: Sequence[tuple[int, int, int]], fetch: bool) -> None:
        table = np.asarray(requests, dtype=np.int64).reshape(-1, 3)
        every = np.flatnonzero(table[:, 2])
        which, _ = self._held(table[every, 0], table[every, 1], table[every, 2])
        if (which >= 0).all():
            return  # each range in memory already (a batch read again), one lookup for all
        wanted = []
        for span in plan(
            requests, every, self.max_requests, self.coalesce_gap, costs=self.costs.costs
        ):
            chunk_id, start, end, _ = span
            if self._from_cache(chunk_id, start, end - start) is not None:
                continue
            if not fetch:
                held = self._from_disk(chunk_id, start, end - start)
                if held is not None:
                    self._keep(chunk_id, start, held)
            elif not self._on_disk(chunk_id, start, end - start):
                wanted.append(span)
        if wanted:
            for (chunk_id, start, *_), data in zip(wanted, self._get(wanted), strict=True):
                self._keep(chunk_id, start, data)


def _missing(error: FileNotFoundError) -> CorruptDatasetError:
    """A chunk object the index names and the store does not have: the dataset is damaged
    (a local chunk file found missing at open is worded the same way)."""
    return CorruptDatasetError(f"{error.filename}: chunk file is missing from the store")
