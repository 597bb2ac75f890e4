"""``acumen recode``: re-write a dataset with another codec, index format or chunk size.

Streams samples from the source (acumen or original acumenindexer) through the normal
writer, in parallel when asked, then reads every sample of the result back and compares it
with the source, so a recoded dataset is known to be the same data.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from acumen.claim import acting_as
from acumen.dataset import Dataset
from acumen.errors import CorruptDatasetError
from acumen.manifest import Manifest
from acumen.opening import open_dataset
from acumen.plugins import PluginSpec
from acumen.progress import Progress
from acumen.split import split_into_chunks
from acumen.writer import DEFAULT_CHUNK_SIZE


class SampleReader:
    """``read_fn`` over a dataset: position -> (sample, metadata). Picklable (workers)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __call__(self, position: int) -> tuple[Any, dict[str, Any]]:
        return self.dataset[position]


@acting_as("recode")  # what its claim on the destination says is writing it
def recode(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    codec: PluginSpec | None = None,
    index_format: PluginSpec | None = None,
    chunk_size_bytes: int | None = None,
    n_jobs: int = 1,
    verify: bool = True,
    progress: bool = True,
    source_options: dict[str, Any] | None = None,
) -> Manifest:
    """Copy ``source`` to a new dataset at ``destination``, changing what is given.

    What is not given stays as in the source: codec (each field's own, with its trained
    dictionary), index format, chunk size. ``source_options`` go to :func:`acumen.open`
    (``dtype=``, ``use_gzip=`` for an original dataset).
    """
    with open_dataset(source, **(source_options or {})) as src:
        manifest = src.manifest
        if index_format is None:
            index_format = manifest.index if manifest else "csv"
        if chunk_size_bytes is None:
            chunk_size_bytes = manifest.chunk_size_bytes if manifest else DEFAULT_CHUNK_SIZE
        fields = None
        if src.field_readers:
            fields = {
                r.name: {
                    "type": r.type,
                    **({"dtype": r.dtype.str} if r.type == "array" else {}),
                    "codec": codec if codec is not None else r.codec,
                }
                for r in src.field_readers
            }
        bar = Progress(len(src), f"recode {Path(destination).name}", enabled=progress)
        with bar:
            written = split_into_chunks(
                range(len(src)),
                destination,
                read_fn=SampleReader(src),
                chunk_size_bytes=chunk_size_bytes,
                n_jobs=n_jobs,
                dtype=src.dtype if fields is None else None,
                codec=codec if codec is not None else src.codec,
                index_format=index_format,
                fields=fields,
                progress=bar,
            )
        if verify:
            verify_copy(src, destination, progress)
    return written


def verify_copy(source: Dataset, destination: str | os.PathLike[str], progress: bool) -> None:
    """Every sample and its metadata in ``destination`` equal the source's, bit for bit."""
    with (
        open_dataset(destination) as copy,
        Progress(len(source), f"verify {Path(destination).name}", enabled=progress) as bar,
    ):
        if len(copy) != len(source):
            raise CorruptDatasetError(
                f"{destination}: {len(copy)} samples, the source has {len(source)}"
            )
        for i in range(len(source)):
            (want, want_meta), (got, got_meta) = source[i], copy[i]
            if not _same_sample(want, got):
                raise CorruptDatasetError(
                    f"{destination}: sample {i} differs from the source after recoding (a lossy "
                    "codec? then skip the check with --no-verify)"
                )
            if want_meta.keys() != got_meta.keys() or not all(
                _same_value(want_meta[k], got_meta[k]) for k in want_meta
            ):
                raise CorruptDatasetError(
                    f"{destination}: sample {i} metadata {got_meta!r} differs from the "
                    f"source's {want_meta!r}"
                )
            bar.update(1, _nbytes(got))


def _same_sample(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return want.keys() == got.keys() and all(_same_sample(want[k], got[k]) for k in want)
    if isinstance(want, bytes):
        return want == got
    return want.dtype == got.dtype and want.shape == got.shape and want.tobytes() == got.tobytes()


def _same_value(want: Any, got: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return type(want) is type(got) and want == got


def _nbytes(sample: Any) -> int:
    if isinstance(sample, dict):
        return sum(_nbytes(v) for v in sample.values())
    return len(sample) if isinstance(sample, bytes) else np.asarray(sample).nbytes
