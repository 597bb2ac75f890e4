"""Whole batches for a training loop: every form gives read_batch's values in the sampler's
order, each sample once an epoch; BatchLoader's order, drop_last, resume, early exit, errors."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import BatchSampler, DataLoader  # noqa: E402

import acumen  # noqa: E402
from acumen.errors import CorruptDatasetError  # noqa: E402
from acumen.torch import BatchLoader, ChunkShuffleSampler, Padded, TorchDataset, collate  # noqa: E402

N = 90
BATCH = 16


@pytest.fixture(scope="module")
def fixed_path(tmp_path_factory) -> Path:
    """N samples float32 (3,) = i, with an int, a str and a float column; 10 per chunk."""
    path = tmp_path_factory.mktemp("batches") / "fixed"
    with acumen.Writer(path, chunk_size_bytes=3 * 4 * 10, durable=False) as writer:
        for i in range(N):
            writer.add(np.full(3, i, np.float32), label=i % 4, name=f"s{i}", w=i / 2)
    return path


def forms(data: TorchDataset, seed: int = 1, drop_last: bool = False) -> dict[str, list]:
    """Every way to get batches of BATCH over one epoch of a ChunkShuffleSampler."""

    def sampler() -> ChunkShuffleSampler:
        return ChunkShuffleSampler(data, seed=seed)

    return {
        "BatchSampler": list(
            DataLoader(data, batch_size=None, sampler=BatchSampler(sampler(), BATCH, drop_last))
        ),
        "sampler.batches": list(
            DataLoader(data, batch_size=None, sampler=sampler().batches(BATCH, drop_last))
        ),
        "collate": list(
            DataLoader(
                data, batch_size=BATCH, sampler=sampler(), collate_fn=collate, drop_last=drop_last
            )
        ),
        "plain": list(DataLoader(data, batch_size=BATCH, sampler=sampler(), drop_last=drop_last)),
        "BatchLoader": list(BatchLoader(data, BATCH, sampler=sampler(), drop_last=drop_last)),
    }


def epoch_batches(data: TorchDataset, seed: int = 1) -> list[np.ndarray]:
    order = ChunkShuffleSampler(data, seed=seed).epoch_order()
    return [order[start : start + BATCH] for start in range(0, len(order), BATCH)]


@pytest.mark.parametrize("target", [None, "label", ["label", "name"], True])
def test_every_form_is_read_batch_in_the_sampler_order(fixed_path: Path, target) -> None:
    data = TorchDataset(fixed_path, target=target)
    ds = data.dataset
    expected = epoch_batches(data)
    for name, batches in forms(data).items():
        assert len(batches) == len(expected), name
        for batch, positions in zip(batches, expected, strict=True):
            x, y = (batch, None) if target is None else batch
            assert isinstance(x, torch.Tensor) and x.dtype == torch.float32, name
            np.testing.assert_array_equal(x.numpy(), ds.read_batch(positions), err_msg=name)
            labels = torch.from_numpy(positions % 4)
            if target == "label":
                assert y.dtype == torch.int64 and torch.equal(y, labels), name
            elif target is not None:
                assert torch.equal(y["label"], labels), name
                assert y["name"] == [f"s{i}" for i in positions], name
            if target is True:
                assert y["w"].dtype == torch.float64 and y["w"].tolist() == (positions / 2).tolist()
        seen = np.concatenate([(b if target is None else b[0])[:, 0].numpy() for b in batches])
        assert sorted(seen.astype(int).tolist()) == list(range(N)), name  # each once


def test_drop_last_and_lengths(fixed_path: Path) -> None:
    data = TorchDataset(fixed_path)
    for name, batches in forms(data, drop_last=True).items():
        assert [len(b) for b in batches] == [BATCH] * (N // BATCH), name
    sampler = ChunkShuffleSampler(data)
    assert len(BatchLoader(data, BATCH, sampler=sampler)) == -(-N // BATCH)
    assert len(BatchLoader(data, BATCH, sampler=sampler, drop_last=True)) == N // BATCH
    assert len(sampler.batches(BATCH)) == -(-N // BATCH)
    # Without a sampler: the dataset's order.
    got = torch.cat(list(BatchLoader(data, 7)))[:, 0].tolist()
    assert got == list(range(N))


def test_transform_per_sample_and_batch_transform_per_batch(fixed_path: Path) -> None:
    doubled = TorchDataset(fixed_path, target="label", transform=lambda t: t * 2)
    shifted = TorchDataset(fixed_path, target="label", batch_transform=lambda b: b + 1)
    for data, change in ((doubled, lambda a: a * 2), (shifted, lambda a: a + 1)):
        expected = epoch_batches(data)
        for name, batches in forms(data).items():
            for (x, y), positions in zip(batches, expected, strict=True):
                want = change(data.dataset.read_batch(positions))
                np.testing.assert_array_equal(x.numpy(), want, err_msg=name)
                assert torch.equal(y, torch.from_numpy(positions % 4)), name
    assert shifted[5][0].tolist() == [6.0] * 3 and shifted[5][1] == 1  # a batch of one
    assert doubled[[5, 6]][0].tolist() == [[10.0] * 3, [12.0] * 3]


def test_variable_shapes_come_padded(tmp_path: Path) -> None:
    arrays = [np.full((1 + i % 4, 2), i, np.int16) for i in range(20)]
    with acumen.Writer(tmp_path / "v", durable=False) as writer:
        for i, array in enumerate(arrays):
            writer.add(array, label=i)
    data = TorchDataset(tmp_path / "v", target="label")
    x, y = data[[3, 0, 5]]
    assert isinstance(x, Padded) and x.values.shape == (3, 4, 2) and x.values.dtype == torch.int16
    assert x.shapes.tolist() == [[4, 2], [1, 2], [2, 2]] and y.tolist() == [3, 0, 5]
    for sample, i in zip(x.unpad(), [3, 0, 5], strict=True):
        np.testing.assert_array_equal(sample.numpy(), arrays[i])
    assert x.values[1, 1:].abs().sum() == 0  # padded with zeros
    sampler = ChunkShuffleSampler(data, seed=2)
    for batches in (
        list(DataLoader(data, batch_size=8, sampler=sampler, collate_fn=collate)),
        list(BatchLoader(data, 8, sampler=sampler)),
    ):
        order = np.concatenate([b[1].numpy() for b in batches])
        assert order.tolist() == sampler.epoch_order().tolist()
        for values, target in batches:
            for sample, i in zip(values.unpad(), target.tolist(), strict=True):
                np.testing.assert_array_equal(sample.numpy(), arrays[i])


def test_fields_are_a_dict_of_batches(tmp_path: Path) -> None:
    with acumen.Writer(tmp_path / "f", durable=False) as writer:
        for i in range(12):
            writer.add({"image": np.full((2, 2), i, np.uint8), "raw": bytes([i])}, label=i)
    data = TorchDataset(tmp_path / "f", target="label")
    x, y = data[[4, 1]]
    assert x["image"].shape == (2, 2, 2) and x["image"][:, 0, 0].tolist() == [4, 1]
    assert x["raw"] == [b"\x04", b"\x01"] and y.tolist() == [4, 1]
    plain = next(iter(DataLoader(data, batch_size=2, sampler=[4, 1])))
    assert torch.equal(plain[0]["image"], x["image"]) and plain[0]["raw"] == x["raw"]
    looped = next(iter(BatchLoader(data, 2, sampler=[4, 1])))
    assert torch.equal(looped[0]["image"], x["image"]) and looped[0]["raw"] == x["raw"]


def test_two_workers_give_the_batches_of_none(fixed_path: Path) -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("fork is not available here")
    data = TorchDataset(fixed_path, target="label")
    sampler = ChunkShuffleSampler(data, seed=4)
    here = list(DataLoader(data, batch_size=None, sampler=sampler.batches(BATCH)))
    there = list(
        DataLoader(
            data,
            batch_size=None,
            sampler=sampler.batches(BATCH),
            num_workers=2,
            multiprocessing_context="fork",
        )
    )
    assert len(here) == len(there)
    for (a, b), (c, d) in zip(here, there, strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("acumen-batch")]


def test_batch_loader_early_exit_stops_its_threads_and_resumes(fixed_path: Path) -> None:
    data = TorchDataset(fixed_path)
    full = list(BatchLoader(data, BATCH, sampler=ChunkShuffleSampler(data, seed=3)))
    sampler = ChunkShuffleSampler(data, seed=3)
    loader = BatchLoader(data, BATCH, sampler=sampler, threads=2)
    taken = []
    for batch in loader:
        taken.append(batch)
        if len(taken) == 2:
            state = loader.state_dict()
            break
    assert not loader_threads()  # no thread left running
    # what was yielded, not gathered: a position in the epoch's order
    assert (state["epoch"], state["seed"], state["consumed"]) == (0, 3, 2 * BATCH)
    # A new loader from the state goes on with the rest of the epoch ...
    resumed = BatchLoader(data, BATCH, sampler=ChunkShuffleSampler(data, seed=3))
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(taken) + len(rest) == len(full)
    for a, b in zip(taken + rest, full, strict=True):
        assert torch.equal(a, b)
    # ... and so does the same loader iterated again after the break.
    again = list(loader)
    for a, b in zip(again, rest, strict=True):
        assert torch.equal(a, b)
    assert len(list(loader)) == len(full)  # then a whole epoch again
    assert loader.state_dict()["consumed"] == 0


def test_batch_loader_raises_a_damaged_sample_by_name(tmp_path: Path) -> None:
    with acumen.Writer(tmp_path / "z", codec="zstd", durable=False) as writer:
        for i in range(64):
            writer.add(np.random.default_rng(i).normal(size=32).astype(np.float32))
    with acumen.open(tmp_path / "z") as ds:
        chunk = ds.root / ds.table.chunk_names[int(ds.table.chunk_ids[37])]
        offset, size = int(ds.table.offsets[37]), int(ds.table.sizes[37])
    with open(chunk, "r+b") as file:  # four bytes in the middle of sample 37's payload
        file.seek(offset + size // 2)
        original = file.read(4)
        file.seek(offset + size // 2)
        file.write(bytes(b ^ 0xFF for b in original))
    loader = BatchLoader(TorchDataset(tmp_path / "z"), 8, threads=2)
    seen = 0
    with pytest.raises(CorruptDatasetError, match="sample 37"):
        for batch in loader:
            seen += len(batch)
    assert seen == 32  # the batches before it came through, in order
    assert not loader_threads()


def test_batch_loader_options(fixed_path: Path) -> None:
    data = TorchDataset(fixed_path)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        BatchLoader(data, 0)
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="pin_memory=True\\) needs CUDA"):
            loader = BatchLoader(data, BATCH, pin_memory=True)
        assert not loader.pin_memory and len(list(loader)) == -(-N // BATCH)
        with pytest.raises(ValueError, match="no CUDA device"):
            BatchLoader(data, BATCH, device="cuda")
    moved = list(BatchLoader(acumen.open(fixed_path), BATCH, device="cpu"))  # an acumen.Dataset
    assert torch.cat(moved)[:, 0].tolist() == list(range(N))


def test_sampler_batches_resume_mid_epoch(fixed_path: Path) -> None:
    data = TorchDataset(fixed_path)
    sampler = ChunkShuffleSampler(data, seed=6)
    full = [b.tolist() for b in sampler.batches(BATCH)]
    assert full == [list(b) for b in BatchSampler(sampler, BATCH, drop_last=False)]
    batches = iter(sampler.batches(BATCH))
    taken = [next(batches).tolist() for _ in range(3)]
    state = sampler.state_dict()
    assert state["consumed"] == 3 * BATCH
    resumed = ChunkShuffleSampler(data, seed=6)
    resumed.load_state_dict(state)
    assert taken + [b.tolist() for b in resumed.batches(BATCH)] == full
    assert resumed.start == 0


def test_reused_batch_arrays_are_never_handed_out_while_held() -> None:
    from acumen.torch.loader import Buffers

    buffers = Buffers(keep=2)
    first = buffers.take((4, 3), np.dtype(np.float32))
    held = torch.from_numpy(first)[1:]  # a view of a tensor over it, held by the loop
    del first
    second = buffers.take((4, 3), np.dtype(np.float32))
    assert not np.shares_memory(second, held.numpy())
    del held
    assert buffers.take((4, 3), np.dtype(np.float32)) is buffers.arrays[0]  # free again
    del second
    assert len(buffers.arrays) == 2
