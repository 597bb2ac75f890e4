"""``acumen verify``: check every chunk file against its checksum and every sample decodes.

Chunk files are hashed (xxh3-64, in 8 MiB blocks, several files at once) and compared with
the manifest; compressed samples are decoded (their frames carry checksums of their own), so
damage inside a payload is found too. Every problem is reported by file and sample.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from acumen import plugins
from acumen.abc.codec import Buffer
from acumen.errors import (
    AcumenError,
    ArgumentConflictError,
    CorruptDatasetError,
    sample_error,
)
from acumen.files.remote import is_url
from acumen.format.version_files import load_version
from acumen.format.versions import list_versions
from acumen.index_formats.segments import read_index_file, read_version_table
from acumen.progress import BatchedReporter, Callback, ProgressArg, as_callback
from acumen.read.dataset import Dataset
from acumen.read.file_checks import check_named_files
from acumen.read.opening import open_dataset
from acumen.read.verifiers import chunk_problem, unreadable
from acumen.write.versioning import has_view


@dataclass
class VerifyReport:
    path: Path | str  # a URL as given
    chunks_checked: int = 0
    samples_checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [*self.problems, *self.notes]
        verdict = "all well" if self.ok else f"{len(self.problems)} problem(s)"
        lines.append(
            f"{self.path}: {self.chunks_checked} chunk files and {self.samples_checked} samples "
            f"checked: {verdict}"
        )
        return "\n".join(lines)


def verify(
    path: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    samples: bool = True,
    progress: ProgressArg = True,
    **open_options,
) -> VerifyReport:
    """Check a dataset; the report lists every bad file and sample (``report.ok``).

    ``progress``: acumen's lines (the default), ``False``, or an
    :class:`acumen.progress.Callback`: sized once the manifest is read, it is told the
    chunk files checked (a URL's: the bytes streamed), with the checks of samples as
    branches; told from this thread and closed at the end, also on failure."""
    name = str(path).rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
    with as_callback(progress, f"verify {name}") as bar:
        return _verify(path, jobs, samples, bar, open_options)


def _verify(
    path: str | os.PathLike[str],
    jobs: int | None,
    samples: bool,
    progress: Callback,
    open_options: dict[str, Any],
) -> VerifyReport:
    remote = is_url(path)
    report = VerifyReport(str(path).rstrip("/") if remote else Path(path))
    if remote:  # streamed: nothing kept in the disk cache
        open_options = {**open_options, "cache_size": 0}
    try:
        dataset = open_dataset(path, **open_options)
    except ArgumentConflictError:
        raise  # the caller's argument, not a problem of the dataset
    except AcumenError as error:
        report.problems.append(str(error))
        return report
    except OSError as error:  # a manifest, index or chunk folder the system will not read
        report.problems.append(unreadable(path, error))
        return report
    jobs = jobs or min(4, os.cpu_count() or 1)
    with dataset:
        _check_named_files(dataset, report)
        if not remote:
            _check_view(dataset, report)
        report.problems.extend(dataset.check_index())
        if remote:
            from acumen.verify_remote import check_streaming

            check_streaming(dataset, report, jobs=max(jobs, 4), samples=samples, progress=progress)
            return report
        expected = _expected_checksums(dataset, report)
        failed: set[int] = set()  # chunk files reported already: their samples are skipped
        progress.set_size(len(expected), "chunk files")
        with ThreadPoolExecutor(jobs) as pool:
            paths = dataset.storage.paths
            checks = pool.map(lambda item: chunk_problem(paths[item[0]], item[1]), expected.items())
            for chunk_id, (problem, unread) in zip(expected, checks, strict=True):
                report.chunks_checked += 1
                if problem:
                    report.problems.append(problem)
                if unread:
                    failed.add(chunk_id)
                progress.update(1)
        for chunk_id in range(len(dataset.storage.paths)):
            if chunk_id not in expected:  # no checksum (an original dataset): opened only
                problem, _ = chunk_problem(dataset.storage.paths[chunk_id], None)
                if problem:
                    report.problems.append(problem)
                    failed.add(chunk_id)
        if samples and dataset.table.checksums is not None:
            _check_sample_checksums(dataset, report, progress, failed)
        decodes = bool(dataset.field_readers) or not dataset.codec.is_identity
        if samples and decodes:
            with progress.branch("verify samples") as branch:
                branch.set_size(len(dataset))
                told = BatchedReporter(branch.update, every=0.1)
                for i in range(len(dataset)):
                    try:
                        _sample_read(dataset, report, failed, i, dataset.read)
                    except CorruptDatasetError as error:
                        report.problems.append(str(error))
                    report.samples_checked += 1
                    told(1)
                told.flush()
        elif samples and dataset.table.checksums is None:
            report.notes.append(
                "raw samples carry no checksum of their own: the chunk checksums cover them"
            )
    return report


def _check_named_files(dataset: Dataset, report: VerifyReport) -> None:
    """The index and codec resources against the manifest's checksums, whatever their size
    (opening hashes them only while they are small)."""
    manifest = dataset.manifest
    if manifest is None:
        return
    if manifest.versioned is None and manifest.index["file"] not in manifest.files:
        report.notes.append(
            f"{dataset.root}: the manifest records no checksum of the index (written before "
            "acumen recorded them): only its rows were checked"
        )
    root, shown = dataset.root, str(dataset.root)
    if not isinstance(root, Path):  # a URL: its files' mirror, named by the URL
        index = Path(dataset.chunk_files.index_path)
        root = index.parents[len(Path(manifest.index["file"]).parts) - 1]
    for name in manifest.files:
        try:
            check_named_files(root, manifest, [name], "file", everything=True)
        except CorruptDatasetError as error:
            report.problems.append(str(error).replace(str(root), shown))
        except OSError as error:
            report.problems.append(unreadable(f"{shown}/{name}", error))


def _check_view(dataset: Dataset, report: VerifyReport) -> None:
    """A changed csv dataset's ``index.csv`` (what the original acumenindexer reads) holds
    exactly the newest version's live samples."""
    manifest = dataset.manifest
    if manifest is None or manifest.versioned is None or not has_view(manifest):
        return
    root = Path(dataset.root)
    if list_versions(root)[-1] != manifest.versioned.version:
        return  # an older version: index.csv follows the newest
    path = root / manifest.index["file"]
    try:
        plugin = plugins.index_format(manifest.index)
        view = read_index_file(plugin, path, manifest.metadata)
    except (AcumenError, OSError) as error:
        report.problems.append(f"{error} (index.csv is what the original acumenindexer reads)")
        return
    if view == dataset.table:
        return
    parent = manifest.versioned.parent
    if parent is not None and view == read_version_table(root, load_version(root, parent), plugin):
        report.notes.append(  # a writer died between its commit and index.csv: nothing lost
            f"{path}: holds version {parent}, not the newest ({manifest.versioned.version}): "
            "the original acumenindexer reads the version before; `acumen vacuum` (or the "
            "next commit) brings it up to date"
        )
        return
    report.problems.append(
        f"{path}: does not hold version {manifest.versioned.version}'s {len(dataset)} live "
        f"samples ({len(view)} rows), nor its parent's: the original acumenindexer would read "
        "something else; `acumen vacuum` (or the next commit) rewrites it"
    )


def _sample_read(
    dataset: Dataset, report: VerifyReport, failed: set[int], i: int, read: Callable[[int], Any]
) -> Any:
    """``read(i)``, or None when sample ``i``'s chunk file cannot be read: reported once per
    file (``failed`` holds the files reported already), its other samples are skipped."""
    chunk = int(dataset.table.chunk_ids[i])
    if chunk in failed:
        return None
    try:
        return read(i)
    except OSError as error:
        failed.add(chunk)
        path = dataset.storage.paths[chunk]
        report.problems.append(f"{unreadable(path, error)} (its samples from {i} on: unchecked)")
        return None


def _check_sample_checksums(
    dataset: Dataset, report: VerifyReport, progress: Callback, failed: set[int]
) -> None:
    """Each sample's payload against the checksum the index keeps for it (``ai:xxh3_64``)."""
    table = dataset.table
    expected = table.checksums.view(np.uint64)

    def payload(i: int) -> Buffer:
        return dataset.storage.read(*table.locate(i))

    with progress.branch("verify sample checksums") as branch:
        branch.set_size(len(table))
        told = BatchedReporter(branch.update, every=0.1)
        for i in range(len(table)):
            told(1)
            try:
                data = _sample_read(dataset, report, failed, i, payload)
            except CorruptDatasetError as error:
                report.problems.append(str(sample_error(dataset.root, i, error)))
                continue
            if data is not None and xxhash.xxh3_64_intdigest(data) != int(expected[i]):
                chunk, offset, size = table.locate(i)
                problem = (
                    "payload checksum differs from the index's "
                    f"({dataset.storage.paths[chunk]}, bytes {offset}..{offset + size})"
                )
                report.problems.append(str(sample_error(dataset.root, i, problem)))
        told.flush()


def _expected_checksums(dataset: Dataset, report: VerifyReport) -> dict[int, str | None]:
    if dataset.manifest is None:
        report.notes.append(
            "an original acumenindexer dataset records no checksums: only ranges and payloads "
            "were checked"
        )
        return {}
    by_file = {c.file: c.checksum for c in dataset.manifest.chunks}
    expected = {}
    for chunk_id, name in enumerate(dataset.table.chunk_names):
        expected[chunk_id] = by_file.get(name)
        if by_file.get(name) is None:
            report.notes.append(f"{dataset.storage.paths[chunk_id]}: no checksum recorded")
    return expected
