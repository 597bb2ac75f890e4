"""``manifest.json``: what a dataset is, so ``acumen.open(path)`` needs nothing else.

Validated on load: every problem is a :class:`ManifestError` naming the file and the key.
Keys this version does not know are ignored, so a newer minor writer stays readable; a
newer ``format_version`` is refused with a message to upgrade.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acumen._version import __version__
from acumen.errors import ManifestError, quote
from acumen.files.local import read_regular_bytes, write_atomically
from acumen.format.checksums import CHECKSUM, SEAL_KEY, manifest_seal, sealed
from acumen.format.dtypes import dtype_from_json, dtype_to_json
from acumen.format.fields import FIELD_TYPES, check_field_name
from acumen.format.layout import CHUNK_FILE_PATTERN, MANIFEST_FILE
from acumen.format.metadata import COLUMN_TYPES, ColumnSpec
from acumen.format.shapes import MAX_NDIM
from acumen.format.versions import VersionInfo

FORMAT_NAME = "acumen"
#: The highest format version this acumen reads. A dataset written once is version 1; one
#: that changed (append, delete, compact) is version 2: its manifest adds the keys of
#: :class:`~acumen.format.versions.VersionInfo`, which a version-1 reader must not ignore.
FORMAT_VERSION = 2
WRITE_ONCE_FORMAT = 1


@dataclass(frozen=True)
class ChunkEntry:
    file: str
    size_bytes: int
    n_samples: int
    checksum: str | None = None  # "xxh3_64:<16 hex digits>" of the whole file


@dataclass
class Manifest:
    n_samples: int
    dtype: np.dtype
    shape: tuple[int, ...] | None
    codec: dict[str, Any]
    index: dict[str, Any]  # {"name", "configuration", "file"}
    chunks: list[ChunkEntry]
    chunk_size_bytes: int
    metadata: list[ColumnSpec]
    plugins: dict[str, dict[str, str | None]] = field(default_factory=dict)
    fields: list[dict[str, Any]] | None = None  # multi-field datasets: see acumen.format.fields
    #: Checksums of the other files the manifest names (the index, codec resources), by
    #: their path in the dataset; empty in datasets written before acumen recorded them.
    files: dict[str, str] = field(default_factory=dict)
    acumen_version: str = __version__
    #: A versioned dataset's manifest (format version 2): its version, parent, segments...
    versioned: VersionInfo | None = None
    #: A dataset made by ``acumen.concat``: its parts as given, each with the version read
    #: (``[{"path": ..., "version": N}]``); a reader that does not know the key ignores it.
    concat_of: list[dict[str, Any]] | None = None

    @property
    def format_version(self) -> int:
        return WRITE_ONCE_FORMAT if self.versioned is None else FORMAT_VERSION

    @property
    def n_rows(self) -> int:
        """Rows of the index files, deleted ones included (= ``n_samples`` when none are)."""
        return self.n_samples if self.versioned is None else self.versioned.n_rows

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "acumen_version": self.acumen_version,
            "n_samples": self.n_samples,
            "dtype": dtype_to_json(self.dtype),
            "shape": list(self.shape) if self.shape is not None else None,
            "codec": self.codec,
            "index": self.index,
            "layout": {
                "chunk_size_bytes": self.chunk_size_bytes,
                "chunk_file_pattern": CHUNK_FILE_PATTERN,
            },
            "chunks": [
                {
                    "file": c.file,
                    "size_bytes": c.size_bytes,
                    "n_samples": c.n_samples,
                    **({"checksum": c.checksum} if c.checksum is not None else {}),
                }
                for c in self.chunks
            ],
            "metadata": [spec.to_json() for spec in self.metadata],
            "plugins": self.plugins,
            **({"fields": self.fields} if self.fields is not None else {}),
            **({"files": dict(self.files)} if self.files else {}),
            **(self.versioned.to_json() if self.versioned is not None else {}),
            **({"concat_of": self.concat_of} if self.concat_of is not None else {}),
        }

    def text(self) -> bytes:
        """The manifest as stored: sealed with its own checksum, one key a line."""
        text = json.dumps(sealed(self.to_json()), indent=1, ensure_ascii=False) + "\n"
        return text.encode("utf-8")

    def write(self, root: Path) -> None:
        """Write ``manifest.json`` atomically."""
        write_atomically(root / MANIFEST_FILE, self.text())

    def named_files(self) -> set[str]:
        """Every file this manifest names: chunk files, index files (a version's segments
        and deletion vector), codec resources."""
        named = {chunk.file for chunk in self.chunks} | set(self.files)
        if self.versioned is not None:
            named.update(self.versioned.index_files())
        return named

    @classmethod
    def load(cls, path: Path) -> Manifest:
        data = read_regular_bytes(path, "manifest")  # a FIFO or a device is refused unread
        return cls.parse(data, path)

    @classmethod
    def parse(cls, data: bytes, path: Path | str) -> Manifest:
        """A manifest from its stored bytes (a file's, or an object's in a store: ``path``
        names it in errors), validated."""
        try:
            raw = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise ManifestError(path, None, f"not UTF-8 text: {error}") from None
        except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
            raise ManifestError(path, None, f"not valid JSON: {error}") from None
        return cls.from_json(raw, path)

    @classmethod
    def from_json(cls, raw: object, path: Path | str) -> Manifest:
        check = _Checker(path)
        if not isinstance(raw, dict):
            raise ManifestError(path, None, f"must be a JSON object, got {type(raw).__name__}")
        if check.get(raw, "format", str) != FORMAT_NAME:
            got = quote(raw["format"])
            raise ManifestError(path, "format", f"must be {FORMAT_NAME!r}, got {got}")
        version = check.get(raw, "format_version", int)
        if version > FORMAT_VERSION:
            raise ManifestError(
                path,
                "format_version",
                f"is {version}, but this acumen ({__version__}) reads up to {FORMAT_VERSION}; "
                "upgrade acumen (reinstall it from its repository, or `git pull` in an "
                "editable clone)",
            )
        if version < 1:
            raise ManifestError(path, "format_version", f"must be at least 1, got {version}")
        check.seal(raw)
        n_samples = check.count(raw, "n_samples")
        try:
            dtype = dtype_from_json(raw.get("dtype"))
        except (TypeError, ValueError) as error:
            raise ManifestError(path, "dtype", f"is not a dtype: {error}") from None
        shape = raw.get("shape")
        if not _is_shape(shape):
            problem = f"must be null or a list of sizes, got {quote(shape)} (at most {MAX_NDIM})"
            raise ManifestError(path, "shape", problem)
        codec = check.plugin_config(raw, "codec")
        index = check.plugin_config(raw, "index")
        check.get(index, "file", str, prefix="index.")
        layout = check.get(raw, "layout", dict)
        chunk_size = check.count(layout, "chunk_size_bytes", prefix="layout.")
        chunks = []
        for i, entry in enumerate(check.get(raw, "chunks", list)):
            chunk = _sound_chunk_entry(entry)  # the common case, checked in one expression
            if chunk is None:  # something is off: find it and say which key
                prefix = f"chunks[{i}]."
                if not isinstance(entry, dict):
                    raise ManifestError(path, prefix[:-1], "must be an object")
                chunk = ChunkEntry(
                    check.get(entry, "file", str, prefix=prefix),
                    check.count(entry, "size_bytes", prefix=prefix),
                    check.count(entry, "n_samples", prefix=prefix),
                    check.checksum(entry, prefix),
                )
            chunks.append(chunk)
        versioned = VersionInfo.from_json(raw, path) if version >= 2 else None
        rows = n_samples if versioned is None else versioned.n_rows
        if sum(c.n_samples for c in chunks) != rows:
            what = "n_samples" if versioned is None else "the segments' rows"
            raise ManifestError(
                path,
                "chunks",
                f"sample counts add up to {sum(c.n_samples for c in chunks)}, not {what} = {rows}",
            )
        if versioned is not None and rows - versioned.n_deleted != n_samples:
            raise ManifestError(
                path,
                "n_samples",
                f"is {n_samples}, but {rows} rows less {versioned.n_deleted} deleted leave "
                f"{rows - versioned.n_deleted}",
            )
        columns = []
        for i, entry in enumerate(check.get(raw, "metadata", list)):
            prefix = f"metadata[{i}]."
            if not isinstance(entry, dict):
                raise ManifestError(path, prefix[:-1], "must be an object")
            name = check.get(entry, "name", str, prefix=prefix)
            kind = check.get(entry, "type", str, prefix=prefix)
            if kind not in COLUMN_TYPES:
                raise ManifestError(path, prefix + "type", f"must be one of {COLUMN_TYPES}")
            columns.append(ColumnSpec(name, kind))
        plugins = raw.get("plugins", {})
        fields = check.fields(raw) if "fields" in raw else None
        files = check.files(raw) if "files" in raw else {}
        return cls(
            n_samples=n_samples,
            dtype=dtype,
            shape=tuple(shape) if shape is not None else None,
            codec=codec,
            index=index,
            chunks=chunks,
            chunk_size_bytes=chunk_size,
            metadata=columns,
            plugins=plugins if isinstance(plugins, dict) else {},
            fields=fields,
            files=files,
            acumen_version=str(raw.get("acumen_version", "unknown")),
            versioned=versioned,
            concat_of=check.concat_of(raw) if "concat_of" in raw else None,
        )

    def install_hint(self, kind: str) -> str | None:
        """Which distribution provided the plugin of ``kind`` when written: "codec", "index",
        or "codec:NAME" for a field's codec."""
        entry = self.plugins.get(kind)
        if isinstance(entry, dict) and isinstance(entry.get("distribution"), str):
            return entry["distribution"]
        return None


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_shape(value: object) -> bool:
    """None, or a list of at most MAX_NDIM sizes (numpy's limit on dimensions)."""
    return value is None or (
        isinstance(value, list) and len(value) <= MAX_NDIM and all(map(_is_count, value))
    )


