"""``acumen show PATH I [--out FILE]``: one sample described (dtype, shape, statistics, a
few values; a bytes field's length, first bytes and recognised type), or written as an
image file with Pillow."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import numpy as np

from acumen.cli_options import add_remote_options, check_used, for_path
from acumen.errors import AcumenError

NAMES = ("show",)

#: File signatures of the payloads a bytes field commonly holds: (prefix, offset, name).
MAGIC = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF8", 0, "GIF"),
    (b"WEBP", 8, "WebP"),
    (b"WAVE", 8, "WAV"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"BM", 0, "BMP"),
    (b"fLaC", 0, "FLAC"),
    (b"OggS", 0, "Ogg"),
    (b"ID3", 0, "MP3"),
    (b"\x93NUMPY", 0, "NPY"),
    (b"%PDF", 0, "PDF"),
    (b"\x1f\x8b", 0, "gzip"),
    (b"(\xb5/\xfd", 0, "zstd"),
    (b"PK\x03\x04", 0, "zip"),
)
#: Formats Pillow decodes, for a bytes field written with ``--out``.
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WebP", "TIFF", "BMP")
_SUFFIXES = {"JPEG": (".jpg", ".jpeg"), "PNG": (".png",), "GIF": (".gif",), "WebP": (".webp",)}
VALUES_SHOWN = 8
BYTES_SHOWN = 16


class ShowError(AcumenError, ValueError):
    """A sample that is not there, or that cannot be written as an image."""


def add_parsers(commands: Any) -> None:
    """Add ``show`` to the ``acumen`` parser."""
    show = commands.add_parser(
        "show", help="describe one sample (dtype, shape, statistics), or write it as an image"
    )
    show.add_argument("path", help="a folder or a URL (s3://, gs://, https://...)")
    show.add_argument("sample", type=int, help="its position (negative: from the end)")
    show.add_argument(
        "--out",
        metavar="FILE",
        help="write the sample as an image (FILE.png...; needs Pillow): uint8, uint16 or bool "
        "(H, W) or (H, W, 1/3/4), or a bytes field holding JPEG or PNG",
    )
    show.add_argument("--field", help="the field to write with --out (default: the first image)")
    add_remote_options(show)


def run(args: argparse.Namespace) -> int:
    """Run ``acumen show``; the exit status."""
    import acumen

    check_used(args, args.path)
    with acumen.open(args.path, **for_path(args, args.path)) as ds:
        if not -len(ds) <= args.sample < len(ds):
            raise ShowError(
                f"{args.path}: sample {args.sample} is out of range: the dataset has "
                f"{len(ds):,} samples (0 to {len(ds) - 1:,}, or -{len(ds):,} to -1)"
            )
        position = args.sample % len(ds)
        value, metadata = ds.read(position), ds.metadata(position)
    where = f"{args.path}: sample {position}"
    if args.out is not None:
        print(write_image(value, args.out, where, args.field))
        return 0
    lines = [f"sample {position} of {args.path}"]
    if isinstance(value, dict):
        for name, field in value.items():
            lines.append(f"  field {name}: {describe_value(field)}")
    else:
        lines.append(f"  {describe_value(value)}")
    for name, item in metadata.items():
        lines.append(f"  {name} = {item!r}")
    print("\n".join(lines))
    return 0


def describe_value(value: Any) -> str:
    """An array's dtype, shape, statistics and first values; bytes' length, type and first
    bytes in hex."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        kind = recognise(data)
        head = data[:BYTES_SHOWN].hex(" ")
        more = " ..." if len(data) > BYTES_SHOWN else ""
        return f"{len(data):,} bytes{f' ({kind})' if kind else ''}: {head}{more}"
    array = np.asarray(value)
    text = f"{array.dtype}, shape {tuple(array.shape)}"
    stats = array_stats(array)
    if stats:
        text += ", " + ", ".join(f"{k} {v}" for k, v in stats.items())
    flat = array.reshape(-1)
    if flat.size:
        shown = np.array2string(flat[:VALUES_SHOWN], separator=", ", precision=6)
        text += f"; values {shown[:-1]}{', ...' if flat.size > VALUES_SHOWN else ''}]"
    return text


