"""``acumen recode``: re-write a dataset with another codec, index format or chunk size.

Streams samples from the source (acumen or original acumenindexer) through the normal
writer, in parallel when asked, then reads every sample of the result back and compares it
with the source before the result is marked complete, so a recoded dataset is known to be
the same data (a copy that differs is never committed).

The source is checked against its own checksums as it is read (each chunk file once; in a
damaged chunk, each sample against its own checksum when the index keeps one), so damage is
never copied and given fresh, valid checksums: the recode stops, or leaves the damaged
samples out and lists them. A source without checksums (an original acumenindexer dataset)
is copied as it reads: only its codec's frames (gzip's CRC) can show damage.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from acumen import plugins
from acumen.errors import CorruptDatasetError, RecodeMismatchError, quote, sample_error
from acumen.files.claim import acting_as
from acumen.files.local import write_atomically
from acumen.files.remote import is_url
from acumen.format.manifest import Manifest
from acumen.plugins import PluginSpec
from acumen.progress import BatchedReporter, Callback, NoProgress, ProgressArg, as_callback, lend
from acumen.read.dataset import Dataset
from acumen.read.opening import open_dataset
from acumen.read.verifiers import check_chunk, chunk_checksums
from acumen.write.split import split_into_chunks
from acumen.write.writer import DEFAULT_CHUNK_SIZE

logger = logging.getLogger(__name__)

#: The list of source samples a recode left out (``on_damage="skip"``), in the copy's folder.
SKIPPED_REPORT = "recode-skipped.json"
ON_DAMAGE = ("stop", "skip")


class DamagedSamplesWarning(UserWarning):
    """A recode left damaged samples of its source out of the copy (``on_damage="skip"``)."""


class SampleReader:
    """``read_fn`` over a dataset: position -> (sample, metadata). Picklable (workers)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __call__(self, position: int) -> tuple[Any, dict[str, Any]]:
        return self.dataset[position]


