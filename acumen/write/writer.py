"""``acumen.Writer``: add samples one by one; the dataset appears complete only at the end.

Order of work: claim the folder with a marker file, append payloads to chunk files, write
the index under a temporary name and rename it, write ``manifest.json`` atomically (the
commit point), remove the marker. An interrupted or failed write leaves the marker, so
the folder is reported as incomplete, never read as a dataset, and nothing is deleted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from acumen import plugins
from acumen.abc.codec import Buffer
from acumen.files.claim import claim_new_folder, current_kind
from acumen.files.remote import is_url, local_path
from acumen.format.manifest import Manifest
from acumen.plugins import PluginSpec
from acumen.progress import Callback, NoProgress, ProgressArg, Ticker, as_callback
from acumen.write.append import Append, check_shapes
from acumen.write.chunk_writer import ChunkWriter
from acumen.write.commit import build_manifest, commit_dataset, store_resources
from acumen.write.encoding import RecordEncoder, field_specs
from acumen.write.index_builder import IndexBuilder, column_specs

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 10 * 1024 * 1024  # the original's default: 10 MiB


class Writer:
    """Writes a dataset to ``output_path``, which must not exist or be an empty folder.

    >>> with acumen.Writer("my_data", codec="zstd", dtype="float16") as writer:
    ...     writer.add(np.zeros((4, 3)), label=1, name="a")

    A sample may also be a dict of named fields, each with its own dtype and codec:
    ``fields={"image": {"dtype": "uint8", "codec": "lz4"}, "mask": "uint8", "jpeg": "bytes"}``
    (or leave ``fields`` out and the first dict sample decides, with ``codec`` for all).

    The first sample's metadata fixes the columns and their types, so metadata reads back
    as written: an int column stays int (a later 2.5 is refused, not made a float column);
    an int in a float column reads back as a float (2 as 2.0). ``metadata_types`` fixes
    them before the first sample: ``{"label": "int", "score": "float"}`` (types ``int``,
    ``float``, ``bool``, ``str``); every sample then needs exactly these keys.

    Every chunk file's checksum goes in the manifest; ``checksums="sample"`` also keeps each
    sample's payload checksum in the index (``ai:xxh3_64``), for ``acumen verify`` and
    ``acumen.open(..., verify="sample")``.

    A sample of another dtype than ``dtype`` is cast to it as told (``astype``); with
    ``safe_cast="values"`` only when every value survives (float rounding aside: no value
    out of range, no integer that does not come back), otherwise a :class:`SampleError`
    names the sample and the value; ``safe_cast=True`` allows only the casts numpy calls
    safe, as when the first sample fixed the dtype.

    ``read_back(path)`` checks the finished dataset before it is marked complete: it runs
    after the manifest is written, may open the dataset, and if it raises the folder stays
    incomplete (``acumen recode`` compares the copy with its source this way).
    """

    def __init__(
        self,
        output_path: str | os.PathLike[str],
        *,
        codec: PluginSpec | None = None,
        index_format: PluginSpec | None = None,
        chunk_size_bytes: int | None = None,
        dtype: Any = None,
        fields: Mapping[str, Any] | None = None,
        durable: bool = True,
        safe_cast: bool | str = False,
        checksums: str = "chunk",
        metadata_types: Mapping[str, str] | None = None,
        metadata_types_from: str = "",
        read_back: Callable[[Path], None] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        cache: str | os.PathLike[str] | None = None,
        publish_extra: Sequence[str] = (),
        mode: str = "create",
        new_shapes: bool = False,
        progress: ProgressArg = None,
    ) -> None:
        """``metadata_types_from`` says where ``metadata_types`` came from, for errors (a
        conversion's part: the conversion's first item).

        ``output_path`` may be a URL (``s3://bucket/ds``...): the dataset is written into a
        staging folder under ``cache`` (see docs/remote.md), committed there, then published
        by :meth:`close`, ``manifest.json`` last; ``storage_options`` go to fsspec. A URL
        that holds a dataset (or another writer's upload) is refused here, before any
        sample, and again at the publication. ``publish_extra``: files the caller may put in
        the folder (a report, by ``read_back``) that are published too, when there.

        ``mode="append"`` adds the samples to the complete dataset at ``output_path`` as its
        next version (docs/versions.md): its dtype, fields, codec, index format and chunk
        size are the dataset's (leave them out, or give the same); samples must have its
        fixed shape, if it has one (``new_shapes=True`` allows others: the dataset's shape
        becomes variable), and its metadata columns (a new column may be added: float or
        str, missing in older samples). Only new files are written.

        ``progress``: ``True`` shows acumen's line, or an :class:`acumen.progress.Callback`
        is told the samples added (size None) and bytes written, from the adding thread at
        most ten times a second, and closed by :meth:`close` or :meth:`abort`; a URL's
        upload is a branch of it, in bytes."""
        if checksums not in ("chunk", "sample"):
            raise ValueError(f"checksums must be 'chunk' or 'sample', got {checksums!r}")
        if mode not in ("create", "append"):
            raise ValueError(f"mode must be 'create' or 'append', got {mode!r}")
        self._appending: Append | None = None
        self._expected_shapes: list | None = None
        if mode == "append":
            if metadata_types is not None or read_back is not None:
                raise ValueError("an append takes the dataset's metadata types; no read_back")
            self._appending = appending = Append.for_writer(
                output_path,
                storage_options,
                cache,
                current_kind("Writer"),
                codec=codec,
                index_format=index_format,
                dtype=dtype,
                fields=fields,
            )
            codec, index_format = appending.codec(), appending.index_format
            chunk_size_bytes = appending.base.chunk_size_bytes
            dtype = appending.base.dtype if not appending.base.fields else None
            if appending.sample_checksums:
                checksums = "sample"
            elif checksums == "sample":
                appending.abandon()
                raise ValueError(
                    f"{output_path}: the dataset keeps no per-sample checksums, so an append "
                    "cannot add them (checksums='chunk')"
                )
            output_path, storage_options = appending.root, None
        self.url: str | None = None
        self._destination = None
        if is_url(output_path):
            from acumen.write.publish import Destination  # fsspec: only for a URL

            self.url = str(output_path).rstrip("/")
            kind = current_kind("Writer")
            self._destination = Destination(self.url, storage_options, cache, kind)
            output_path = self._destination.staging
        elif storage_options is not None:
            raise ValueError(f"storage_options= is for a URL, not the local path {output_path}")
        self.root = Path(local_path(output_path))
        self.codec = plugins.codec(codec if codec is not None else "raw")
        self.index_format = plugins.index_format(index_format or "csv")
        if fields is not None and dtype is not None:
            raise ValueError("give each field its dtype in fields=, not dtype=")
        specs = field_specs(fields, self.codec) if fields is not None else None
        if self._appending is not None:
            specs = self._appending.field_specs()
        # safe_cast: the given dtypes were fixed by a first sample elsewhere (a conversion's
        # parts), so later samples must cast safely, as if it had been fixed here.
        self._encoder = RecordEncoder(self.codec, dtype, specs, safe_cast=safe_cast)
        appending = self._appending
        self._index = IndexBuilder(  # checks the declared metadata columns
            column_specs(metadata_types),
            metadata_types_from or "the Writer's metadata_types",
            appending.metadata_columns() if appending else None,
            appending.base.n_samples if appending else 0,
        )
        self._chunks = ChunkWriter(  # checks the limit
            self.root,
            DEFAULT_CHUNK_SIZE if chunk_size_bytes is None else chunk_size_bytes,
            durable,
            appending.chunk_folder if appending else "chunks",
        )
        if appending is not None:
            self._claim = appending.claim
            shapes = appending.expected_shapes()
            if any(s is not None for s in shapes) and not new_shapes:
                self._expected_shapes = shapes
        else:
            self._claim = claim_new_folder(self.root, current_kind("Writer"))
        # checksums="sample": each record's payload checksum in the index too (ai:xxh3_64).
        self._sample_checksums = checksums == "sample"
        self._read_back = read_back
        self._publish_extra = list(publish_extra)
        if self._sample_checksums:
            self._index.checksums = []
        self._pending: list[list[np.ndarray]] = []  # samples held back for codec training
        self._count = 0  # samples accepted (written or held back)
        self._training: list | None = None  # codecs still to train; None: not decided yet
        self._closed = False
        self.manifest: Manifest | None = None
        # The hot path of add(), opened by _settle(): the dataset's dtype (None: closed).
        self._plain_dtype: np.dtype | None = None
        self._identity = False
        self._encode_plain = None
        self._check_metadata = self._index.check_metadata
        self._index_add = self._index.add
        self._append_payload = self._chunks.append
        # Progress: add() tells the ticker only from sample _report_at on (never: none).
        self._report_at = 2**62
        self._progress: Callback = NoProgress()
        self._ticker: Ticker | None = None
        if progress is not None and progress is not False:
            self._progress = as_callback(progress, f"write {Path(self.url or self.root).name}")
            self._ticker = Ticker(self._progress)
            self._report_at = 1

    def __len__(self) -> int:
        return self._count

    @property
    def bytes_written(self) -> int:
        """Payload bytes appended to chunk files so far."""
        return self._chunks.bytes_written

    @property
    def dtype(self) -> np.dtype | None:
        """The dtype of a one-array dataset (None until the first sample fixes it)."""
        return self._encoder.field_dtypes()[0] if not self._encoder.multi_field else None

    def add(self, sample: Any, /, **metadata: Any) -> int:
        """Append one sample (an array, or a dict of fields); return its position.

        A refused sample raises :class:`acumen.SampleError` naming it and leaves no trace.
        """
        # The hot path: a one-array dataset, settled, given an array that is already
        # C-contiguous in the dataset's dtype (the common case) needs no preparation.
        if (
            type(sample) is np.ndarray
            and sample.dtype is self._plain_dtype
            and sample.flags.c_contiguous
        ):
            position = self._count
            if self._identity:
                payload, size = sample, sample.nbytes
            else:
                payload = self._encode_plain(sample, position)
                size = len(payload) if type(payload) is bytes else memoryview(payload).nbytes
            self._check_metadata(metadata, position)
            offset = self._append_payload(payload, size)
            self._index_add(self._chunks.position, offset, size, sample.shape)
            self._count = position + 1
            if position >= self._report_at:
                self._report()
            return position
        position = self._add(sample, metadata)
        if position >= self._report_at:
            self._report()
        return position

    def _report(self) -> None:
        self._report_at = self._ticker(self._count, self._chunks.bytes_written)  # type: ignore[misc]

    def _close_progress(self) -> None:
        """Tell the progress callback what is left and close it, once."""
        ticker, self._ticker, self._report_at = self._ticker, None, 2**62
        self._progress = NoProgress()
        if ticker is not None:
            ticker.close(self._count, self._chunks.bytes_written)

    def _add(self, sample: Any, metadata: dict[str, Any]) -> int:
        """Any sample: check and cast it (the first one fixes dtypes and fields), hold it
        back while a codec trains, or encode and append it."""
        self._check_open()
        position = self._count
        # Until the first accepted sample settles dtypes and fields, a refusal must undo it.
        state = self._encoder.snapshot() if self._training is None else None
        try:
            arrays = self._encoder.prepare(sample, position)
            if self._expected_shapes is not None:  # an append to a dataset of fixed shape
                check_shapes(self._expected_shapes, [a.shape for a in arrays], position)
            if self._training is None:  # decided with the first sample
                self._training = [c for c in self._encoder.codecs() if c.training_samples()]
            payloads = None if self._training else self._encoder.encode_prepared(arrays, position)
            self._check_metadata(metadata, position)
        except Exception:
            if state is not None:
                self._encoder.restore(state)  # a refused first sample must not fix dtypes
                self._training = None
            raise
        self._count += 1
        if payloads is None:  # held back until the codecs have learnt from enough samples
            self._pending.append(arrays)
            if len(self._pending) >= max(c.training_samples() for c in self._training):
                self._train_and_flush()
            return position
        self._append(payloads, [a.shape for a in arrays])
        self._settle()
        return position

    def _settle(self) -> None:
        """Open the hot path of :meth:`add` once nothing is left to decide per sample."""
        if (
            self._training
            or self._encoder.multi_field
            or self._sample_checksums
            or self._expected_shapes is not None
        ):
            return
        encoder = self._encoder.single
        self._plain_dtype = encoder.dtype
        self._identity = encoder.codec.is_identity
        self._encode_plain = encoder.encode_prepared

    def _store_resources(self) -> None:
        store_resources(self.root, self._encoder.codecs())

    @property
    def training(self) -> bool:
        """True while samples are held back for a codec to train on (see Codec.train)."""
        return self._training is None or bool(self._training)

    def _train_and_flush(self) -> None:
        self._encoder.train(self._pending)
        self._store_resources()
        self._training = []
        pending, self._pending = self._pending, []
        start = len(self._index)
        for offset, arrays in enumerate(pending):
            payloads = self._encoder.encode_prepared(arrays, start + offset)
            self._append(payloads, [a.shape for a in arrays])
        self._settle()

    def add_encoded(
        self,
        payloads: list[Buffer],
        shapes: list[tuple[int, ...]],
        metadata: Mapping[str, Any],
        label: str,
    ) -> int:
        """Append a sample encoded elsewhere (a worker) by :meth:`encoder`'s copy."""
        self._check_open()
        if self.training:
            raise ValueError("samples encoded elsewhere need a settled, trained encoder")
        if self._expected_shapes is not None:  # an append to a dataset of fixed shape
            check_shapes(self._expected_shapes, shapes, label)
        self._index.check_metadata(metadata, label)
        self._count += 1
        position = self._append(payloads, shapes)
        if position >= self._report_at:
            self._report()
        return position

    @property
    def encoder(self) -> RecordEncoder:
        """The encoder (picklable); workers encode with copies of it once it is settled."""
        return self._encoder

    def _append(self, payloads: list[Buffer], shapes: list[tuple[int, ...]]) -> int:
        chunk, offset, size = self._chunks.write(payloads)
        if self._sample_checksums:
            digest = xxhash.xxh3_64()
            for payload in payloads:
                digest.update(payload)
            self._index.checksums.append(digest.intdigest())
        if self._encoder.multi_field:
            sizes = [memoryview(p).nbytes for p in payloads]
            self._index.add_record(chunk, offset, sizes, [tuple(s) for s in shapes])
        else:
            self._index.add(chunk, offset, size, tuple(shapes[0]))
        return len(self._index) - 1

    def close(self) -> Manifest:
        """Finish the dataset: index, then manifest, then drop the marker. If that fails,
        the folder stays incomplete (as :meth:`abort` leaves it)."""
        self._check_open()
        try:
            return self._finish()
        except BaseException:
            self._closed = False
            self.abort()
            raise

    def _finish(self) -> Manifest:
        if self._pending:
            self._train_and_flush()  # fewer samples than the codec asked for
        self._store_resources()  # those of codecs that came trained (a recoded dataset's)
        self._closed = True
        self._plain_dtype = None
        chunks = self._chunks.close()
        # The writing is done: its progress ends (its line before the upload's, a nested job).
        upload = NoProgress()
        if self._destination is not None:
            upload = self._progress.branch(f"upload {self.url}")
        self._close_progress()
        with upload:
            return self._commit(chunks, upload)

    def _commit(self, chunks: list[Any], upload: Callback) -> Manifest:
        fields = self._encoder.fields
        table = self._index.finish(
            [c.file for c in chunks], [f.name for f in fields] if fields is not None else None
        )
        if self._appending is not None:
            self.manifest = self._appending.finish(table, chunks)
            where = self._appending.remote.url if self._appending.remote else self.root
            logger.info("appended %d samples to %s", len(table), where)
            return self.manifest
        self.manifest = build_manifest(
            table,
            self.codec,
            self.index_format,
            chunks,
            self._chunks.limit,
            fields,
            self._encoder.field_dtypes(),
        )
        commit_dataset(
            self.root, table, self.index_format, self.manifest, self._claim, self._read_back
        )
        if self._destination is not None:  # the local commit is done: now the store's
            extra = [name for name in self._publish_extra if (self.root / name).is_file()]
            self._destination.publish(self.root, self.manifest, extra, upload)
        logger.info(
            "wrote %d samples in %d chunks to %s", len(table), len(chunks), self.url or self.root
        )
        return self.manifest

    def abort(self) -> None:
        """Stop without finishing: files stay, the marker keeps the folder marked incomplete."""
        self._close_progress()
        if not self._closed:
            self._closed = True
            self._plain_dtype = None
            try:
                self._chunks.abandon()
            finally:
                if self._appending is not None:
                    self._appending.abandon()  # its claim (and a URL's staging folder)
                else:
                    self._claim.abandon()  # the marker stays: the folder is incomplete

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the writer of {self.root} is closed")

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
