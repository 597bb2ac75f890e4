"""One part of a conversion: a contiguous range of items, written as a small dataset.

A part is the unit of parallel work (a local worker or a Dask task writes it alone) and of
resumption (a part with its manifest is done and is never written again; a part without one
is removed and written again). Parts are merged into the output without copying chunk bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from acumen import plugins
from acumen.convert.sources import count_items, describe
from acumen.errors import AcumenError
from acumen.files.claim import acting_as, inspect
from acumen.files.local import write_atomically
from acumen.format.dtypes import dtype_from_json
from acumen.format.layout import MANIFEST_FILE, WRITING_MARKER
from acumen.format.manifest import Manifest
from acumen.format.metadata import MetadataCollector
from acumen.readers.callable import config_folder_on_path
from acumen.write.writer import Writer

SUMMARY_FILE = "part-summary.json"
_REPORT_EVERY = 64  # items read between two progress reports of a part
ProgressCallback = Callable[[int, int], None]  # (samples, payload bytes)

#: The automatic part size (``run.part_size`` not set) aims at this many parts per worker
#: process: several, so that a slow part does not leave the other workers idle at the end.
PARTS_PER_WORKER = 4
#: ...or at this many parts for a Dask cluster, whose size is not known before it runs
#: (and may change while it does): four parts each for 16 workers, one each for 64.
PARTS_FOR_A_CLUSTER = 64
#: ...but never smaller parts than this: a part costs about 15 ms of its own (its folder,
#: writer, index, manifest, their fsyncs, the rename and the merge; measured on 2,000
#: small .npy files: one part 0.19 s, 20 parts 0.64 s, 100 parts 1.6 s) and ends with a
#: chunk file of its own.
MIN_AUTO_PART_SIZE = 100
#: ...nor larger than this (the old default): a lost part costs little to write again. One
#: worker gets parts of this size: more parts would only add their cost.
MAX_AUTO_PART_SIZE = 10_000


def automatic_part_size(items: int, workers: int | None) -> int:
    """The part size for ``items`` items written by ``workers`` processes (None: a Dask
    cluster) when the config sets none. The conversion saves it: a resume makes the same
    parts whatever its own ``n_jobs``."""
    if workers == 1:
        return MAX_AUTO_PART_SIZE
    parts = PARTS_PER_WORKER * workers if workers else PARTS_FOR_A_CLUSTER
    return min(MAX_AUTO_PART_SIZE, max(MIN_AUTO_PART_SIZE, -(-items // parts)))


def choose_part_size(cfg: Any, state: Path | None = None, listing: Any = None) -> tuple[int, int]:
    """The automatic part size for ``cfg``, and the items counted to choose it (counting
    stops where more items would not change it)."""
    workers = None if cfg.run.engine == "dask" else cfg.run.n_jobs
    limit = items_worth_counting(workers)
    counted = count_items(cfg.source, limit + 1, state, listing) if limit else 0
    return automatic_part_size(counted, workers), counted


def items_worth_counting(workers: int | None) -> int:
    """Past this many items, :func:`automatic_part_size` gives its largest size anyway."""
    if workers == 1:
        return 0
    return (PARTS_PER_WORKER * workers if workers else PARTS_FOR_A_CLUSTER) * MAX_AUTO_PART_SIZE


class ConversionError(AcumenError, RuntimeError):
    """An item could not be converted (and ``on_error`` is ``raise``)."""


@dataclass(frozen=True)
class WriterSettings:
    """How every part writes, settled once by the driver; JSON-able, stored for resumption."""

    codec: dict[str, Any]  # config, naming any trained resources
    index_format: dict[str, Any]
    chunk_size_bytes: int
    dtype: Any  # dtype JSON, or None (no sample seen)
    fields: dict[str, dict[str, Any]] | None  # name -> {"type", "dtype" (JSON), "codec" config}
    resources_root: str  # the folder holding trained resources (the output)
    safe_cast: bool | str  # dtypes came from the first sample (or the dataset appended to:
    # "values"), not from the config
    # The metadata columns ({"name", "type"} each) the first item gave, fixed for every part
    # so that all agree (None: settled by an older acumen; each part's first item fixes them).
    metadata: list[dict[str, str]] | None = None
    metadata_from: str = ""  # which item fixed them, for errors

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WriterSettings:
        return cls(**data)

    def writer(self, directory: Path) -> Writer:
        root = Path(self.resources_root)
        codec = plugins.codec(self.codec)
        codec.open_resources(root)
        fields = None
        if self.fields is not None:
            fields = {}
            for name, spec in self.fields.items():
                field_codec = plugins.codec(spec["codec"])
                field_codec.open_resources(root)
                entry: dict[str, Any] = {"type": spec["type"], "codec": field_codec}
                if spec["type"] == "array" and spec.get("dtype") is not None:
                    entry["dtype"] = dtype_from_json(spec["dtype"])
                fields[name] = entry
        dtype = dtype_from_json(self.dtype) if self.dtype is not None and fields is None else None
        return Writer(
            directory,
            codec=codec,
            index_format=self.index_format,
            chunk_size_bytes=self.chunk_size_bytes,
            dtype=dtype,
            fields=fields,
            safe_cast=self.safe_cast,
            metadata_types=(
                {c["name"]: c["type"] for c in self.metadata} if self.metadata is not None else None
            ),
            metadata_types_from=self.metadata_from,
        )


@dataclass(frozen=True)
class MetadataColumns:
    """The metadata columns a conversion's first item gives, and which item that was."""

    specs: list[dict[str, str]]
    origin: str


