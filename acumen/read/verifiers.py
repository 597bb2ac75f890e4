"""Checks that wrap a dataset's reads: ``acumen.open(..., verify="chunk" | "sample")``.

They also serve ``acumen verify``, which checks everything at once (:mod:`acumen.verify`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from acumen.errors import CorruptDatasetError
from acumen.files.local import open_regular
from acumen.format.checksums import file_checksum

if TYPE_CHECKING:
    from acumen.read.dataset import Dataset


def unreadable(path: str | os.PathLike[str], error: OSError) -> str:
    """A report line for a file the system would not read (permissions, an I/O error)."""
    return f"{error.filename or path}: cannot be read: {error.strerror or error}"


def check_chunk(dataset: Dataset, chunk_id: int, expected: str | None) -> str | None:
    """The problem with one chunk file, or None (always None without a checksum)."""
    return None if expected is None else chunk_problem(dataset, chunk_id, expected)[0]


def chunk_problem(dataset: Dataset, chunk_id: int, expected: str | None) -> tuple[str | None, bool]:
    """(the problem with one chunk file or None, whether it could not be read at all).
    Without a checksum to compare with, the file is only opened: one that cannot be read
    is still reported."""
    path = dataset.storage.paths[chunk_id]
    try:
        if expected is None:
            os.close(open_regular(path, "chunk file"))
            return None, False
        actual = file_checksum(path)
    except CorruptDatasetError as error:  # no longer a regular file
        return str(error), True
    except OSError as error:
        return unreadable(path, error), True
    if actual != expected:
        problem = (
            f"{path}: checksum {actual} differs from the manifest's {expected}: the file changed"
        )
        return problem, False
    return None, False


class SampleVerifier:
    """Checks sample ``i``'s payload against the checksum in index row ``i``.

    Used by ``acumen.open(..., verify="sample")`` on datasets written with
    ``checksums="sample"``. The checksum is looked up by the sample's position, never by
    where its bytes are: a damaged row that points at another sample's payload (a valid
    payload, with a valid checksum of its own) is caught.
    """

    def __init__(self, dataset: Dataset) -> None:
        table = dataset.table
        if table.checksums is None:
            raise ValueError(
                f"{dataset.root} keeps no per-sample checksums (write it with "
                "checksums='sample'); use verify='chunk'"
            )
        self.expected = memoryview(table.checksums.view(np.uint64))
        self.dataset = dataset

    def __call__(self, i: int, data: Any) -> None:
        if xxhash.xxh3_64_intdigest(data) != self.expected[i]:
            table = self.dataset.table
            chunk, offset = int(table.chunk_ids[i]), int(table.offsets[i])
            raise CorruptDatasetError(
                f"{self.dataset.root}: sample {i}: the payload's checksum differs from the "
                f"index's ({self.dataset.storage.paths[chunk]}, bytes {offset}.."
                f"{offset + int(table.sizes[i])}: the payload, or the row that locates it, "
                "is damaged)"
            )


class ChunkVerifier:
    """A read function that checks each chunk's checksum the first time it is touched.

    Used by ``acumen.open(..., verify="chunk")``; without it reads cost nothing extra.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.expected = chunk_checksums(dataset)
        self.verified = [False] * len(self.expected)
        self.dataset = dataset
        self.read = dataset.storage.read

    def __call__(self, chunk_id: int, offset: int, size: int):
        if not self.verified[chunk_id]:
            problem = check_chunk(self.dataset, chunk_id, self.expected[chunk_id])
            if problem:
                raise CorruptDatasetError(problem)
            self.verified[chunk_id] = True
        return self.read(chunk_id, offset, size)


def chunk_checksums(dataset: Dataset) -> list[str | None]:
    """Each chunk's checksum in the manifest, by chunk id (None: none recorded)."""
    manifest = dataset.manifest
    by_file = {c.file: c.checksum for c in manifest.chunks} if manifest else {}
    return [by_file.get(name) for name in dataset.table.chunk_names]
