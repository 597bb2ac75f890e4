"""``acumen.Mixture`` and ``acumen.torch.MixtureSampler``: sources with weights read as one
dataset (``locate``, reads, pickling, checked weights); draws deterministic for a seed and
epoch, in the weights' proportions, each source in its own chunk-window order (few chunks a
batch), epochs by a total or by a source read through, DDP shares of equal length, and the
mixture through TorchDataset + DataLoader workers, BatchLoader and a remote store."""

from __future__ import annotations

import math
import pickle
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

import acumen  # noqa: E402
from acumen.torch import BatchLoader, MixtureSampler, TorchDataset  # noqa: E402

SIZES = (60, 150, 40)  # 5 samples a chunk: 12, 30 and 8 chunks
PER_CHUNK = 5


def value(source: int, position: int) -> int:
    return 1000 * source + position


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("mixture")
    out = []
    for k, n in enumerate(SIZES):
        path = root / f"s{k}"
        with acumen.Writer(path, chunk_size_bytes=8 * PER_CHUNK, durable=False) as writer:
            for i in range(n):
                writer.add(np.array([value(k, i), k], dtype=np.float32), source=k)
        out.append(path)
    return out


@pytest.fixture(scope="module")
def mixture(paths: list[Path]) -> acumen.Mixture:
    return acumen.Mixture(paths, weights=[2, 1, 1])


def test_a_mixture_is_its_sources_read_as_one(mixture: acumen.Mixture, paths) -> None:
    assert len(mixture) == sum(SIZES)
    assert mixture.weights == pytest.approx((0.5, 0.25, 0.25))
    assert mixture.lengths.tolist() == list(SIZES)
    every = mixture.read_batch(np.arange(len(mixture)))
    for i in (0, 59, 60, 209, 210, 249):
        source, position = mixture.locate(i)
        assert every[i].tolist() == [value(source, position), source]
        assert mixture.read(i).tolist() == every[i].tolist()
    again = pickle.loads(pickle.dumps(mixture))
    assert type(again) is acumen.Mixture and again.weights == mixture.weights
    assert np.array_equal(again.read_batch(np.arange(len(again))), every)
    by_size = acumen.Mixture([acumen.open(p) for p in paths])  # None: by samples
    assert by_size.weights == pytest.approx([n / sum(SIZES) for n in SIZES])
    assert "acumen.Mixture of 3 datasets" in repr(mixture)


@pytest.mark.parametrize(
    "weights, error, match",
    [
        ([1, 2], ValueError, "2 weights for 3 sources"),
        ([1, 0, 1], ValueError, "source 1 .* is 0; weights must be positive"),
        ([1, -1, 1], ValueError, "weights must be positive and finite"),
        ([1, math.nan, 1], ValueError, "source 1 .* is nan"),
        ([1, 1, math.inf], ValueError, "source 2 .* is inf"),
        ([1, "a", 1], TypeError, "source 1 .* is 'a', not a number"),
        ("abc", TypeError, "weights must be a list of numbers"),
    ],
)
def test_weights_are_checked(paths, weights, error, match) -> None:
    with pytest.raises(error, match=match):
        acumen.Mixture(paths, weights=weights)


def test_sources_are_checked(paths, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="a list of datasets or paths"):
        acumen.Mixture(paths[0], weights=[1])
    with pytest.raises(ValueError, match="at least one dataset"):
        acumen.Mixture([], weights=[])
    with pytest.raises(TypeError, match="source 1 is a int"):
        acumen.Mixture([paths[0], 3])
    with acumen.Writer(tmp_path / "empty", durable=False):
        pass
    with pytest.raises(ValueError, match=r"source 1 \(.*empty\) has no samples"):
        acumen.Mixture([paths[0], tmp_path / "empty"], weights=[1, 1])
    with pytest.raises(ValueError, match=r"the options .* are for paths"):
        acumen.Mixture([acumen.open(paths[0])], storage="seek")
    with pytest.raises(TypeError, match=r"MixtureSampler takes an acumen\.Mixture"):
        MixtureSampler(acumen.open(paths[0]))  # type: ignore[arg-type]


