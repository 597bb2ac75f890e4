"""Bytes per image and encode/decode time of each format, for the README.

    python benchmarks/measure.py [--photo PATH.jpg]

Images: the 50 smooth 64x64x3 test images (tests/image_samples.py), and, with --photo,
every 64x64 tile of a photo plus the whole photo. Times are the best of 5 runs, per image,
in one thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from acumen.codecs.raw import RawCodec
from acumen.codecs.zstd import ZstdCodec

from acumen_image.codec import ImageCodec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from image_samples import psnr, smooth_image

CODECS = {
    "raw": RawCodec(),
    "zstd (level 3)": ZstdCodec(),
    "png": ImageCodec(format="png"),
    "webp lossless": ImageCodec(format="webp", lossless=True),
    "webp q90": ImageCodec(format="webp", quality=90),
    "jpeg q90": ImageCodec(format="jpeg", quality=90),
}


def best_of(runs: int, function) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(title: str, images: list[np.ndarray]) -> None:
    n = len(images)
    raw = images[0].nbytes
    sizes = [image.nbytes for image in images]
    print(f"\n{title}: {n} image(s) of {images[0].shape}, {raw} bytes each raw")
    print("| codec | bytes/image | vs raw | encode µs/image | decode µs/image | PSNR min / mean |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for label, codec in CODECS.items():
        payloads = [codec.encode(image) for image in images]
        decoded = [
            np.frombuffer(codec.decode(p, i.nbytes), np.uint8).reshape(i.shape)
            for p, i in zip(payloads, images, strict=True)
        ]
        encode = best_of(5, lambda c=codec: [c.encode(i) for i in images]) / n * 1e6
        decode = best_of(
            5, lambda c=codec, p=payloads: [c.decode(*a) for a in zip(p, sizes, strict=True)]
        )
        quality = [psnr(i, d) for i, d in zip(images, decoded, strict=True)]
        size = sum(memoryview(p).nbytes for p in payloads) / n
        shown = (
            "lossless"
            if min(quality) == float("inf")
            else f"{min(quality):.1f} / {np.mean(quality):.1f} dB"
        )
        print(
            f"| {label} | {size:,.0f} | {raw / size:.1f}x | {encode:,.0f} | "
            f"{decode / n * 1e6:,.0f} | {shown} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photo", type=Path, help="a photo (any format Pillow reads)")
    args = parser.parse_args()
    rng = np.random.default_rng(7)  # as tests/test_dataset.py
    measure("smooth synthetic", [smooth_image(rng, (64, 64, 3)) for _ in range(50)])
    if args.photo:
        from PIL import Image

        with Image.open(args.photo) as image:
            photo = np.asarray(image.convert("RGB"))
        h, w = photo.shape[:2]
        tiles = [
            np.ascontiguousarray(photo[y : y + 64, x : x + 64])
            for y in range(0, h - 63, 64)
            for x in range(0, w - 63, 64)
        ]
        measure(f"64x64 tiles of {args.photo.name}", tiles)
        measure(f"the whole {args.photo.name}", [np.ascontiguousarray(photo)])


if __name__ == "__main__":
    main()