@acting_as("recode")  # what its claim on the destination says is writing it
def recode(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    codec: PluginSpec | None = None,
    index_format: PluginSpec | None = None,
    chunk_size_bytes: int | None = None,
    n_jobs: int = 1,
    verify: bool = True,
    progress: ProgressArg = True,
    source_options: dict[str, Any] | None = None,
    on_damage: str = "stop",
    storage_options: dict[str, Any] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> Manifest:
    """Copy ``source`` to a new dataset at ``destination``, changing what is given.

    With ``verify`` (the default) every sample of the copy is read back and compared with
    the source before the copy is marked complete: a copy that differs (a lossy codec)
    raises :class:`RecodeMismatchError` and is left incomplete, never committed.

    What is not given stays as in the source: codec (each field's own, with its trained
    dictionary), index format, chunk size. ``source_options`` go to :func:`acumen.open`
    (``dtype=``, ``use_gzip=`` for an original dataset).

    The source is checked against its checksums as it is read. Damage raises
    :class:`CorruptDatasetError` naming the file and sample, and nothing is committed at
    ``destination``; with ``on_damage="skip"`` damaged samples are left out instead, listed
    in ``destination/recode-skipped.json`` (a URL's too, uploaded before its manifest) and
    in a :class:`DamagedSamplesWarning`. A damaged
    chunk file whose samples have no checksums of their own is left out whole.

    ``destination`` may be a URL: the copy is written and checked in a staging folder under
    ``cache``, then published (see :class:`acumen.Writer`); ``storage_options`` are the
    destination's (the source's go in ``source_options``).
    """
    if on_damage not in ON_DAMAGE:
        raise ValueError(f"on_damage must be 'stop' or 'skip', got {on_damage!r}")
    options = source_options or {}
    remote = is_url(destination)
    with (
        open_dataset(source, **options) as src,
        SourceCheck(src, on_damage, destination, options) as check,
    ):
        manifest = src.manifest
        if index_format is None:
            index_format = manifest.index if manifest else "csv"
        if chunk_size_bytes is None:
            chunk_size_bytes = manifest.chunk_size_bytes if manifest else DEFAULT_CHUNK_SIZE
        fields = _field_specs(src, codec)
        if verify and fields is None:
            _check_round_trip(src, codec, destination)
        name = Path(destination).name
        bar = as_callback(progress, f"recode {name}", len(src))
        checking = bar.branch(f"verify {name}") if verify else NoProgress()
        closed: list[Callback] = []

        def end(callback: Callback) -> None:  # each closed once, the writing's first
            if not any(c is callback for c in closed):
                closed.append(callback)
                callback.close()

        def read_back(copy: Path) -> None:  # before the copy is marked complete
            if remote and check.skipped:  # copy: the staging folder, published with it
                check.write_report(copy)
            if verify:
                end(bar)  # the writing is done: its line comes before the check's
                verify_copy(src, copy, checking, check.kept())

        try:
            written = split_into_chunks(
                check.positions(),
                destination,
                read_fn=SampleReader(src),
                chunk_size_bytes=chunk_size_bytes,
                n_jobs=n_jobs,
                dtype=src.dtype if fields is None else None,
                codec=codec if codec is not None else src.codec,
                index_format=index_format,
                fields=fields,
                progress=lend(bar),
                read_back=read_back if verify or remote else None,
                storage_options=storage_options,
                cache=cache,
                publish_extra=[SKIPPED_REPORT],
            )
        except CorruptDatasetError as error:
            raise CorruptDatasetError(_stopped(error, destination)) from None
        except RecodeMismatchError as error:
            raise RecodeMismatchError(_not_committed(error, destination)) from None
        finally:
            end(bar)
            end(checking)
        check.warn()
    return written


def _field_specs(src: Dataset, codec: PluginSpec | None) -> dict[str, Any] | None:
    """The source's fields for the writer (``codec`` for each, when given)."""
    if not src.field_readers:
        return None
    return {
        r.name: {
            "type": r.type,
            **({"dtype": r.dtype.str} if r.type == "array" else {}),
            "codec": codec if codec is not None else r.codec,
        }
        for r in src.field_readers
    }


def _check_round_trip(
    src: Dataset, codec: PluginSpec | None, destination: str | os.PathLike[str]
) -> None:
    """Fail fast on a lossy codec: the first sample, encoded and decoded by the copy's codec,
    must be itself (else only the finished copy, read back, would show it)."""
    target = plugins.codec(codec) if codec is not None else src.codec
    if not len(src) or target.is_identity or target.training_samples():
        return
    try:
        array = np.ascontiguousarray(src.read(0))
        same = bytes(target.decode(target.encode(array), array.nbytes)) == array.tobytes()
    except (CorruptDatasetError, ValueError, TypeError):
        return  # a damaged source, or a sample the codec refuses: the copy names the sample
    if not same:
        raise RecodeMismatchError(
            f"{destination}: nothing was written: source sample 0 differs from itself once "
            f"encoded and decoded by codec {target.get_config()} (a lossy codec); to copy "
            "with it anyway, without the check: recode(..., verify=False), or acumen recode "
            "--no-verify"
        )


def _not_committed(error: RecodeMismatchError, destination: str | os.PathLike[str]) -> str:
    return (
        f"{error}; nothing was committed: {destination} is left incomplete (remove it); to keep "
        "a copy that differs from its source (a lossy codec), recode again without the check: "
        "recode(..., verify=False), or acumen recode --no-verify"
    )


def _stopped(error: CorruptDatasetError, destination: str | os.PathLike[str]) -> str:
    left = (
        f"{destination} is left incomplete (remove it)"
        if os.path.lexists(destination)
        else f"nothing was written at {destination}"
    )
    return (
        f"{error}\nrecode stopped: {left}; to copy the other samples, leave the damaged ones "
        "out with on_damage='skip' (acumen recode --skip-damaged)"
    )


class SourceCheck:
    """The source's positions to copy, each first checked against the source's checksums.

    Runs in the parent, ahead of the workers (which then read without checks): each chunk
    file with a checksum in the manifest is hashed once, when its first sample is due (it is
    then in the page cache for the workers). A chunk that matches vouches for its samples.
    In a chunk that does not, samples with checksums of their own are read one by one
    against them to find the damaged ones; without them, every sample of the chunk counts
    as damaged. Samples no chunk checksum covers are read against their own checksums when
    they have them; else the workers' reads check what the codec can (its frames), and
    samples to be skipped rather than stop the recode are read here first.
    """

    def __init__(
        self, source: Dataset, on_damage: str, destination: Any, options: dict[str, Any]
    ) -> None:
        self.source = source
        self.on_damage = on_damage
        self.destination = destination
        self.options = options
        self.expected = chunk_checksums(source.manifest, source.table.chunk_names)
        self.chunk_problems: dict[int, str | None] = {}
        self.sound_chunks: set[int] = set()  # those that match their checksum
        self.skipped: dict[int, str] = {}
        self._by_sample: Dataset | None = None  # the source opened with verify="sample"
        if source.table.checksums is None and not any(self.expected):
            logger.warning(
                "%s records no checksums%s: it is copied as it reads, so damage its codec "
                "cannot see would be copied too",
                source.root,
                "" if source.manifest else " (an original acumenindexer dataset)",
            )

    def __enter__(self) -> SourceCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._by_sample is not None:
            self._by_sample.close()

    def positions(self) -> Iterator[int]:
        """Source positions to copy; raises on damage unless it is to be skipped."""
        sound = self.sound_chunks
        for i, chunk in enumerate(self.source.table.chunk_ids.tolist()):
            if chunk in sound:
                yield i
                continue
            problem = self.problem(i, chunk)
            if problem is None:
                yield i
            elif self.on_damage == "stop":
                raise CorruptDatasetError(problem)
            else:
                self.skipped[i] = problem
        if self.skipped and not is_url(self.destination):
            # Written before the copy commits: a copy with samples left out never exists
            # without the list of them (a URL's: in its staging folder, by read_back).
            self.write_report(Path(self.destination))

    def problem(self, i: int, chunk: int) -> str | None:
        """What is wrong with sample ``i`` (in chunk file ``chunk``), or None."""
        expected = self.expected[chunk]
        has_own = self.source.table.checksums is not None
        if expected is not None:
            if chunk not in self.chunk_problems:
                self.chunk_problems[chunk] = check_chunk(self.source.storage.paths[chunk], expected)
            damaged = self.chunk_problems[chunk]
            if damaged is None:
                self.sound_chunks.add(chunk)
                return None
            if not has_own:
                return str(sample_error(self.source.root, i, damaged))
        if has_own:
            return _read_problem(self.by_sample, i)
        if self.on_damage == "skip":
            return _read_problem(self.source, i)
        return None

    @property
    def by_sample(self) -> Dataset:
        """The source, opened (once needed) to check each sample against its checksum."""
        if self._by_sample is None:
            options = {**self.options, "verify": "sample"}
            self._by_sample = open_dataset(self.source.root, **options)
        return self._by_sample

    def kept(self) -> list[int]:
        return [i for i in range(len(self.source)) if i not in self.skipped]

    def write_report(self, folder: Path) -> None:
        report = {
            "source": str(self.source.root),
            "samples_copied": len(self.source) - len(self.skipped),
            "skipped": [{"sample": i, "problem": p} for i, p in self.skipped.items()],
        }
        text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
        write_atomically(folder / SKIPPED_REPORT, text.encode())

    def warn(self) -> None:
        if not self.skipped:
            return
        listed = list(self.skipped)
        shown = ", ".join(map(str, listed[:20])) + (", ..." if len(listed) > 20 else "")
        report = f"{str(self.destination).rstrip('/')}/{SKIPPED_REPORT}"
        if not is_url(self.destination):
            report = str(Path(self.destination) / SKIPPED_REPORT)
        warnings.warn(
            f"recode {self.source.root} -> {self.destination}: {len(listed)} damaged "
            f"sample(s) left out: [{shown}] (listed in {report})",
            DamagedSamplesWarning,
            stacklevel=3,
        )


def skipped_report(
    destination: str | os.PathLike[str], options: dict[str, Any] | None = None
) -> bytes | None:
    """The report of the samples a recode left out at ``destination`` (a folder or a URL,
    with its ``storage_options``), or None when it left none out."""
    if not is_url(destination):
        report = Path(destination) / SKIPPED_REPORT
        return report.read_bytes() if report.is_file() else None
    from acumen.files.remote import RemoteStore

    store = RemoteStore(str(destination).rstrip("/"), (options or {}).get("storage_options"))
    try:
        return store.read_bytes(store.url_of(SKIPPED_REPORT), "recode report")
    except FileNotFoundError:
        return None


def _read_problem(dataset: Dataset, i: int) -> str | None:
    try:
        dataset.read(i)
    except CorruptDatasetError as error:
        return str(error)
    return None


def verify_copy(
    source: Dataset,
    destination: str | os.PathLike[str],
    progress: Callback,
    positions: list[int] | None = None,
) -> None:
    """Every sample and its metadata in ``destination`` equal the source's, bit for bit;
    :class:`RecodeMismatchError` names the first that does not.

    ``positions``: the source samples the copy holds, in order (default: all).
    ``progress`` is sized and told the samples checked (its owner closes it).
    """
    if positions is None:
        positions = list(range(len(source)))
    progress.set_size(len(positions))
    with open_dataset(destination) as copy:
        bar = BatchedReporter(progress.update, every=0.1)
        if len(copy) != len(positions):
            raise RecodeMismatchError(
                f"{destination}: {len(copy)} samples, the source has {len(positions)} to copy"
            )
        for i, position in enumerate(positions):
            (want, want_meta), (got, got_meta) = source[position], copy[i]
            if not _same_sample(want, got):
                raise RecodeMismatchError(
                    f"{destination}: sample {i} differs from source sample {position} after "
                    f"recoding with {_codecs(copy)}"
                )
            if want_meta.keys() != got_meta.keys() or not all(
                _same_value(want_meta[k], got_meta[k]) for k in want_meta
            ):
                raise RecodeMismatchError(
                    f"{destination}: sample {i} metadata {quote(got_meta)} differs from the "
                    f"source's {quote(want_meta)}"
                )
            bar(1, _nbytes(got))
        bar.flush()


def _codecs(dataset: Dataset) -> str:
    """ "codec image {'format': 'jpeg', ...}", or each field's."""
    if not dataset.field_readers:
        return f"codec {dataset.codec.get_config()}"
    return ", ".join(f"field {r.name}: codec {r.codec.get_config()}" for r in dataset.field_readers)


def _same_sample(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return want.keys() == got.keys() and all(_same_sample(want[k], got[k]) for k in want)
    if isinstance(want, bytes):
        return want == got
    return want.dtype == got.dtype and want.shape == got.shape and want.tobytes() == got.tobytes()


def _same_value(want: Any, got: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return type(want) is type(got) and want == got


def _nbytes(sample: Any) -> int:
    if isinstance(sample, dict):
        return sum(_nbytes(v) for v in sample.values())
    return len(sample) if isinstance(sample, bytes) else np.asarray(sample).nbytes
