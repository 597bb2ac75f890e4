"""``acumen.concat``: a new dataset made of the samples of others, no sample byte copied.

The parts are read at their newest version (live samples only) and joined as
:func:`acumen.open_many` joins them; the new dataset's chunk files are hard links to the
parts' (part ``k``'s ``chunks/chunk_3.chnk`` is ``chunks/<k>/chunk_3.chnk``), its index
holds the parts' live rows, and its manifest the parts' chunk sizes and checksums, carried,
not recomputed. The output is claimed as any writer claims a folder: until its manifest is
written and read back it never opens, so a crash leaves it incomplete, never half made.

The result is a write-once dataset (format version 1, readable by older acumen, and by the
original package for raw or gzip chunks with a csv index) whose manifest records where its
samples came from: ``"concat_of": [{"path": ..., "version": N}, ...]``. When it first
changes, its version 1 is recorded with the operation ``concat`` (``acumen history``).
Hard links share the files, not a reference to the parts: removing a part (or ``acumen
vacuum`` on it) leaves the concatenation whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from acumen.errors import DatasetWriteError, quote
from acumen.files.claim import acting_as, claim_new_folder, current_kind
from acumen.files.local import fsync_directory, replace_durably, write_failed
from acumen.files.remote import is_url, local_path
from acumen.format.fields import FieldSpec
from acumen.format.index_table import IndexTable
from acumen.format.manifest import ChunkEntry, Manifest
from acumen.read.dataset import Dataset
from acumen.read.many import ConcatDataset
from acumen.read.opening import open_dataset
from acumen.write.commit import build_manifest, commit_dataset, store_resources
from acumen.write.versioning import index_plugin_of, newest_manifest

#: Why a hard link can fail where a copy would not: another file system, a file system
#: without hard links, a file with too many links already.
_CANNOT_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


@acting_as("concat")  # what its claim on the output folder says is writing it
def concat(
    sources: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *, link: bool = True
) -> Manifest:
    """Write the dataset ``out`` holding the live samples of ``sources``, in order, and
    return its manifest. ``out`` must not exist or be an empty folder.

    ``link=True`` hard-links the parts' chunk files (no byte copied; ``out`` must be on the
    parts' file system, else an error says to pass ``link=False``); ``link=False`` copies
    them. The parts must agree as for :func:`acumen.open_many` (dtype or fields, codec and
    its dictionary, metadata column types); the first part's index format is used.
    """
    if isinstance(sources, (str, os.PathLike)):
        raise TypeError(f"concat takes a list of dataset paths, got {quote(sources)}")
    sources = list(sources)
    if not sources:
        raise ValueError("concat needs at least one dataset")
    for path in [*sources, out]:
        if is_url(path):
            raise ValueError(
                f"{path}: acumen.concat works on local datasets (their chunk files are "
                "hard-linked); read remote ones together with acumen.open_many"
            )
    target = Path(local_path(out))
    for source in sources:
        root = Path(local_path(source)).resolve()
        if target.resolve().is_relative_to(root):
            raise ValueError(
                f"{target} is inside {source}, one of the datasets concatenated: choose an "
                "output outside them"
            )
    parts: list[Dataset] = []
    try:
        for source in sources:
            root = Path(local_path(source))
            newest_manifest(root)  # an original or incomplete dataset: refused, saying why
            parts.append(open_dataset(root))
        view = ConcatDataset(parts)
        if link:
            _check_same_device(view, target)
        claim = claim_new_folder(target, current_kind("concat"))
        try:
            table, chunks = _used_chunks(view)
            _place_chunks(view, chunks, target, link)
            store_resources(target, [view.codec, *(r.codec for r in view.field_readers)])
            index_format = index_plugin_of(view.manifest, Path(local_path(sources[0])))
            fields = [FieldSpec(r.name, r.type, r.dtype, r.codec) for r in view.field_readers]
            manifest = build_manifest(
                table,
                view.codec,
                index_format,
                chunks,
                view.manifest.chunk_size_bytes,  # type: ignore[union-attr]
                fields or None,
                [r.dtype for r in view.field_readers] if fields else [view.dtype],
            )
            manifest.concat_of = [
                {"path": os.fspath(source), "version": version}
                for source, version in zip(sources, view.versions, strict=True)
            ]
            commit_dataset(target, table, index_format, manifest, claim, _read_back)
        except BaseException:
            claim.abandon()  # the marker stays: the folder never opens as a dataset
            raise
    finally:
        for part in parts:
            part.close()
    return manifest


def _read_back(root: Path) -> None:
    """The new dataset opens (manifest, index checksum, chunk sizes, first rows) before its
    claim goes."""
    open_dataset(root).close()


def _used_chunks(view: ConcatDataset) -> tuple[IndexTable, list[ChunkEntry]]:
    """The view's index keeping only chunk files that live samples are in (a chunk whose
    samples were all deleted is not carried), and those chunks' manifest entries."""
    table = view.table
    entries = view.manifest.chunks  # type: ignore[union-attr]
    used = np.unique(table.chunk_ids)
    if len(used) == len(table.chunk_names):
        return table, list(entries)
    renumber = np.full(len(table.chunk_names), -1, dtype=np.int32)
    renumber[used] = np.arange(len(used), dtype=np.int32)
    kept = dataclasses.replace(
        table,
        chunk_names=[table.chunk_names[c] for c in used.tolist()],
        chunk_ids=renumber[table.chunk_ids],
    )
    return kept, [entries[c] for c in used.tolist()]


def _check_same_device(view: ConcatDataset, target: Path) -> None:
    """Before anything is written: a hard link cannot cross file systems."""
    where = next((p for p in [target, *target.parents] if p.exists()), Path.cwd())
    try:
        device = os.stat(where).st_dev
        others = [(path, os.stat(path).st_dev) for path in view.storage.paths]
    except OSError:  # mkdir or the link says why
        return
    for path, other in others:
        if other != device:
            raise DatasetWriteError(
                errno.EXDEV,
                f"{target} is on another file system than {path}: the chunk files cannot be "
                "hard-linked there; pass link=False (`acumen concat --copy`) to copy them, "
                "or choose an output on the parts' file system",
                str(target),
            )


def _place_chunks(view: ConcatDataset, chunks: list[ChunkEntry], target: Path, link: bool) -> None:
    """Each chunk file hard-linked (or copied) to its name in ``target``; the folders made
    durable before the manifest names them."""
    sources = dict(zip(view.table.chunk_names, view.storage.paths, strict=True))
    folders: set[Path] = set()
    for entry in chunks:
        final = target / entry.file
        if final.parent not in folders:
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise write_failed(target, final.parent, error) from error
            folders.update([final.parent, *final.parent.parents])
        _place(sources[entry.file], final, target, link)
    for folder in sorted((f for f in folders if f.is_relative_to(target)), reverse=True):
        fsync_directory(folder)


def _place(source: str, final: Path, target: Path, link: bool) -> None:
    if not link:
        temporary = final.with_name(f".{final.name}.tmp")
        try:
            shutil.copyfile(source, temporary)
            replace_durably(temporary, final)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise write_failed(target, final, error) from error
        return
    try:
        os.link(source, final)
    except OSError as error:
        if error.errno in _CANNOT_LINK:
            raise DatasetWriteError(
                error.errno,
                f"{final}: cannot hard-link {source} ({error.strerror}); pass link=False "
                f"(`acumen concat --copy`) to copy the chunk files instead; {target} is left "
                "incomplete: remove it first",
                str(final),
            ) from error
        raise write_failed(target, final, error) from error


__all__ = ["concat"]
