"""A dataset opened for reading: ``ds[i]`` in O(1) from compact index arrays.

:class:`Dataset` is the public face: it binds the state the reads use and picks the reader.
The reads themselves: one sample in :mod:`acumen.read.sample` (the fast path), many at once
in :mod:`acumen.read.batches`. Metadata becomes a dict only for the sample asked for.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from acumen import plugins
from acumen.abc.codec import Codec
from acumen.abc.storage import Storage
from acumen.errors import CorruptDatasetError
from acumen.format.index_table import IndexTable
from acumen.format.manifest import Manifest
from acumen.read.batch_iter import batches
from acumen.read.batches import BatchReads
from acumen.read.index_checks import BLOCK_SHIFT, ChunkFiles, IndexChecks, payload_rules
from acumen.read.prefetching import Prefetcher, done
from acumen.read.sample import FieldReader, SampleReads, direct_reader, scalars
from acumen.read.verifiers import ChunkVerifier, SampleVerifier, chunk_checksums

if TYPE_CHECKING:
    import datasets
    import pandas as pd

_ORIGINAL_DTYPE_HINT = "; is the dtype right (original datasets do not record it: pass dtype=...)?"


class Dataset(SampleReads, BatchReads):
    """Samples of a dataset. Use :func:`acumen.open` to get one.

    ``ds[i]`` returns ``(array, metadata)`` like the original reader; ``ds.read(i)`` the array
    alone. In a multi-field dataset the array is a dict ``{field: array or bytes}`` of the
    selected fields (all by default; ``acumen.open(path, fields=[...])`` or
    ``ds.read(i, fields=[...])`` read only those fields' bytes).

    Arrays are read-only (views on the file's bytes with the ``mmap`` storage); use
    ``ds.read(i, copy=True)`` for a writable copy. Picklable: in a DataLoader worker the storage
    reopens its files lazily.
    """

    def __init__(
        self,
        root: Path,
        table: IndexTable,
        dtype: np.dtype,
        codec: Codec,
        storage: Storage,
        manifest: Manifest | None = None,
        field_readers: Sequence[FieldReader] = (),
        selected: Sequence[str] | None = None,
        verify: str | None = None,
        chunk_files: ChunkFiles | None = None,
        *,
        check_first_block: bool = False,
    ) -> None:
        self.root = root
        self.table = table
        self.dtype = np.dtype(dtype) if not field_readers else None
        self.codec = codec
        self.storage = storage
        self.manifest = manifest
        self.field_readers = list(field_readers)
        self.selected = self._check_fields(selected) if selected is not None else None
        #: For a view from :meth:`select`: each sample's position in the whole dataset.
        self.positions: np.ndarray | None = None
        self.verify = verify  # None, "chunk" or "sample" (see acumen.open)
        #: The chunk files and their sizes the index rows are checked against.
        self.chunk_files = chunk_files or ChunkFiles.stat(root, storage.paths)
        self._bind()
        if check_first_block:  # acumen.open: damage in the first rows is raised at once
            self._checks.check_first_block()

    def _bind(self) -> None:
        table = self.table
        self._n = len(table)
        self._chunk_at = scalars(table.chunk_ids)
        self._offset_at = scalars(table.offsets)
        self._size_at = scalars(table.sizes)
        self._shapes = table.shapes
        self._fixed_shape = table.shapes.fixed if table.shapes is not None else None
        self._read_bytes = self.storage.read
        verify = self.verify
        # verify="sample" checks each record's bytes against its row's checksum: reads then
        # cover one record each (see _verified_array).
        self._verify_samples = verify == "sample"
        if verify == "chunk":
            expected = chunk_checksums(self.manifest, table.chunk_names)
            self._read_bytes = ChunkVerifier(self.storage.read, self.storage.paths, expected)
        elif verify == "sample":
            self._check_sample = SampleVerifier(self.root, table, self.storage.paths)
        self._decode = None if self.codec.is_identity else self.codec.decode
        # Index rows are checked block by block on first read (acumen.read.index_checks).
        hint = "" if self.manifest else _ORIGINAL_DTYPE_HINT
        rules = payload_rules(table, self.dtype, self.codec.is_identity, self.field_readers, hint)
        self._checks = IndexChecks(self.chunk_files, table, rules, bool(self.field_readers))
        self._checks.on_clean = self._bind_reader
        self._pending = self._checks.pending
        self._row = table.metadata.row
        self._rows_cache: tuple[list, dict[int, np.ndarray]] | None = None
        self._prefetcher: Prefetcher | None = None  # made on first prefetch, never pickled
        self._aligned: bool | None = None  # every offset a multiple of the sample size
        # Bytes per sample when every sample has one shape (None otherwise).
        fixed = self._fixed_shape
        self._nbytes = (
            math.prod(fixed) * self.dtype.itemsize
            if fixed is not None and self.dtype is not None
            else None
        )
        # A zero-copy storage read without checks: slice its chunk views, no read() call.
        self._direct = self.storage.zero_copy and verify is None
        if self.field_readers:
            self._wanted = self._wanted_mask(self.selected)
        self._bind_reader()

    def _bind_reader(self) -> None:
        """Pick ``_array``; again once every index block is checked (the checks call it)."""
        if self.field_readers:
            self._array = self._record  # type: ignore[method-assign]
        elif self._verify_samples:
            self._array = self._verified_array  # type: ignore[method-assign]
        elif self._direct and (self._decode is None or self._fixed_shape is not None):
            self._array = direct_reader(self, self._checks.clean)  # type: ignore[method-assign]

    # --- fields -----------------------------------------------------------------------
    @property
    def fields(self) -> list[str] | None:
        """The fields read by default (all unless selected), or None for one-array data."""
        if not self.field_readers:
            return None
        return [
            r.name for r in self.field_readers if self.selected is None or r.name in self.selected
        ]

    def _check_fields(self, names: Sequence[str]) -> list[str]:
        if not self.field_readers:
            raise ValueError(f"{self.root} holds one array per sample: it has no fields to pick")
        if isinstance(names, str):
            names = [names]
        known = [r.name for r in self.field_readers]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"{self.root} has no field(s) {unknown}; its fields: {known}")
        return list(names)

    def _wanted_mask(self, names: Sequence[str] | None) -> list[bool]:
        if names is None:
            return [True] * len(self.field_readers)
        return [r.name in names for r in self.field_readers]

    # --- sizes and schema -------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The shape all samples share, or ``None`` when shapes vary (or there are fields)."""
        return self._fixed_shape

    @property
    def version(self) -> int:
        """The version this dataset was opened at (1 for one that never changed)."""
        info = self.manifest.versioned if self.manifest is not None else None
        return info.version if info is not None else 1

    @property
    def columns(self) -> list[str]:
        """The metadata column names."""
        return self.table.metadata.names

    @property
    def index(self) -> pd.DataFrame:
        """The index as the original's DataFrame (built on demand; not used for reading).
        Every row is checked first, as reads check theirs: a damaged one is raised."""
        problems = self._checks.problems()
        if problems:
            raise CorruptDatasetError(problems[0])
        return self.table.to_frame()

    # --- reading ----------------------------------------------------------------------
    def _position(self, i: Any) -> int:
        try:
            position = operator.index(i)
        except TypeError:
            raise TypeError(f"dataset indices must be integers, not {type(i).__name__}") from None
        if position < 0:
            position += self._n
        if not 0 <= position < self._n:
            raise IndexError(f"sample {i} is out of range for a dataset of {self._n} samples")
        return position

    def read(self, i: int, fields: Sequence[str] | None = None, *, copy: bool = False) -> Any:
        """Sample ``i``'s array (or dict of the selected fields, or of ``fields``).

        Arrays are read-only (zero-copy views with ``mmap``); ``copy=True`` gives a writable
        array of your own.
        """
        if type(i) is not int or not 0 <= i < self._n:
            i = self._position(i)
        if fields is None and not copy:
            return self._array(i)
        if fields is None and not self.field_readers:
            return self._own_array(i)
        if fields is not None:
            sample = self._record(i, self._wanted_mask(self._check_fields(fields)))
        else:
            sample = self._array(i)
        if not copy:
            return sample
        return {k: v if isinstance(v, bytes) else v.copy() for k, v in sample.items()}

    # --- batches ----------------------------------------------------------------------
    def read_batch(self, indices: Any, *, threads: int | None = None, out: Any = None) -> Any:
        """Many samples at once: one new (writable) array ``(len(indices), *shape)`` when
        every sample has the same shape, else a list of arrays (dicts, with fields).

        ``out``: a C-contiguous, writable array of that shape and the dataset's dtype to
        write the batch into (and return), for samples of one shape: reuse one buffer, or
        gather straight into pinned memory. Safe to call from several threads at once (on
        one dataset or several); the copies run with the GIL released, so threads gather
        side by side.

        Reads are sorted by file position and adjacent payloads read in one go; compressed
        payloads decode straight into the batch, on ``threads`` threads (by default as many
        as pay: several for large batches of a codec that releases the GIL, such as zstd,
        one otherwise; ``threads=1`` keeps the decoding on the calling thread).
        """
        return self._batch(self._positions(indices), threads, out)

    def batches(
        self,
        batch_size: int,
        *,
        order: Any = None,
        drop_last: bool = False,
        target: str | None = None,
    ) -> Iterator[Any]:
        """The samples in batches of ``batch_size``, for a loop without torch (numpy, JAX).

        ``order``: the positions to read, in that order (any index array, such as a
        sampler's epoch order; default: every sample in storage order); each is handed
        out once per pass, the last batch shorter unless ``drop_last``. A batch is an array
        ``(batch_size, *shape)`` as from :meth:`read_batch` (samples of several shapes: a
        list of arrays; fields: a list of dicts); with ``target`` (a metadata column),
        ``(batch, values)`` with the column's values as a numpy array. The next batches
        (at most two) are read on a background thread while you use this one, and a
        remote dataset fetches the bytes of the batch after that meanwhile.
        """
        return batches(self, batch_size, order, drop_last, target)

    def prefetch(self, indices: Any) -> Future:
        """Start fetching these samples' bytes in the background, so that reading them later
        needs no request (a remote dataset; elsewhere nothing to do). Returns at once, with
        a future: ``ds.prefetch(idx).result()`` waits for the bytes (and raises what the
        fetch raised). A bad index or a damaged index row is raised here, at once; a failed
        fetch is not (the later read fetches again and reports it). At most two prefetches
        are outstanding per dataset: a third waits for the first to end.
        """
        positions = self._positions(indices)
        self._checks.check_positions(positions)
        if not self.storage.batched_reads or not len(positions):
            return done()
        return self._prefetch_ranges(self.table.ranges(positions))

    def _prefetch_ranges(self, ranges: Sequence[tuple[int, int, int]]) -> Future:
        """Byte ranges (chunk id, offset, size) of checked rows, fetched in the background."""
        prefetcher = self._prefetcher
        if prefetcher is None or prefetcher.pid != os.getpid():
            prefetcher = self._prefetcher = Prefetcher(self.storage.prefetch)
        return prefetcher.submit(ranges)

    # --- subsets without rewriting data -----------------------------------------------
    def select(self, indices: Any) -> Dataset:
        """A view of some samples (indices, in that order, or a boolean mask) reading the
        same files; nothing is copied or rewritten."""
        positions = self._positions(indices)
        table = self.table.take(positions)
        view = Dataset(
            self.root,
            table,
            self.dtype if self.dtype is not None else np.dtype("<f2"),
            self.codec,
            plugins.storage(self.storage.get_config(), self.storage.paths),
            self.manifest,
            [
                FieldReader(
                    r.name,
                    r.type,
                    r.dtype,
                    r.codec,
                    table.fields[r.name].sizes,
                    table.fields[r.name].shapes,
                )
                for r in self.field_readers
            ],
            self.selected,
            self.verify,  # a view checks what the dataset it comes from checks
            self.chunk_files,
        )
        view.positions = self.positions[positions] if self.positions is not None else positions
        return view

    def filter(self, expression: str) -> Dataset:
        """A view of the samples whose metadata satisfy ``expression``, a pandas query such as
        ``"label == 3 and split == 'train'"`` (the expression is yours; data is never run)."""
        import pandas as pd  # here: reading samples never needs pandas

        frame = pd.DataFrame({name: self.table.metadata.column(name) for name in self.columns})
        try:
            mask = frame.eval(expression)
        except Exception as error:
            raise ValueError(
                f"cannot filter {self.root} by {expression!r}: {error}; columns: {self.columns}"
            ) from None
        if not isinstance(mask, pd.Series) or mask.dtype != bool:
            raise ValueError(f"{expression!r} does not give one True/False per sample")
        return self.select(mask.to_numpy())

    def to_huggingface(
        self,
        *,
        column: str = "array",
        batch_size: int = 1024,
        path: str | os.PathLike[str] | None = None,
    ) -> datasets.Dataset:
        """The samples (column ``column``, or one column per field) and metadata columns as
        a Hugging Face ``datasets.Dataset``, with features of their dtypes and shapes; built
        in batches of ``batch_size``, in memory, or in an Arrow file at ``path`` (then
        memory-mapped). Needs ``datasets`` (docs/usage.md, "Hugging Face")."""
        from acumen.read.huggingface import to_huggingface

        return to_huggingface(self, column=column, batch_size=batch_size, path=path)

    def check_index(self) -> list[str]:
        """Check every index row now (reads otherwise check each block when first read);
        returns one message per damaged row, an empty list when all are sound."""
        return self._checks.problems()

    def metadata(self, i: int) -> dict[str, Any]:
        """Sample ``i``'s metadata, with the types it was written with."""
        i = self._position(i)
        if self._pending[i >> BLOCK_SHIFT]:
            self._checks.check_metadata(i)
        return self._row(i)

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, Any]]:
        if type(i) is not int or not 0 <= i < self._n:
            i = self._position(i)
        return self._array(i), self._row(i)

    def __iter__(self) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
        return self._samples()

    # --- lifetime ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the chunk files (reading again reopens them)."""
        self._rows_cache = None
        prefetcher = self._prefetcher
        if prefetcher is not None and prefetcher.pid == os.getpid():
            prefetcher.stop()  # no fetch may fill the storage's cache while it is reset
        self.storage.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "table": self.table,
            "dtype": self.dtype,
            "codec": self.codec,
            "storage": self.storage,
            "manifest": self.manifest,
            "field_readers": self.field_readers,
            "selected": self.selected,
            "positions": self.positions,
            "verify": self.verify,
            "chunk_files": self.chunk_files,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind()

    def __repr__(self) -> str:
        if self.field_readers:
            described = ", ".join(
                f"{r.name} ({'bytes' if r.type == 'bytes' else r.dtype}, {r.codec.name})"
                for r in self.field_readers
            )
            return (
                f"<acumen.Dataset {str(self.root)!r}: {self._n} samples, fields {described}, "
                f"storage {self.storage.name}>"
            )
        shape = self._fixed_shape if self._fixed_shape is not None else "variable"
        return (
            f"<acumen.Dataset {str(self.root)!r}: {self._n} samples, {self.dtype}, shape "
            f"{shape}, codec {self.codec.name}, storage {self.storage.name}>"
        )
