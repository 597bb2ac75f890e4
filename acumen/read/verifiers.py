"""Checks that wrap a dataset's reads: ``acumen.open(..., verify="chunk" | "sample")``.

They also serve ``acumen verify``, which checks everything at once (:mod:`acumen.verify`),
and ``acumen recode``. They take what they check (paths, the index table, the manifest's
checksums), not the dataset.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from acumen.errors import CorruptDatasetError, sample_error
from acumen.files.local import open_regular
from acumen.format.checksums import file_checksum
from acumen.format.index_table import IndexTable
from acumen.format.manifest import Manifest


def unreadable(path: str | os.PathLike[str], error: OSError) -> str:
    """A report line for a file the system would not read (permissions, an I/O error)."""
    return f"{error.filename or path}: cannot be read: {error.strerror or error}"


def check_chunk(path: str, expected: str | None) -> str | None:
    """The problem with the chunk file at ``path``, or None (always None without a checksum)."""
    return None if expected is None else chunk_problem(path, expected)[0]


def chunk_problem(path: str, expected: str | None) -> tuple[str | None, bool]:
    """(the problem with the chunk file at ``path`` or None, whether it could not be read at
    all). Without a checksum to compare with, the file is only opened: one that cannot be
    read is still reported."""
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
    payload, with a valid checksum of its own) is caught. ``paths``: the chunk files, by id.
    """

    def __init__(self, root: Path, table: IndexTable, paths: Sequence[str]) -> None:
        if table.checksums is None:
            raise ValueError(
                f"{root} keeps no per-sample checksums (write it with "
                "checksums='sample'); use verify='chunk'"
            )
        self.expected = memoryview(table.checksums.view(np.uint64))
        self.root = root
        self.table = table
        self.paths = paths

    def __call__(self, i: int, data: Any) -> None:
        if xxhash.xxh3_64_intdigest(data) != self.expected[i]:
            chunk, offset, size = self.table.locate(i)
            raise sample_error(
                self.root,
                i,
                f"the payload's checksum differs from the index's ({self.paths[chunk]}, bytes "
                f"{offset}..{offset + size}: the payload, or the row that locates it, is damaged)",
            )


class ChunkVerifier:
    """A read function that checks each chunk's checksum the first time it is touched.

    Used by ``acumen.open(..., verify="chunk")``; without it reads cost nothing extra.
    ``read``: the storage's; ``paths`` and ``expected`` (:func:`chunk_checksums`): each
    chunk file's path and checksum, by id.
    """

    def __init__(
        self,
        read: Callable[[int, int, int], Any],
        paths: Sequence[str],
        expected: Sequence[str | None],
    ) -> None:
        self.expected = list(expected)
        self.verified = [False] * len(self.expected)
        self.paths = paths
        self.read = read

    def __call__(self, chunk_id: int, offset: int, size: int):
        if not self.verified[chunk_id]:
            problem = check_chunk(self.paths[chunk_id], self.expected[chunk_id])
            if problem:
                raise CorruptDatasetError(problem)
            self.verified[chunk_id] = True
        return self.read(chunk_id, offset, size)


def chunk_checksums(manifest: Manifest | None, chunk_names: Sequence[str]) -> list[str | None]:
    """Each chunk's checksum in the manifest, by chunk id (None: none recorded)."""
    by_file = {c.file: c.checksum for c in manifest.chunks} if manifest else {}
    return [by_file.get(name) for name in chunk_names]
