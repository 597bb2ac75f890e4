"""``ChunkShuffleSampler``: a locality-aware shuffle over chunk windows, prefetching remotely."""

from __future__ import annotations

import os

import numpy as np
import torch

from acumen.read.ahead import AHEAD_BYTES
from acumen.read.dataset import Dataset
from acumen.read.order import chunk_window_order
from acumen.torch.dataset import TorchDataset
from acumen.torch.order import ChunkBatches, EpochSampler

__all__ = ["ChunkBatches", "ChunkShuffleSampler"]


def _dataset_of(data: object) -> Dataset:
    """The acumen dataset of what a sampler was given; a clear TypeError for anything else
    (the sampler needs each sample's chunk, which only an acumen dataset knows)."""
    if isinstance(data, TorchDataset):
        return data.dataset
    if isinstance(data, Dataset):
        return data
    kind = type(data).__name__
    hint = ""
    if isinstance(data, torch.utils.data.ConcatDataset):
        hint = (
            "; for several acumen datasets use one view, acumen.open_many([a, b]) (its chunk "
            "ids span every part): ChunkShuffleSampler(acumen.open_many([a, b])) and "
            "TorchDataset(acumen.open_many([a, b]))"
        )
    elif isinstance(data, (str, os.PathLike)):
        hint = f"; open the path first: ChunkShuffleSampler(TorchDataset({str(data)!r}))"
    raise TypeError(
        f"ChunkShuffleSampler takes an acumen.torch.TorchDataset or an acumen.Dataset (it "
        f"needs the chunk of each sample), got {kind}{hint}"
    )


class ChunkShuffleSampler(EpochSampler):
    """Shuffles chunk order, then samples within a window of ``window`` chunks at a time.

    Reads stay within a few chunk files at once (which matters on disks and remote storage)
    while the order is still well mixed. The order of an epoch is a pure function of
    ``seed``, the epoch (:meth:`set_epoch`) and the dataset. With ``num_replicas`` each DDP
    rank takes it strided (rank ``r`` the samples ``r``, ``r + world``, ...), in shares of
    equal length (the last ``world - 1`` at most padded with the order's first samples, or
    cut with ``drop_last``). :meth:`state_dict` and :meth:`load_state_dict` resume in the
    middle of an epoch, on any number of ranks and workers (see :mod:`acumen.torch.order`).

    Over a remote dataset the sampler prefetches: it fetches the next windows' bytes in the
    background (a window of chunk files in a few large GETs, kept in memory and in the disk
    cache shared by every process on the machine) and hands out a window's samples only once
    its bytes are there, so DataLoader workers read them with no request. ``prefetch``: the
    bytes fetched ahead of the samples handed out (default 128 MiB; the storage keeps up to
    its ``cache_bytes``, 256 MiB, in memory); 0 turns it off. A local dataset is not
    touched (no thread, no cost).
    """

    def __init__(
        self,
        data: Dataset | TorchDataset,
        *,
        window: int = 4,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        prefetch: int = AHEAD_BYTES,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1 chunk, got {window}")
        dataset = _dataset_of(data)
        super().__init__(
            data,
            dataset,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            drop_last=drop_last,
            prefetch=prefetch,
        )
        self.chunk_ids = np.asarray(dataset.table.chunk_ids)
        self._chunks = len(dataset.table.chunk_names or ())
        self.window = window
        self.shuffle = shuffle

    def _settings(self) -> tuple:
        n = len(self.chunk_ids)
        return (
            f"{n} samples",
            f"{self._chunks} chunks",
            f"window={self.window}",
            f"shuffle={self.shuffle}",
        )

    def _epoch_length(self, epoch: int) -> int:
        return len(self.chunk_ids)

    def _compute(self, epoch: int) -> tuple[np.ndarray, list[int]]:
        if not self.shuffle:
            return np.arange(len(self.chunk_ids)), []
        # the one order function (acumen.shuffle_report measures the same)
        return chunk_window_order(self.chunk_ids, self.window, self.seed, epoch)
