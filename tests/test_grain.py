"""An acumen dataset is a Grain random-access data source as it is: ``len(ds)``, ``ds[i]``
and the batched ``ds._getitems(indices)`` (one ``read_batch``), read through Grain's own
``MapDataset`` pipeline and its ``DataLoader`` with and without worker processes (which
unpickle the dataset and reopen its files), every sample once per epoch, each equal to
``ds.read(i)``; multi-field datasets, ``select`` views and a dataset at a URL too."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import acumen

# Grain logs (absl) that it cannot load jax's profiler when jax is absent: not our concern.
logging.getLogger("absl").setLevel(logging.ERROR)
grain = pytest.importorskip("grain")

N = 60


def sample(n: int) -> np.ndarray:
    return np.full((3, 4), n, np.float32) + np.arange(12, dtype=np.float32).reshape(3, 4)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """N raw samples (3, 4) in several chunk files, metadata ``n`` (the position)."""
    root = tmp_path_factory.mktemp("grain") / "plain"
    with acumen.Writer(root, chunk_size_bytes=400, dtype="float32") as writer:
        for n in range(N):
            writer.add(sample(n), n=n, name=f"s{n}")
    return root


@pytest.fixture(scope="module")
def fields(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """N two-field samples (zstd image, raw mask, bytes) of varying shapes."""
    root = tmp_path_factory.mktemp("grain") / "fields"
    spec = {"image": {"dtype": "uint8", "codec": "zstd"}, "mask": "bool", "raw": "bytes"}
    with acumen.Writer(root, fields=spec, chunk_size_bytes=1000) as writer:
        for n in range(N):
            image = np.full((2 + n % 3, 5), n, np.uint8)
            writer.add({"image": image, "mask": image % 2 == 0, "raw": bytes([n]) * 3}, n=n)
    return root


def same_record(got: Any, want: Any) -> None:
    (array, metadata), (expected, expected_metadata) = got, want
    assert metadata == expected_metadata
    if isinstance(expected, dict):
        assert array.keys() == expected.keys()
        for key, value in expected.items():
            if isinstance(value, bytes):
                assert array[key] == value
            else:
                assert array[key].dtype == value.dtype and np.array_equal(array[key], value)
                assert not array[key].flags.writeable
        return
    assert array.dtype == expected.dtype and np.array_equal(array, expected)
    assert not array.flags.writeable  # as ds[i]'s


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-N, N - 1), max_size=40))
def test_getitems_is_ds_i_for_each_index(plain: Path, fields: Path, indices: list[int]) -> None:
    for ds in (
        acumen.open(plain),
        acumen.open(plain, storage="seek"),
        acumen.open(fields),
        acumen.open(fields, fields=["image"]).select(np.arange(N)[::-1]),
        acumen.open_many([acumen.open(plain).select(np.arange(N // 2)), plain]),
    ):
        got = ds._getitems(indices)
        assert len(got) == len(indices)
        for record, i in zip(got, indices, strict=True):
            same_record(record, ds[i])


def test_getitems_reads_one_batch_not_sample_by_sample(
    plain: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = acumen.open(plain)

    def one_by_one(i: int) -> None:
        raise AssertionError(f"sample {i} read on its own")

    monkeypatch.setattr(ds, "_array", one_by_one)
    indices = [5, 40, 5, 0, -1]
    assert [r[1]["n"] for r in ds._getitems(indices)] == [5, 40, 5, 0, N - 1]
    assert np.array_equal(np.stack([r[0] for r in ds._getitems(indices)]), ds.read_batch(indices))
    with pytest.raises(IndexError, match="out of range"):
        ds._getitems([0, N])


class Scale(grain.transforms.Map):
    """A record as a model takes it: the array doubled, and the sample's position (picklable,
    for worker processes)."""

    def map(self, record: tuple) -> dict[str, Any]:
        array, metadata = record
        if isinstance(array, dict):  # fields: the image's sum stands for the sample
            array = np.float32(array["image"].sum())
        return {"x": array * 2, "n": metadata["n"]}


def expected_x(ds: acumen.Dataset, n: int) -> Any:
    sample = ds.read(n)
    return np.float32(sample["image"].sum()) * 2 if isinstance(sample, dict) else sample * 2


def check_epoch(ds: acumen.Dataset, batches: list[dict[str, np.ndarray]]) -> list[int]:
    """Every batch's values equal the samples it names; returns the positions seen."""
    seen: list[int] = []
    for batch in batches:
        positions = batch["n"].tolist()
        assert np.array_equal(batch["x"], np.stack([expected_x(ds, n) for n in positions]))
        seen += positions
    return seen


