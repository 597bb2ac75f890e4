"""What ``acumen view`` shows of one array: a PNG thumbnail for an image, else a small grid or
series of values and their statistics. PNG is written with Pillow when it is installed, else
by :func:`encode_png` (zlib; a PNG needs no more), so the viewer needs no dependency."""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

import numpy as np

from acumen.commands.show import recognise

#: The image formats a browser shows, of those ``acumen show`` recognises by their first
#: bytes, and their MIME types.
MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WebP": "image/webp"}
#: The largest grid (per side) and series sent for a plot.
GRID = 64
SERIES = 1000


def image_type(data: bytes) -> str | None:
    """The MIME type of an encoded image in ``data`` (PNG, JPEG, GIF, WebP), or None."""
    return MIME_TYPES.get(recognise(data) or "")


def is_image(array: np.ndarray) -> bool:
    """uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4): shown as a picture."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or min(array.shape[:2]) < 1:
        return False
    return array.ndim == 2 or array.shape[2] in (1, 3, 4)


def thumbnail_png(array: np.ndarray, size: int) -> bytes:
    """An image array (see :func:`is_image`) as a PNG at most ``size`` pixels a side."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    try:
        from PIL import Image
    except ImportError:
        step = max(1, math.ceil(max(array.shape[:2]) / size))
        return encode_png(array[::step, ::step])
    import io

    image = Image.fromarray(np.ascontiguousarray(array))
    image.thumbnail((size, size), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def encoded_thumbnail(data: bytes, size: int) -> tuple[str, bytes]:
    """An encoded image (a bytes field) as (MIME type, bytes): a PNG thumbnail with Pillow,
    else the bytes as they are (the browser decodes and scales them)."""
    kind = image_type(data)
    if kind is None:
        raise ValueError("not an image the viewer can show (PNG, JPEG, GIF, WebP)")
    try:
        import io

        from PIL import Image
    except ImportError:
        return kind, data
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((size, size))
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGBA")
        out = io.BytesIO()
        image.save(out, format="PNG")
    return "image/png", out.getvalue()


def encode_png(array: np.ndarray) -> bytes:
    """A uint8 (H, W), (H, W, 3) or (H, W, 4) array as PNG bytes, with zlib alone."""
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    color = {1: 0, 3: 2, 4: 6}[channels]  # greyscale, RGB, RGBA
    rows = np.ascontiguousarray(array, dtype=np.uint8).reshape(height, width * channels)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows])  # filter type 0 on each row

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def describe(array: np.ndarray) -> dict[str, Any]:
    """An array's dtype, shape, statistics and what to draw: ``image`` (a thumbnail URL
    follows), ``grid`` (values at most 64 x 64, for a heatmap), ``series`` (at most 1000
    values, for a line) or ``value`` (a scalar)."""
    described: dict[str, Any] = {"dtype": str(array.dtype), "shape": list(array.shape)}
    if array.dtype.kind not in "biufc":
        return {**described, "kind": "none"}
    values = np.abs(array) if array.dtype.kind == "c" else array.astype(np.float64)
    described["stats"] = statistics(values)
    if is_image(array):
        return {**described, "kind": "image"}
    if values.ndim == 0:
        return {**described, "kind": "value", "value": plain(values.item())}
    if values.ndim == 1:
        step = max(1, math.ceil(len(values) / SERIES))
        return {**described, "kind": "series", "step": step, "values": _list(values[::step])}
    grid = values.reshape(values.shape[0], -1)
    rows, cols = (max(1, math.ceil(n / GRID)) for n in grid.shape)
    return {
        **described,
        "kind": "grid",
        "step": [rows, cols],
        "values": _list(grid[::rows, ::cols]),
    }


def statistics(values: np.ndarray) -> dict[str, Any]:
    """min, max, mean and std of the finite values, and how many are not (NaN, inf)."""
    finite = values[np.isfinite(values)]
    stats: dict[str, Any] = {"count": int(values.size), "nonfinite": int(values.size - finite.size)}
    if finite.size:
        stats.update(
            min=float(finite.min()),
            max=float(finite.max()),
            mean=float(finite.mean()),
            std=float(finite.std()),
        )
    return stats


def plain(value: Any) -> Any:
    """A value as JSON holds it: NaN and infinities as text, numpy scalars as Python's."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _list(values: np.ndarray) -> list:
    """Floats for JSON, NaN and infinities as None (a gap in the plot)."""
    out = values.astype(object)
    out[~np.isfinite(values)] = None
    return out.tolist()
