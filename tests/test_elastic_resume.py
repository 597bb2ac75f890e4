"""Elastic, exactly-once resume: an epoch's order is a pure function of (seed, epoch, data);
ranks take it strided, so the state is one global position, and a run stopped on one
world (ranks x DataLoader-style workers) resumes on another with every remaining sample
handed out once across the new world (plus only the stated padding at the epoch's end).
Ranks are simulated in one process; a DataLoader's workers are simulated by running the
sampler ahead of the loop (``workers x 2`` batches, its prefetch), and one run uses a real
DataLoader with 2 workers."""

from __future__ import annotations

import json
from collections import Counter, deque
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

import acumen  # noqa: E402
from acumen.torch import ChunkShuffleSampler, MixtureSampler, TorchDataset  # noqa: E402

N = 197  # not a multiple of any world size below
BATCH = 4


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("elastic") / "ds"
    with acumen.Writer(out, chunk_size_bytes=4 * 7, durable=False) as writer:  # 7 a chunk
        for i in range(300):
            writer.add(np.array([i], dtype=np.float32), label=i % 5)
    return out


@pytest.fixture(scope="module")
def mixture(tmp_path_factory) -> acumen.Mixture:
    root = tmp_path_factory.mktemp("elastic-mix")
    paths = []
    for k, n in enumerate((61, 90, 46)):
        with acumen.Writer(root / f"s{k}", chunk_size_bytes=4 * 5, durable=False) as writer:
            for i in range(n):
                writer.add(np.array([1000 * k + i], dtype=np.float32), source=k)
        paths.append(root / f"s{k}")
    return acumen.Mixture(paths, weights=[2, 1, 1])


def run(make, world: int, workers: int, state: dict | None, stop: int | None, batches: bool):
    """One run on ``world`` ranks from ``state``: each rank's loop takes ``stop`` batches (or
    every batch), its sampler running ``2 * workers`` batches ahead. Returns the samples the
    loops consumed and the state each rank saves (all the same)."""
    consumed, states = [], []
    for rank in range(world):
        sampler = make(num_replicas=world, rank=rank)
        if state is not None:
            sampler.load_state_dict(state)
            sampler.set_epoch(state["epoch"])  # the loop's set_epoch keeps the position
        if batches:
            source = iter(sampler.batches(BATCH))
        else:
            flat = iter(sampler)
            source = iter(lambda flat=flat: list(islice(flat, BATCH)), [])
        ahead: deque = deque(islice(source, 2 * workers))  # what the workers hold
        taken = 0
        while ahead and (stop is None or taken < stop):
            consumed += list(ahead.popleft())
            taken += 1
            ahead.extend(islice(source, 1))
        states.append(sampler.state_dict(consumed=taken * BATCH))
    assert all(s == states[0] for s in states)
    assert len(json.dumps(states[0])) <= 1024
    return consumed, states[0]


