"""``acumen.open_many``: several datasets read as one, in memory, with nothing written.

The parts' indexes are joined once (part ``k``'s chunk ``chunks/chunk_3.chnk`` is named
``chunks/<k>/chunk_3.chnk`` in the view, and chunk ids become global), and one storage
reads every part's chunk files. The view is then a :class:`~acumen.read.dataset.Dataset`
like any other: ``ds[i]``, ``read_batch``, ``batches``, ``select``/``filter``, pickling into
DataLoader workers, :class:`~acumen.torch.ChunkShuffleSampler` (which shuffles chunk
windows across the parts) and :class:`~acumen.torch.TorchDataset` work on it as on one
dataset, at the same speed per read. ``acumen.concat`` writes the same view to disk.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from acumen import plugins
from acumen.abc.codec import Codec
from acumen.abc.storage import Storage
from acumen.errors import quote
from acumen.format.index_concat import MISSING, MetadataMismatch, concat_tables
from acumen.format.index_table import IndexTable
from acumen.format.manifest import ChunkEntry, Manifest
from acumen.format.metadata import NUMPY_DTYPES, ColumnSpec, MetadataTable
from acumen.read.dataset import Dataset
from acumen.read.index_checks import ChunkFiles
from acumen.read.opening import open_dataset
from acumen.read.sample import FieldReader

#: A view's storage configuration keys that may differ per part (joined, not compared).
_PER_CHUNK = ("chunk_versions",)


class Parts(tuple):
    """The roots of a view's parts (a view's ``root``); in messages ``open_many(a, b)``."""

    def __str__(self) -> str:
        shown = [str(root) for root in self[:3]]
        more = f", ... ({len(self)} datasets)" if len(self) > 3 else ""
        return f"open_many({', '.join(shown)}{more})"


def open_many(
    parts: Sequence[str | os.PathLike[str] | Dataset], **open_kwargs: Any
) -> ConcatDataset:
    """One view over several datasets, in this order: sample ``i`` of the view is sample
    ``i - len(parts before)`` of its part. Paths are opened with ``acumen.open(path,
    **open_kwargs)`` (at their newest version); opened datasets (or views of them, from
    ``select``) are taken as they are. Nothing is written or copied; see
    :class:`ConcatDataset` for what the parts must share."""
    if isinstance(parts, (str, os.PathLike, Dataset)):
        raise TypeError(f"open_many takes a list of datasets or paths, got {quote(parts)}")
    given = list(parts)
    if open_kwargs and any(isinstance(p, Dataset) for p in given):
        raise ValueError(
            f"open_many: the options {sorted(open_kwargs)} are for paths; a dataset already "
            "opened keeps its own (give them to acumen.open)"
        )
    return ConcatDataset(
        [p if isinstance(p, Dataset) else open_dataset(p, **open_kwargs) for p in given]
    )


class ConcatDataset(Dataset):
    """Several acumen datasets read as one (:func:`acumen.open_many`).

    Use this, not ``torch.utils.data.ConcatDataset``, to train on several datasets at once:
    ``ChunkShuffleSampler(open_many([a, b]))`` and ``TorchDataset(open_many([a, b]))`` see
    every part's chunks (chunk ids are global), so shuffling keeps its locality and a batch
    that spans two parts is one read.

    The parts must share what decoding needs: the dtype (or the same fields, each with its
    dtype and codec), the codec and its reading configuration (a zstd dictionary included),
    the storage (local parts are all read with the first one's; remote ones must share
    the store's protocol and options) and ``verify``. Metadata columns are joined by name:
    a column some parts lack must be ``float`` (NaN there) or ``str`` (empty there).
    Shapes may differ between parts (``read_batch`` then returns a list, as for any
    dataset of several shapes). An error names the part that differs.

    ``locate(i)`` says which part sample ``i`` is in; ``select`` and ``filter`` return a
    view (a :class:`Dataset`) over the same files.
    """

    def __init__(self, parts: Sequence[Dataset]) -> None:
        parts = list(parts)
        if not parts:
            raise ValueError("open_many needs at least one dataset")
        for k, part in enumerate(parts):
            if not isinstance(part, Dataset):
                raise TypeError(
                    f"open_many: part {k} is a {type(part).__name__}, not an acumen dataset"
                )
        joined = join_parts(parts)
        first = parts[0]
        super().__init__(
            joined.roots,
            joined.table,
            first.dtype if first.dtype is not None else np.dtype("<f2"),
            first.codec,
            joined.storage,
            joined.manifest,
            [
                FieldReader(
                    r.name,
                    r.type,
                    r.dtype,
                    r.codec,
                    joined.table.fields[r.name].sizes,
                    joined.table.fields[r.name].shapes,
                )
                for r in first.field_readers
            ],
            first.selected,
            first.verify,
            ChunkFiles(joined.index_path, joined.paths, joined.sizes),
            check_first_block=True,
        )
        #: Where each part's samples start in the view (and, last, the view's length).
        self.starts = joined.starts
        #: The version of each part that the view reads.
        self.versions = [part.version for part in parts]

    @property
    def version(self) -> None:  # type: ignore[override]
        """None: a view of several datasets has no one version (see :attr:`versions`)."""
        return None

    def locate(self, i: int) -> tuple[int, int]:
        """``(part, sample in that part)`` of the view's sample ``i``."""
        position = self._position(i)
        part = int(np.searchsorted(self.starts, position, side="right")) - 1
        return part, position - int(self.starts[part])

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "starts": self.starts, "versions": self.versions}

    def __repr__(self) -> str:
        what = (
            f"fields {self.fields}"
            if self.field_readers
            else f"{self.dtype}, shape {self.shape if self.shape is not None else 'variable'}"
        )
        return (
            f"<acumen.ConcatDataset of {len(self.root)} datasets: {len(self)} samples, {what}, "
            f"codec {self.codec.name}, storage {self.storage.name}>"
        )


