"""The conversion config: TOML, YAML or JSON, checked in full before any work starts.

Every problem names the file, the key and what is allowed. Relative paths are relative to
the config file's folder, so a config and its data can move together.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acumen import plugins
from acumen.convert.source_checks import check_rows_and_shards
from acumen.errors import AcumenError, did_you_mean
from acumen.files.cache_dir import url_folder
from acumen.files.remote import is_url, local_path

SOURCE_KINDS = ("glob", "table", "callable", "huggingface", "webdataset")
ENGINES = ("local", "dask")
ON_ERROR = ("raise", "skip")
MODES = ("create", "append")
_SECTIONS = {
    "source": {
        "glob",
        "table",
        "callable",
        "huggingface",
        "webdataset",
        "split",
        "path_column",
        "root",
        "path_metadata",
        "arguments",
        "storage_options",
    },
    "reader": {"name", "configuration"},
    "output": {
        "path",
        "codec",
        "index_format",
        "chunk_size",
        "dtype",
        "fields",
        "storage_options",
        "cache",
        "mode",
    },
    "run": {"n_jobs", "engine", "on_error", "part_size", "scheduler", "progress"},
}
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
}


class ConfigError(AcumenError, ValueError):
    """A conversion config is wrong: the message names the file, the key and what is allowed."""


@dataclass(frozen=True)
class SourceConfig:
    kind: str  # glob | table | callable | huggingface | webdataset
    value: str  # the pattern, table file, "module:function", or saved dataset's folder
    root: Path  # relative paths in the source are relative to this
    path_column: str | None = "path"  # None: the items are the table's rows
    path_metadata: str | None = "path"  # metadata key that records each item's path
    arguments: tuple[tuple[str, Any], ...] = ()  # keyword arguments for a callable source
    import_path: str | None = None  # the config's folder, searched for a callable source
    root_url: str | None = None  # the root when it is a URL (then ``root`` is unused)
    storage_options: Mapping[str, Any] | None = None  # for a source at a URL (never saved)

    @property
    def remote(self) -> bool:
        """Whether the glob or table is at a URL (listed or copied into the state)."""
        return self.kind != "callable" and (self.root_url is not None or is_url(self.value))


@dataclass(frozen=True)
class OutputConfig:
    path: Path  # where the dataset is written: for a URL, its staging folder in the cache
    codec: Any = "raw"
    index_format: Any = "csv"
    chunk_size_bytes: int = 10 * 1024 * 1024
    dtype: str | None = None
    fields: Mapping[str, Any] | None = None
    url: str | None = None  # output.path when it is a URL: published there once committed
    storage_options: Mapping[str, Any] | None = None
    cache: str | None = None
    #: "create" a new dataset, or "append" to the complete one at ``path`` (docs/convert.md)
    mode: str = "create"
    #: The output keys the config sets (an append checks those against the dataset).
    given: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunConfig:
    n_jobs: int = 1
    engine: str = "local"
    on_error: str = "raise"
    part_size: int | None = None  # None: chosen by parts.automatic_part_size, then saved
    scheduler: str | None = None
    progress: bool = True


@dataclass(frozen=True)
class ConvertConfig:
    source: SourceConfig
    reader: Mapping[str, Any]
    output: OutputConfig
    run: RunConfig
    origin: str = "<config>"
    folder: Path | None = None  # the config file's folder (None: a dict), for its callables

    @property
    def import_path(self) -> str | None:
        """Where ``callable`` readers and sources are looked for before ``sys.path``."""
        return str(self.folder) if self.folder is not None else None

    def fingerprint(self) -> dict[str, Any]:
        """What decides the output bytes: a resumed run must have the same.

        Left out, so that a resume may change them: ``n_jobs``, ``engine``, ``scheduler`` and
        ``progress`` (who writes a part does not change its bytes; the automatic part size
        is saved in the conversion's state and reused), and ``on_error``. A part is written
        whole or not at all, and ``on_error`` only decides what happens to an item that
        fails: a part finished under "raise" had no failing item, so it is exactly what
        "skip" writes; a part finished under "skip" that left items out is written again by
        a resume under "raise" (:func:`acumen.convert.parts.part_reusable`), so every part
        of the result obeys the setting the conversion finished with. The report lists what
        was skipped.
        """
        output: dict[str, Any] = {
            "codec": self.output.codec,
            "index_format": self.output.index_format,
            "chunk_size_bytes": self.output.chunk_size_bytes,
            "dtype": self.output.dtype,
            "fields": self.output.fields,
        }
        if self.output.mode != "create":  # (a create's fingerprint as older acumens saved it)
            output["mode"] = self.output.mode
        return {
            "source": {
                "kind": self.source.kind,
                "value": self.source.value,
                "root": self.source.root_url or str(self.source.root),
                "path_column": self.source.path_column,
                "path_metadata": self.source.path_metadata,
                "arguments": dict(self.source.arguments),
            },
            "reader": dict(self.reader),
            "output": output,
            "part_size": self.run.part_size,  # None: automatic, saved in the state's plan
        }


def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> ConvertConfig:
    """A checked config from a file (``.toml``, ``.yaml``/``.yml``, ``.json``) or a dict."""
    if isinstance(source, Mapping):
        return _check(dict(source), "<config>", Path.cwd(), None)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    folder = path.resolve().parent
    return _check(_parse(path, text), str(path), folder, folder)


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        if suffix == ".json":
            return json.loads(text)
    except Exception as error:  # every parser has its own error class
        raise ConfigError(f"{path}: does not parse as {suffix[1:].upper()}: {error}") from None
    raise ConfigError(f"{path}: a config must end in .toml, .yaml, .yml or .json")


class _Checker:
    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.origin}: key '{key}': {problem}")

    def section(self, raw: dict, name: str, required: bool) -> dict:
        value = raw.get(name)
        if value is None:
            if required:
                raise self.fail(name, "is missing")
            return {}
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a table of settings, got {value!r}")
        unknown = sorted(set(value) - _SECTIONS[name])
        if unknown:
            guess = did_you_mean(unknown[0], _SECTIONS[name])
            raise self.fail(
                f"{name}.{unknown[0]}",
                f"is not a setting; {guess + ' ' if guess else ''}"
                f"allowed: {', '.join(sorted(_SECTIONS[name]))}",
            )
        return value

    def typed(self, section: dict, prefix: str, key: str, kind: type | tuple, default: Any) -> Any:
        value = section.get(key, default)
        if value is default:
            return value
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise self.fail(f"{prefix}.{key}", f"must be {names}, got {value!r}")
        return value

    def choice(self, section: dict, prefix: str, key: str, allowed: tuple, default: str) -> str:
        value = section.get(key, default)
        if value not in allowed:
            guess = did_you_mean(value, allowed)
            raise self.fail(
                f"{prefix}.{key}",
                f"must be one of {', '.join(allowed)}; got {value!r}"
                + (f"; {guess}" if guess else ""),
            )
        return value

    def plugin(self, kind: str, spec: Any, key: str) -> Any:
        try:
            instance = getattr(plugins, kind)(spec)
        except (AcumenError, ValueError, TypeError) as error:
            raise self.fail(key, str(error)) from None
        return instance.get_config() if not isinstance(spec, str) else spec


def _check(raw: Any, origin: str, base: Path, folder: Path | None) -> ConvertConfig:
    from acumen.readers.callable import config_folder_on_path

    check = _Checker(origin)
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: must hold the tables source, reader, output and run")
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        guess = did_you_mean(unknown[0], _SECTIONS)
        raise check.fail(
            unknown[0],
            f"is not a section; {guess + ' ' if guess else ''}sections: {', '.join(_SECTIONS)}",
        )
    source = check.section(raw, "source", required=True)
    kinds = [k for k in SOURCE_KINDS if k in source]
    if len(kinds) != 1:
        raise check.fail("source", f"needs exactly one of {', '.join(SOURCE_KINDS)}; got {kinds}")
    kind = kinds[0]
    value = check.typed(source, "source", kind, str, None)
    if kind != "callable":
        value = local_path(value)  # file:// and ~ are local paths
    root_text = local_path(check.typed(source, "source", "root", str, str(base)))
    root_url = root_text.rstrip("/") if is_url(root_text) else None
    root = base if root_url is not None else Path(root_text)
    root = root if root.is_absolute() else base / root
    if kind == "table" and "root" not in source:  # paths in a table: relative to the table
        if is_url(value):
            root_url = value.rsplit("/", 1)[0]
        else:
            root = (Path(value) if Path(value).is_absolute() else base / value).parent
    path_metadata = source.get("path_metadata", "path")
    if path_metadata is not None and not isinstance(path_metadata, (str, bool)):
        raise check.fail(
            "source.path_metadata", f"must be a key name or false, got {path_metadata!r}"
        )
    if path_metadata is False or path_metadata == "":
        path_metadata = None
    elif path_metadata is True:
        path_metadata = "path"
    arguments = check.typed(source, "source", "arguments", dict, {})
    if kind == "callable":
        from acumen.readers.callable import load_callable

        try:
            with config_folder_on_path(str(folder) if folder is not None else None):
                load_callable(value, "source.callable")
        except ValueError as error:
            raise check.fail("source.callable", str(error)) from None
    elif kind == "table" and not is_url(value):
        table = Path(value) if Path(value).is_absolute() else base / value
        if not table.is_file():
            raise check.fail("source.table", f"no such file: {table}")
        value = str(table)
    path_column = check.typed(source, "source", "path_column", str, "path")
    if kind != "callable":
        value, path_column = check_rows_and_shards(
            kind, value, source, raw.get("reader"), base, check.fail
        )
    source_config = SourceConfig(
        kind,
        value,
        root,
        path_column,
        path_metadata,
        tuple(sorted(arguments.items())),
        str(folder) if folder is not None else None,
        root_url,
        check.typed(source, "source", "storage_options", dict, None),
    )

    reader_raw = check.section(raw, "reader", required=True)
    name = check.typed(reader_raw, "reader", "name", str, None)
    if name is None:
        raise check.fail(
            "reader.name", "is missing (npy, image, bytes, column, webdataset, callable, ...)"
        )
    configuration = check.typed(reader_raw, "reader", "configuration", dict, {})
    with config_folder_on_path(str(folder) if folder is not None else None):
        check.plugin("reader", {"name": name, "configuration": configuration}, "reader")
    reader = {"name": name, "configuration": configuration}

    output_raw = check.section(raw, "output", required=True)
    out = check.typed(output_raw, "output", "path", str, None)
    if out is None:
        raise check.fail("output.path", "is missing")
    storage_options = check.typed(output_raw, "output", "storage_options", dict, None)
    cache = check.typed(output_raw, "output", "cache", str, None)
    url = out.rstrip("/") if is_url(out) else None
    if url is not None:  # written in a staging folder derived from the URL: a rerun resumes
        if cache is not None and not Path(cache).expanduser().is_absolute():
            cache = str(base / cache)
        out_path = url_folder(url, cache, "staging", create=False) / "convert"
    elif storage_options is not None:
        raise check.fail("output.storage_options", "is for a URL output.path (s3://...)")
    else:
        out = local_path(out)
        out_path = Path(out) if Path(out).is_absolute() else base / out
    codec = check.plugin("codec", output_raw.get("codec", "raw"), "output.codec")
    index_format = check.plugin(
        "index_format", output_raw.get("index_format", "csv"), "output.index_format"
    )
    chunk_size = output_raw.get("chunk_size", 10 * 1024 * 1024)
    chunk_size_bytes = parse_byte_size(chunk_size)
    if chunk_size_bytes is None or chunk_size_bytes <= 0:
        raise check.fail(
            "output.chunk_size", f"must be a positive size like 64MiB, got {chunk_size!r}"
        )
    dtype = check.typed(output_raw, "output", "dtype", str, None)
    if dtype is not None:
        from acumen.format.dtypes import storage_dtype

        try:
            storage_dtype(dtype)
        except (TypeError, AcumenError) as error:
            raise check.fail("output.dtype", f"is not a dtype to store: {error}") from None
    fields = check.typed(output_raw, "output", "fields", dict, None)
    if fields is not None:
        from acumen.write.encoding import field_specs

        if dtype is not None:
            raise check.fail("output.dtype", "give each field its dtype in output.fields instead")
        try:
            field_specs(fields, plugins.codec(codec))
        except (AcumenError, ValueError, TypeError) as error:
            raise check.fail("output.fields", str(error)) from None
    mode = check.choice(output_raw, "output", "mode", MODES, "create")
    if mode == "append" and url is not None:
        raise check.fail("output.mode", "'append' is for a local output.path for now")
    output = OutputConfig(
        out_path,
        codec,
        index_format,
        chunk_size_bytes,
        dtype,
        fields,
        url,
        storage_options,
        cache,
        mode,
        tuple(
            sorted(
                key
                for key in output_raw
                if key in ("codec", "index_format", "chunk_size", "dtype", "fields")
            )
        ),
    )

    run_raw = check.section(raw, "run", required=False)
    n_jobs = check.typed(run_raw, "run", "n_jobs", int, 1)
    if n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    if n_jobs < 1:
        raise check.fail("run.n_jobs", f"must be a positive number of workers or -1, got {n_jobs}")
    part_size = check.typed(run_raw, "run", "part_size", int, None)
    if part_size is not None and part_size < 1:
        raise check.fail("run.part_size", f"must be positive, got {part_size}")
    run = RunConfig(
        n_jobs=n_jobs,
        engine=check.choice(run_raw, "run", "engine", ENGINES, "local"),
        on_error=check.choice(run_raw, "run", "on_error", ON_ERROR, "raise"),
        part_size=part_size,
        scheduler=check.typed(run_raw, "run", "scheduler", str, None),
        progress=check.typed(run_raw, "run", "progress", bool, True),
    )
    return ConvertConfig(source_config, reader, output, run, origin, folder)


def fingerprint_differences(previous: dict[str, Any], fingerprint: dict[str, Any]) -> list[str]:
    """The keys of ``fingerprint`` that ``previous`` (a saved one) has otherwise. Keys only
    the saved one has are settings that no longer decide the bytes (an older acumen kept
    ``on_error`` there). A config without ``run.part_size`` continues with the part size
    the conversion started with, whichever chose it."""
    return sorted(
        k
        for k in fingerprint
        if previous.get(k) != fingerprint[k] and not (k == "part_size" and fingerprint[k] is None)
    )


def parse_byte_size(value: Any) -> int | None:
    """``10485760``, ``"64MiB"``, ``"10MB"`` -> bytes; None if it is not a size."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    unit = text.lstrip("0123456789.")
    number = text[: len(text) - len(unit)]
    try:
        return int(float(number) * _UNITS[unit.strip()])
    except (KeyError, ValueError):
        return None