def test_sampler_settings_are_checked(mixture: acumen.Mixture) -> None:
    with pytest.raises(ValueError, match=r"give num_samples .* or until"):
        MixtureSampler(mixture, num_samples=10, until="all")
    with pytest.raises(ValueError, match="more than the mixture's 250 samples"):
        MixtureSampler(mixture, num_samples=251)
    with pytest.raises(ValueError, match=r"until must be .* in \[0, 3\)"):
        MixtureSampler(mixture, until=3)
    with pytest.raises(ValueError, match="window must be at least 1"):
        MixtureSampler(mixture, window=0)
    with pytest.raises(ValueError, match=r"one per source \(3 whole numbers"):
        MixtureSampler(mixture, window=[2, 2])
    with pytest.raises(ValueError, match="rank 2 is not in"):
        MixtureSampler(mixture, num_replicas=2, rank=2)


def sources_of(mixture: acumen.Mixture, order) -> np.ndarray:
    return np.searchsorted(mixture.starts, np.asarray(order), side="right") - 1


def test_draws_are_deterministic_and_in_the_weights_proportions(mixture) -> None:
    sampler = MixtureSampler(mixture, seed=7, num_samples=20_000, replacement=True)
    first = list(sampler)
    assert first == list(MixtureSampler(mixture, seed=7, num_samples=20_000, replacement=True))
    assert list(sampler) == first  # the same epoch again
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert list(MixtureSampler(mixture, seed=8, num_samples=20_000, replacement=True)) != first
    shares = np.bincount(sources_of(mixture, first), minlength=3) / len(first)
    np.testing.assert_allclose(shares, [0.5, 0.25, 0.25], atol=0.02)
    # With replacement, a source read through starts again: each pass is its samples once.
    counts = Counter(first)
    for k, n in enumerate(SIZES):
        seen = [counts[i] for i in range(mixture.starts[k], mixture.starts[k] + n)]
        assert max(seen) - min(seen) <= 1