def metadata_columns(
    source_metadata: Mapping[str, Any], metadata: Any, position: int, item: Any
) -> MetadataColumns:
    """The columns of an item's metadata (the source's, then the reader's), checked as a
    writer checks its first sample: every part then takes exactly these columns and types."""
    if not isinstance(metadata, Mapping):
        raise TypeError(f"the reader returned {type(metadata).__name__} as metadata")
    collector = MetadataCollector()
    collector.add({**source_metadata, **metadata}, position)
    table = collector.finish()
    origin = f"the conversion's first item, item {position} ({describe(item)})"
    return MetadataColumns([spec.to_json() for spec in table.specs], origin)


@dataclass(frozen=True)
class PartTask:
    number: int
    directory: str
    items: list[tuple[int, Any, dict[str, Any]]]  # (position in the source, item, metadata)
    reader: dict[str, Any]
    settings: WriterSettings
    on_error: str
    import_path: str | None = None  # the config's folder: where its callables may live
    # For items at a URL (SourceURL): the store's options. Workers fetch them.
    source_options: dict[str, Any] | None = None
    # For a URL output: where the part's chunks go (an upload.UploadTarget). The part is
    # then written in the worker's scratch folder, and ``directory`` is the driver's record.
    upload: Any = None


@dataclass
class PartResult:
    number: int
    samples: int
    payload_bytes: int
    source_bytes: int
    skipped: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False
    worker: str | None = None  # "host:pid" of the process that wrote it (None: resumed)
    chunks: int = 0  # chunk files the part made
    first: int | None = None  # for a URL output: the number of its first chunk, once placed
    attempt: str | None = None  # for a URL output: where it was written, until uploaded
    address: str | None = None  # the Dask worker that wrote it (to upload it from there)


def part_done(directory: Path) -> bool:
    return (directory / MANIFEST_FILE).is_file() and not (directory / WRITING_MARKER).exists()


def part_reusable(directory: Path, on_error: str, uploaded: bool = False) -> bool:
    """Whether a part written earlier serves this run: done, and, under ``on_error="raise"``,
    with no item skipped (it was written under "skip": "raise" promises every item is in,
    so the part is written again, and an item still bad then stops the run). ``uploaded``:
    for a URL output, the part's record must say its chunks were uploaded."""
    if not part_done(directory) or (uploaded and not (directory / "uploaded.json").is_file()):
        return False
    if on_error == "skip":
        return True
    summary = json.loads((directory / SUMMARY_FILE).read_text(encoding="utf-8"))
    return not summary["skipped"]


def read_part_result(number: int, directory: Path) -> PartResult:
    manifest = Manifest.load(directory / MANIFEST_FILE)
    summary = json.loads((directory / SUMMARY_FILE).read_text(encoding="utf-8"))
    uploaded = directory / "uploaded.json"  # (upload.UPLOADED_FILE: a URL output's record)
    first = (
        int(json.loads(uploaded.read_text(encoding="utf-8"))["first"])
        if uploaded.is_file()
        else None
    )
    return PartResult(
        number,
        manifest.n_samples,
        sum(c.size_bytes for c in manifest.chunks),
        summary["source_bytes"],
        summary["skipped"],
        resumed=True,
        chunks=len(manifest.chunks),
        first=first,
    )


