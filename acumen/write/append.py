"""An append: samples added to a complete dataset as a new version.

Only new files are written: chunk files in a folder of the append's own
(``chunks/<token>/``), the new rows' index as one segment (``_index/<token>.<ext>``), then
the next version's manifest. The append's work is O(appended samples): the dataset's index
is not read (a ``csv`` dataset's ``index.csv``, kept for the original reader, is the one
exception). While it runs, ``_writers/<token>/`` holds its claim, so that ``acumen vacuum``
leaves its files alone; a crash leaves files that no version names, which ``vacuum`` removes.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acumen import plugins
from acumen.abc.codec import Codec
from acumen.errors import CommitConflictError, SampleError, quote
from acumen.files.claim import Claim, claim_new_folder
from acumen.files.local import fsync_directory, replace_durably, write_failed
from acumen.files.remote import is_url, local_path
from acumen.format.checksums import file_checksum
from acumen.format.dtypes import dtype_from_json
from acumen.format.fields import FieldSpec
from acumen.format.index_concat import MetadataMismatch, joined_specs
from acumen.format.index_table import IndexTable
from acumen.format.layout import MANIFEST_FILE
from acumen.format.manifest import ChunkEntry, Manifest
from acumen.format.metadata import ColumnSpec
from acumen.format.shapes import ShapeColumn
from acumen.format.versions import SEGMENTS_DIR, Segment, new_token
from acumen.write.tiers import merge_span, merged_table
from acumen.write.versioning import (
    as_versioned,
    commit_change,
    index_plugin_of,
    newest_manifest,
    next_version,
)

#: Where a running append (or other change) holds its claim: ``_writers/<token>/``.
WRITERS_DIR = "_writers"


@dataclass
class Append:
    """An append under way: the version it started from, its names, its claim."""

    root: Path
    base: Manifest
    token: str
    claim: Claim
    index_format: Any
    #: A dataset at a URL: its versions in the store (``root`` is the staging folder).
    remote: Any = None

    @classmethod
    def start(cls, root: Path, kind: str, remote: Any = None) -> Append:
        if remote is not None:
            base = remote.newest()
            index_format = index_plugin_of(base, root)
        else:
            newest = newest_manifest(root)
            index_format = index_plugin_of(newest, root)
            base = as_versioned(root, newest, index_format)  # version 1, if it never changed
        token = new_token()
        claim = claim_new_folder(root / WRITERS_DIR / token, kind)
        return cls(root, base, token, claim, index_format, remote)

    @classmethod
    def for_writer(
        cls,
        path: Any,
        storage_options: Any,
        cache: Any,
        kind: str,
        **given: Any,
    ) -> Append:
        """The append a ``Writer(path, mode="append", ...)`` makes: ``given`` (codec,
        index_format, dtype, fields) must agree with the dataset's. A URL is changed through
        a staging folder (:mod:`acumen.write.remote_versions`)."""
        if given.pop("fields", None) is not None:
            raise ValueError("an append takes the dataset's fields; leave fields= out")
        remote = None
        if is_url(path):
            from acumen.write.remote_versions import RemoteVersions  # fsspec: for a URL

            remote = RemoteVersions(str(path), storage_options, cache, index_plugin_of)
            path = remote.staging
        elif storage_options is not None:
            raise ValueError(f"storage_options= is for a URL, not the local path {path}")
        try:
            append = cls.start(Path(local_path(path)), kind, remote)
        except BaseException:
            if remote is not None:
                remote.close()
            raise
        try:
            append.check_arguments(**given)
        except BaseException:
            append.abandon()
            raise
        return append

    @property
    def chunk_folder(self) -> str:
        return f"chunks/{self.token}"

    @property
    def sample_checksums(self) -> bool:
        """Whether the dataset keeps each sample's checksum (then so must the append)."""
        return self.base.versioned is not None and self.base.versioned.sample_checksums

    def codec(self, key: str = "codec") -> Codec:
        """The dataset's codec (or a field's: ``fields[i].codec``), its resources open."""
        codec = plugins.named_by(self.base, key, self.root / MANIFEST_FILE)
        codec.open_resources(self.root)  # a trained dictionary: frames must use it
        return codec

    def field_specs(self) -> list[FieldSpec] | None:
        if not self.base.fields:
            return None
        return [
            FieldSpec(
                entry["name"],
                entry["type"],
                dtype_from_json(entry["dtype"]),
                self.codec(f"fields[{i}].codec"),
            )
            for i, entry in enumerate(self.base.fields)
        ]

    def expected_shapes(self) -> list[tuple[int, ...] | None]:
        """The shape every sample must have, per field (or of the one array): the
        dataset's fixed shape, None where shapes vary (or it has no samples yet)."""
        if not self.base.n_samples:
            return [None] * max(1, len(self.base.fields or []))
        if self.base.fields:  # a bytes field's length is its content's: never checked
            return [
                _shape(entry.get("shape")) if entry["type"] == "array" else None
                for entry in self.base.fields
            ]
        return [self.base.shape]

    def metadata_columns(self) -> list[ColumnSpec]:
        return list(self.base.metadata)

    def check_arguments(self, **given: Any) -> None:
        """What the caller passed for the dataset's settings must be what it has."""
        for name, value in given.items():
            if value is None:
                continue
            recorded = recorded_setting(self.base, name)
            if not setting_agrees(name, value, recorded):
                raise ValueError(
                    f"{self.root}: {name}={quote(value)} differs from the dataset's "
                    f"{quote(recorded)}; an append takes the dataset's settings (leave {name} out)"
                )

    def finish(self, table: IndexTable, chunks: list[ChunkEntry]) -> Manifest:
        """Write the new rows' segment and commit the next version (built again on a newer
        one if another writer committed first); the claim goes."""
        if not len(table):
            self.abandon()
            return self.base
        segment, checksum = self._write_segment(table, self.token)
        entry = Segment(segment, len(table), len(table.metadata.specs))

        def build(newest: Manifest) -> Manifest:
            _check_same_dataset(self.root, self.base, newest)
            try:
                metadata = joined_specs(
                    [newest.metadata, table.metadata.specs], ["the dataset", "this append"]
                )
            except MetadataMismatch as error:
                raise CommitConflictError(
                    f"{self.root}: another writer changed the metadata columns meanwhile: "
                    f"{error}; nothing of this append was committed"
                ) from None
            segments, files = self._tiered(
                newest, entry, table, {**newest.files, segment: checksum}
            )
            return next_version(
                newest,
                "append",
                segments=segments,
                chunks=[*newest.chunks, *chunks],
                files=files,
                n_samples=newest.n_samples + len(table),
                metadata=metadata,
                shape=_joined_shape(newest, table.shapes),
                fields=_joined_fields(newest, table),
            )

        manifest = commit_change(self.root, build, self.index_format, self.remote)
        self._release()
        if self.remote is not None:
            self.remote.close()
        return manifest

    def _tiered(
        self, newest: Manifest, entry: Segment, table: IndexTable, files: dict[str, str]
    ) -> tuple[list[Segment], dict[str, str]]:
        """The version's segments with this append's last; when that leaves a full tier
        at the end, those segments merged into one new file (see acumen.write.tiers)."""
        segments = [*newest.versioned.segments, entry]  # type: ignore[union-attr]
        span = merge_span([s.n_rows for s in segments])
        if not span:
            return segments, files
        if self.remote is not None:  # the segments a merge reads, from the store
            self.remote.fetch(newest, [s.file for s in segments[-span:-1]])
        merged = merged_table(self.root, newest, segments[-span:-1], table, self.index_format)
        name, checksum = self._write_segment(merged, f"{self.token}-merged")
        for old in segments[-span:]:
            files.pop(old.file, None)
        files[name] = checksum
        return [*segments[:-span], Segment(name, len(merged), len(merged.metadata.specs))], files

    def _write_segment(self, table: IndexTable, stem: str) -> tuple[str, str]:
        segment = f"{SEGMENTS_DIR}/{stem}.{self.index_format.filename.rsplit('.', 1)[1]}"
        write = functools.partial(self.index_format.write, table)  # write(temporary)
        return segment, write_new_file(self.root, segment, write, "index segment")

    def _release(self) -> None:
        release_claim(self.claim)

    def abandon(self) -> None:
        """Nothing is committed: the claim goes (its marker stays until ``vacuum``)."""
        self.claim.abandon()
        if self.remote is not None:  # the staging folder: nothing in it is the store's
            self.remote.close()


