"""Reading many samples at once: ``Dataset.read_batch``.

Samples of one shape go into one array (new, or the caller's ``out``). Raw payloads are
copied in runs of adjacent ones (one ``preadv`` per run with the seek storage, the loop over
runs in C), or gathered as rows of mapped chunks with ``take`` (which releases the GIL);
compressed payloads decode straight into their rows, on threads where that pays
(:mod:`acumen.read.decoding`). Few Python steps per batch, and the copies made with the GIL
released, so that threads reading batches at once run side by side.
:class:`BatchReads` holds these reads; the dataset binds the state they use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from acumen.abc.codec import Codec
from acumen.abc.storage import Storage
from acumen.errors import CorruptDatasetError, sample_error
from acumen.format.index_table import IndexTable
from acumen.read.decoding import default_threads, in_slices
from acumen.read.index_checks import IndexChecks

# Samples this large are gathered into a batch one by one: measured (256 random samples,
# mmap), numpy's take fell to 0.8-1.7 GB/s for rows of 12-24 KiB while row copies gave 6-9;
# below 8 KiB take wins (1 KiB: 2.0 vs 1.0 GB/s).
ROW_COPY_BYTES = 8 << 10


class BatchReads:
    """The batch reads of a dataset (a base of ``Dataset``, which binds this state)."""

    root: Path
    table: IndexTable
    dtype: Any
    codec: Codec
    storage: Storage
    field_readers: list[Any]
    verify: str | None
    _n: int
    _fixed_shape: tuple[int, ...] | None
    _decode: Callable[[Any, int], Any] | None
    _read_bytes: Callable[[int, int, int], Any]
    _verify_samples: bool
    _direct: bool
    _checks: IndexChecks
    _rows_cache: tuple[list, dict[int, np.ndarray]] | None
    _aligned: bool | None  # every offset a multiple of the sample size
    _array: Callable[[int], Any]

    def _positions(self, indices: Any) -> np.ndarray:
        """``indices`` (integers, negative from the end, or a boolean mask) as positions."""
        positions = np.asarray(indices)
        kind = positions.dtype.kind
        if kind == "b":
            if positions.shape != (self._n,):
                raise IndexError(f"a mask needs {self._n} entries, got shape {positions.shape}")
            return np.flatnonzero(positions)
        if positions.size == 0:
            return np.zeros(0, dtype=np.int64)
        if kind not in "iu":
            raise TypeError(f"indices must be integers, got {positions.dtype}")
        n = self._n
        low, high = positions.min(), positions.max()
        if kind == "u" and high >= n:  # before the cast, which would wrap huge values
            wrong = positions.reshape(-1)[int(np.argmax(positions.reshape(-1) >= n))]
            raise IndexError(f"sample {wrong} is out of range for a dataset of {n} samples")
        positions = positions.astype(np.int64).reshape(-1)  # a copy: the caller's stays theirs
        if low < 0:
            positions = np.where(positions < 0, positions + n, positions)
            low, high = positions.min(), positions.max()
        if low < 0 or high >= n:
            bad = (positions < 0) | (positions >= n)
            wrong = np.asarray(indices).reshape(-1)[int(np.argmax(bad))]
            raise IndexError(f"sample {wrong} is out of range for a dataset of {n} samples")
        return positions

    def _getitems(self, indices: Sequence[int]) -> list[tuple[Any, dict[str, Any]]]:
        """``[ds[i] for i in indices]`` read as one batch (:meth:`read_batch`): the batched
        read of Grain's random-access data source protocol, which an acumen dataset follows
        as it is (``grain.MapDataset.source(ds)``). A record is ``(array, metadata)`` as
        ``ds[i]`` gives it (a dict of fields for a multi-field dataset), arrays read-only."""
        positions = self._positions(indices)
        batch = self._batch(positions, None)
        if isinstance(batch, np.ndarray):
            batch.flags.writeable = False  # as ds[i]'s arrays are
        return list(zip(batch, map(self.table.metadata.row, positions.tolist()), strict=True))

    def _batch(self, positions: np.ndarray, threads: int | None, out: Any = None) -> Any:
        """``read_batch`` of checked ``positions``."""
        self._checks.check_positions(positions)
        if out is not None:
            out = self._check_out(out, len(positions))
        if self.storage.batched_reads:  # a remote store: every payload fetched at once
            held = self._gather_held(positions, out)
            if held is not None:
                return held
            self.storage.prefetch(self.table.ranges(positions))
        return self._batch_read(positions, threads, out)

    def _check_out(self, out: Any, count: int) -> np.ndarray:
        """``out`` if it can take a batch of ``count`` samples, else an error saying why."""
        if self.field_readers or self._fixed_shape is None:
            raise ValueError(
                f"read_batch(out=...) needs samples of one shape; {self.root} has "
                f"{'fields' if self.field_readers else 'samples of several shapes'}: "
                "read the batch without out (a list of samples)"
            )
        want = (count, *self._fixed_shape)
        if not isinstance(out, np.ndarray):
            raise TypeError(
                f"out must be a numpy array of shape {want} and dtype {self.dtype}, "
                f"got {type(out).__name__}"
            )
        if out.dtype != self.dtype:
            raise TypeError(f"out has dtype {out.dtype}; this dataset's samples are {self.dtype}")
        if out.shape != want:
            raise ValueError(f"out has shape {out.shape}; a batch of {count} needs {want}")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous (np.ascontiguousarray, or np.empty)")
        if not out.flags.writeable:
            raise ValueError("out is read-only: the batch is written into it")
        return out

    def _gather_held(self, positions: np.ndarray, out: np.ndarray | None) -> np.ndarray | None:
        """A remote batch of raw samples of one shape: the rows whose bytes the storage
        holds (in memory, or in its disk cache) gathered at once, span by span; the others
        fetched together and read as usual. None: not such a batch (read it as usual)."""
        gather = getattr(self.storage, "gather", None)
        if (
            gather is None
            or self.field_readers
            or self._fixed_shape is None
            or self._decode is not None
            or self.verify is not None
            or not len(positions)
        ):
            return None
        batch = (
            out if out is not None else np.empty((len(positions), *self._fixed_shape), self.dtype)
        )
        if batch.nbytes == 0:
            return batch
        flat = batch.reshape(len(positions), -1).view(np.uint8)
        filled = gather(self.table.chunk_ids[positions], self.table.offsets[positions], flat)
        if not filled.all():
            missing = np.flatnonzero(~filled)
            self.storage.prefetch(self.table.ranges(positions[missing]))
            rest = np.empty((len(missing), *self._fixed_shape), dtype=self.dtype)
            self._copy_raw_runs(positions[missing], rest)
            batch[missing] = rest
        return batch

    def _batch_read(self, positions: np.ndarray, threads: int | None, out: Any = None) -> Any:
        if self.field_readers or self._fixed_shape is None:
            return [self._array(int(i)) for i in positions]
        batch = (
            out if out is not None else np.empty((len(positions), *self._fixed_shape), self.dtype)
        )
        if not len(positions) or batch.nbytes == 0:
            return batch
        if self._verify_samples:
            for row, i in enumerate(positions.tolist()):
                batch[row] = self._array(i)
        elif self._decode is None:
            self._copy_raw_runs(positions, batch)
        else:
            self._decode_into(positions, batch, threads)
        return batch

    def _copy_raw_runs(self, positions: np.ndarray, batch: np.ndarray) -> None:
        chunks = self.table.chunk_ids[positions]
        offsets = self.table.offsets[positions]
        count = len(positions)
        flat = batch.reshape(count, -1).view(np.uint8)
        if self._direct and self._gather_rows(chunks, offsets, flat):
            return
        size = flat.shape[1]
        order = np.lexsort((offsets, chunks))
        # Runs of samples adjacent in the same chunk file are read as one range, straight
        # into their rows of the batch (one preadv with the seek storage).
        chunk_sorted, offset_sorted = chunks[order], offsets[order]
        new_run = (chunk_sorted[1:] != chunk_sorted[:-1]) | (
            offset_sorted[1:] - offset_sorted[:-1] != size
        )
        out = memoryview(flat.reshape(-1))
        first = order * size
        buffers = list(map(out.__getitem__, map(slice, first.tolist(), (first + size).tolist())))
        if new_run.all():  # every run one sample (random batches): no grouping in Python
            starts = None
            runs: list = list(zip(buffers))
            run_chunks, run_offsets = chunk_sorted.tolist(), offset_sorted.tolist()
            sizes = np.full(count, size, np.int64)
        else:
            starts = np.flatnonzero(np.concatenate(([True], new_run)))
            bounds = [*starts.tolist(), count]
            runs = [buffers[a:b] for a, b in pairwise(bounds)]
            run_chunks = chunk_sorted[starts].tolist()
            run_offsets = offset_sorted[starts].tolist()
            sizes = np.diff(starts, append=count) * size
        if self.verify is not None:  # checks each chunk on first touch
            for chunk in np.unique(chunk_sorted).tolist():
                self._read_bytes(chunk, 0, 0)
        try:
            self.storage.read_runs(run_chunks, run_offsets, sizes, runs)
        except CorruptDatasetError:
            # Which run: read them one by one, and name the first sample of the one that fails.
            for k, (chunk, offset, parts) in enumerate(
                zip(run_chunks, run_offsets, runs, strict=True)
            ):
                try:
                    self.storage.read_into(chunk, offset, parts)
                except CorruptDatasetError as error:
                    row = order[k if starts is None else starts[k]]
                    raise sample_error(self.root, int(positions[row]), error) from None
            # Every run read this time (a file grown back meanwhile): the batch is whole.

    def _chunk_rows(self, chunk: int, size: int) -> np.ndarray | None:
        """A zero-copy chunk's bytes as rows of ``size`` bytes, kept while the chunk is open
        (the storage's view list changes when it drops its handles)."""
        views = self.storage.views
        cache = self._rows_cache
        if cache is None or cache[0] is not views:
            cache = self._rows_cache = (views, {})
        rows = cache[1].get(chunk)
        if rows is None:
            view = views[chunk]
            if view is None:
                self.storage.handle(chunk)
                view = views[chunk]
                if view is None:
                    return None
            rows = np.frombuffer(view, np.uint8, len(view) // size * size).reshape(-1, size)
            cache[1][chunk] = rows
        return rows

    def _rows_of(self, offsets: np.ndarray, size: int) -> np.ndarray | None:
        """Each offset as a row number of ``size``-byte rows, or None unless every sample of
        the dataset sits at a multiple of ``size`` (as acumen writes fixed shapes; checked once)."""
        if self._aligned is None:
            every = self.table.offsets
            self._aligned = bool(len(every) == 0 or (every.min() >= 0 and not (every % size).any()))
        if not self._aligned:
            return None
        if size & (size - 1) == 0:
            return offsets >> (size.bit_length() - 1)
        return offsets // size

    def _gather_rows(self, chunks: np.ndarray, offsets: np.ndarray, flat: np.ndarray) -> bool:
        """With mapped or in-memory chunks whose samples sit at multiples of the sample size,
        a batch is one ``take`` per chunk (then one scatter to put the rows in order)."""
        size = flat.shape[1]
        rows = self._rows_of(offsets, size)
        if rows is None:
            return False
        if size >= ROW_COPY_BYTES:
            # Large samples (images): one copy each, straight into the batch, no second
            # pass to put rows in order.
            for k, (chunk, row) in enumerate(zip(chunks.tolist(), rows.tolist(), strict=True)):
                table = self._chunk_rows(chunk, size)
                if table is None or row >= len(table):
                    return False
                flat[k] = table[row]
            return True
        order = chunks.argsort(kind="stable")
        chunk_sorted = chunks[order]
        cuts = np.flatnonzero(chunk_sorted[1:] != chunk_sorted[:-1]) + 1
        if not len(cuts):  # one chunk: straight into the batch
            table = self._chunk_rows(int(chunk_sorted[0]), size)
            if table is None or rows.max() >= len(table):
                return False
            # mode="clip" (rows are checked) lets take write to `out` without a buffer.
            table.take(rows, 0, flat, "clip")
            return True
        row_sorted = rows[order]
        starts = [0, *cuts.tolist()]
        tops = np.maximum.reduceat(row_sorted, starts).tolist()
        gathered = np.empty_like(flat)
        for start, end, chunk, top in zip(
            starts, [*starts[1:], len(order)], chunk_sorted[starts].tolist(), tops, strict=True
        ):
            table = self._chunk_rows(chunk, size)
            if table is None or top >= len(table):
                return False
            table.take(row_sorted[start:end], 0, gathered[start:end], "clip")
        # Back in the order asked for, with take (it releases the GIL; a fancy-index
        # assignment of a few hundred rows holds it).
        gathered.take(_inverse(order), 0, flat, "clip")
        return True

    def _decode_into(self, positions: np.ndarray, batch: np.ndarray, threads: int | None) -> None:
        count = len(positions)
        size = batch[0].nbytes
        out = memoryview(batch.reshape(-1).view(np.uint8))
        payloads = self._payloads(positions)
        if payloads is None:  # a read failed: one by one, to name the sample
            self._decode_one_by_one(positions, out, size)
            return
        workers = threads if threads is not None else default_threads(self.codec, size, count)
        decode_batch = self.codec.decode_batch

        def work(start: int, end: int) -> None:
            decode_batch(payloads[start:end], size, out[start * size : end * size])

        try:
            in_slices(work, count, workers)
        except CorruptDatasetError:
            self._decode_one_by_one(positions, out, size)  # raises, naming the sample

    def _payloads(self, positions: np.ndarray) -> list | None:
        """The payloads of ``positions``, in their order: slices of the chunk views with a
        zero-copy storage read without checks, else read in file order. None if a read
        fails."""
        table = self.table
        chunks, offsets = table.chunk_ids[positions], table.offsets[positions]
        ends = (offsets + table.sizes[positions]).tolist()
        chunk_list, offset_list = chunks.tolist(), offsets.tolist()
        if self._direct:
            views = self.storage.views
            sources = list(map(views.__getitem__, chunk_list))
            if None in sources:
                for chunk in set(chunk_list):
                    self.storage.handle(chunk)
                views = self.storage.views
                sources = list(map(views.__getitem__, chunk_list))
            if None not in sources:
                return list(map(memoryview.__getitem__, sources, map(slice, offset_list, ends)))
        order = np.lexsort((offsets, chunks))
        sizes = table.sizes[positions][order].tolist()
        try:
            got = list(
                map(self._read_bytes, chunks[order].tolist(), offsets[order].tolist(), sizes)
            )
        except CorruptDatasetError:
            return None
        return list(map(got.__getitem__, _inverse(order).tolist()))

    def _decode_one_by_one(self, positions: np.ndarray, out: memoryview, size: int) -> None:
        """Each sample read and decoded on its own: the first that fails is raised, named."""
        table = self.table
        read, decode = self._read_bytes, self._decode
        for row, i in enumerate(positions.tolist()):
            try:
                payload = read(int(table.chunk_ids[i]), int(table.offsets[i]), int(table.sizes[i]))
                out[row * size : row * size + size] = decode(payload, size)
            except CorruptDatasetError as error:
                raise sample_error(self.root, i, error) from None


def _inverse(order: np.ndarray) -> np.ndarray:
    """The permutation that puts ``order``-sorted rows back where they came from (O(n))."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return inverse
