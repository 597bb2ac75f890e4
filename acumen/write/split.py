"""``split_into_chunks``: the original's one-call conversion, with real parallelism.

Workers read and encode samples (the CPU-heavy part: ``read_fn``, dtype cast,
compression); the parent appends payloads in input order. Every sample is written exactly
once and the index comes out in input order, whatever ``n_jobs`` is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any

import numpy as np

from acumen import plugins
from acumen.abc.codec import Buffer
from acumen.errors import CorruptDatasetError, DatasetExistsError, SampleError
from acumen.files.claim import acting_as, refusal
from acumen.files.remote import is_url
from acumen.format.layout import WRITING_MARKER
from acumen.format.manifest import Manifest
from acumen.plugins import PluginSpec
from acumen.progress import Lent, ProgressArg, as_callback, lend
from acumen.write.encoding import RecordEncoder
from acumen.write.writer import DEFAULT_CHUNK_SIZE, Writer

logger = logging.getLogger(__name__)

ReadFn = Callable[[Any], tuple[Any, Mapping[str, Any]]]
Encoded = tuple[list[Buffer], list[tuple[int, ...]], Mapping[str, Any]]


class OriginalDtype:
    """The default ``dtype`` of ``split_into_chunks``: float16, as the original's. Casting
    to it is checked (``safe_cast="values"``): a value it would lose is an error, not inf;
    ``dtype=np.float16`` given explicitly casts as told."""

    dtype = np.dtype(np.float16)

    def __repr__(self) -> str:
        return "float16 (the original's default; lossy casts refused)"

    def __reduce__(self) -> str:
        return "ORIGINAL_DTYPE"  # one instance, also after pickling


ORIGINAL_DTYPE = OriginalDtype()


@acting_as("split_into_chunks")  # what its claim on the folder says is writing it
def split_into_chunks(
    data_list: Iterable[Any],
    output_path: str | os.PathLike[str],
    read_fn: ReadFn | None = None,
    chunk_size_bytes: int = DEFAULT_CHUNK_SIZE,
    n_jobs: int = 1,
    dtype: Any = ORIGINAL_DTYPE,
    use_gzip: bool = False,
    codec: PluginSpec | None = None,
    index_format: PluginSpec | None = None,
    verbose: bool = False,
    fields: Mapping[str, Any] | None = None,
    progress: ProgressArg = None,
    safe_cast: bool | str | None = None,
    read_back: Callable[[Path], None] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    cache: str | os.PathLike[str] | None = None,
    publish_extra: Sequence[str] = (),
    mode: str = "create",
) -> Manifest:
    """Write every item of ``data_list`` as one sample of a new dataset at ``output_path``.

    ``read_fn(item)`` returns ``(array, metadata dict)``; without it each item is such a
    pair. Arrays are cast to ``dtype`` (float16 by default, as the original; ``None`` keeps
    the first sample's dtype). A cast to the default that loses a value (out of float16's
    range, an integer that does not come back) is a :class:`SampleError` naming the sample;
    an explicit ``dtype=np.float16`` or ``safe_cast=False`` casts as told (the original
    gave inf). ``safe_cast`` is the :class:`acumen.Writer`'s option (default: ``"values"``
    for the default dtype, ``False`` for one given).
    ``use_gzip`` is the original's flag for ``codec="gzip"``.
    ``n_jobs=-1`` uses every core. ``read_fn`` may return a dict of arrays (or bytes) for
    samples with several fields; ``fields`` then sets each one's dtype and codec (see
    :class:`acumen.Writer`). ``progress``: ``True`` shows acumen's line, or an
    :class:`acumen.progress.Callback` is told the samples written (sized by
    ``len(data_list)`` when it has one) and their bytes, from this thread at most ten times
    a second, and closed at the end, also when the write fails.
    ``read_fn`` must be picklable when ``n_jobs > 1`` under
    the spawn start method (a module-level function, not a lambda).
    ``output_path`` may be a URL: see :class:`acumen.Writer` (``storage_options``, ``cache``,
    ``publish_extra``).

    ``mode="append"`` adds the samples to the complete dataset at ``output_path`` as its
    next version (see :class:`acumen.Writer`): its dtype, codec, index format and chunk
    size are the dataset's (leave them out, or give the same); a cast to its dtype that
    loses a value is refused unless ``safe_cast=False``.
    """
    if mode not in ("create", "append"):
        raise ValueError(f"mode must be 'create' or 'append', got {mode!r}")
    appending = mode == "append"
    if appending:
        if dtype is ORIGINAL_DTYPE:  # the dataset's, checked: no value may be lost
            dtype = None
            safe_cast = "values" if safe_cast is None else safe_cast
    elif not is_url(output_path) and os.path.exists(output_path):
        if os.path.exists(os.path.join(output_path, WRITING_MARKER)):
            raise refusal(Path(output_path))  # whose claim, and whether it is alive
        raise DatasetExistsError(f"{output_path} already exists; acumen never writes over data")
    if codec is None:
        codec = "gzip" if use_gzip else (None if appending else "raw")
    elif use_gzip and plugins.codec(codec).name != "gzip":
        raise ValueError(f"use_gzip=True contradicts codec={codec!r}; give one of them")
    if safe_cast is None:
        safe_cast = "values" if dtype is ORIGINAL_DTYPE and fields is None else False
    if dtype is ORIGINAL_DTYPE:
        dtype = ORIGINAL_DTYPE.dtype
    if index_format is None and not appending:
        index_format = "csv"
    n_jobs = _job_count(n_jobs)
    codec_plugin = plugins.codec(codec) if codec is not None else None
    level = logging.INFO if verbose else logging.DEBUG
    logger.log(
        level,
        "%s %s with %d job(s), codec %s",
        mode,
        output_path,
        n_jobs,
        codec_plugin or "its own",
    )
    options: dict[str, Any] = {"mode": "append"} if appending else {"read_back": read_back}
    if appending and read_back is not None:
        raise ValueError("read_back= is for a new dataset; an append takes none")
    settings = {
        "codec": codec_plugin,
        "index_format": index_format,
        "chunk_size_bytes": chunk_size_bytes,
        "dtype": dtype if fields is None else None,
        "fields": fields,
        "safe_cast": safe_cast,
        "storage_options": storage_options,
        "cache": cache,
        "publish_extra": publish_extra,
        **options,
    }
    size = len(data_list) if isinstance(data_list, Sized) else None
    with as_callback(progress, f"write {Path(output_path).name}", size) as told:
        writer = _write(data_list, output_path, read_fn, n_jobs, verbose, lend(told), settings)
    logger.log(level, "wrote %d samples to %s", len(writer), output_path)
    assert writer.manifest is not None
    return writer.manifest


def _write(
    data_list: Iterable[Any],
    output_path: str | os.PathLike[str],
    read_fn: ReadFn | None,
    n_jobs: int,
    verbose: bool,
    progress: Lent | None,
    settings: dict[str, Any],
) -> Writer:
    """The samples written (the first ones here, the rest encoded by ``n_jobs`` workers)
    and committed; the Writer tells ``progress`` (sized and closed by the caller)."""
    with Writer(output_path, progress=progress, **settings) as writer:
        numbered = enumerate(data_list)
        # The parent writes the first samples itself until the encoder is settled (fields,
        # dtypes) and its codecs trained; workers then get copies of it.
        for position, item in numbered:
            sample, metadata = _read(read_fn, item, position)
            writer.add(sample, **metadata)
            if not writer.training:
                break
        encode = _ItemEncoder(read_fn, writer.encoder)
        if n_jobs == 1:
            encoded: Iterable[Encoded] = map(encode, numbered)
        else:
            # multiprocessing loads here, not with ``import acumen`` (every DataLoader worker).
            from acumen.write.parallel import ordered_map

            encoded = ordered_map(encode, numbered, n_jobs)
        for payloads, shapes, metadata in encoded:
            position = len(writer)
            writer.add_encoded(payloads, shapes, metadata, str(position))
            if verbose and (position + 1) % 100_000 == 0:
                logger.info("%d samples written", position + 1)
    return writer


def _job_count(n_jobs: int) -> int:
    if n_jobs == -1:
        return os.cpu_count() or 1
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int or -1 (all cores), got {n_jobs!r}")
    return n_jobs


class _ItemEncoder:
    """Reads and encodes one numbered item; pickled to the workers with what it needs."""

    def __init__(self, read_fn: ReadFn | None, encoder: RecordEncoder) -> None:
        self.read_fn = read_fn
        self.encoder = encoder

    def __call__(self, numbered: tuple[int, Any]) -> Encoded:
        position, item = numbered
        sample, metadata = _read(self.read_fn, item, position)
        payloads, shapes = self.encoder.encode(sample, position)
        return [bytes(p) for p in payloads], shapes, dict(metadata)


def _read(read_fn: ReadFn | None, item: Any, position: int) -> tuple[Any, Mapping[str, Any]]:
    try:
        result = read_fn(item) if read_fn is not None else item
        array, metadata = result
    except CorruptDatasetError:
        raise  # a damaged source (a dataset being recoded): it names its file and sample
    except Exception as error:
        what = "read_fn raised" if read_fn is not None else "item is not an (array, metadata) pair:"
        raise SampleError(
            f"sample {position} ({_describe(item)}): {what} {type(error).__name__}: {error}"
        ) from error
    if not isinstance(metadata, Mapping):
        raise SampleError(
            f"sample {position} ({_describe(item)}): metadata must be a dict, "
            f"got {type(metadata).__name__}"
        )
    return array, metadata


def _describe(item: Any) -> str:
    text = repr(item) if not isinstance(item, tuple) else f"tuple of {len(item)}"
    return text if len(text) <= 80 else text[:77] + "..."