def test_each_source_is_read_in_chunk_windows(mixture) -> None:
    window, batch = 2, 16
    sampler = MixtureSampler(mixture, seed=1, window=[2, 2, 2], num_samples=2000, replacement=True)
    order = sampler.epoch_order()
    chunks = mixture.table.chunk_ids[order]
    sources = sources_of(mixture, order)
    window_samples = window * PER_CHUNK
    for at in range(0, len(order), batch):
        for k in range(3):
            mine = chunks[at : at + batch][sources[at : at + batch] == k]
            # a run of r draws spans at most ceil(r / window_samples) + 1 windows of its order
            limit = window * (-(-len(mine) // window_samples) + 1)
            assert len(set(mine.tolist())) <= limit
    # A full shuffle of the mixture would touch about a chunk per sample.
    spread = np.random.default_rng(0).permutation(len(mixture))[:batch]
    assert len(set(mixture.table.chunk_ids[spread].tolist())) > 10


def test_the_window_is_shared_among_the_sources_by_weight(mixture) -> None:
    """``window`` is what the mixture holds at once, as for one dataset (weights 2:1:1)."""
    assert MixtureSampler(mixture, window=8).windows == [4, 2, 2]
    assert MixtureSampler(mixture, window=4).windows == [2, 1, 1]
    assert MixtureSampler(mixture, window=1).windows == [1, 1, 1]  # at least one each
    assert MixtureSampler(mixture, window=[3, 1, 2]).windows == [3, 1, 2]
    batch = 16
    order = MixtureSampler(mixture, seed=3, window=4, until="all").epoch_order()
    chunks = mixture.table.chunk_ids[order]
    touched = [len(set(chunks[at : at + batch].tolist())) for at in range(0, len(order), batch)]
    # 4 chunks' windows in all: a batch touches about as many chunks as one dataset's would
    assert np.mean(touched) <= 4 + 3


def test_an_epoch_ends_where_the_settings_say(mixture) -> None:
    n = len(mixture)
    first = MixtureSampler(mixture, seed=2)  # until the first source is read through
    order = first.epoch_order()
    assert len(order) == len(set(order.tolist())) < n
    per_source = np.bincount(sources_of(mixture, order), minlength=3)
    assert any(per_source[k] == SIZES[k] for k in range(3))
    whole = MixtureSampler(mixture, seed=2, until="all").epoch_order()
    assert sorted(whole.tolist()) == list(range(n))  # every sample once
    one = MixtureSampler(mixture, seed=2, until=1, replacement=True).epoch_order()
    per_source = np.bincount(sources_of(mixture, one), minlength=3)
    assert per_source[1] == SIZES[1] and sources_of(mixture, one[-1:])[0] == 1
    assert per_source[2] > SIZES[2]  # the small source repeats
    drawn = MixtureSampler(mixture, seed=2, num_samples=100).epoch_order()
    assert len(drawn) == 100 == len(set(drawn.tolist()))


@pytest.mark.parametrize("options", [{}, {"num_samples": 101, "replacement": True}])
def test_ddp_shares_are_equal_and_strided(mixture, options) -> None:
    order = MixtureSampler(mixture, seed=4, **options).epoch_order().tolist()
    for world in (2, 3, 4):
        shares = [
            list(MixtureSampler(mixture, seed=4, num_replicas=world, rank=r, **options))
            for r in range(world)
        ]
        length = -(-len(order) // world)
        assert all(len(share) == length for share in shares)
        interleaved = [share[k] for k in range(length) for share in shares]
        assert interleaved == (order + order)[: length * world]
        dropped = MixtureSampler(
            mixture, seed=4, num_replicas=world, rank=0, drop_last=True, **options
        )
        assert len(dropped) == len(order) // world


def test_state_is_small_and_names_its_order(mixture, paths) -> None:
    import json

    sampler = MixtureSampler(mixture, seed=3, until="all")
    taken = list(zip(range(40), sampler, strict=False))
    state = sampler.state_dict(consumed=len(taken))
    assert state["consumed"] == 40 and len(json.dumps(state)) <= 1024
    resumed = MixtureSampler(mixture, seed=3, until="all")
    resumed.load_state_dict(state)
    assert [p for _, p in taken] + list(resumed) == sampler.epoch_order().tolist()
    other = MixtureSampler(acumen.Mixture(paths, weights=[1, 1, 1]), seed=3, until="all")
    with pytest.raises(ValueError, match="other settings"):
        other.load_state_dict(state)


def test_torch_dataset_and_two_workers_read_a_mixture(mixture) -> None:
    data = TorchDataset(mixture, target="source")
    sampler = MixtureSampler(data, seed=5, until="all", window=2)
    loader = DataLoader(data, batch_size=None, sampler=sampler.batches(16), num_workers=2)
    got = []
    for x, source in loader:
        assert x.shape[1:] == (2,) and torch.equal(x[:, 1].long(), source)
        got += x[:, 0].long().tolist()
    expected = [value(*mixture.locate(i)) for i in sampler.epoch_order().tolist()]
    assert got == expected
    per_sample = DataLoader(data, batch_size=16, sampler=sampler, num_workers=0)
    assert [int(v) for x, _ in per_sample for v in x[:, 0]] == expected


def test_batch_loader_reads_a_mixture_and_resumes(mixture) -> None:
    data = TorchDataset(mixture, target="source")
    sampler = MixtureSampler(data, seed=6, num_samples=120, replacement=True)
    full = [x[:, 0].long().tolist() for x, _ in BatchLoader(data, 16, sampler=sampler)]
    order = sampler.epoch_order().tolist()
    assert [v for batch in full for v in batch] == [value(*mixture.locate(i)) for i in order]
    loader = BatchLoader(data, 16, sampler=sampler)
    for k, _ in enumerate(loader):
        if k == 2:
            state = loader.state_dict()
            break
    assert state["consumed"] == 48
    again = MixtureSampler(data, seed=6, num_samples=120, replacement=True)
    rest = BatchLoader(data, 16, sampler=again)
    rest.load_state_dict(state)
    assert [x[:, 0].long().tolist() for x, _ in rest] == full[3:]


def test_a_remote_mixture_is_fetched_ahead_and_reads_as_the_local_one(
    paths, http_server, tmp_path: Path
) -> None:
    for k, path in enumerate(paths[:2]):
        shutil.copytree(path, http_server.root / f"s{k}")
    urls = [http_server.url(f"s{k}") for k in range(2)]
    remote = acumen.Mixture(urls, weights=[1, 3], cache=tmp_path / "cache")
    local = acumen.Mixture(paths[:2], weights=[1, 3])
    assert remote.storage.batched_reads
    options = {"seed": 2, "window": 2, "until": "all"}
    sampler = MixtureSampler(TorchDataset(remote), **options)
    assert sampler._dataset is not None  # prefetching
    order, cuts = sampler._plan()
    assert cuts and all(0 < c < len(order) for c in cuts)
    http_server.log.reset()
    got = np.concatenate(list(sampler.batches(16)))
    assert got.tolist() == MixtureSampler(local, **options).epoch_order().tolist()
    assert 0 < http_server.log.count("GET") <= 2 * len(remote.table.chunk_names)
    values = remote.read_batch(got)[:, 0].astype(int).tolist()
    assert values == [value(*local.locate(i)) for i in got.tolist()]
