"""``acumen.convert``: a whole conversion from a config, resumable, on the local machine or Dask.

1. The output folder is claimed (writing marker) and the config's fingerprint saved; a run
   on a folder with a fingerprint resumes it, and refuses if the config changed.
2. The driver settles what every part must agree on: dtypes, fields and metadata column
   types from the first sample, and trained codec resources (zstd dictionaries) from the
   first samples; saved.
3. Items stream into parts of ``run.part_size`` (when the config sets none: chosen from the
   item count, and saved so that a resume makes the same parts); the engine writes the
   parts that are not done yet (a worker per part), with progress.
4. Parts merge into the dataset without copying chunk bytes (for a URL output, the workers
   uploaded them: :mod:`acumen.convert.upload`); the report of skipped items is written;
   the manifest commits; the conversion state is removed.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from acumen import plugins
from acumen.convert import appending
from acumen.convert.config import (
    ConfigError,
    ConvertConfig,
    fingerprint_differences,
    load_config,
)
from acumen.convert.merge import merge_parts, merge_uploaded
from acumen.convert.parts import (
    ConversionError,
    MetadataColumns,
    PartResult,
    PartTask,
    WriterSettings,
    choose_part_size,
    metadata_columns,
    part_reusable,
    tidy_for_resume,
)
from acumen.convert.remote_source import open_item
from acumen.convert.sources import (
    describe,
    first_item,
    iter_items,
    list_source,
    record_source,
)
from acumen.convert.summary import REPORT_FILE, ConversionSummary
from acumen.errors import DatasetExistsError, DatasetWriteError
from acumen.files.claim import Claim, Owner, claim_folder, is_stray, take_over
from acumen.files.local import write_atomically
from acumen.format.dtypes import dtype_to_json
from acumen.format.layout import MANIFEST_FILE, WRITING_MARKER
from acumen.format.manifest import Manifest
from acumen.progress import Callback, Lent, Progress, ProgressArg
from acumen.readers.callable import config_folder_on_path
from acumen.write.commit import store_resources
from acumen.write.encoding import RecordEncoder, field_specs

logger = logging.getLogger(__name__)

STATE_DIR = ".acumen-convert"
PLAN_FILE = "plan.json"  # in the state: the part size the conversion started with


def convert(
    config: ConvertConfig | str | os.PathLike[str] | Mapping[str, Any],
    *,
    progress: ProgressArg = None,
) -> ConversionSummary:
    """Run the conversion a config describes (a file path, a dict, or a loaded config).

    ``progress``: ``None`` follows the config's ``run.progress``; ``True``/``False``; or an
    :class:`acumen.progress.Callback`, told the samples written and their bytes (size None)
    from this thread (whichever engine), and closed at the end, also on failure."""
    if not isinstance(progress, Callback):
        return _convert(config, progress)
    with progress:  # closed here whatever happens; sized before anything is done
        progress.set_size(None, "samples")
        return _convert(config, Lent(progress))


def _convert(
    config: ConvertConfig | str | os.PathLike[str] | Mapping[str, Any], progress: ProgressArg
) -> ConversionSummary:
    cfg = config if isinstance(config, ConvertConfig) else load_config(config)
    start = time.monotonic()
    output = cfg.output.path
    state = output / STATE_DIR
    listing = list_source(cfg.source, state)  # a glob at a URL not recorded yet: listed once
    if first_item(cfg.source, state, listing) is None:  # surely a mistake: say so first
        root = cfg.source.root_url or cfg.source.root
        where = f" under {root}" if cfg.source.kind == "glob" else ""
        if cfg.source.kind == "glob" and str(root).lower().startswith("http"):
            where += " (an HTTP server is listed through the HTML index of links it serves "
            where += "for a folder, if it serves one; else list the items in a source.table)"
        raise ConfigError(
            f"{cfg.origin}: key 'source.{cfg.source.kind}': {cfg.source.value!r} gives no "
            f"items{where}"
        )
    destination = _destination(cfg)
    earlier = _finished_earlier(cfg, output, state)
    if earlier is not None:
        manifest = earlier
        report = json.loads((output / REPORT_FILE).read_text(encoding="utf-8"))
        if destination is not None:  # committed locally: (re)publish, which tidies it all
            destination.publish(output, manifest, extra=[REPORT_FILE])
        else:
            shutil.rmtree(state)  # killed after its commit: only the tidying was left
        return ConversionSummary(
            output,
            manifest,
            manifest.n_samples,
            report["skipped"],
            sum(c.size_bytes for c in manifest.chunks),
            0,
            time.monotonic() - start,
            0,
        )
    claim = _claim(cfg, output, state)
    try:
        if destination is not None:
            destination.begin()  # the marker at the URL, before any worker uploads
        record_source(cfg.source, state, listing)  # what a resume reads instead of the store
        results, skipped, manifest, part_size = _run(cfg, output, state, claim, progress)
    except DatasetWriteError as error:  # a full disk: the conversion resumes once fixed
        claim.abandon()
        raise DatasetWriteError(
            error.errno,
            f"{output}: the conversion stopped: cannot write {error.filename}: "
            f"{os.strerror(error.errno) if error.errno else error}; the output is left "
            "incomplete: free space (or fix the cause), then run the same conversion again "
            "to resume it",
            error.filename,
        ) from error
    except BaseException:
        claim.abandon()  # the marker stays: running the same config again resumes
        raise
    if destination is not None:
        # The state stays until the publication is done (it removes the staging folder),
        # so a conversion killed while publishing finds its commit and publishes again.
        destination.publish(output, manifest, extra=[REPORT_FILE])
    else:
        shutil.rmtree(state)
    summary = ConversionSummary(
        output,
        manifest,
        manifest.n_samples,
        skipped,
        sum(c.size_bytes for c in manifest.chunks),
        sum(r.source_bytes for r in results),
        time.monotonic() - start,
        sum(r.resumed for r in results),
        len(results),
        part_size,
        len({r.worker for r in results if r.worker is not None}),
    )
    logger.info("%s", summary)
    return summary


def _run(
    cfg: ConvertConfig, output: Path, state: Path, claim: Claim, progress: ProgressArg
) -> tuple[list[PartResult], list[dict[str, Any]], Manifest, int]:
    """Settle, write the parts, merge them and commit (the claim's marker goes last)."""
    part_size = _part_size(cfg, state)
    settings = _settings(cfg, output, state)
    bar = progress if isinstance(progress, Callback) else None  # (a Lent: sized already)
    if bar is None:  # (Progress looked up here: tests count what it is told)
        show = cfg.run.progress if progress is None else bool(progress)
        bar = Progress(None, f"convert {output.name}", enabled=show)
    with bar:
        tasks = _tasks(cfg, settings, state, part_size)
        if cfg.run.engine == "dask":
            from acumen.convert.engine_dask import run_parts
        else:
            from acumen.convert.engine_local import run_parts
        results = run_parts(tasks, cfg, bar)
    skipped = [entry for result in results for entry in result.skipped]
    report = {"skipped": skipped, "config": cfg.origin}
    write_atomically(output / REPORT_FILE, json.dumps(report, indent=1).encode("utf-8"))
    part_dirs = [Path(_part_directory(state, r.number)) for r in results]
    if cfg.output.url is not None:  # the chunks are in the store: the records make the index
        from acumen.convert.upload import UploadTarget, clean_scratch

        clean_scratch(UploadTarget.of(cfg.output))  # (emptied by the uploads)
        firsts = [r.first if r.first is not None else -1 for r in results]
        manifest = merge_uploaded(output, part_dirs, firsts, settings, claim)
    elif cfg.output.mode == "append":
        manifest = appending.merge(output, part_dirs, settings, state, claim)
    else:
        manifest = merge_parts(output, part_dirs, settings, state, claim)
    return results, skipped, manifest, part_size


def _part_size(cfg: ConvertConfig, state: Path) -> int:
    """``run.part_size``, else the size this conversion started with, else one chosen from
    the item count and ``n_jobs`` and saved: a resume makes the same parts (so the same
    bytes) whatever its own ``n_jobs``, which the fingerprint leaves free."""
    if cfg.run.part_size is not None:
        return cfg.run.part_size
    saved = state / PLAN_FILE
    if saved.is_file():
        return int(json.loads(saved.read_text(encoding="utf-8"))["part_size"])
    started = json.loads((state / "config.json").read_text(encoding="utf-8")).get("part_size")
    if isinstance(started, int):  # started with run.part_size set (or by an older acumen,
        return started  # whose default of 10,000 was saved as if set)
    part_size, counted = choose_part_size(cfg, state)
    plan = {"part_size": part_size, "items_counted": counted, "n_jobs": cfg.run.n_jobs}
    write_atomically(saved, json.dumps(plan).encode("utf-8"))
    return part_size


def _destination(cfg: ConvertConfig) -> Any:
    """Where a conversion to a URL is published (checked free now, before any work).

    The workers upload their parts' chunk files there (:mod:`acumen.convert.upload`); the
    driver commits the index in its staging folder and publishes the rest, manifest last."""
    if cfg.output.url is None:
        return None
    from acumen.write.publish import Destination  # fsspec: only for a URL

    return Destination(
        cfg.output.url, cfg.output.storage_options, cfg.output.cache, "convert", resumable=True
    )


def _finished_earlier(cfg: ConvertConfig, output: Path, state: Path) -> Manifest | None:
    """What a conversion with this config committed without removing its state (None:
    it did not commit)."""
    if cfg.output.mode == "append":
        return appending.finished(cfg, output, state)
    saved = state / "config.json"
    done = (
        (output / MANIFEST_FILE).is_file()
        and not (output / WRITING_MARKER).exists()
        and saved.is_file()
        and not fingerprint_differences(
            json.loads(saved.read_text(encoding="utf-8")), cfg.fingerprint()
        )
    )
    return Manifest.load(output / MANIFEST_FILE) if done else None


def _claim(cfg: ConvertConfig, output: Path, state: Path) -> Claim:
    """Claim ``output`` for this conversion: a new folder, or one a conversion with the same
    config left (killed, or failed: its claim is dead); a live claim is never taken over."""
    if cfg.output.mode == "append":
        return appending.claim(cfg, output, state)
    fingerprint = cfg.fingerprint()
    saved = state / "config.json"
    if (output / WRITING_MARKER).exists():
        claim = take_over(output, "convert", lambda owner: _resumable(cfg, owner, output, state))
        try:
            _start_or_resume(claim, fingerprint, state)
        except BaseException:
            claim.abandon()
            raise
        return claim
    if output.exists():
        if (output / MANIFEST_FILE).is_file():
            raise DatasetExistsError(
                f"{output} is a complete dataset already; choose another output.path or remove it"
            )
        if output.is_file() or any(output.iterdir()):
            raise DatasetExistsError(
                f"{output} already exists and is not a conversion to resume; choose another "
                "output.path or remove it"
            )
    output.mkdir(parents=True, exist_ok=True)
    claim = claim_folder(output, "convert")
    try:
        state.mkdir()
        write_atomically(saved, json.dumps(fingerprint, sort_keys=True).encode("utf-8"))
    except BaseException:
        claim.abandon()
        raise
    return claim


def _resumable(cfg: ConvertConfig, owner: Owner, output: Path, state: Path) -> bool:
    """Whether this conversion may take over the dead claim of ``owner`` on ``output``."""
    saved = state / "config.json"
    # (a marker that names no kind is an older acumen's: its saved config says whose it is)
    if owner.kind != "convert" and not (owner.kind is None and saved.is_file()):
        return False
    if not saved.is_file():
        # Killed while claiming the folder, before its config was saved: nothing written.
        names = {p.name for p in output.iterdir() if not is_stray(p.name)}
        return names <= {STATE_DIR, WRITING_MARKER}
    previous = json.loads(saved.read_text(encoding="utf-8"))
    fingerprint = cfg.fingerprint()
    changed = fingerprint_differences(previous, fingerprint)
    if changed:
        raise ConfigError(
            f"{cfg.origin}: {output} was started with another config (differs in "
            f"{', '.join(changed)}); run it with the same config to finish it, or "
            "remove the folder to start over"
        )
    return True


def _start_or_resume(claim: Claim, fingerprint: dict[str, Any], state: Path) -> None:
    saved = state / "config.json"
    if not saved.is_file():
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir()
        write_atomically(saved, json.dumps(fingerprint, sort_keys=True).encode("utf-8"))
        return
    logger.info("resuming the conversion into %s", claim.root)
    tidy_for_resume(state)


def _settings(cfg: ConvertConfig, output: Path, state: Path) -> WriterSettings:
    """What every part must agree on; settled from the first samples once, then saved."""
    saved = state / "settings.json"
    if saved.is_file():
        return WriterSettings.from_json(json.loads(saved.read_text(encoding="utf-8")))
    if cfg.output.mode == "append":
        return appending.settings(cfg, output, state)
    codec = plugins.codec(cfg.output.codec)
    specs = field_specs(cfg.output.fields, codec) if cfg.output.fields is not None else None
    encoder = RecordEncoder(codec, cfg.output.dtype, specs)
    with config_folder_on_path(cfg.import_path):
        reader = plugins.reader(cfg.reader)
    collected: list[list] = []
    wanted = 1
    columns: MetadataColumns | None = None
    items = iter_items(cfg.source, state)
    try:
        for position, (item, source_metadata) in enumerate(items):
            try:
                sample, metadata = reader.read(open_item(item, cfg.source.storage_options))
                # (checked before the array fixes dtypes: a refused item fixes nothing)
                found = columns or metadata_columns(source_metadata, metadata, position, item)
                arrays = encoder.prepare(sample, position)
                columns = found
            except Exception as error:
                if cfg.run.on_error == "raise":
                    raise ConversionError(
                        f"item {position} ({describe(item)}): {type(error).__name__}: {error}"
                    ) from error
                continue  # the part that holds it will skip it again and report it
            collected.append(arrays)
            wanted = max([1] + [c.training_samples() for c in encoder.codecs()])
            if len(collected) >= wanted:
                break
    finally:
        items.close()
    encoder.train(collected)
    store_resources(output, encoder.codecs())
    dtypes = encoder.field_dtypes()
    explicit = cfg.output.dtype is not None or any(
        (isinstance(spec, Mapping) and spec.get("dtype") is not None) or isinstance(spec, str)
        for spec in (cfg.output.fields or {}).values()
    )
    fields = None
    if encoder.multi_field:
        fields = {
            f.name: {
                "type": f.type,
                "dtype": dtype_to_json(dtype) if dtype is not None else None,
                "codec": f.codec.get_config(),
            }
            for f, dtype in zip(encoder.fields, dtypes, strict=True)
        }
    settings = WriterSettings(
        codec=codec.get_config(),
        index_format=plugins.index_format(cfg.output.index_format).get_config(),
        chunk_size_bytes=cfg.output.chunk_size_bytes,
        dtype=dtype_to_json(dtypes[0])
        if not encoder.multi_field and dtypes[0] is not None
        else None,
        fields=fields,
        resources_root=str(output),
        safe_cast=not explicit,
        metadata=columns.specs if columns is not None else None,
        metadata_from=columns.origin if columns is not None else "",
    )
    write_atomically(saved, json.dumps(settings.to_json()).encode("utf-8"))
    return settings


def _part_directory(state: Path, number: int) -> str:
    return str(state / "parts" / f"part-{number:06d}")


def _tasks(
    cfg: ConvertConfig, settings: WriterSettings, state: Path, part_size: int
) -> Iterator[PartTask]:
    """Parts of ``part_size`` consecutive items, made as the source streams."""
    numbered = enumerate(iter_items(cfg.source, state))
    on_error = cfg.run.on_error
    upload = None
    if cfg.output.url is not None:
        from acumen.convert.upload import UploadTarget, clean_scratch

        upload = UploadTarget.of(cfg.output).carrying(settings)
        clean_scratch(upload)  # parts an earlier run wrote here and never uploaded
    options = dict(cfg.source.storage_options or {})
    for number in itertools.count():
        batch = list(itertools.islice(numbered, part_size))
        if not batch:
            return
        directory = _part_directory(state, number)
        done = part_reusable(Path(directory), on_error, upload is not None)
        items = [] if done else [(p, i, m) for p, (i, m) in batch]
        yield PartTask(
            number,
            directory,
            items,
            dict(cfg.reader),
            settings,
            on_error,
            cfg.import_path,
            options,
            upload,
        )
