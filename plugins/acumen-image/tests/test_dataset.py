"""Whole datasets written and read through acumen with the image codec."""

from __future__ import annotations

from pathlib import Path

import acumen
import numpy as np
import pytest
from image_samples import psnr, smooth_image

from acumen_image.codec import ImageCodec

N_IMAGES = 50
SHAPE = (64, 64, 3)
WEBP_Q90 = {"name": "image", "configuration": {"format": "webp", "quality": 90}}


def chunk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in (path / "chunks").iterdir())


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [smooth_image(rng, SHAPE) for _ in range(N_IMAGES)]


def write(path: Path, codec: object, images: list[np.ndarray]) -> None:
    with acumen.Writer(path, codec=codec, durable=False) as writer:
        for i, image in enumerate(images):
            writer.add(image, label=i % 10)


@pytest.mark.parametrize("storage", ["mmap", "seek", "memory"])
def test_webp_dataset_is_small_and_close(
    tmp_path: Path, images: list[np.ndarray], storage: str
) -> None:
    write(tmp_path / "webp", WEBP_Q90, images)
    write(tmp_path / "raw", "raw", images)
    with acumen.open(tmp_path / "webp", storage) as ds:
        assert ds.codec == ImageCodec(format="webp", quality=90)
        assert len(ds) == N_IMAGES and ds.shape == SHAPE and ds.dtype == np.uint8
        worst = min(psnr(image, ds.read(i)) for i, image in enumerate(images))
        assert ds[7][1] == {"label": 7}
    ratio = chunk_bytes(tmp_path / "raw") / chunk_bytes(tmp_path / "webp")
    print(
        f"\n{N_IMAGES} smooth {SHAPE} images: webp q90 is {ratio:.1f}x smaller than raw, "
        f"worst PSNR {worst:.1f} dB"
    )
    assert worst >= 30
    assert ratio >= 5


@pytest.mark.parametrize("config", [{"format": "png"}, {"format": "webp", "lossless": True}])
def test_lossless_dataset_round_trips_exactly(
    tmp_path: Path, images: list[np.ndarray], config: dict
) -> None:
    path = tmp_path / "ds"
    mixed = [
        *images[:5],
        images[5][..., 0],
        images[6][..., :1],
        np.dstack([images[7], images[8][..., :1]]),
    ]
    write(path, {"name": "image", "configuration": config}, mixed)
    with acumen.open(path) as ds:
        assert ds.shape is None  # shapes vary
        for i, image in enumerate(mixed):
            np.testing.assert_array_equal(ds.read(i), image)


def test_the_manifest_names_the_plugin_distribution(tmp_path: Path, images) -> None:
    write(tmp_path / "ds", WEBP_Q90, images[:2])
    with acumen.open(tmp_path / "ds") as ds:
        assert ds.manifest is not None
        provenance = ds.manifest.plugins["codec"]
    assert "acumen-image" in str(provenance)