def convert_part(task: PartTask, progress: ProgressCallback | None = None) -> PartResult:
    """Write one part (or find it written already). Runs in a worker process or Dask task."""
    final = Path(task.directory)
    if part_reusable(final, task.on_error, task.upload is not None):
        return read_part_result(task.number, final)
    # Each attempt writes a folder of its own and renames it into place when done, so an
    # attempt still running elsewhere (a Dask task of an interrupted run) cannot mix in.
    # For a URL output it stays where it is written until its chunks are uploaded.
    if task.upload is not None:
        directory = task.upload.attempt(task.number)
    else:
        directory = final.with_name(f"{final.name}.attempt-{uuid.uuid4().hex[:12]}")
    with config_folder_on_path(task.import_path):
        reader = plugins.reader(task.reader)
    settings = task.settings if task.upload is None else task.upload.settings_here(task.settings)
    try:
        with acting_as("convert part"), settings.writer(directory) as writer:
            source_bytes, skipped = _write_items(task, reader, writer, progress)
            summary = {"skipped": skipped, "source_bytes": source_bytes}
            write_atomically(directory / SUMMARY_FILE, json.dumps(summary).encode("utf-8"))
    except BaseException:
        # The part is written again from its first item: what this attempt wrote is of no
        # use, and kept it would fill the disk that made it fail (disk full) once per try.
        shutil.rmtree(directory, ignore_errors=True)
        raise
    # The part's manifest is its commit point (written by the writer as it closed); the
    # rename publishes the finished part.
    manifest = writer.manifest
    assert manifest is not None
    result = PartResult(
        task.number,
        manifest.n_samples,
        sum(c.size_bytes for c in manifest.chunks),
        source_bytes,
        skipped,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        chunks=len(manifest.chunks),
    )
    if task.upload is not None:
        return replace(result, attempt=str(directory))
    if final.exists():
        if part_reusable(final, task.on_error):  # another attempt finished first: keep it
            shutil.rmtree(directory, ignore_errors=True)
            return read_part_result(task.number, final)
        shutil.rmtree(final)
    os.replace(directory, final)
    return result


def _write_items(
    task: PartTask, reader: Any, writer: Writer, progress: ProgressCallback | None
) -> tuple[int, list[dict[str, Any]]]:
    """Read and add every item of the part; (source bytes, skipped items). Items at a URL
    are fetched ahead, several at once (:func:`acumen.convert.remote_source.opened`)."""
    from acumen.convert.remote_source import opened, raise_if_failed

    skipped: list[dict[str, Any]] = []
    source_bytes = 0
    read, add = reader.read, writer.add
    # Progress is told every _REPORT_EVERY samples added (and at the end), not per sample.
    added, reported, written = 0, 0, writer.bytes_written
    for position, item, source_metadata, got in opened(task.items, task.source_options):
        try:
            sample, metadata = read(raise_if_failed(got))
            if not isinstance(metadata, Mapping):
                raise TypeError(f"the reader returned {type(metadata).__name__} as metadata")
            add(sample, **({**source_metadata, **metadata} if metadata else source_metadata))
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            if task.on_error == "raise":
                raise ConversionError(f"item {position} ({describe(item)}): {reason}") from error
            skipped.append({"position": position, "item": describe(item), "error": reason})
            continue
        source_bytes += sample.nbytes if type(sample) is np.ndarray else sample_nbytes(sample)
        added += 1
        if progress is not None and added - reported >= _REPORT_EVERY:
            now = writer.bytes_written
            progress(added - reported, now - written)
            reported, written = added, now
    if progress is not None and added > reported:
        progress(added - reported, writer.bytes_written - written)
    return source_bytes, skipped


def tidy_for_resume(state: Path) -> None:
    """What a killed run left in the parts of a conversion's ``state``, removed: attempts
    of dead workers, records being made."""
    remove_dead_attempts(state / "parts")
    for stray in (state / "parts").glob("part-*.record-*"):  # a record being made, killed
        shutil.rmtree(stray, ignore_errors=True)


def remove_dead_attempts(parts: Path) -> None:
    """Remove the attempt folders of parts whose writer is gone (killed, or failed)."""
    if not parts.is_dir():
        return
    for attempt in parts.glob("part-*.attempt-*"):
        state = inspect(attempt)
        if state is not None and not state.alive:
            shutil.rmtree(attempt, ignore_errors=True)


def sample_nbytes(sample: Any) -> int:
    if isinstance(sample, Mapping):
        return sum(sample_nbytes(v) for v in sample.values())
    if isinstance(sample, (bytes, bytearray, memoryview)):
        return memoryview(sample).nbytes
    return int(np.asarray(sample).nbytes)
