"""What ``ChunkShuffleSampler`` accepts: an acumen ``Dataset`` or ``TorchDataset``; anything
else (a torch ``ConcatDataset`` of two acumen datasets, a plain list) is a clear TypeError
that says so, not an AttributeError from inside the sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import ConcatDataset  # noqa: E402

import acumen  # noqa: E402
from acumen.torch import ChunkShuffleSampler, TorchDataset  # noqa: E402


def _write(path: Path, n: int) -> Path:
    with acumen.Writer(path, chunk_size_bytes=4 * 4 * 3, durable=False) as writer:
        for i in range(n):
            writer.add(np.full(4, i, dtype=np.float32), label=i)
    return path


@pytest.fixture
def two(tmp_path: Path) -> tuple[TorchDataset, TorchDataset]:
    return TorchDataset(_write(tmp_path / "a", 7)), TorchDataset(_write(tmp_path / "b", 5))


def test_concat_dataset_is_a_clear_type_error(two: tuple[TorchDataset, TorchDataset]) -> None:
    with pytest.raises(TypeError) as caught:
        ChunkShuffleSampler(ConcatDataset(list(two)))
    message = str(caught.value)
    assert "ConcatDataset" in message
    assert "acumen.torch.TorchDataset" in message and "acumen.Dataset" in message
    assert "acumen.open_many([a, b])" in message  # what to do instead


@pytest.mark.parametrize("data", [[1, 2, 3], None, "ds"], ids=["list", "None", "path"])
def test_other_inputs_are_a_clear_type_error(data: object) -> None:
    with pytest.raises(TypeError, match=r"ChunkShuffleSampler takes an acumen"):
        ChunkShuffleSampler(data)  # type: ignore[arg-type]


def test_accepted_inputs_still_work(two: tuple[TorchDataset, TorchDataset]) -> None:
    torch_data = two[0]
    for data in (torch_data, torch_data.dataset):
        sampler = ChunkShuffleSampler(data, window=2, seed=1)
        assert sorted(sampler) == list(range(7))
