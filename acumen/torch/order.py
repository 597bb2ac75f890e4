"""What every acumen sampler shares: an epoch's order, split strided across ranks, resumable.

An epoch's order is a pure function of (seed, epoch, the data and the sampler's settings):
:meth:`EpochSampler._plan`, which a subclass defines. Rank ``r`` of ``world`` takes the
order strided: positions ``origin + r``, ``origin + r + world``, ... where ``origin`` is
where the pass began (0, or the point :meth:`EpochSampler.load_state_dict` restored). So
once every rank has consumed ``n`` samples, exactly the first ``origin + n * world`` of the
order are consumed, whatever ``world`` is: the state is one number (with the epoch and the
seed), and a run resumed on another number of ranks or workers goes on with the rest of the
same order, each remaining sample once across the new world.

The end of a pass: without ``drop_last`` every rank gets ``ceil(left / world)`` samples,
the last ``world - 1`` at most padded with the order's first samples again (DDP needs equal
shares); with ``drop_last`` ``floor(left / world)``, the last ``left % world`` left out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from acumen.read.ahead import ahead_pieces
from acumen.read.dataset import Dataset
from acumen.torch.dataset import TorchDataset


class EpochSampler(Sampler[int]):
    """A sampler of an epoch order split strided across ranks (the module's docstring), with
    resume state, whole-batch arrays (:meth:`batches`) and, over a remote dataset, the bytes
    of the next windows fetched ahead. Subclasses define :meth:`_plan` and :meth:`_settings`."""

    def __init__(
        self,
        data: Dataset | TorchDataset,
        dataset: Dataset,
        *,
        seed: int,
        num_replicas: int | None,
        rank: int | None,
        drop_last: bool,
        prefetch: int,
    ) -> None:
        dist = torch.distributed
        in_ddp = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if in_ddp else 1
        if rank is None:
            rank = dist.get_rank() if in_ddp else 0
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be at least 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.prefetch = max(0, int(prefetch))
        # Only a remote dataset is prefetched for (a local one reads at disk speed).
        self._dataset = dataset if self.prefetch and dataset.storage.batched_reads else None
        self._data = data if isinstance(data, TorchDataset) else None
        if self._dataset is not None and self._data is not None:
            data.chunk_local = True  # its workers then read whole chunks from the disk cache
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.epoch = 0
        #: Where this epoch's pass (or the last one) began in the order: 0, or where a
        #: resume put it. Kept once the pass is over: the loop may still be consuming it.
        self._origin = 0
        #: This rank's samples handed out since ``_origin`` (while no live iterator runs).
        self._start = 0
        #: Whether the last pass is over (the next one is then a whole epoch).
        self._over = False
        #: The iterator of a local pass, its first sample and length: ``start`` follows it.
        self._live: tuple[Iterator[int], int, int] | None = None
        self._cached: tuple[Any, tuple[np.ndarray, list[int]]] | None = None

    # --- what a subclass defines ----------------------------------------------------------
    def _compute(self, epoch: int) -> tuple[np.ndarray, list[int]]:
        """Epoch ``epoch``'s order (positions) and where its windows end: a pure function of
        the seed, the epoch, the data and :meth:`_settings`."""
        raise NotImplementedError

    def _settings(self) -> tuple:
        """What besides seed and epoch decides the order (its hash is in the state)."""
        raise NotImplementedError

    def _epoch_length(self, epoch: int) -> int:
        return len(self._plan(epoch)[0])

    # --- the order and this rank's part of it --------------------------------------------
    def _plan(self, epoch: int | None = None) -> tuple[np.ndarray, list[int]]:
        """The order of ``epoch`` (this one by default), kept for the latest epoch asked."""
        epoch = self.epoch if epoch is None else epoch
        key = (self.seed, epoch, self._settings())
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, self._compute(epoch))
        return self._cached[1]

    def epoch_order(self) -> np.ndarray:
        """Every rank's samples of this epoch, in order, before the split (no padding)."""
        return self._plan()[0]

    def _position(self) -> tuple[int, int]:
        """(origin, this rank's samples handed out since it); (0, 0) once a pass is over."""
        live = self._live
        if self._over:
            return 0, 0
        if live is None:
            return self._origin, self._start
        positions, first, count = live
        left = positions.__length_hint__()  # type: ignore[attr-defined]
        return (self._origin, first + count - left) if left else (0, 0)

    @property
    def start(self) -> int:
        """This rank's samples handed out since the pass began (at the epoch's start, or where
        :meth:`load_state_dict` put it); 0 once a pass is over."""
        return self._position()[1]

    @start.setter
    def start(self, value: int) -> None:
        """Where the loop stands in the current (or last) pass: the next pass starts there."""
        self._live = None
        self._over = False
        self._start = value
        if value and value >= self._share(self._origin):
            self._finish()

    def _begin(self) -> tuple[int, int]:
        """A pass begins: where in the order (and this rank's samples handed out)."""
        origin, start = self._position()
        self._live = None
        self._over = False
        self._origin, self._start = origin, start
        return origin, start

    def _finish(self) -> None:
        """A pass is over: the next one is a whole epoch (``_origin`` stays that pass's)."""
        self._live = None
        self._over = True
        self._start = 0

    def _share(self, origin: int, epoch: int | None = None) -> int:
        """This rank's samples in a pass that begins at ``origin``."""
        left = max(self._epoch_length(self.epoch if epoch is None else epoch) - origin, 0)
        world = self.num_replicas
        return left // world if self.drop_last else -(-left // world)

    @property
    def per_rank(self) -> int:
        return len(self)

    def __len__(self) -> int:
        return self._share(self._position()[0])

    def set_epoch(self, epoch: int) -> None:
        """Another epoch starts at its beginning; the same epoch keeps its position (so a
        loop that calls ``set_epoch`` after :meth:`load_state_dict` resumes there)."""
        if epoch != self.epoch:
            self.epoch = epoch
            self._live = None
            self._origin = self._start = 0
            self._over = False

    def _rest(self) -> tuple[np.ndarray, list[int]]:
        """This rank's positions not handed out yet, and where its windows end in them."""
        order, cuts = self._plan()
        n = len(order)
        origin, start = self._position()
        world = self.num_replicas
        end = origin + self._share(origin) * world
        first = origin + start * world + self.rank
        rest = order[first:end:world]
        if end > n and n:  # padded with the order's first samples again
            padding = np.arange(first + max(0, -(-(n - first) // world)) * world, end, world)
            rest = np.concatenate([rest, order[padding % n]])
            cuts = [*cuts, n]
        inside = [-(-(c - first) // world) for c in cuts if first < c < end]
        return rest, [c for c in inside if 0 < c < len(rest)]

    def __iter__(self) -> Iterator[int]:
        _, start = self._begin()
        rest, inside = self._rest()
        if self._dataset is not None and len(rest):
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
        self._finish()

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

    def batches(self, batch_size: int, drop_last: bool = False) -> ChunkBatches:
        """This order in batches of positions, as ``BatchSampler(self, batch_size,
        drop_last)`` gives them, but each an array cut from the order (no Python per
        sample): ``DataLoader(ds, batch_size=None, sampler=sampler.batches(256))``."""
        return ChunkBatches(self, batch_size, drop_last)

    # --- resuming ------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        text = repr((type(self).__name__, self._settings()))
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Where this epoch stands, as a position in the epoch's order that every world size
        shares: ``{"epoch", "seed", "consumed", "samples", "order"}`` (a few dozen bytes).

        ``consumed``: the samples this rank's loop has used since the pass began (the
        epoch's start, or the :meth:`load_state_dict` it resumed from), even when the
        sampler has run to the pass's end ahead of the loop; every rank has used as many in
        DDP, so the state is the same on every rank. Give it: a DataLoader's workers
        prefetch, so the sampler itself runs a few batches ahead. Without it, the samples
        the sampler has handed out (0 once a pass is over)."""
        if consumed is None:
            origin, here = self._position()
        else:
            origin, here = self._origin, int(consumed)
        if here < 0:
            raise ValueError(f"consumed must be 0 or more samples, got {consumed}")
        n = self._epoch_length(self.epoch)
        return {
            "epoch": self.epoch,
            "seed": self.seed,
            "consumed": min(origin + here * self.num_replicas, n),  # padding counts no more
            "samples": n,
            "order": self._fingerprint(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from ``state`` (:meth:`state_dict`, saved under any number of ranks and
        workers): the next pass is the rest of that epoch's order, split across this world."""
        if state.get("seed", self.seed) != self.seed:
            raise ValueError(f"the state is of seed {state['seed']}, this sampler's is {self.seed}")
        if state.get("order", self._fingerprint()) != self._fingerprint():
            raise ValueError(
                f"the state was saved by a {type(self).__name__} of other settings "
                f"({self._describe()} here): its order is another; resume with the settings "
                "it was saved with"
            )
        epoch = int(state["epoch"])
        n = self._epoch_length(epoch)
        if "consumed" in state:
            consumed = int(state["consumed"])
        elif "start" in state and self.num_replicas == 1:
            consumed = int(state["start"])  # saved by an earlier version: one rank's place
        else:
            raise ValueError(
                "the state has no 'consumed' (a state saved with 'start' gave one rank's "
                "position in a contiguous share: resume it on one rank, or start the epoch "
                "again)"
            )
        if state.get("samples", n) != n:
            raise ValueError(
                f"the state is of an epoch of {state['samples']} samples, this sampler's epoch "
                f"{epoch} has {n}: resume over the same data"
            )
        if not 0 <= consumed <= n:
            raise ValueError(f"the state's consumed={consumed} is not in [0, {n}]")
        self.epoch = epoch
        self._live = None
        self._origin, self._start, self._over = consumed, 0, False

    def _describe(self) -> str:
        return ", ".join(f"{v}" for v in self._settings())


class ChunkBatches(Sampler[np.ndarray]):
    """A sampler's order as arrays of ``batch_size`` positions (the last one smaller unless
    ``drop_last``); ``start``, ``state_dict`` and ``set_epoch`` stay the sampler's (a batch
    counts as handed out once yielded)."""

    def __init__(self, sampler: EpochSampler, batch_size: int, drop_last: bool) -> None:
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
        _, first = sampler._begin()
        rest, inside = sampler._rest()
        if sampler._dataset is not None:  # prefetching: each block once its bytes are here
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
            sampler._finish()
            return
        stop = len(rest) - len(rest) % size if self.drop_last else len(rest)
        for at in range(0, stop, size):
            positions = rest[at : at + size]
            sampler._start = first + at + len(positions)
            yield positions
        sampler._finish()
