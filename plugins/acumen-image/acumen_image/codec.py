"""``image``: each sample is stored as one PNG, JPEG or WebP file, encoded by Pillow.

Arrays are uint8 images of shape (H, W) or (H, W, 1) (grayscale), (H, W, 3) (RGB) or
(H, W, 4) (RGBA); PNG also stores uint16 grayscale. Every payload is a complete image
file, so it can be pulled out of a chunk and opened by any image viewer.

Decoding never trusts the payload: the header's width x height x channels must equal the
size the index declares *before* any pixel is decoded (a decompression bomb is refused
unread), and any Pillow failure becomes :class:`acumen.errors.CorruptDatasetError`.
"""

from __future__ import annotations

import io
from typing import Any, ClassVar

import numpy as np
from acumen.abc.codec import Buffer, Codec
from acumen.errors import CorruptDatasetError
from PIL import Image

#: Configuration name -> Pillow format name.
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
LOSSY = ("jpeg", "webp")
DEFAULT_QUALITY = 90
#: The largest width or height each format holds.
MAX_SIDE = {"png": 2**31 - 1, "jpeg": 65_535, "webp": 16_383}

#: Channels of a uint8 array -> Pillow mode.
UINT8_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
#: Bytes per pixel of the Pillow modes this codec writes (or that Pillow reads them back as).
MODE_BYTES = {"L": 1, "I;16": 2, "RGB": 3, "RGBA": 4}

#: PNG pixels are deflated, and deflate decodes at most 1032 bytes per byte: a larger
#: declared size is refused before Pillow allocates the image its header declares. JPEG
#: and WebP have no such bound (a progressive JPEG codes thousands of empty blocks in a
#: few bits); Pillow's MAX_IMAGE_PIXELS bounds what they allocate.
PNG_MAX_RATIO = 1032

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the last chunk, with its CRC


