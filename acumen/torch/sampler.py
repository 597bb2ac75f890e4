"""``ChunkShuffleSampler``: a locality-aware shuffle over chunk windows, prefetching remotely."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from acumen.read.ahead import AHEAD_BYTES, ahead_pieces
from acumen.read.dataset import Dataset
from acumen.read.order import chunk_window_order
from acumen.torch.dataset import TorchDataset


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


class ChunkShuffleSampler(Sampler[int]):
    """Shuffles chunk order, then samples within a window of ``window`` chunks at a time.

    Reads stay within a few chunk files at once (which matters on disks and remote storage)
    while the order is still well mixed. The order is a function of ``seed`` and the epoch
    (:meth:`set_epoch`); with ``num_replicas`` it is split into equal contiguous shares, one
    per DDP rank (padded by repeating samples, or cut with ``drop_last``). :meth:`state_dict`
    and :meth:`load_state_dict` resume in the middle of an epoch.

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
        dist = torch.distributed
        in_ddp = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if in_ddp else 1
        if rank is None:
            rank = dist.get_rank() if in_ddp else 0
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        dataset = _dataset_of(data)
        self.chunk_ids = np.asarray(dataset.table.chunk_ids)
        self.prefetch = max(0, int(prefetch))
        # Only a remote dataset is prefetched for (a local one reads at disk speed).
        self._dataset = dataset if self.prefetch and dataset.storage.batched_reads else None
        self._data = data if isinstance(data, TorchDataset) else None
        if self._dataset is not None and self._data is not None:
            data.chunk_local = True  # its workers then read whole chunks from the disk cache
        self.window = window
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.epoch = 0
        self._start = 0
        #: The iterator of a local pass, its first sample and length: ``start`` follows it.
        self._live: tuple[Iterator[int], int, int] | None = None
        n = len(self.chunk_ids)
        if drop_last:
            self.per_rank = n // num_replicas
        else:
            self.per_rank = -(-n // num_replicas)

    @property
    def start(self) -> int:
        """Samples of this epoch already handed out (for resuming); 0 once a pass is over."""
        live = self._live
        if live is None:
            return self._start
        positions, first, count = live
        left = positions.__length_hint__()  # type: ignore[attr-defined]
        return first + count - left if left else 0

    @start.setter
    def start(self, value: int) -> None:
        self._live = None
        self._start = value

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.start = 0

    def epoch_order(self) -> np.ndarray:
        """Every rank's samples of this epoch, in order, before the split."""
        return self._plan()[0]

    def _plan(self) -> tuple[np.ndarray, list[int]]:
        """This epoch's order and where each of its windows ends."""
        n = len(self.chunk_ids)
        cuts: list[int] = []
        if not self.shuffle:
            order = np.arange(n)
        else:  # the one order function (acumen.shuffle_report measures the same)
            order, cuts = chunk_window_order(self.chunk_ids, self.window, self.seed, self.epoch)
        total = self.per_rank * self.num_replicas
        if total > n and n:
            order = np.concatenate([order, order[: total - n]])  # pad with samples again
            cuts.append(n)
        return order[:total], cuts

    def __iter__(self) -> Iterator[int]:
        start = self.start
        rest, inside = self._rest()
        if self._dataset is not None and len(rest):
            self._live = None
            return self._fetched(rest, inside)
        # A list's own iterator (no Python code per sample: a loader takes millions a
        # second); ``start`` reads how far it has gone.
        positions = iter(rest.tolist())
        self._live = (positions, start, len(rest))
        return positions

    def _fetched(self, rest: np.ndarray, inside: list[int]) -> Iterator[int]:
        """This rank's rest of the epoch, each window handed out once its bytes are here."""
        for piece in self._pieces(rest, inside):
            for position in piece.tolist():
                self._start += 1
                yield position
        self._start = 0

    def _pieces(self, rest: np.ndarray, inside: list[int]) -> Iterator[np.ndarray]:
        """:meth:`_fetched`'s positions as arrays (``start`` is the caller's to advance)."""
        data = self._data
        if data is not None:
            data.read_here = False  # until a batch is read here: workers may read them
        return ahead_pieces(
            self._dataset,  # type: ignore[arg-type]
            rest,
            inside,
            self.prefetch,
            None if data is None else lambda: not data.read_here,
        )

    def _rest(self) -> tuple[np.ndarray, list[int]]:
        """This rank's positions not handed out yet, and where its windows end in them."""
        order, cuts = self._plan()
        first = self.rank * self.per_rank + self.start
        rest = order[first : (self.rank + 1) * self.per_rank]
        return rest, [c - first for c in cuts if first < c < first + len(rest)]

    def __len__(self) -> int:
        return self.per_rank

    def batches(self, batch_size: int, drop_last: bool = False) -> ChunkBatches:
        """This order in batches of positions, as ``BatchSampler(self, batch_size,
        drop_last)`` gives them, but each an array cut from the order (no Python per
        sample): ``DataLoader(ds, batch_size=None, sampler=sampler.batches(256))``."""
        return ChunkBatches(self, batch_size, drop_last)

    def state_dict(self, consumed: int | None = None) -> dict[str, int]:
        """Where this epoch stands. Give ``consumed``, the samples your loop has used: a
        DataLoader's workers prefetch, so the sampler itself runs a few batches ahead."""
        start = self.start if consumed is None else consumed
        return {"epoch": self.epoch, "seed": self.seed, "start": start}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise ValueError(f"the state is of seed {state['seed']}, this sampler's is {self.seed}")
        self.epoch = int(state["epoch"])
        self.start = int(state["start"])


class ChunkBatches(Sampler[np.ndarray]):
    """A :class:`ChunkShuffleSampler`'s order as arrays of ``batch_size`` positions (the last
    one smaller unless ``drop_last``); ``start``, ``state_dict`` and ``set_epoch`` stay the
    sampler's (a batch counts as handed out once yielded)."""

    def __init__(self, sampler: ChunkShuffleSampler, batch_size: int, drop_last: bool) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __len__(self) -> int:
        n, size = len(self.sampler), self.batch_size
        return n // size if self.drop_last else -(-n // size)

    def __iter__(self) -> Iterator[np.ndarray]:
        sampler, size = self.sampler, self.batch_size
        if sampler._dataset is not None:  # prefetching: each block once its bytes are here
            rest, inside = sampler._rest()
            sampler._live = None
            held: list[np.ndarray] = []
            count = 0
            for piece in sampler._pieces(rest, inside) if len(rest) else ():
                held.append(piece)
                count += len(piece)
                while count >= size:
                    joined = np.concatenate(held) if len(held) > 1 else held[0]
                    held = [joined[size:]] if len(joined) > size else []
                    count -= size
                    sampler._start += size
                    yield joined[:size]
            if count and not self.drop_last:
                sampler._start += count
                yield np.concatenate(held)
            sampler._start = 0
            return
        first = sampler.start
        rest, _ = sampler._rest()
        stop = len(rest) - len(rest) % size if self.drop_last else len(rest)
        for at in range(0, stop, size):
            positions = rest[at : at + size]
            sampler.start = first + at + len(positions)
            yield positions
        sampler.start = 0
