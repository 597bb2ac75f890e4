"""``acumen.Writer``: add samples one by one; the dataset appears complete only at the end.

Order of work: claim the folder with a marker file, append payloads to chunk files, write
the index under a temporary name and rename it, write ``manifest.json`` atomically (the
commit point), remove the marker. An interrupted or failed write leaves the marker, so
the folder is reported as incomplete, never read as a dataset, and nothing is deleted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from acumen import plugins
from acumen.abc.codec import Buffer
from acumen.chunk_writer import ChunkWriter
from acumen.encoding import SampleEncoder
from acumen.errors import DatasetExistsError
from acumen.index_builder import IndexBuilder
from acumen.layout import create_writing_marker, fsync_directory, replace_durably
from acumen.manifest import Manifest
from acumen.plugins import PluginSpec

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 10 * 1024 * 1024  # the original's default: 10 MiB


class Writer:
    """Writes a dataset to ``output_path``, which must not exist or be an empty folder.

    >>> with acumen.Writer("my_data", codec="zstd", dtype="float16") as writer:
    ...     writer.add(np.zeros((4, 3)), label=1, name="a")
    """

    def __init__(
        self,
        output_path: str | os.PathLike[str],
        *,
        codec: PluginSpec = "raw",
        index_format: PluginSpec = "csv",
        chunk_size_bytes: int = DEFAULT_CHUNK_SIZE,
        dtype: Any = None,
        durable: bool = True,
    ) -> None:
        self.root = Path(output_path)
        self.codec = plugins.codec(codec)
        self.index_format = plugins.index_format(index_format)
        self._encoder = SampleEncoder(self.codec, dtype)
        self._chunks = ChunkWriter(self.root, chunk_size_bytes, durable)  # checks the limit
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise DatasetExistsError(
                f"{self.root} already exists and is not an empty folder; acumen never writes "
                "over data: choose a new path or remove it"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self._marker = create_writing_marker(self.root)
        self._index = IndexBuilder()
        self._closed = False
        self.manifest: Manifest | None = None

    def __len__(self) -> int:
        return len(self._index)

    @property
    def dtype(self) -> np.dtype | None:
        return self._encoder.dtype

    def add(self, array: Any, /, **metadata: Any) -> int:
        """Append one sample; return its position. Errors name the sample."""
        self._check_open()
        sample = len(self._index)
        dtype = self._encoder.dtype
        try:
            payload, shape = self._encoder.encode(array, sample)
            self._index.check_metadata(metadata, sample)
        except Exception:
            self._encoder.dtype = dtype  # a refused first sample must not fix the dtype
            raise
        return self._append(payload, shape)

    def add_encoded(
        self, payload: Buffer, shape: tuple[int, ...], metadata: Mapping[str, Any], label: str
    ) -> int:
        """Append a sample encoded elsewhere (a worker process) with this writer's codec."""
        self._check_open()
        self._index.check_metadata(metadata, label)
        return self._append(payload, shape)

    def _append(self, payload: Buffer, shape: tuple[int, ...]) -> int:
        chunk, offset, size = self._chunks.write(payload)
        self._index.add(chunk, offset, size, tuple(shape))
        return len(self._index) - 1

    def close(self) -> Manifest:
        """Finish the dataset: index, then manifest, then drop the marker."""
        self._check_open()
        self._closed = True
        chunks = self._chunks.close()
        table = self._index.finish([c.file for c in chunks])
        dtype = self._encoder.dtype if self._encoder.dtype is not None else np.dtype("<f2")
        index_file = self.index_format.filename
        temporary = self.root / f".{index_file}.tmp-{os.getpid()}"
        self.index_format.write(table, temporary)
        replace_durably(temporary, self.root / index_file)
        self.manifest = Manifest(
            n_samples=len(table),
            dtype=dtype,
            shape=table.shapes.fixed if len(table) else None,
            codec=self.codec.get_config(),
            index={**self.index_format.get_config(), "file": index_file},
            chunks=chunks,
            chunk_size_bytes=self._chunks.limit,
            metadata=table.metadata.specs,
            plugins={
                "codec": _provenance("codec", self.codec.name),
                "index": _provenance("index_format", self.index_format.name),
            },
        )
        self.manifest.write(self.root)
        self._marker.unlink()
        fsync_directory(self.root)
        logger.info("wrote %d samples in %d chunks to %s", len(table), len(chunks), self.root)
        return self.manifest

    def abort(self) -> None:
        """Stop without finishing: files stay, the marker keeps the folder marked incomplete."""
        if not self._closed:
            self._closed = True
            self._chunks.abandon()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the writer of {self.root} is closed")

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _provenance(kind: str, name: str) -> dict[str, str | None]:
    registration = plugins.registry().entries(kind).get(name)
    if registration is None:
        return {"distribution": None, "version": None}
    return {"distribution": registration.distribution, "version": registration.version}