def write_new_file(root: Path, name: str, write: Any, what: str) -> str:
    """A change's new file ``name`` in the dataset at ``root``: ``write(temporary)`` makes
    it under a temporary name, then it is checksummed, fsynced and renamed into place (its
    folder fsynced); a failure (a full disk) leaves no temporary file. Its checksum."""
    final = root / name
    temporary = final.with_name(f".{final.name}.tmp")
    try:
        final.parent.mkdir(exist_ok=True)
        write(temporary)
        checksum = file_checksum(temporary, what)
        replace_durably(temporary, final)
        fsync_directory(final.parent)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise write_failed(root, temporary, error) from error
    return checksum


def release_claim(claim: Claim) -> None:
    """A change is over: its claim goes, and its ``_writers/<token>/`` folder with it."""
    claim.release()
    with contextlib.suppress(OSError):
        claim.root.rmdir()


def check_shapes(expected: list[tuple[int, ...] | None], shapes: list, sample: int | str) -> None:
    """A sample's shapes (one per field) against the dataset's fixed ones."""
    for k, (want, got) in enumerate(zip(expected, shapes, strict=True)):
        if want is not None and tuple(got) != want:
            field = f" (field {k})" if len(expected) > 1 else ""
            raise SampleError(
                f"sample {sample}: shape {tuple(got)}{field} differs from the dataset's "
                f"{want}: every sample of it has that shape, and so must an appended one"
            )