class ImageCodec(Codec):
    """One image file per sample.

    :param format: ``"png"`` (lossless, default), ``"jpeg"`` or ``"webp"``.
    :param quality: 1..100 for ``jpeg`` and ``webp`` (default 90); not for ``png``. With
        ``lossless=True`` WebP takes it as the compression effort.
    :param lossless: WebP only: lossless WebP instead of lossy.
    """

    name: ClassVar[str] = "image"

    def __init__(
        self, format: str = "png", quality: int | None = None, lossless: bool = False
    ) -> None:
        if format not in FORMATS:
            raise ValueError(f"image format must be one of {sorted(FORMATS)}, not {format!r}")
        if not isinstance(lossless, bool):
            raise ValueError(f"image lossless must be true or false, not {lossless!r}")
        if lossless and format != "webp":
            raise ValueError(
                f"image lossless applies to webp only ({format} is "
                f"{'always' if format == 'png' else 'never'} lossless)"
            )
        if format == "png":
            if quality is not None:
                raise ValueError("png is lossless: quality applies to jpeg and webp only")
        else:
            quality = DEFAULT_QUALITY if quality is None else quality
            if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
                raise ValueError(f"image quality must be an integer, not {quality!r}")
            quality = int(quality)
            if not 1 <= quality <= 100:
                raise ValueError(f"image quality must be between 1 and 100, not {quality}")
        self.format = format
        self.quality = quality
        self.lossless = lossless

    @property
    def configuration(self) -> dict[str, Any]:
        if self.format == "png":
            return {"format": "png"}
        if self.format == "jpeg":
            return {"format": "jpeg", "quality": self.quality}
        return {"format": "webp", "quality": self.quality, "lossless": self.lossless}

    # --- encoding ---------------------------------------------------------------------
    def _mode(self, array: np.ndarray) -> str:
        """The Pillow mode for an array, or a ValueError/TypeError saying why it has none."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"expected a numpy array, got {type(array).__name__}")
        shape = array.shape
        if array.ndim not in (2, 3):
            raise ValueError(
                f"an image is (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), not shape {shape}"
            )
        channels = shape[2] if array.ndim == 3 else 1
        if array.dtype == np.uint8:
            if channels not in UINT8_MODES:
                raise ValueError(
                    f"an image has 1, 3 or 4 channels (last axis), not {channels} (shape {shape})"
                )
            mode = UINT8_MODES[channels]
        elif array.dtype == np.dtype("<u2") and self.format == "png":
            if channels != 1:
                raise ValueError(f"uint16 images are grayscale (H, W) only, not shape {shape}")
            mode = "I;16"
        else:
            also = " (and uint16 grayscale)" if self.format == "png" else ""
            raise TypeError(
                f"{self.format} stores uint8 images{also}, not {array.dtype}; "
                "convert first, e.g. np.clip(x * 255, 0, 255).astype(np.uint8)"
            )
        height, width = shape[:2]
        if height == 0 or width == 0:
            raise ValueError(f"a {height}x{width} image is empty; {self.format} cannot hold it")
        if max(height, width) > MAX_SIDE[self.format]:
            raise ValueError(
                f"{self.format} images are at most {MAX_SIDE[self.format]} pixels wide and high, "
                f"not {height}x{width}"
            )
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and height * width > limit:
            raise ValueError(
                f"a {height}x{width} image exceeds PIL.Image.MAX_IMAGE_PIXELS ({limit}), so Pillow "
                "would refuse to read it back; raise that limit first"
            )
        if mode == "RGBA" and self.format == "jpeg":
            raise ValueError(
                "jpeg has no alpha channel: store RGBA images with format 'png' or 'webp', "
                "or drop the alpha (array[..., :3])"
            )
        return mode

    def _save_options(self) -> dict[str, Any]:
        # Every setting pinned, so the same array always gives the same bytes.
        if self.format == "png":
            return {"optimize": False, "compress_level": 6}
        if self.format == "jpeg":
            return {
                "quality": self.quality,
                "optimize": False,
                "progressive": False,
                "subsampling": "4:2:0",
            }
        # exact: keep the RGB under fully transparent pixels (libwebp drops it otherwise).
        return {
            "quality": self.quality,
            "lossless": self.lossless,
            "method": 4,
            "exact": True,
            "alpha_quality": 100,
        }

    def encode(self, array: np.ndarray) -> Buffer:
        mode = self._mode(array)
        height, width = array.shape[:2]
        image = Image.frombytes(mode, (width, height), np.ascontiguousarray(array).tobytes())
        out = io.BytesIO()
        try:
            image.save(out, FORMATS[self.format], **self._save_options())
        except OSError as error:  # the writer reports ValueError/TypeError with the sample
            raise ValueError(f"{self.format} encoder failed: {error}") from None
        return out.getvalue()  # bytes: payloads may cross to the writer's process

    # --- decoding ---------------------------------------------------------------------
    def _check_framing(self, data: memoryview) -> None:
        """Cheap structural checks Pillow skips: a file cut short must not decode."""
        size = len(data)
        if self.format == "png":
            ok = data[:8] == PNG_SIGNATURE and data[size - 12 :] == PNG_IEND and size > 20
        elif self.format == "jpeg":
            ok = size > 4 and data[:3] == b"\xff\xd8\xff" and data[size - 2 :] == b"\xff\xd9"
        else:
            ok = (
                size >= 12
                and data[:4] == b"RIFF"
                and data[8:12] == b"WEBP"
                and int.from_bytes(data[4:8], "little") + 8 == size
            )
        if not ok:
            raise CorruptDatasetError(
                f"codec 'image': the payload is not a complete {self.format} file ({size} bytes)"
            )

    def _target_mode(self, mode: str, width: int, height: int, decoded_size: int) -> str:
        """The mode whose bytes are the sample, checked against ``decoded_size`` unread."""
        pixels = width * height
        per_pixel = decoded_size // pixels if pixels else 0
        header = f"a {width}x{height} {mode} image"
        if mode in MODE_BYTES:
            header += f" ({pixels * MODE_BYTES[mode]} bytes)"
        if pixels == 0 or per_pixel * pixels != decoded_size:
            raise _size_mismatch(header, decoded_size)
        if (mode, per_pixel) in (("L", 1), ("RGB", 3), ("RGBA", 4), ("I;16", 2), ("I", 2)):
            return {"I": "I;16"}.get(mode, mode)  # older Pillow reads 16-bit PNG as "I"
        if self.format == "webp" and mode == "RGB" and per_pixel in (1, 4):
            # WebP has no grayscale (Pillow writes L as RGB), and drops an opaque alpha.
            return "L" if per_pixel == 1 else "RGBA"
        raise _size_mismatch(header, decoded_size)

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        data = memoryview(payload)
        if data.ndim != 1 or data.format != "B":
            data = data.cast("B")
        self._check_framing(data)
        if self.format == "png" and decoded_size > PNG_MAX_RATIO * len(data):
            raise CorruptDatasetError(
                f"codec 'image': a png payload of {len(data)} bytes cannot hold the "
                f"{decoded_size} bytes the index says"
            )
        try:
            with Image.open(io.BytesIO(data), formats=[FORMATS[self.format]]) as image:
                width, height = image.size  # from the header; nothing decoded yet
                target = self._target_mode(image.mode, width, height, decoded_size)
                image.load()
                decoded = image if image.mode == target else image.convert(target)
                pixels = decoded.tobytes()
        except CorruptDatasetError:
            raise
        except Exception as error:
            # Pillow raises many kinds on a damaged file (UnidentifiedImageError, OSError,
            # SyntaxError, ValueError, struct.error, DecompressionBombError...): all mean
            # the payload is not the image it should be.
            raise CorruptDatasetError(
                f"codec 'image': the payload does not decode as {self.format}: "
                f"{type(error).__name__}: {error}"
            ) from None
        if len(pixels) != decoded_size:
            raise _size_mismatch(f"{len(pixels)} bytes of pixels", decoded_size)
        return pixels


def _size_mismatch(got: str, expected: int) -> CorruptDatasetError:
    return CorruptDatasetError(
        f"codec 'image': the payload holds {got}, but the index says {expected} bytes"
    )