@dataclasses.dataclass
class Joined:
    """The parts as one dataset: index, chunk files and a manifest describing them."""

    roots: Parts
    table: IndexTable
    paths: list[str]
    sizes: np.ndarray
    storage: Storage
    manifest: Manifest
    starts: np.ndarray
    index_path: Any  # named in messages about index rows


def join_parts(parts: Sequence[Dataset]) -> Joined:
    """The parts joined (their agreement checked first), for a view or ``acumen.concat``."""
    labels = [f"part {k} ({part.root})" for k, part in enumerate(parts)]
    check_parts_agree(parts, labels)
    filled = [k for k, part in enumerate(parts) if len(part)]  # an empty part lacks nothing
    specs = joined_columns(
        [parts[k].table.metadata.specs for k in filled], [labels[k] for k in filled]
    )
    tables = [
        dataclasses.replace(
            part.table,
            chunk_names=[part_chunk_name(k, name) for name in part.table.chunk_names],
            metadata=_with_columns(part.table.metadata, specs),
        )
        for k, part in enumerate(parts)
    ]
    first = parts[0]
    field_names = [r.name for r in first.field_readers] or None
    try:
        table = concat_tables(tables, field_names, labels)
    except MetadataMismatch as error:  # joined_columns has said it already
        raise ValueError(f"open_many: {error}") from None
    paths = [path for part in parts for path in part.storage.paths]
    sizes = np.concatenate([np.asarray(part.chunk_files.sizes, np.int64) for part in parts])
    roots = Parts(part.root for part in parts)
    return Joined(
        roots,
        table,
        paths,
        sizes,
        _joined_storage(parts, labels, paths),
        _manifest(parts, table, sizes, specs),
        np.cumsum([0, *(len(part) for part in parts)], dtype=np.int64),
        roots,
    )


def part_chunk_name(k: int, name: str) -> str:
    """Part ``k``'s chunk ``name`` in the joined dataset: ``chunks/chunk_3.chnk`` becomes
    ``chunks/<k>/chunk_3.chnk``, ``chunks/<token>/chunk_0.chnk`` ``chunks/<k>/<token>/...``."""
    return f"chunks/{k}/{name.removeprefix('chunks/')}"


