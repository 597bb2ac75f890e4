"""Test images: smooth, natural-like content (gradients + low-frequency waves + a little
noise), so lossy error bounds mean something; white noise would defeat every image codec."""

from __future__ import annotations

import numpy as np

CHANNELS = (1, 3, 4)


def is_image_shape(shape: tuple[int, ...], channels: tuple[int, ...] = CHANNELS) -> bool:
    if len(shape) == 2:
        return 1 in channels and min(shape) > 0
    return len(shape) == 3 and shape[2] in channels and min(shape) > 0


def smooth_image(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype | str = np.uint8
) -> np.ndarray:
    """A smooth image of ``shape`` ((H, W) or (H, W, C)) and an unsigned integer dtype."""
    height, width = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    y = np.linspace(0.0, 1.0, height)[:, None]
    x = np.linspace(0.0, 1.0, width)[None, :]
    planes = []
    for _ in range(channels):
        fx, fy = rng.uniform(0.3, 1.5, 2)
        px, py = rng.uniform(0, 2 * np.pi, 2)
        gx, gy = rng.uniform(-0.25, 0.25, 2)
        plane = (
            0.5
            + 0.22 * np.sin(2 * np.pi * fx * x + px) * np.cos(2 * np.pi * fy * y + py)
            + gx * (x - 0.5)
            + gy * (y - 0.5)
            + rng.normal(0.0, 0.004, (height, width))  # about 1 grey level of noise
        )
        planes.append(plane)
    image = np.stack(planes, axis=-1)
    if len(shape) == 2:
        image = image[..., 0]
    top = np.iinfo(np.dtype(dtype)).max
    return np.clip(np.rint(image * top), 0, top).astype(dtype)


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for uint8 images (inf when equal)."""
    mse = np.mean((original.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