def array_stats(array: np.ndarray) -> dict[str, str]:
    """min, max and mean of a numeric array (NaN left out); a boolean's share true."""
    if not array.size or array.dtype.kind not in "biuf":
        return {}
    if array.dtype.kind == "b":
        return {"true": f"{array.mean():.1%}"}
    values = array[~np.isnan(array)] if array.dtype.kind == "f" else array
    if not values.size:
        return {"values": "all NaN"}
    low, high = values.min(), values.max()
    return {"min": _number(low), "max": _number(high), "mean": _number(values.mean())}


def _number(value: Any) -> str:
    return f"{value.item():.6g}" if isinstance(value.item(), float) else str(value.item())


def recognise(data: bytes) -> str | None:
    """The format a payload's first bytes announce (JPEG, PNG, WAV...), or None."""
    for prefix, offset, name in MAGIC:
        if data[offset : offset + len(prefix)] == prefix:
            return name
    return None


def write_image(value: Any, out: str, where: str, field: str | None) -> str:
    """Write ``value`` (an array, bytes, or a record's fields) to ``out``; what was written."""
    if isinstance(value, dict):
        value, where = _pick_field(value, where, field)
    elif field is not None:
        raise ShowError(f"--field {field}: {where} has no fields (one array per sample)")
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        kind = recognise(data)
        if kind not in IMAGE_FORMATS:
            raise ShowError(
                f"{where} is {len(data):,} bytes of {kind or 'no format recognised'}, not an "
                f"image: --out writes {', '.join(IMAGE_FORMATS)} bytes"
            )
        if Path(out).suffix.lower() in _SUFFIXES.get(kind, ()):
            Path(out).write_bytes(data)  # already in the format asked for: as it is
            return f"wrote {out}: {where}, {kind} as stored ({len(data):,} bytes)"
        image = _pillow().open(io.BytesIO(data))
    else:
        image = _image_of(np.asarray(value), where)
    try:
        image.save(out)
    except (ValueError, KeyError) as error:  # an extension Pillow has no writer for
        raise ShowError(f"{out}: Pillow cannot write this file: {error}") from None
    return f"wrote {out}: {where}, {image.width}x{image.height} {image.mode}"


def _pick_field(value: dict, where: str, field: str | None) -> tuple[Any, str]:
    if field is not None:
        if field not in value:
            raise ShowError(
                f"--field {field}: {where} has no such field; its fields: {list(value)}"
            )
        return value[field], f"{where} field {field}"
    for name, item in value.items():
        if _is_image(item):
            return item, f"{where} field {name}"
    raise ShowError(
        f"{where}: no field is an image (fields {', '.join(value)}); --out writes uint8, uint16 "
        "or bool arrays of shape (H, W) or (H, W, 1/3/4), or JPEG/PNG bytes"
    )


def _is_image(item: Any) -> bool:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return recognise(bytes(item)) in IMAGE_FORMATS
    return _mode(np.asarray(item)) is not None


def _mode(array: np.ndarray) -> str | None:
    """The Pillow mode of an image array, or None when the array is no image."""
    channels = array.shape[2] if array.ndim == 3 else 1
    if array.ndim not in (2, 3) or channels not in (1, 3, 4) or 0 in array.shape:
        return None
    if array.dtype == np.uint8:
        return {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    if array.dtype == np.uint16 and channels == 1:
        return "I;16"
    if array.dtype == np.bool_ and channels == 1:
        return "L"
    return None


def _image_of(array: np.ndarray, where: str) -> Any:
    mode = _mode(array)
    if mode is None:
        raise ShowError(
            f"{where} is not an image: {array.dtype} of shape {tuple(array.shape)}; --out "
            "writes uint8 (H, W) or (H, W, 1/3/4), uint16 or bool (H, W) arrays"
        )
    Image = _pillow()
    array = array.reshape(array.shape[:2]) if mode in ("L", "I;16") else array
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    return Image.fromarray(np.ascontiguousarray(array))


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ShowError(
            "--out needs Pillow, which is not installed: pip install Pillow (or the extra: "
            "pip install 'acumen-indexer[image]')"
        ) from None
    return Image
