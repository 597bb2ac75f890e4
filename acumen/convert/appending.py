"""``acumen convert`` with ``output.mode = "append"``: the converted samples added to a
complete dataset as one new version.

The parts are written as for a new dataset, in the conversion's state folder, with the
dataset's settings (codec, index format, chunk size, dtype or fields, metadata columns);
the merge then moves their chunk files into ``chunks/<token>/`` of the dataset and commits
one append (one index segment, ``_index/<token>.<ext>``), as :class:`acumen.Writer` does
with ``mode="append"``. While it runs, ``_writers/<token>/`` holds its claim.

Exactly once: the token and the version the append started from are saved in the state
before any work (``append.json``). A conversion killed at any point and run again with the
same config resumes; before it commits, it looks for a version after that one naming the
token (a segment or chunk of it): if one does, the append was committed by the killed run
and is not made again.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

from acumen import plugins
from acumen.convert.config import ConfigError, ConvertConfig, fingerprint_differences
from acumen.convert.merge import joined_parts, move_chunks
from acumen.convert.parts import ConversionError, WriterSettings, metadata_columns, tidy_for_resume
from acumen.convert.remote_source import open_item
from acumen.convert.sources import describe, iter_items
from acumen.files.claim import Claim, claim_new_folder, take_over
from acumen.files.local import write_atomically
from acumen.format.dtypes import dtype_to_json
from acumen.format.index_concat import MetadataMismatch, joined_specs
from acumen.format.index_table import IndexTable
from acumen.format.layout import WRITING_MARKER
from acumen.format.manifest import Manifest
from acumen.format.metadata import ColumnSpec
from acumen.format.version_files import load_version
from acumen.format.versions import SEGMENTS_DIR, list_versions, new_token
from acumen.readers.callable import config_folder_on_path
from acumen.write.append import (
    WRITERS_DIR,
    Append,
    recorded_setting,
    setting_agrees,
)
from acumen.write.versioning import as_versioned, index_plugin_of, newest_manifest

#: In the state: the append's token and the version it started from.
APPEND_FILE = "append.json"


def claim(cfg: ConvertConfig, output: Path, state: Path) -> Claim:
    """The append's claim (``_writers/<token>/``): a new one, or the one a killed run with
    this config left (taken over; a live one is refused)."""
    record_path = state / APPEND_FILE
    if record_path.is_file() and committed(output, _record(state)) is not None:
        shutil.rmtree(state)  # another config's append, committed: this one is a new append
    if record_path.is_file():
        _check_same_config(cfg, output, state)
        record = _record(state)
        folder = output / WRITERS_DIR / record["token"]
        if (folder / WRITING_MARKER).exists():
            taken = take_over(folder, "convert", lambda owner: owner.kind in ("convert", None))
        else:  # killed before its claim was made
            taken = claim_new_folder(folder, "convert")
        tidy_for_resume(state)
        return taken
    newest = newest_manifest(output)  # a complete dataset, or an error that says why not
    check_settings(cfg, newest)
    if state.exists():  # a start killed before it saved its token: nothing of it committed
        shutil.rmtree(state)
    base = as_versioned(output, newest, index_plugin_of(newest, output))
    state.mkdir()
    write_atomically(state / "config.json", json.dumps(cfg.fingerprint(), sort_keys=True).encode())
    token = new_token()
    record = {"token": token, "base": base.versioned.version}  # type: ignore[union-attr]
    write_atomically(record_path, json.dumps(record).encode("utf-8"))
    return claim_new_folder(output / WRITERS_DIR / token, "convert")


def check_settings(cfg: ConvertConfig, manifest: Manifest) -> None:
    """The output keys the config sets must be the dataset's: an append takes its settings."""
    given = cfg.output.given
    checks = {
        "codec": lambda: setting_agrees("codec", cfg.output.codec, manifest.codec),
        "index_format": lambda: setting_agrees(
            "index_format", cfg.output.index_format, recorded_setting(manifest, "index_format")
        ),
        "dtype": lambda: setting_agrees(
            "dtype", cfg.output.dtype, recorded_setting(manifest, "dtype")
        ),
        "chunk_size": lambda: cfg.output.chunk_size_bytes == manifest.chunk_size_bytes,
        "fields": lambda: (
            manifest.fields is not None
            and list(cfg.output.fields or {}) == [f["name"] for f in manifest.fields]
        ),
    }
    recorded = {
        "codec": manifest.codec,
        "index_format": recorded_setting(manifest, "index_format"),
        "dtype": recorded_setting(manifest, "dtype"),
        "chunk_size": manifest.chunk_size_bytes,
        "fields": [f["name"] for f in manifest.fields] if manifest.fields else None,
    }
    for key, agrees in checks.items():
        if key in given and not agrees():
            raise ConfigError(
                f"{cfg.origin}: key 'output.{key}': differs from the dataset's "
                f"{recorded[key]!r} ({cfg.output.path}); an append takes the dataset's "
                f"settings: leave output.{key} out (or give the same)"
            )


