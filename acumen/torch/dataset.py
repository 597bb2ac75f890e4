"""``TorchDataset``: an acumen dataset's samples as tensors, a batch read at once.

Two ways in from a DataLoader. ``ds[indices]`` (a list, as a ``BatchSampler`` gives with
``batch_size=None``) is a whole batch: one ``read_batch``, one tensor per batch (see
:mod:`acumen.torch.batch`), no per-sample objects. ``__getitems__`` (``batch_size=256``)
builds the same batch and hands it out as per-sample items for the DataLoader's collate;
:func:`acumen.torch.collate` takes the batch back without stacking them again.
"""

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
from acumen.read.many import open_many
from acumen.read.opening import open_dataset
from acumen.torch.batch import Samples, collate, column_batch, samples_batch, split, target_items

Target = bool | str | Sequence[str]


class TorchDataset(_TorchDataset):
    """Samples of an acumen dataset as tensors.

    ``target`` says what comes with each sample: ``None``/``False`` the tensor alone, a column
    name ``(tensor, value)``, a list of names ``(tensor, {name: value})``, ``True`` the whole
    metadata dict. ``fields`` picks fields of a multi-field dataset (a dict of tensors; bytes
    fields stay bytes). ``transform`` is applied to each sample, ``batch_transform`` to each
    batch's samples (the tensor, :class:`~acumen.torch.Padded` or dict of fields; not the
    target), in every form: ``ds[i]`` is a batch of one for it.

    ``source``: a dataset's path, an opened dataset, or a list of paths read as one
    (:func:`acumen.open_many`: one sampler shuffles across them, with chunk locality).

    ``ds[i]`` is one sample; ``ds[[i, j, ...]]`` a batch: for
    ``DataLoader(ds, batch_size=None, sampler=BatchSampler(sampler, 256, drop_last=False))``.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Dataset | Sequence[str | os.PathLike[str]],
        *,
        target: Target | None = None,
        transform: Callable[[Any], Any] | None = None,
        batch_transform: Callable[[Any], Any] | None = None,
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
            opener = open_many if isinstance(source, (list, tuple)) else open_dataset
            dataset = opener(
                source,  # type: ignore[arg-type]
                storage=storage,
                fields=fields,
                storage_options=storage_options,
                cache=cache,
            )
        self.dataset = dataset
        self.target = target
        self.transform = transform
        self.batch_transform = batch_transform
        self._columns = _target_columns(dataset, target)
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
        tensor = _as_tensor(sample)
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

    def __getitem__(self, index: Any) -> Any:
        if _is_many(index):
            return self.batch(index)
        position = self.dataset._position(index)
        if self.batch_transform is not None:
            return self.__getitems__([position])[0]
        return self._item(self.dataset._array(position), position)

    def batch(self, indices: Any) -> Any:
        """Samples ``indices`` as one batch: the samples' batch, or ``(samples, target)``."""
        return self._batch(self.dataset._positions(indices))

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """A batch's samples from one read, one item each, for the DataLoader's collate
        (:func:`acumen.torch.collate` takes the batch itself, with no stacking)."""
        positions = self.dataset._positions(list(indices))
        if self.transform is not None and self.batch_transform is None:
            # Each sample transformed and left to the loader's collate_fn: a transform may
            # return what only the user's collate_fn takes.
            samples = [self.transform(s) for s in _sample_tensors(self._read(positions))]
            if not self.target:
                return samples
            return list(zip(samples, target_items(self._target(positions)), strict=True))
        batch = self._batch(positions)
        if self.target:
            samples, target = batch
            items = Samples(zip(split(samples), target_items(target), strict=True))
        else:
            items = Samples(split(batch))
        items.batch = batch
        return items

    def _read(self, positions: np.ndarray, out: np.ndarray | None = None) -> Any:
        """``read_batch`` of ``positions``, whole chunks loaded first for a prefetching sampler."""
        self.read_here = True
        if self.chunk_local and self.dataset.storage.batched_reads:
            self._load_chunks(positions)
        return gather(self.dataset, positions, out)

    def _batch(self, positions: np.ndarray, out: np.ndarray | None = None) -> Any:
        """The batch of ``positions`` as every batch form yields it (``out``: an array of
        the batch's shape to read it into, for a dataset of one shape)."""
        read = self._read(positions, out)
        if self.transform is None:
            samples = samples_batch(read)
        else:
            samples = collate([self.transform(s) for s in _sample_tensors(read)])
        if self.batch_transform is not None:
            samples = self.batch_transform(samples)
        if not self.target:
            return samples
        return samples, self._target(positions)

    def _target(self, positions: np.ndarray) -> Any:
        """The target of a batch: a column's values, or a dict of columns."""
        metadata = self.dataset.table.metadata
        if isinstance(self.target, str):
            return column_batch(metadata, self.target, positions)
        return {name: column_batch(metadata, name, positions) for name in self._columns}

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


def gather(dataset: Dataset, positions: np.ndarray, out: np.ndarray | None = None) -> Any:
    """The one place a batch's samples are read (every loader's reads come here); into
    ``out`` (an array of the batch's shape and dtype) when given: BatchLoader reads each
    batch into an array it hands out again once the loop has let go of it (a new array's
    pages are faulted in on first write: for images that costs more than the copy)."""
    return dataset._batch(positions, None, out)  # positions checked already (_positions)


def _target_columns(dataset: Dataset, target: Target | None) -> list[str]:
    """The metadata columns a target names (checked here, at once, not at the first batch)."""
    if not target:
        return []
    names = dataset.columns
    wanted = names if target is True else [target] if isinstance(target, str) else list(target)
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise ValueError(
            f"target: {dataset.root} has no metadata column(s) {unknown}; its columns: {names}"
        )
    return wanted


def _is_many(index: Any) -> bool:
    """Whether ``index`` asks for a batch (a list, tuple, range or 1-d array of indices)."""
    if isinstance(index, (list, tuple, range)):
        return True
    return isinstance(index, (np.ndarray, torch.Tensor)) and index.ndim > 0


def _sample_tensors(read: Any) -> list[Any]:
    """What ``read_batch`` returned as one tensor (or dict of them) per sample."""
    if isinstance(read, np.ndarray) and read.flags.writeable:
        return list(torch.from_numpy(read).unbind(0))
    return [_as_tensor(sample) for sample in read]


def _as_tensor(sample: Any) -> Any:
    if isinstance(sample, torch.Tensor):
        return sample
    if isinstance(sample, dict):
        return {k: v if isinstance(v, bytes) else _as_tensor(v) for k, v in sample.items()}
    array = np.asarray(sample)
    if not array.flags.writeable:  # views on a mapped file: torch wants memory it may write
        array = array.copy()
    return torch.from_numpy(array)