def check_epoch(make, worlds, rng, *, batches: bool = True) -> tuple[list, np.ndarray, int]:
    """The worlds in turn, each stopped at a random batch but the last; the samples consumed
    over the epoch, the epoch's order, and the last world's padding."""
    order = make(num_replicas=1, rank=0).epoch_order()
    state, seen = None, []
    for k, (world, workers) in enumerate(worlds):
        left = len(order) - (state["consumed"] if state else 0)
        share = -(-left // world) // BATCH
        stop = None if k == len(worlds) - 1 else int(rng.integers(0, max(share - 1, 1)))
        got, state = run(make, world, workers, state, stop, batches)
        seen += got
        if stop is None:
            assert state["consumed"] == len(order)
    pad = -(-left // world) * world - left
    return seen, order, pad


@pytest.mark.parametrize("batches", [True, False])
def test_chunk_shuffle_resumes_on_other_worlds_exactly_once(path: Path, batches: bool) -> None:
    with acumen.open(path) as ds:
        data = ds.select(np.arange(N))

    def make(**ranks):
        sampler = ChunkShuffleSampler(data, window=3, seed=11, **ranks)
        sampler.set_epoch(4)
        return sampler

    rng = np.random.default_rng(0)
    for _ in range(3):
        seen, order, pad = check_epoch(make, [(4, 2), (3, 1), (2, 3), (5, 2)], rng, batches=batches)
        assert Counter(seen) == Counter(range(N)) + Counter(order[:pad].tolist())


def test_mixture_resumes_on_other_worlds_exactly_once(mixture: acumen.Mixture) -> None:
    rng = np.random.default_rng(1)

    def whole(**ranks):
        return MixtureSampler(mixture, seed=3, until="all", window=2, **ranks)

    seen, _, pad = check_epoch(whole, [(4, 2), (3, 1), (2, 3), (5, 2)], rng)
    assert len(seen) == len(mixture) + pad
    assert Counter(range(len(mixture))) <= Counter(seen)

    def drawn(**ranks):  # an epoch of draws with replacement: its order, exactly
        return MixtureSampler(mixture, seed=3, num_samples=301, replacement=True, **ranks)

    seen, order, pad = check_epoch(drawn, [(4, 2), (3, 1), (2, 3), (5, 2)], rng)
    assert Counter(seen) == Counter(order.tolist()) + Counter(order[:pad].tolist())


def test_drop_last_leaves_out_only_the_last_world_s_remainder(path: Path) -> None:
    with acumen.open(path) as ds:
        data = ds.select(np.arange(N))

    def make(**ranks):
        return ChunkShuffleSampler(data, seed=2, drop_last=True, **ranks)

    seen, order, _ = check_epoch(make, [(4, 2), (3, 1), (5, 2)], np.random.default_rng(2))
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(order.tolist()) - set(seen) <= set(order[-4:].tolist())  # < 5 left out


def test_a_real_dataloader_with_two_workers_resumes_on_three_ranks(path: Path) -> None:
    data = TorchDataset(path, target="label")
    n = len(data)
    consumed = []
    for rank in range(2):
        sampler = ChunkShuffleSampler(data, seed=5, num_replicas=2, rank=rank)
        loader = DataLoader(data, batch_size=None, sampler=sampler.batches(8), num_workers=2)
        taken = 0
        for x, _ in loader:  # the workers have read batches beyond the loop's
            consumed += x[:, 0].long().tolist()
            taken += 1
            if taken == 5:
                break
        state = sampler.state_dict(consumed=taken * 8)
    assert state["consumed"] == 80
    for rank in range(3):
        sampler = ChunkShuffleSampler(data, seed=5, num_replicas=3, rank=rank)
        sampler.load_state_dict(state)
        consumed += [int(x[0]) for x in data.dataset.read_batch(list(sampler))]
    # 300 - 80 = 220 left = 3 x 74 - 2: the order's first 2 samples pad the last shares.
    order = ChunkShuffleSampler(data, seed=5).epoch_order()
    assert Counter(consumed) == Counter(range(n)) + Counter(order[:2].tolist())


def test_set_epoch_keeps_a_position_and_a_new_epoch_starts_whole(path: Path) -> None:
    with acumen.open(path) as ds:
        sampler = ChunkShuffleSampler(ds, seed=1)
        sampler.set_epoch(3)
        order = sampler.epoch_order().tolist()
        sampler.load_state_dict({**sampler.state_dict(), "consumed": 100})
        sampler.set_epoch(3)
        assert list(sampler) == order[100:] and len(sampler) == len(order)
        sampler.load_state_dict({**sampler.state_dict(), "consumed": 100})
        sampler.set_epoch(4)
        assert len(sampler) == len(order) and sorted(sampler) == list(range(len(order)))
        with pytest.raises(ValueError, match="consumed=301 is not in"):
            sampler.load_state_dict({**sampler.state_dict(), "consumed": 301})
        other = ChunkShuffleSampler(ds, seed=1, window=2)
        with pytest.raises(ValueError, match="other settings"):
            other.load_state_dict(sampler.state_dict())
        with pytest.raises(ValueError, match="other settings"):
            ChunkShuffleSampler(ds.select(np.arange(100)), seed=1).load_state_dict(
                sampler.state_dict()
            )
        # A state of before (one rank's position in a contiguous share) on one rank only.
        sampler.load_state_dict({"epoch": 4, "seed": 1, "start": 7})
        assert sampler.state_dict()["consumed"] == 7
        with pytest.raises(ValueError, match="resume it on one rank"):
            ChunkShuffleSampler(ds, seed=1, num_replicas=2, rank=0).load_state_dict(
                {"epoch": 4, "seed": 1, "start": 7}
            )


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 120),
    first=st.integers(1, 8),
    second=st.integers(1, 8),
    fraction=st.floats(0, 1),
    drop_last=st.booleans(),
)
def test_any_stop_on_any_world_resumes_exactly(
    path: Path, n: int, first: int, second: int, fraction: float, drop_last: bool
) -> None:
    with acumen.open(path) as ds:
        data = ds.select(np.arange(n))
    options = {"window": 2, "seed": 9, "drop_last": drop_last}
    share = len(ChunkShuffleSampler(data, num_replicas=first, rank=0, **options))
    stop = int(fraction * share)
    seen = []
    for rank in range(first):
        sampler = ChunkShuffleSampler(data, num_replicas=first, rank=rank, **options)
        seen += list(islice(sampler, stop))
        state = sampler.state_dict(consumed=stop)
    for rank in range(second):
        sampler = ChunkShuffleSampler(data, num_replicas=second, rank=rank, **options)
        sampler.load_state_dict(state)
        seen += list(sampler)
    counts, whole = Counter(seen), Counter(range(n))
    if drop_last:
        assert max(counts.values(), default=1) == 1
        assert sum((whole - counts).values()) < max(first, second)
    else:
        assert not whole - counts  # every sample, at least once
        assert sum((counts - whole).values()) < max(first, second)  # the padding