@pytest.mark.parametrize("kind", ["plain", "fields"])
def test_a_grain_map_dataset_pipeline_reads_every_sample_once(
    plain: Path, fields: Path, kind: str
) -> None:
    ds = acumen.open(plain if kind == "plain" else fields)
    pipeline = grain.MapDataset.source(ds).shuffle(seed=3).map(Scale())
    assert len(pipeline) == N
    # Grain's batched read reaches the dataset's: the same records as one at a time.
    records = pipeline._getitems(list(range(N)))
    assert [r["n"] for r in records] == [pipeline[k]["n"] for k in range(N)]
    batched = pipeline.batch(8)
    seen = check_epoch(ds, list(batched))  # its iterator: reads on Grain's threads
    assert sorted(seen) == list(range(N)) and seen != list(range(N))
    assert check_epoch(ds, [batched[k] for k in range(len(batched))]) == seen


def test_a_select_view_is_a_source_of_its_samples(plain: Path) -> None:
    ds = acumen.open(plain)
    view = ds.filter("n % 3 == 1")
    pipeline = grain.MapDataset.source(view).shuffle(seed=1).map(Scale()).batch(5)
    seen = check_epoch(ds, list(pipeline))
    assert sorted(seen) == list(range(1, N, 3))


@pytest.mark.parametrize(
    ("kind", "workers"), [("plain", 0), ("plain", 2), ("fields", 2)], ids=["0w", "2w", "fields-2w"]
)
def test_the_grain_dataloader_reads_each_sample_once_per_epoch(
    plain: Path, fields: Path, kind: str, workers: int
) -> None:
    if workers:
        # With jax installed, Grain (0.2.18) reads an absl flag when it starts workers,
        # which fails unless absl's flags were parsed (absl.app.run does it in a script).
        from absl import flags

        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
    ds = acumen.open(plain if kind == "plain" else fields)
    source = ds if kind == "plain" else ds.select(np.arange(N)[::-1])  # a view, pickled
    sampler = grain.samplers.IndexSampler(
        num_records=len(source),
        shuffle=True,
        seed=5,
        num_epochs=2,
        shard_options=grain.sharding.NoSharding(),
    )
    loader = grain.DataLoader(
        data_source=source,
        sampler=sampler,
        operations=[Scale(), grain.transforms.Batch(batch_size=N // 4)],  # an epoch is 4
        worker_count=workers,
    )
    batches = [{k: np.array(v) for k, v in batch.items()} for batch in loader]
    assert len(batches) == 8
    first, second = check_epoch(ds, batches[:4]), check_epoch(ds, batches[4:])
    assert sorted(first) == sorted(second) == list(range(N)) and first != second


def test_a_dataset_at_a_url_is_a_source_as_it_is(plain: Path, tmp_path: Path, http_server) -> None:
    shutil.copytree(plain, http_server.root / "ds")
    with acumen.open(http_server.url("ds"), cache=tmp_path / "cache") as ds:
        chunks = len(ds.storage.paths)
        http_server.log.reset()
        pipeline = grain.MapDataset.source(ds).shuffle(seed=2).map(Scale())
        records = pipeline._getitems(list(range(N)))  # one batch: a few coalesced GETs
        assert http_server.log.count("GET") <= chunks
        assert sorted(r["n"] for r in records) == list(range(N))
        assert check_epoch(ds, list(pipeline.batch(16))) == [r["n"] for r in records]
