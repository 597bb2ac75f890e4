"""``acumen convert`` on real images (scikit-learn's and scikit-image's sample images, which
ship in their wheels) and on generated .npy files of mixed dtypes and lengths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import acumen
from acumen.convert import convert

Image = pytest.importorskip("PIL.Image")

SKIMAGE_NAMES = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "moon",
    "page",
    "text",
    "coins",
    "clock",
    "immunohistochemistry",
    "logo",
    "colorwheel",
    "cat",
)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tmp/images/*.png and tmp/labels.csv (path, label, source, name)."""
    datasets = pytest.importorskip("sklearn.datasets")
    skimage_data = pytest.importorskip("skimage.data")
    root = tmp_path_factory.mktemp("real")
    (root / "images").mkdir()
    arrays: list[tuple[str, str, np.ndarray]] = []
    sample = datasets.load_sample_images()
    for filename, array in zip(sample.filenames, sample.images, strict=True):
        arrays.append(("sklearn", Path(filename).stem, array))
    for name in SKIMAGE_NAMES:
        arrays.append(("skimage", name, getattr(skimage_data, name)()))
    rows = []
    for label, (source, name, array) in enumerate(arrays):
        assert array.dtype == np.uint8, name
        relative = f"images/{source}_{name}.png"
        Image.fromarray(array).save(root / relative)
        rows.append({"path": relative, "label": label, "source": source, "name": name})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


def write_config(root: Path, name: str, mode: str | None) -> Path:
    config = {
        "source": {"table": "labels.csv"},
        "reader": {"name": "image", "configuration": {"mode": mode}},
        "output": {"path": name, "codec": "zstd", "index_format": "parquet", "chunk_size": "4MB"},
        "run": {"part_size": 5, "progress": False},
    }
    path = root / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("mode", [None, "RGB"])
def test_real_images_round_trip_bit_exact(images: Path, mode: str | None) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    name = f"out_{mode}"
    summary = convert(write_config(images, name, mode))
    rows = pd.read_csv(images / "labels.csv").to_dict("records")
    assert summary.samples == len(rows) == 16 and summary.skipped == []
    channels = set()
    with acumen.open(images / name) as ds:
        assert len(ds) == len(rows)
        assert ds.manifest.codec["name"] == "zstd"
        assert ds.manifest.index["name"] == "parquet"
        for i, row in enumerate(rows):
            array, metadata = ds[i]
            with Image.open(images / row["path"]) as image:
                if mode is not None and image.mode != mode:
                    image = image.convert(mode)
                expected = np.asarray(image)
            assert array.dtype == expected.dtype == np.uint8
            assert array.shape == expected.shape, row["name"]
            assert np.array_equal(array, expected), row["name"]
            assert metadata == row
            assert [type(metadata[k]) for k in ("path", "label", "source", "name")] == [
                str,
                int,
                str,
                str,
            ]
            channels.add(array.shape[2] if array.ndim == 3 else 1)
            if mode is None and row["source"] == "skimage":  # the library's array itself
                assert np.array_equal(array, getattr(skimage_data, row["name"])())
    # mode None keeps each file's own channels (grey, RGB and the RGBA logo); "RGB" makes 3.
    assert channels == ({1, 3, 4} if mode is None else {3})


def write_mixed(root: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(21)
    features, sequences = [], []
    (root / "data" / "features").mkdir(parents=True)
    (root / "data" / "sequences").mkdir(parents=True)
    for i in range(40):
        feature = rng.normal(size=(16,)).astype(np.float32)
        np.save(root / "data" / "features" / f"f{i:03d}.npy", feature)
        features.append(feature)
    for i in range(50):
        length = int(rng.integers(0, 300))
        sequence = rng.integers(-(2**15), 2**15, size=(length, 2), dtype=np.int16)
        np.save(root / "data" / "sequences" / f"s{i:03d}.npy", sequence)
        sequences.append(sequence)
    return features, sequences


def test_mixed_npy_folder_round_trips_exactly(tmp_path: Path) -> None:
    features, sequences = write_mixed(tmp_path)
    for folder, expected, codec in [
        ("features", features, "lz4"),
        ("sequences", sequences, "zstd"),
    ]:
        config = {
            "source": {"glob": f"data/{folder}/*.npy"},
            "reader": {"name": "npy"},
            "output": {"path": folder, "codec": codec, "index_format": "arrow"},
            "run": {"part_size": 16, "progress": False, "n_jobs": 2},
        }
        (tmp_path / f"{folder}.json").write_text(json.dumps(config))
        convert(tmp_path / f"{folder}.json")
        with acumen.open(tmp_path / folder) as ds:
            assert len(ds) == len(expected)
            for i, array in enumerate(expected):
                got, metadata = ds[i]
                assert got.dtype == array.dtype and got.shape == array.shape
                assert got.tobytes() == array.tobytes()
                assert metadata["path"].startswith(f"data/{folder}/")
    # Both folders in one dataset: the int16 sequences are safely cast to the first
    # sample's float32, every value kept.
    config = {
        "source": {"glob": "data/**/*.npy"},
        "reader": {"name": "npy"},
        "output": {"path": "both", "codec": "zstd"},
        "run": {"part_size": 16, "progress": False},
    }
    (tmp_path / "both.json").write_text(json.dumps(config))
    assert convert(tmp_path / "both.json").samples == 90
    with acumen.open(tmp_path / "both") as ds:
        assert ds.dtype == np.float32
        for i, array in enumerate(features + sequences):
            got = ds.read(i)
            assert got.shape == array.shape and np.array_equal(got, array.astype(np.float32))