def _shape(value: Any) -> tuple[int, ...] | None:
    return tuple(value) if value is not None else None


def _joined_shape(newest: Manifest, shapes: ShapeColumn | None) -> tuple[int, ...] | None:
    if shapes is None:
        return None
    if not newest.n_samples:
        return shapes.fixed
    return newest.shape if shapes.fixed == newest.shape else None


def _joined_fields(newest: Manifest, table: IndexTable) -> list[dict] | None:
    if not newest.fields:
        return newest.fields
    joined = []
    for entry in newest.fields:
        fixed = table.fields[entry["name"]].shapes.fixed
        shape = list(fixed) if fixed is not None else None
        if newest.n_samples and entry.get("shape") != shape:
            shape = None
        joined.append({**entry, "shape": shape})
    return joined


def _check_same_dataset(root: Path, base: Manifest, newest: Manifest) -> None:
    """A version committed meanwhile must still hold what this append was encoded for."""
    for key in ("dtype", "codec", "fields", "index"):
        if recorded_setting(base, key) != recorded_setting(newest, key):
            raise CommitConflictError(
                f"{root}: another writer changed the dataset's {key} meanwhile (now "
                f"{quote(recorded_setting(newest, key))}); nothing of this append was committed"
            )


def recorded_setting(manifest: Manifest, name: str) -> Any:
    """What ``manifest`` records for a setting an append must agree with (``dtype``,
    ``codec``, ``index_format``, ``fields``...)."""
    if name == "dtype":
        return None if manifest.fields else str(manifest.dtype)
    if name == "index_format" or name == "index":
        return {k: v for k, v in manifest.index.items() if k != "file"}
    return getattr(manifest, name)


def setting_agrees(name: str, given: Any, recorded: Any) -> bool:
    """Whether a setting given to an append (a name, a config, a plugin) is the recorded one."""
    if name == "dtype":
        return recorded is not None and str(np.dtype(given).newbyteorder("<")) == recorded
    if isinstance(given, str):
        return isinstance(recorded, dict) and recorded.get("name") == given
    if hasattr(given, "get_config"):
        given = given.get_config()
    if isinstance(given, dict) and isinstance(recorded, dict):
        return given.get("name") == recorded.get("name") and (
            given.get("configuration") in (None, recorded.get("configuration"))
        )
    return given == recorded