def _sound_chunk_entry(entry: object) -> ChunkEntry | None:
    """The entry, if every key is as :class:`_Checker` requires, else None (about 1 µs a
    chunk instead of 5: a ten-million-sample dataset lists a thousand chunk files)."""
    if type(entry) is not dict:
        return None
    file, size, count = entry.get("file"), entry.get("size_bytes"), entry.get("n_samples")
    checksum = entry.get("checksum")
    if (
        type(file) is str
        and type(size) is int
        and type(count) is int
        and size >= 0
        and count >= 0
        and (checksum is None or (type(checksum) is str and CHECKSUM.fullmatch(checksum)))
    ):
        return ChunkEntry(file, size, count, checksum)
    return None


class _Checker:
    def __init__(self, path: Path | str) -> None:
        self.path = path

    def get(self, obj: dict, key: str, kind: type, prefix: str = "") -> Any:
        if key not in obj:
            raise ManifestError(self.path, prefix + key, "is missing")
        value = obj[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ManifestError(
                self.path, prefix + key, f"must be {_TYPE_NAMES[kind]}, got {quote(value)}"
            )
        return value

    def checksum(self, entry: dict, prefix: str) -> str | None:
        value = entry.get("checksum")
        if value is None:
            return None
        if not (isinstance(value, str) and CHECKSUM.fullmatch(value)):
            raise ManifestError(
                self.path,
                prefix + "checksum",
                f"must look like 'xxh3_64:<16 hex>', got {quote(value)}",
            )
        return value

    def seal(self, raw: dict) -> None:
        """A manifest that carries its checksum must match it (older ones carry none)."""
        if SEAL_KEY not in raw:
            return
        expected = raw[SEAL_KEY]
        if not (isinstance(expected, str) and CHECKSUM.fullmatch(expected)):
            raise ManifestError(
                self.path, SEAL_KEY, f"must look like 'xxh3_64:<16 hex>', got {quote(expected)}"
            )
        actual = manifest_seal(raw)
        if actual != expected:
            raise ManifestError(
                self.path,
                SEAL_KEY,
                f"the manifest's content hashes to {actual}, not {expected}: the file was "
                "damaged or edited after it was written",
            )

    def files(self, raw: dict) -> dict[str, str]:
        files = self.get(raw, "files", dict)
        for name, value in files.items():
            if not (isinstance(value, str) and CHECKSUM.fullmatch(value)):
                raise ManifestError(
                    self.path,
                    f"files[{quote(name)}]",
                    f"must look like 'xxh3_64:<16 hex>', got {quote(value)}",
                )
        return dict(files)

    def concat_of(self, raw: dict) -> list[dict[str, Any]]:
        entries = self.get(raw, "concat_of", list)
        for i, entry in enumerate(entries):
            prefix = f"concat_of[{i}]."
            if not isinstance(entry, dict):
                raise ManifestError(self.path, prefix[:-1], "must be an object")
            self.get(entry, "path", str, prefix=prefix)
            self.count(entry, "version", prefix=prefix)
        return [dict(entry) for entry in entries]

    def count(self, obj: dict, key: str, prefix: str = "") -> int:
        value = self.get(obj, key, int, prefix)
        if value < 0:
            raise ManifestError(self.path, prefix + key, f"must not be negative, got {value}")
        return value

    def plugin_config(self, obj: dict, key: str, prefix: str = "") -> dict[str, Any]:
        config = self.get(obj, key, dict, prefix=prefix)
        self.get(config, "name", str, prefix=f"{prefix}{key}.")
        configuration = config.get("configuration", {})
        if not isinstance(configuration, dict):
            raise ManifestError(self.path, f"{prefix}{key}.configuration", "must be an object")
        return {**config, "configuration": configuration}

    def fields(self, raw: dict) -> list[dict[str, Any]]:
        entries = self.get(raw, "fields", list)
        if not entries:
            raise ManifestError(self.path, "fields", "must list at least one field")
        checked, names = [], set()
        for i, entry in enumerate(entries):
            prefix = f"fields[{i}]."
            if not isinstance(entry, dict):
                raise ManifestError(self.path, prefix[:-1], "must be an object")
            name = self.get(entry, "name", str, prefix=prefix)
            try:
                check_field_name(name)
            except ValueError as error:
                raise ManifestError(self.path, prefix + "name", str(error)) from None
            if name in names:
                raise ManifestError(self.path, prefix + "name", f"{quote(name)} appears twice")
            names.add(name)
            kind = self.get(entry, "type", str, prefix=prefix)
            if kind not in FIELD_TYPES:
                raise ManifestError(self.path, prefix + "type", f"must be one of {FIELD_TYPES}")
            try:
                dtype_from_json(entry.get("dtype"))
            except (TypeError, ValueError) as error:
                raise ManifestError(
                    self.path, prefix + "dtype", f"is not a dtype: {error}"
                ) from None
            codec = self.plugin_config(entry, "codec", prefix=prefix)
            if not _is_shape(entry.get("shape")):
                problem = f"must be null or a list of at most {MAX_NDIM} sizes"
                raise ManifestError(self.path, prefix + "shape", problem)
            checked.append({**entry, "codec": codec})  # kept in JSON form, as written
        return checked


_TYPE_NAMES = {str: "a string", int: "an integer", dict: "an object", list: "a list"}
