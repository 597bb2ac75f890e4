"""``TorchDataset``: an acumen dataset's samples as tensors, a batch read at once."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset as _TorchDataset
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "acumen.torch needs PyTorch: pip install torch (acumen's 'torch' extra)"
    ) from error

from acumen.read.ahead import chunk_extents, load_chunks
from acumen.read.dataset import Dataset
from acumen.read.opening import open_dataset

Target = bool | str | Sequence[str]


class TorchDataset(_TorchDataset):
    """Samples of an acumen dataset as tensors.

    ``target`` says what comes with each sample: ``None``/``False`` the tensor alone, a column
    name ``(tensor, value)``, a list of names ``(tensor, {name: value})``, ``True`` the whole
    metadata dict. ``fields`` picks fields of a multi-field dataset (a dict of tensors; bytes
    fields stay bytes). ``transform`` is applied to each sample (before batching).
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Dataset,
        *,
        target: Target | None = None,
        transform: Callable[[Any], Any] | None = None,
        fields: Sequence[str] | None = None,
        storage: str | None = None,
        storage_options: dict[str, Any] | None = None,
        cache: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(source, Dataset):
            if fields is not None or storage is not None or storage_options or cache:
                raise ValueError(
                    "for an opened dataset, give fields= and storage= to acumen.open (and "
                    "storage_options=, cache=)"
                )
            dataset = source
        else:
            dataset = open_dataset(
                source,
                storage=storage,
                fields=fields,
                storage_options=storage_options,
                cache=cache,
            )
        self.dataset = dataset
        self.target = target
        self.transform = transform
        #: Set by a prefetching ChunkShuffleSampler: reads stay within a window of chunks,
        #: so a process brings each chunk from the disk cache into memory whole.
        self.chunk_local = False
        #: Whether a batch was read in this process since the sampler's epoch began (else
        #: DataLoader workers read them: the sampler's prefetch waits for the disk cache).
        self.read_here = False
        self._extents: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def chunk_ids(self) -> np.ndarray:
        """Which chunk file each sample is in (for :class:`ChunkShuffleSampler`)."""
        return self.dataset.table.chunk_ids

    def _item(self, sample: Any, position: int) -> Any:
        tensor = sample if isinstance(sample, torch.Tensor) else _as_tensor(sample)
        if self.transform is not None:
            tensor = self.transform(tensor)
        if not self.target:
            return tensor
        metadata = self.dataset.metadata(position)
        if self.target is True:
            return tensor, metadata
        if isinstance(self.target, str):
            return tensor, metadata[self.target]
        return tensor, {name: metadata[name] for name in self.target}

    def __getitem__(self, index: int) -> Any:
        position = self.dataset._position(index)
        return self._item(self.dataset._array(position), position)

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """A batch's samples from one read (the DataLoader collates them)."""
        positions = self.dataset._positions(list(indices))
        self.read_here = True
        if self.chunk_local and self.dataset.storage.batched_reads:
            self._load_chunks(positions)
        batch = self.dataset.read_batch(positions)
        if isinstance(batch, np.ndarray) and batch.flags.writeable and len(batch):
            # One tensor over the new batch array, then a view per sample (no conversion each).
            tensors = torch.from_numpy(batch).unbind(0)
            return [self._item(t, p) for t, p in zip(tensors, positions.tolist(), strict=True)]
        return [self._item(sample, int(p)) for sample, p in zip(batch, positions, strict=True)]

    def _load_chunks(self, positions: np.ndarray) -> None:
        """The chunks of a batch from the disk cache into memory, whole, when the disk cache
        holds them and each fits an eighth of the storage's memory (a window of them, and
        the next, then fit); reads then take their bytes from memory."""
        if self._extents is None:
            self._extents = chunk_extents(self.dataset)
        limit = getattr(self.dataset.storage, "cache_bytes", 0) // 8
        self.dataset._checks.check_positions(positions)
        load_chunks(self.dataset, self._extents, positions, limit)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_extents": None}


def _as_tensor(sample: Any) -> Any:
    if isinstance(sample, dict):
        return {k: v if isinstance(v, bytes) else _as_tensor(v) for k, v in sample.items()}
    array = np.asarray(sample)
    if not array.flags.writeable:  # views on a mapped file: torch wants memory it may write
        array = array.copy()
    return torch.from_numpy(array)
