"""``acumen convert CONFIG --check``: read every item the way the conversion would, write
nothing, and list every item that cannot be read.

A dry run before a long conversion (or after one stopped on a bad item under
``on_error = "raise"``): all the bad items at once, not one per run. It reads with the
config's reader and source, in ``run.n_jobs`` processes on this machine (whatever the
engine), and creates no output folder. It checks reading only: what the writer refuses
later (a value the dtype cannot hold, a field that changes type) shows in the conversion.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from acumen import plugins
from acumen.convert.config import ConfigError, ConvertConfig, load_config
from acumen.convert.run import choose_part_size
from acumen.convert.sources import Listing, describe, first_item, iter_items, list_source
from acumen.progress import Callback, Lent, ProgressArg, as_callback
from acumen.readers.callable import config_folder_on_path

Batch = list[tuple[int, Any]]  # (position in the source, item)


@dataclass
class CheckReport:
    """What ``check`` found: ``items`` read, and each ``unreadable`` item's position, item
    and error (the entries ``convert-report.json`` would list under ``on_error = "skip"``)."""

    config: str
    items: int
    unreadable: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unreadable

    def __str__(self) -> str:
        lines = [f"item {e['position']} ({e['item']}): {e['error']}" for e in self.unreadable]
        found = f"{len(self.unreadable):,} unreadable" if self.unreadable else "all readable"
        lines.append(f"{self.items:,} items read: {found}")
        return "\n".join(lines)


def check(
    config: ConvertConfig | str | os.PathLike[str] | Mapping[str, Any],
    *,
    progress: ProgressArg = None,
) -> CheckReport:
    """Read every item of a conversion config with its reader; write nothing.

    ``progress`` as :func:`acumen.convert.convert`'s, told the items read."""
    if isinstance(progress, Callback):
        with progress:  # closed whatever happens
            progress.set_size(None)
            return _check(config, Lent(progress))
    return _check(config, progress)


def _check(
    config: ConvertConfig | str | os.PathLike[str] | Mapping[str, Any], progress: ProgressArg
) -> CheckReport:
    cfg = config if isinstance(config, ConvertConfig) else load_config(config)
    listing = list_source(cfg.source, None)  # a glob at a URL: listed once
    if first_item(cfg.source, None, listing) is None:
        raise ConfigError(
            f"{cfg.origin}: key 'source.{cfg.source.kind}': {cfg.source.value!r} gives no items"
        )
    show = cfg.run.progress if progress is None else progress
    report = CheckReport(cfg.origin, 0)
    with as_callback(show, f"check {cfg.origin}") as bar:
        for count, unreadable in _results(cfg, listing):
            report.items += count
            report.unreadable.extend(unreadable)
            bar.update(count)
    return report


def _batches(cfg: ConvertConfig, listing: Listing | None) -> Iterator[Batch]:
    size = cfg.run.part_size or choose_part_size(cfg, None, listing)[0]
    numbered = enumerate(item for item, _ in iter_items(cfg.source, None, listing))
    while batch := list(itertools.islice(numbered, size)):
        yield batch


def _results(
    cfg: ConvertConfig, listing: Listing | None
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(items read, unreadable entries) per batch, in source order."""
    batches = _batches(cfg, listing)
    options = dict(cfg.source.storage_options or {})
    if cfg.run.n_jobs == 1:
        for batch in batches:
            yield len(batch), read_batch(cfg.reader, cfg.import_path, batch, options)
        return
    from acumen.write.worker_pool import process_pool

    pending: deque[tuple[int, Future[list[dict[str, Any]]]]] = deque()
    with process_pool(cfg.run.n_jobs) as pool:
        try:
            for batch in batches:
                pending.append(
                    (
                        len(batch),
                        pool.submit(read_batch, cfg.reader, cfg.import_path, batch, options),
                    )
                )
                if len(pending) >= 2 * cfg.run.n_jobs:  # bounded: the items stream
                    count, future = pending.popleft()
                    yield count, future.result()
            while pending:
                count, future = pending.popleft()
                yield count, future.result()
        finally:
            for _, future in pending:
                future.cancel()


def read_batch(
    reader_spec: Mapping[str, Any],
    import_path: str | None,
    batch: Batch,
    storage_options: Mapping[str, Any] | None = None,
) -> list:
    """Read each item of ``batch``; the entries of those that fail (in a worker process).
    Items at a URL are fetched ahead, several at once."""
    from acumen.convert.remote_source import opened, raise_if_failed

    with config_folder_on_path(import_path):
        reader = plugins.reader(dict(reader_spec))
    unreadable = []
    for position, item, _, got in opened([(p, i, {}) for p, i in batch], storage_options):
        try:
            _sample, metadata = reader.read(raise_if_failed(got))
            if not isinstance(metadata, Mapping):
                raise TypeError(f"the reader returned {type(metadata).__name__} as metadata")
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            unreadable.append({"position": position, "item": describe(item), "error": reason})
    return unreadable
