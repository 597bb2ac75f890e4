"""``image``: image files decoded with Pillow into uint8 arrays (H, W) or (H, W, C)."""

from __future__ import annotations

from typing import Any

import numpy as np

from acumen.abc.reader import Reader

MODES = ("L", "RGB", "RGBA", None)


class ImageReader(Reader):
    """``mode`` converts every image ("L", "RGB", "RGBA"); ``None`` keeps each file's own."""

    name = "image"

    def __init__(self, mode: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"image reader mode must be one of {MODES}, got {mode!r}")
        self.mode = mode

    @property
    def configuration(self) -> dict:
        return {"mode": self.mode}

    def read(self, item: Any) -> tuple[np.ndarray, dict[str, Any]]:
        try:
            from PIL import Image
        except ImportError:
            raise ImportError(
                "the image reader needs Pillow: pip install Pillow (acumen's 'image' extra)"
            ) from None
        with Image.open(item) as image:
            if self.mode is not None and image.mode != self.mode:
                image = image.convert(self.mode)
            elif image.mode not in ("L", "RGB", "RGBA", "I;16", "1"):
                image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            array = np.asarray(image)
        return array, {}
