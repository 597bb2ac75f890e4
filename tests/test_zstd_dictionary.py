"""zstd dictionaries: trained at write time, stored in the dataset, used to read."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.errors import CorruptDatasetError
from acumen.format.checksums import sealed

DICTIONARY = {"name": "zstd", "configuration": {"dictionary_size": 4096, "train_samples": 200}}


def small_samples(n: int) -> list[np.ndarray]:
    """Skeleton-like frames: float32 (17, 2), similar to each other: what dictionaries help."""
    rng = np.random.default_rng(3)
    base = np.round(rng.normal(size=(17, 2)), 2).astype(np.float32)
    return [base + np.float32(np.round(rng.normal(scale=0.05), 2)) for _ in range(n)]


def write(path: Path, arrays: list, codec, **options) -> dict:
    with acumen.Writer(path, codec=codec, durable=False, **options) as writer:
        for i, array in enumerate(arrays):
            writer.add(array, i=i)
    return json.loads((path / "manifest.json").read_text())


def chunk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path / "chunks").iterdir())


def test_dictionary_is_trained_stored_named_and_used(tmp_path: Path) -> None:
    arrays = small_samples(1000)
    manifest = write(tmp_path / "dict", arrays, DICTIONARY)
    write(tmp_path / "plain", arrays, "zstd")
    configuration = manifest["codec"]["configuration"]
    assert configuration == {
        "level": 3,
        "dictionary_size": 4096,
        "train_samples": 200,
        "dictionary": "codecs/data.zstd.dict",
    }
    assert (tmp_path / "dict" / "codecs" / "data.zstd.dict").stat().st_size == 4096
    with acumen.open(tmp_path / "dict") as ds:
        for i, array in enumerate(arrays):
            got, metadata = ds[i]
            assert got.tobytes() == array.tobytes() and metadata == {"i": i}
    # Small, similar samples: the dictionary must pay for itself several times over.
    assert chunk_bytes(tmp_path / "dict") * 2 < chunk_bytes(tmp_path / "plain")


def test_index_order_is_kept_across_the_held_back_samples(tmp_path: Path) -> None:
    arrays = small_samples(450)
    write(tmp_path / "ds", arrays, DICTIONARY, chunk_size_bytes=900)
    with acumen.open(tmp_path / "ds") as ds:
        assert [ds.metadata(i)["i"] for i in range(len(ds))] == list(range(450))
        assert all(ds.read(i).tobytes() == a.tobytes() for i, a in enumerate(arrays))


def test_fewer_samples_than_asked_still_train_at_close(tmp_path: Path) -> None:
    arrays = small_samples(120)  # train_samples is 200
    manifest = write(tmp_path / "ds", arrays, DICTIONARY)
    assert manifest["codec"]["configuration"]["dictionary"] == "codecs/data.zstd.dict"
    with acumen.open(tmp_path / "ds") as ds:
        assert all(ds.read(i).tobytes() == a.tobytes() for i, a in enumerate(arrays))


def test_too_little_data_to_train_writes_without_a_dictionary(tmp_path: Path) -> None:
    arrays = small_samples(2)
    manifest = write(tmp_path / "ds", arrays, DICTIONARY)
    assert manifest["codec"]["configuration"]["dictionary"] is None
    assert not (tmp_path / "ds" / "codecs").exists()
    with acumen.open(tmp_path / "ds") as ds:
        assert all(ds.read(i).tobytes() == a.tobytes() for i, a in enumerate(arrays))


def test_each_field_trains_its_own_dictionary(tmp_path: Path) -> None:
    arrays = small_samples(300)
    samples = [{"pose": a, "ids": np.arange(i % 7, dtype=np.int64)} for i, a in enumerate(arrays)]
    manifest = write(tmp_path / "ds", samples, DICTIONARY)
    names = {f["name"]: f["codec"]["configuration"]["dictionary"] for f in manifest["fields"]}
    assert names == {"pose": "codecs/pose.zstd.dict", "ids": "codecs/ids.zstd.dict"}
    with acumen.open(tmp_path / "ds") as ds:
        for i, sample in enumerate(samples):
            got = ds.read(i)
            assert got["pose"].tobytes() == sample["pose"].tobytes()
            assert got["ids"].tobytes() == sample["ids"].tobytes()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_split_into_chunks_trains_in_the_parent(tmp_path: Path, n_jobs: int) -> None:
    arrays = small_samples(600)
    pairs = [(a, {"i": i}) for i, a in enumerate(arrays)]
    acumen.split_into_chunks(
        pairs, tmp_path / f"ds{n_jobs}", n_jobs=n_jobs, dtype=None, codec=DICTIONARY
    )
    with acumen.open(tmp_path / f"ds{n_jobs}") as ds:
        assert all(ds.read(i).tobytes() == a.tobytes() for i, a in enumerate(arrays))
    if n_jobs == 2:
        one, two = tmp_path / "ds1", tmp_path / "ds2"
        for file in sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file()):
            assert (one / file).read_bytes() == (two / file).read_bytes(), file


def test_missing_dictionary_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "ds", small_samples(300), DICTIONARY)
    (tmp_path / "ds" / "codecs" / "data.zstd.dict").unlink()
    with pytest.raises(
        CorruptDatasetError, match=r"data\.zstd\.dict: the zstd dictionary is missing"
    ):
        acumen.open(tmp_path / "ds")


def test_dictionary_path_may_not_leave_the_dataset(tmp_path: Path) -> None:
    write(tmp_path / "ds", small_samples(300), DICTIONARY)
    path = tmp_path / "ds" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["codec"]["configuration"]["dictionary"] = "../elsewhere.dict"
    path.write_text(json.dumps(sealed(manifest)))
    with pytest.raises(CorruptDatasetError, match="not a path inside the dataset"):
        acumen.open(tmp_path / "ds")


def test_pickled_dataset_and_codec_carry_the_dictionary(tmp_path: Path) -> None:
    arrays = small_samples(300)
    write(tmp_path / "ds", arrays, DICTIONARY)
    with acumen.open(tmp_path / "ds") as ds:
        copy = pickle.loads(pickle.dumps(ds))
        codec = pickle.loads(pickle.dumps(ds.codec))
        payload = ds.codec.encode(arrays[5])
    assert codec.decode(payload, arrays[5].nbytes) == arrays[5].tobytes()
    assert copy.read(7).tobytes() == arrays[7].tobytes()
    copy.close()
