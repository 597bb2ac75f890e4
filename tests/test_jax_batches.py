"""A JAX loop's way in, without torch: ``ds.batches`` over ``acumen.chunk_shuffle_order``
(the order ``ChunkShuffleSampler`` gives, computed without torch) loads neither torch nor
grain nor jax, and ``import acumen`` none of them; the order is a chunk-local shuffle,
each sample once per epoch, a function of (seed, epoch) alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import acumen
from acumen.read.order import chunk_window_order

REPO = Path(__file__).resolve().parents[1]


def write(root: Path, n: int = 50, chunk_bytes: int = 200) -> Path:
    with acumen.Writer(root, chunk_size_bytes=chunk_bytes, dtype="int64") as writer:
        for i in range(n):
            writer.add(np.full(4, i, np.int64), label=i % 3)
    return root


def test_the_batches_of_a_shuffled_epoch_load_no_torch(tmp_path: Path) -> None:
    root = write(tmp_path / "ds")
    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "import acumen\n"
        "after_import = {m: m in sys.modules for m in ('torch', 'grain', 'jax')}\n"
        f"ds = acumen.open({str(root)!r})\n"
        "seen = []\n"
        "for epoch in range(2):\n"
        "    order = acumen.chunk_shuffle_order(ds, seed=1, epoch=epoch, window=2)\n"
        "    for x, y in ds.batches(8, order=order, drop_last=True, target='label'):\n"
        "        assert isinstance(x, np.ndarray) and x.shape == (8, 4) and x.flags.writeable\n"
        "        assert (y == x[:, 0] % 3).all()\n"
        "        seen += x[:, 0].tolist()\n"
        "print(json.dumps({'after_import': after_import, 'seen': seen,\n"
        "                  'torch': 'torch' in sys.modules}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["after_import"] == {"torch": False, "grain": False, "jax": False}
    assert result["torch"] is False
    seen = result["seen"]
    assert len(seen) == 2 * 48 and len(set(seen[:48])) == 48 and len(set(seen[48:])) == 48
    assert seen[:48] != seen[48:]  # a new order each epoch


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 7), max_size=60),
    st.integers(1, 5),
    st.integers(0, 2**32),
)
def test_a_window_order_is_a_chunk_local_permutation(
    chunks: list[int], window: int, seed: int
) -> None:
    chunk_ids = np.asarray(chunks, dtype=np.int64)
    order, cuts = chunk_window_order(chunk_ids, window, seed)
    assert sorted(order.tolist()) == list(range(len(chunks)))
    assert cuts == sorted(cuts) and (cuts[-1] if cuts else 0) == len(chunks)
    ends = [0, *cuts]
    seen_chunks: set[int] = set()
    for start, end in pairwise(ends):
        touched = set(chunk_ids[order[start:end]].tolist())
        assert len(touched) <= window and not touched & seen_chunks  # each chunk in one window
        seen_chunks |= touched


def test_the_order_is_the_samplers_and_a_function_of_seed_and_epoch(tmp_path: Path) -> None:
    torch_sampler = pytest.importorskip("acumen.torch.sampler")
    ds = acumen.open(write(tmp_path / "ds", n=80, chunk_bytes=100))
    assert len(ds.storage.paths) > 4
    for seed, epoch, window in [(0, 0, 4), (7, 3, 1), (2, 1, 3)]:
        sampler = torch_sampler.ChunkShuffleSampler(ds, seed=seed, window=window)
        sampler.set_epoch(epoch)
        order = acumen.chunk_shuffle_order(ds, seed=seed, epoch=epoch, window=window)
        assert order.tolist() == sampler.epoch_order().tolist()
        again = acumen.chunk_shuffle_order(ds, seed=seed, epoch=epoch, window=window)
        assert np.array_equal(order, again)
    orders = {
        tuple(acumen.chunk_shuffle_order(ds, seed=s, epoch=e).tolist())
        for s in (0, 1)
        for e in (0, 1)
    }
    assert len(orders) == 4


def test_wrong_arguments_say_what_is_expected(tmp_path: Path) -> None:
    ds = acumen.open(write(tmp_path / "ds", n=5))
    with pytest.raises(ValueError, match="window must be at least 1"):
        acumen.chunk_shuffle_order(ds, window=0)
    with pytest.raises(TypeError, match=r"acumen.open\(path\).*got str"):
        acumen.chunk_shuffle_order(str(tmp_path / "ds"))  # type: ignore[arg-type]
    assert acumen.chunk_shuffle_order(acumen.open(tmp_path / "ds").select([])).tolist() == []