# --- what the parts must share -----------------------------------------------------------
def check_parts_agree(parts: Sequence[Dataset], labels: Sequence[str]) -> None:
    """Every part decodes as the first one does; a ValueError names the one that does not."""
    first, base = parts[0], labels[0]
    for part, label in zip(parts[1:], labels[1:], strict=True):
        if bool(part.field_readers) != bool(first.field_readers):
            kinds = ["one array per sample", "fields"]
            raise ValueError(
                f"{label} holds {kinds[bool(part.field_readers)]}, {base} "
                f"{kinds[bool(first.field_readers)]}: the datasets cannot be read as one"
            )
        if not first.field_readers and part.dtype != first.dtype:
            raise ValueError(
                f"{label} holds {part.dtype}, {base} {first.dtype}: the datasets joined must "
                "share a dtype (write one again with the other's: `acumen recode`)"
            )
        ours = [(r.name, r.type, str(r.dtype)) for r in part.field_readers]
        theirs = [(r.name, r.type, str(r.dtype)) for r in first.field_readers]
        if ours != theirs:
            raise ValueError(
                f"{label} has the fields {ours}, {base} {theirs}: the datasets joined must "
                "have the same fields (names, types, dtypes)"
            )
        if part.fields != first.fields:
            raise ValueError(
                f"{label} reads the fields {part.fields}, {base} {first.fields}: open them "
                "with the same fields="
            )
        same_codec(first.codec, part.codec, label, base)
        for mine, its in zip(part.field_readers, first.field_readers, strict=True):
            same_codec(its.codec, mine.codec, f"{label}, field {mine.name!r},", base)
        if part.verify != first.verify:
            raise ValueError(
                f"{label} is opened with verify={part.verify!r}, {base} with "
                f"verify={first.verify!r}: open them alike"
            )


def same_codec(codec: Codec, other: Codec, label: str, base: str) -> None:
    """``other`` decodes what ``codec`` does: same name, reading configuration, resources."""
    if codec.name != other.name or codec.reading_configuration != other.reading_configuration:
        raise ValueError(
            f"{label} is compressed with {quote(other.get_config())}, {base} with "
            f"{quote(codec.get_config())}: the datasets joined must share a codec (write one "
            "again with the other's: `acumen recode`)"
        )
    if codec.resources() != other.resources():
        raise ValueError(
            f"{label} and {base} use different {codec.name} dictionaries (trained on their "
            "own samples): one codec configuration decodes every sample of the datasets "
            "joined; write one again with the other's dictionary, or both without one "
            "(`acumen recode`)"
        )


def joined_columns(specs: Sequence[Sequence[ColumnSpec]], labels: Sequence[str]) -> list:
    """The metadata columns of the parts joined by name, in the order first seen. A column
    must have one type in every part that has it; a part that lacks it reads it as missing,
    so it must be ``float`` (NaN) or ``str`` (empty)."""
    joined: dict[str, ColumnSpec] = {}
    seen_in: dict[str, str] = {}
    for part_specs, label in zip(specs, labels, strict=True):
        for spec in part_specs:
            known = joined.setdefault(spec.name, spec)
            seen_in.setdefault(spec.name, label)
            if known.type != spec.type:
                raise ValueError(
                    f"the metadata column {spec.name!r} is {known.type} in "
                    f"{seen_in[spec.name]} but {spec.type} in {label}"
                )
    for part_specs, label in zip(specs, labels, strict=True):
        names = {spec.name for spec in part_specs}
        for spec in joined.values():
            if spec.name not in names and spec.type not in MISSING:
                raise ValueError(
                    f"{label} lacks the metadata column {spec.name!r} ({spec.type}) that "
                    f"{seen_in[spec.name]} has: only a float column (NaN where missing) or a "
                    "str column (empty where missing) may be absent from some parts"
                )
    return list(joined.values())


