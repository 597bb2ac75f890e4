"""PyTorch: TorchDataset, DataLoader workers under every start method, ChunkShuffleSampler."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

import acumen  # noqa: E402
from acumen.torch import ChunkShuffleSampler, TorchDataset  # noqa: E402

N = 240


@pytest.fixture(scope="module")
def dataset_path(tmp_path_factory) -> Path:
    """N samples float32 (8,), label = sample % 4, small chunks so there are many."""
    path = tmp_path_factory.mktemp("torch") / "ds"
    with acumen.Writer(path, chunk_size_bytes=8 * 4 * 10, durable=False) as writer:
        for i in range(N):
            writer.add(np.full(8, i, dtype=np.float32), label=i % 4, name=f"s{i}")
    return path


def test_items_and_targets(dataset_path: Path) -> None:
    plain = TorchDataset(dataset_path)
    x = plain[5]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.tolist() == [5.0] * 8
    x[0] = -1  # a copy: writing to it does not touch the files
    assert plain[5][0] == 5
    assert TorchDataset(dataset_path, target="label")[6][1] == 2
    assert TorchDataset(dataset_path, target=["label", "name"])[7][1] == {"label": 3, "name": "s7"}
    assert TorchDataset(dataset_path, target=True)[1][1] == {"label": 1, "name": "s1"}
    doubled = TorchDataset(dataset_path, transform=lambda t: t * 2)
    assert doubled[3].tolist() == [6.0] * 8
    items = TorchDataset(dataset_path, target="label").__getitems__([9, 2, -1])
    assert [(int(x[0]), y) for x, y in items] == [(9, 1), (2, 2), (N - 1, (N - 1) % 4)]
    with acumen.open(dataset_path) as ds:
        assert len(TorchDataset(ds.filter("label == 0"))) == N // 4
        with pytest.raises(ValueError, match=r"give fields= and storage= to acumen\.open"):
            TorchDataset(ds, storage="seek")


def test_fields(tmp_path: Path) -> None:
    with acumen.Writer(tmp_path / "f") as writer:
        for i in range(6):
            writer.add({"image": np.full((2, 2), i, np.uint8), "raw": bytes([i])}, label=i)
    data = TorchDataset(tmp_path / "f", fields=["image"], target="label")
    sample, label = data[4]
    assert set(sample) == {"image"} and sample["image"].sum() == 16 and label == 4
    batch = next(iter(DataLoader(TorchDataset(tmp_path / "f"), batch_size=3)))
    assert batch["image"].shape == (3, 2, 2) and batch["raw"] == [b"\x00", b"\x01", b"\x02"]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_dataloader_workers_under_every_start_method(dataset_path: Path, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    data = TorchDataset(dataset_path, target="label")
    loader = DataLoader(
        data,
        batch_size=16,
        shuffle=True,
        num_workers=2,
        multiprocessing_context=method,
        generator=torch.Generator().manual_seed(0),
    )
    seen = []
    for x, y in loader:
        assert x.shape[1:] == (8,)
        assert torch.equal(y, (x[:, 0].long() % 4))
        seen += x[:, 0].long().tolist()
    assert sorted(seen) == list(range(N))


def test_a_tiny_model_trains_for_one_epoch_from_two_workers(tmp_path: Path) -> None:
    generator = np.random.default_rng(0)
    weights = np.array([1.5, -2.0, 0.5], dtype=np.float32)
    with acumen.Writer(tmp_path / "reg", codec="lz4", chunk_size_bytes=4096) as writer:
        for _ in range(2048):
            x = generator.normal(size=3).astype(np.float32)
            writer.add(x, y=float(x @ weights))
    data = TorchDataset(tmp_path / "reg", target="y")
    sampler = ChunkShuffleSampler(data, window=4, seed=1)
    loader = DataLoader(data, batch_size=64, sampler=sampler, num_workers=2)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for x, y in loader:
        loss = torch.nn.functional.mse_loss(model(x).squeeze(1), y.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert len(losses) == 32
    assert losses[-1] < losses[0] / 100
    np.testing.assert_allclose(model.weight.detach().numpy()[0], weights, atol=0.05)


def test_sampler_is_a_deterministic_permutation_with_local_windows(dataset_path: Path) -> None:
    data = TorchDataset(dataset_path)
    chunk_ids = data.chunk_ids
    assert len(np.unique(chunk_ids)) == 24  # 10 samples per chunk
    sampler = ChunkShuffleSampler(data, window=3, seed=7)
    first = list(sampler)
    assert sorted(first) == list(range(N)) and first != list(range(N))
    assert list(sampler) == first  # same epoch, same order
    # Every run of 30 samples (3 chunks of 10) touches at most 3 chunk files.
    for start in range(0, N, 30):
        assert len(set(chunk_ids[first[start : start + 30]].tolist())) <= 3
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(N)) and second != first
    assert list(ChunkShuffleSampler(data, window=3, seed=8)) != first
    assert list(ChunkShuffleSampler(data, shuffle=False)) == list(range(N))


def test_sampler_splits_across_ranks(dataset_path: Path) -> None:
    with acumen.open(dataset_path) as ds:
        small = ds.select(np.arange(233))  # not a multiple of the world size
    shares = [list(ChunkShuffleSampler(small, num_replicas=4, rank=r, seed=3)) for r in range(4)]
    assert {len(s) for s in shares} == {59}  # 233 -> 4 x 59, padded
    assert set().union(*map(set, shares)) == set(range(233))
    # Strided: rank r takes the epoch's order at r, r + 4, ...; the 3 padded are its first.
    order = ChunkShuffleSampler(small, seed=3).epoch_order().tolist()
    assert [s[k] for k in range(59) for s in shares] == order + order[:3]
    dropped = [
        list(ChunkShuffleSampler(small, num_replicas=4, rank=r, seed=3, drop_last=True))
        for r in range(4)
    ]
    assert {len(s) for s in dropped} == {58}
    flat = [position for share in dropped for position in share]
    assert len(set(flat)) == len(flat)
    with pytest.raises(ValueError, match="rank 4 is not in"):
        ChunkShuffleSampler(small, num_replicas=4, rank=4)


def test_sampler_resumes_mid_epoch(dataset_path: Path) -> None:
    data = TorchDataset(dataset_path)
    sampler = ChunkShuffleSampler(data, seed=5)
    sampler.set_epoch(2)
    full = list(sampler)
    iterator = iter(sampler)
    taken = [next(iterator) for _ in range(100)]
    state = sampler.state_dict()
    assert (state["epoch"], state["seed"], state["consumed"], state["samples"]) == (2, 5, 100, N)
    assert len(json.dumps(state)) < 200  # small, whatever the dataset
    assert sampler.state_dict(consumed=64)["consumed"] == 64
    resumed = ChunkShuffleSampler(data, seed=5)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert taken + rest == full
    assert len(list(resumed)) == N  # the next pass is a whole epoch again
    with pytest.raises(ValueError, match="seed 5"):
        ChunkShuffleSampler(data, seed=6).load_state_dict(state)
