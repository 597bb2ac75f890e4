"""The image codec passes acumen's conformance kit in each of its formats."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from acumen.testing import CodecTests
from image_samples import is_image_shape, psnr, smooth_image

from acumen_image.codec import ImageCodec

# Non-images first (make_array refuses them), the image the kit picks last.
NOT_IMAGES = ((), (7,), (0, 5), (5, 0, 3), (3, 4, 2), (2, 2, 2, 3))
IMAGES = ((1, 1), (1, 1, 3), (16, 16), (16, 16, 1), (17, 33, 3), (48, 40, 4), (64, 64, 3))
MIN_PSNR_Q90 = 30.0


class ImageCodecTests(CodecTests):
    codec_class = ImageCodec
    dtypes: ClassVar[tuple[str, ...]] = ("|u1",)
    shapes: ClassVar[tuple[tuple[int, ...], ...]] = NOT_IMAGES + IMAGES
    channels: ClassVar[tuple[int, ...]] = (1, 3, 4)

    def make_array(self, dtype: np.dtype, shape: tuple[int, ...], rng: np.random.Generator):
        if dtype != np.uint8 or not is_image_shape(shape, self.channels):
            return None  # not an image: the codec refuses it (see test_errors.py)
        return smooth_image(rng, shape)

    def make_huge_array(self, rng: np.random.Generator) -> np.ndarray:
        return smooth_image(rng, (1024, 1024, 3))  # 3 MiB


class TestPngCodec(ImageCodecTests):
    configurations: ClassVar[tuple[dict, ...]] = ({"format": "png"}, {})
    # PNG also stores uint16 grayscale; uint8 last, so the kit's single-array tests use RGB.
    dtypes: ClassVar[tuple[str, ...]] = ("<u2", "|u1")

    def make_array(self, dtype: np.dtype, shape: tuple[int, ...], rng: np.random.Generator):
        if dtype == np.dtype("<u2"):
            return smooth_image(rng, shape, "<u2") if is_image_shape(shape, (1,)) else None
        return super().make_array(dtype, shape, rng)


class TestWebpLosslessCodec(ImageCodecTests):
    detects_damage: ClassVar[bool] = False  # WebP has no checksum (see README)
    configurations: ClassVar[tuple[dict, ...]] = (
        {"format": "webp", "lossless": True},
        {"format": "webp", "lossless": True, "quality": 10},
    )


class LossyTests(ImageCodecTests):
    """Lossy: shapes and sizes exact, pixels within a PSNR bound."""

    # JPEG and WebP carry no checksum: damaged bytes can decode to other pixels (README).
    detects_damage: ClassVar[bool] = False

    def assert_decoded(self, original: np.ndarray, decoded: np.ndarray) -> None:
        decoded = np.asarray(decoded)
        assert decoded.nbytes == original.nbytes
        decoded = decoded.reshape(original.shape)
        assert decoded.dtype == original.dtype
        assert psnr(original, decoded) >= MIN_PSNR_Q90, (original.shape, psnr(original, decoded))

    @staticmethod
    def decode_all(codec: ImageCodec, payloads: list, images: list[np.ndarray]) -> list:
        return [
            np.frombuffer(codec.decode(payload, image.nbytes), np.uint8).reshape(image.shape)
            for payload, image in zip(payloads, images, strict=True)
        ]

    def test_higher_quality_gives_lower_error(self) -> None:
        fmt = self.configurations[0]["format"]
        rng = np.random.default_rng(5)
        images = [smooth_image(rng, (64, 64, 3)) for _ in range(8)]
        errors, sizes = [], []
        for quality in (30, 60, 95):
            codec = ImageCodec(format=fmt, quality=quality)
            payloads = [codec.encode(image) for image in images]
            mse = [
                np.mean((image.astype(np.float64) - decoded) ** 2)
                for image, decoded in zip(
                    images, self.decode_all(codec, payloads, images), strict=True
                )
            ]
            errors.append(float(np.mean(mse)))
            sizes.append(sum(len(p) for p in payloads))
        assert errors[0] > errors[1] > errors[2]
        assert sizes[0] < sizes[1] < sizes[2]


class TestJpegCodec(LossyTests):
    configurations: ClassVar[tuple[dict, ...]] = ({"format": "jpeg", "quality": 90},)
    channels: ClassVar[tuple[int, ...]] = (1, 3)  # no alpha in JPEG


class TestWebpCodec(LossyTests):
    configurations: ClassVar[tuple[dict, ...]] = (
        {"format": "webp", "quality": 90},
        {"format": "webp"},
    )