def settings(cfg: ConvertConfig, output: Path, state: Path) -> WriterSettings:
    """How every part writes: the dataset's settings, and its metadata columns with those
    the first item adds (float or str: older samples read them as missing); saved."""
    manifest = load_version(output, _record(state)["base"])
    columns, origin = _first_item_columns(cfg, state)
    specs = list(manifest.metadata)
    known = {spec.name for spec in specs}
    if columns is not None:
        try:
            joined_specs([specs, columns], ["the dataset", origin])
        except MetadataMismatch as error:
            raise ConversionError(f"{output}: cannot append: {error}") from None
        specs += [spec for spec in columns if spec.name not in known]
    fields = None
    if manifest.fields:
        fields = {
            f["name"]: {"type": f["type"], "dtype": f["dtype"], "codec": f["codec"]}
            for f in manifest.fields
        }
    result = WriterSettings(
        codec=manifest.codec,
        index_format=recorded_setting(manifest, "index_format"),
        chunk_size_bytes=manifest.chunk_size_bytes,
        dtype=None if fields else dtype_to_json(manifest.dtype),
        fields=fields,
        resources_root=str(output),  # the dataset's trained dictionary, if any
        safe_cast=False if cfg.output.dtype is not None else "values",
        metadata=[spec.to_json() for spec in specs],
        metadata_from=f"the dataset {output} and {origin}",
    )
    write_atomically(state / "settings.json", json.dumps(result.to_json()).encode("utf-8"))
    return result


def _first_item_columns(cfg: ConvertConfig, state: Path) -> tuple[list[ColumnSpec] | None, str]:
    with config_folder_on_path(cfg.import_path):
        reader = plugins.reader(cfg.reader)
    items = iter_items(cfg.source, state)
    try:
        for position, (item, source_metadata) in enumerate(items):
            try:
                _, metadata = reader.read(open_item(item, cfg.source.storage_options))
                found = metadata_columns(source_metadata, metadata, position, item)
            except Exception as error:
                if cfg.run.on_error == "raise":
                    raise ConversionError(
                        f"item {position} ({describe(item)}): {type(error).__name__}: {error}"
                    ) from error
                continue
            return [ColumnSpec(s["name"], s["type"]) for s in found.specs], found.origin
    finally:
        items.close()
    return None, "no item"


def merge(
    output: Path, part_dirs: list[Path], settings: WriterSettings, state: Path, claim: Claim
) -> Manifest:
    """The parts' chunk files moved into ``chunks/<token>/``, their rows committed as one
    append; or, when a killed run committed it already, that version."""
    record = _record(state)
    done = committed(output, record)
    if done is not None:
        _let_go(claim)
        return done
    token = record["token"]
    plan = move_chunks(output, part_dirs, state, f"chunks/{token}")
    table, chunks = joined_parts(output, plan["parts"], settings)
    base = load_version(output, record["base"])
    append = Append(output, base, token, claim, index_plugin_of(base, output))
    _check_shapes(output, append, table)
    if not len(table):  # every item skipped: nothing to commit
        _let_go(claim)
        return newest_manifest(output)
    return append.finish(table, chunks)


def finished(cfg: ConvertConfig, output: Path, state: Path) -> Manifest | None:
    """The version that committed this conversion's append, when a killed run did (its
    claim then goes); None when it is still to be made."""
    if not (state / APPEND_FILE).is_file():
        return None
    saved = json.loads((state / "config.json").read_text(encoding="utf-8"))
    if fingerprint_differences(saved, cfg.fingerprint()):
        return None  # refused by claim(), with the keys that differ
    record = _record(state)
    done = committed(output, record)
    if done is None:
        return None
    folder = output / WRITERS_DIR / record["token"]
    if (folder / WRITING_MARKER).exists():
        _let_go(take_over(folder, "convert", lambda owner: owner.kind in ("convert", None)))
    return done


def committed(output: Path, record: dict[str, Any]) -> Manifest | None:
    """The first version after the append's base that names its token (its segment, a
    merged segment of it, or its chunk files): None when the append is not committed."""
    token = record["token"]
    segment, folder = f"{SEGMENTS_DIR}/{token}", f"chunks/{token}/"
    for number in list_versions(output):
        if number <= record["base"]:
            continue
        manifest = load_version(output, number)
        info = manifest.versioned
        assert info is not None
        if any(s.file.startswith(segment) for s in info.segments) or any(
            c.file.startswith(folder) for c in manifest.chunks
        ):
            return manifest
    return None


def _check_shapes(output: Path, append: Append, table: IndexTable) -> None:
    """Every converted sample has the dataset's fixed shape (per field), if it has one."""
    expected = append.expected_shapes()
    columns = (
        [table.shapes] if table.shapes is not None else [c.shapes for c in table.fields.values()]
    )
    for want, shapes in zip(expected, columns, strict=True):
        if want is None or not len(shapes) or shapes.fixed == want:
            continue
        row = next(i for i in range(len(shapes)) if tuple(shapes[i]) != want)
        raise ConversionError(
            f"{output}: converted sample {row} has shape {tuple(shapes[row])}, the dataset's "
            f"samples all have {want}: an appended one must too; nothing was committed (fix "
            "the reader, then run the conversion again)"
        )


def _record(state: Path) -> dict[str, Any]:
    return json.loads((state / APPEND_FILE).read_text(encoding="utf-8"))


def _check_same_config(cfg: ConvertConfig, output: Path, state: Path) -> None:
    saved = json.loads((state / "config.json").read_text(encoding="utf-8"))
    changed = fingerprint_differences(saved, cfg.fingerprint())
    if changed:
        raise ConfigError(
            f"{cfg.origin}: an append into {output} was started with another config (differs "
            f"in {', '.join(changed)}); run it with the same config to finish it, or remove "
            f"{state} to start over (nothing of it is committed until it finishes)"
        )


def _let_go(claim: Claim) -> None:
    claim.release()
    with contextlib.suppress(OSError):
        claim.root.rmdir()
