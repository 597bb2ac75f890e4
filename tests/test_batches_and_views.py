"""read_batch, select and filter: many samples at once, and subsets without rewriting data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.errors import CorruptDatasetError
from tests.conftest import CODECS, STORAGES

rng = np.random.default_rng(4)
FIXED = rng.normal(size=(300, 6, 5)).astype(np.float32)


def write(path: Path, arrays, codec: str = "raw", chunk: int = 2000) -> None:
    with acumen.Writer(path, codec=codec, chunk_size_bytes=chunk, durable=False) as writer:
        for i, array in enumerate(arrays):
            writer.add(array, label=i % 7, split="val" if i % 5 == 0 else "train", score=i / 10)


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("codec", CODECS)
def test_read_batch_fixed_shape(tmp_path: Path, codec: str, storage: str) -> None:
    write(tmp_path / "ds", FIXED, codec)
    with acumen.open(tmp_path / "ds", storage=storage) as ds:
        for indices in (
            np.arange(300),  # every sample, runs across chunk files
            rng.integers(0, 300, 500),  # random, with repeats
            [299, -1, 0, 5, 5, 4],  # negative and repeated, out of order
            np.arange(300)[::-3],  # descending
            [],
        ):
            batch = ds.read_batch(indices)
            want = FIXED[np.asarray(indices, dtype=np.int64)] if len(indices) else FIXED[:0]
            assert batch.shape == want.shape and batch.dtype == np.float32
            assert batch.flags.writeable and batch.tobytes() == want.tobytes()
        mask = np.arange(300) % 3 == 1
        np.testing.assert_array_equal(ds.read_batch(mask), FIXED[mask])
        np.testing.assert_array_equal(ds.read_batch(np.arange(40), threads=3), FIXED[:40])


def test_read_batch_variable_shapes_and_fields(tmp_path: Path) -> None:
    arrays = [np.arange(i, dtype=np.int16) for i in range(20)]
    write(tmp_path / "var", arrays)
    with acumen.open(tmp_path / "var") as ds:
        got = ds.read_batch([3, 0, 19])
        assert isinstance(got, list) and [len(a) for a in got] == [3, 0, 19]
    with acumen.Writer(tmp_path / "f") as writer:
        for i in range(5):
            writer.add({"a": np.full(2, i), "b": bytes([i])})
    with acumen.open(tmp_path / "f") as ds:
        got = ds.read_batch([4, 1])
        assert got[0]["b"] == b"\x04" and got[1]["a"].tolist() == [1, 1]


def test_read_batch_errors(tmp_path: Path) -> None:
    write(tmp_path / "ds", FIXED)
    with acumen.open(tmp_path / "ds") as ds:
        with pytest.raises(IndexError, match="sample 300 is out of range"):
            ds.read_batch([1, 300])
        with pytest.raises(IndexError, match="sample -301 is out of range"):
            ds.read_batch([-301])
        with pytest.raises(TypeError, match="indices must be integers"):
            ds.read_batch([0.5])
        with pytest.raises(IndexError, match="a mask needs 300 entries"):
            ds.read_batch(np.ones(3, dtype=bool))
    # A damaged compressed payload is reported for the sample, also inside a batch.
    write(tmp_path / "z", FIXED, "zstd", chunk=10**6)
    chunk = tmp_path / "z" / "chunks" / "chunk_0.chnk"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with acumen.open(tmp_path / "z") as ds, pytest.raises(CorruptDatasetError, match="sample 1"):
        ds.read_batch(np.arange(300))


def test_select_is_a_view_on_the_same_files(tmp_path: Path) -> None:
    write(tmp_path / "ds", FIXED)
    with acumen.open(tmp_path / "ds") as ds:
        view = ds.select([10, 3, 3, -1])
        assert len(view) == 4 and view.positions.tolist() == [10, 3, 3, 299]
        np.testing.assert_array_equal(view.read_batch(np.arange(4)), FIXED[[10, 3, 3, 299]])
        assert view[1][1] == ds[3][1]
        nested = view.select([0, 3])
        assert nested.positions.tolist() == [10, 299]
        assert not (tmp_path / "ds" / "select").exists()  # nothing written
        again = pickle.loads(pickle.dumps(nested))
        np.testing.assert_array_equal(again.read(1), FIXED[299])
        assert again.positions.tolist() == [10, 299]
        again.close()
        view.close()
        assert ds.read(0).tobytes() == FIXED[0].tobytes()  # the parent still reads


def test_filter_by_metadata(tmp_path: Path) -> None:
    write(tmp_path / "ds", FIXED)
    with acumen.open(tmp_path / "ds") as ds:
        view = ds.filter("label == 3 and split == 'train'")
        want = [i for i in range(300) if i % 7 == 3 and i % 5 != 0]
        assert view.positions.tolist() == want
        assert all(view.metadata(k)["label"] == 3 for k in range(len(view)))
        np.testing.assert_array_equal(view.read_batch(np.arange(len(view))), FIXED[want])
        assert len(ds.filter("score > 29.85")) == 1
        with pytest.raises(ValueError, match=r"cannot filter .* by 'nope == 1'.*columns: "):
            ds.filter("nope == 1")
        with pytest.raises(ValueError, match="one True/False per sample"):
            ds.filter("label + 1")