def _with_columns(metadata: MetadataTable, specs: list[ColumnSpec]) -> MetadataTable:
    """``metadata`` with every column of ``specs``, in that order (missing ones filled; an
    empty part may lack any column)."""
    if metadata.names == [spec.name for spec in specs]:
        return metadata
    n = len(metadata)
    columns = {
        spec.name: (
            metadata.raw_column(spec.name)
            if spec.name in metadata.names
            else np.full(n, MISSING.get(spec.type, 0), dtype=NUMPY_DTYPES[spec.type])
        )
        for spec in specs
    }
    return MetadataTable(n, columns, specs)


def _joined_storage(parts: Sequence[Dataset], labels: Sequence[str], paths: list) -> Storage:
    """One storage over every part's chunk files: the first part's kind and settings.
    Local parts may differ in how they read (mmap, seek...); remote parts must be in one
    kind of store with the same settings (their per-chunk cache keys are joined)."""
    configs = [part.storage.get_config() for part in parts]
    if not any(part.storage.batched_reads for part in parts):
        return plugins.storage(configs[0], paths)

    def shared(k: int) -> tuple:
        config = configs[k]
        rest = {key: v for key, v in config["configuration"].items() if key not in _PER_CHUNK}
        return config["name"], rest

    protocols: set[str | None] = set()
    for k, part in enumerate(parts):
        protocols |= {_protocol(path) for path in part.storage.paths}
        if shared(k) != shared(0) or len(protocols) > 1:
            raise ValueError(
                f"{labels[k]} is read with {part.storage!r}, {labels[0]} with "
                f"{parts[0].storage!r}: a view reads its parts through one storage, so remote "
                "parts must be in one kind of store, opened with the same options "
                "(storage_options, cache), and local and remote parts cannot be mixed"
            )
    configuration = dict(configs[0]["configuration"])
    for key in _PER_CHUNK:
        if any(c["configuration"].get(key) is not None for c in configs):
            configuration[key] = [
                value
                for config, part in zip(configs, parts, strict=True)
                for value in config["configuration"].get(key) or [""] * len(part.storage.paths)
            ]
    return plugins.storage({**configs[0], "configuration": configuration}, paths)


def _protocol(path: str) -> str | None:
    """``s3`` of ``s3://bucket/x``; None for a local path."""
    head, sep, _ = str(path).partition("://")
    return head if sep else None


def _manifest(
    parts: Sequence[Dataset], table: IndexTable, sizes: np.ndarray, specs: list
) -> Manifest:
    """What a manifest of the joined dataset says: the first part's settings, every part's
    chunk files (with their checksums) and the joined schema."""
    first = parts[0]
    counts = np.bincount(table.chunk_ids, minlength=len(table.chunk_names)).tolist()
    checksums = []
    for part in parts:
        recorded = {c.file: c.checksum for c in part.manifest.chunks} if part.manifest else {}
        checksums += [recorded.get(name) for name in part.table.chunk_names]
    chunks = [
        ChunkEntry(name, int(size), count, checksum)
        for name, size, count, checksum in zip(
            table.chunk_names, sizes.tolist(), counts, checksums, strict=True
        )
    ]
    base = first.manifest
    fields = None
    if base is not None and base.fields:
        fields = []
        for entry in base.fields:
            fixed = table.fields[entry["name"]].shapes.fixed if len(table) else None
            fields.append({**entry, "shape": list(fixed) if fixed is not None else None})
    return Manifest(
        n_samples=len(table),
        dtype=first.dtype if first.dtype is not None else np.dtype("<f2"),
        shape=table.shapes.fixed if table.shapes is not None and len(table) else None,
        codec=first.codec.get_config(),
        index=dict(base.index)
        if base
        else {"name": "csv", "configuration": {}, "file": "index.csv"},
        chunks=chunks,
        chunk_size_bytes=base.chunk_size_bytes if base else 0,
        metadata=specs,
        plugins=dict(base.plugins) if base else {},
        fields=fields,
    )
