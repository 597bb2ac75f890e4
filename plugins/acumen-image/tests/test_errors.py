"""What the codec refuses, and how damage and hostile payloads are reported."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import acumen
import numpy as np
import pytest
from acumen.errors import CorruptDatasetError
from image_samples import smooth_image
from PIL import Image, ImageFile

from acumen_image.codec import ImageCodec

RGB = smooth_image(np.random.default_rng(0), (32, 32, 3))
RGBA = smooth_image(np.random.default_rng(1), (32, 32, 4))


# --- configuration --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"format": "gif"}, "format must be one of"),
        ({"format": "png", "quality": 90}, "png is lossless"),
        ({"format": "jpeg", "quality": 0}, "between 1 and 100"),
        ({"format": "webp", "quality": 101}, "between 1 and 100"),
        ({"format": "jpeg", "quality": True}, "must be an integer"),
        ({"format": "jpeg", "quality": "90"}, "must be an integer"),
        ({"format": "jpeg", "lossless": True}, "webp only"),
        ({"format": "webp", "lossless": 1}, "true or false"),
    ],
)
def test_bad_configuration(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImageCodec(**config)


def test_bad_configuration_through_the_writer(tmp_path: Path) -> None:
    codec = {"name": "image", "configuration": {"format": "webp", "quality": 900}}
    with pytest.raises(ValueError, match="between 1 and 100"):
        acumen.Writer(tmp_path / "ds", codec=codec)
    with pytest.raises(ValueError, match="bad configuration"):
        acumen.Writer(tmp_path / "ds", codec={"name": "image", "configuration": {"level": 3}})


def test_configuration_is_canonical() -> None:
    assert ImageCodec().configuration == {"format": "png"}
    assert ImageCodec(format="jpeg").configuration == {"format": "jpeg", "quality": 90}
    assert ImageCodec(format="webp", quality=np.int64(75)).configuration == {
        "format": "webp",
        "quality": 75,
        "lossless": False,
    }
    assert ImageCodec(format="webp", quality=90) == ImageCodec(format="webp")


# --- arrays the codec cannot store ------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "array", "error", "message"),
    [
        ({}, RGB.astype(np.float32) / 255, TypeError, "uint8 images.*not float32"),
        ({"format": "webp"}, RGB.astype(np.uint16), TypeError, "uint8 images, not uint16"),
        ({}, RGB.astype(np.uint16), ValueError, "uint16 images are grayscale"),
        ({}, RGB.astype(np.int8), TypeError, "not int8"),
        ({}, RGB > 100, TypeError, "not bool"),
        ({}, RGB[None], ValueError, r"not shape \(1, 32, 32, 3\)"),
        ({}, RGB[0, 0], ValueError, r"not shape \(3,\)"),
        ({}, RGB[..., :2], ValueError, "not 2"),
        ({}, RGB[:0], ValueError, "0x32 image is empty"),
        ({"format": "jpeg"}, RGB[:, :0], ValueError, "32x0 image is empty"),
        ({"format": "jpeg"}, RGBA, ValueError, "jpeg has no alpha channel"),
        ({"format": "webp"}, np.zeros((1, 16_384), np.uint8), ValueError, "at most 16383"),
    ],
)
def test_unstorable_arrays(config: dict, array: np.ndarray, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ImageCodec(**config).encode(np.ascontiguousarray(array))


def test_more_pixels_than_pillow_reads_back_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS"):
        ImageCodec().encode(RGB)


@pytest.mark.parametrize(
    ("config", "bad", "message"),
    [
        ({}, RGB.astype(np.float64), "float64"),
        ({}, RGB[None], "shape"),
        ({"format": "jpeg"}, RGBA, "no alpha"),
    ],
)
def test_the_writer_names_the_sample_and_the_codec(
    tmp_path: Path, config: dict, bad: np.ndarray, message: str
) -> None:
    codec = {"name": "image", "configuration": config}
    with acumen.Writer(tmp_path / "first", codec=codec, durable=False) as writer:
        with pytest.raises(acumen.SampleError, match=f"sample 0: codec 'image' .*{message}"):
            writer.add(bad)
        writer.add(RGB)  # a refused first sample does not fix the dtype
    if bad.dtype == np.uint8:  # (a float sample after a uint8 one fails the dtype check)
        with acumen.Writer(tmp_path / "later", codec=codec, durable=False) as writer:
            writer.add(RGB)
            with pytest.raises(acumen.SampleError, match=f"sample 1: codec 'image' .*{message}"):
                writer.add(bad)
    with acumen.open(tmp_path / "first") as ds:
        assert len(ds) == 1


# --- damaged payloads -----------------------------------------------------------------
def write_dataset(path: Path, config: dict, n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    images = [smooth_image(rng, (32, 32, 3)) for _ in range(n)]
    codec = {"name": "image", "configuration": config}
    with acumen.Writer(path, codec=codec, durable=False) as writer:
        for image in images:
            writer.add(image)
    return images


def overwrite(path: Path, sample: int, start: int, data: bytes) -> None:
    """Overwrite bytes ``start..`` of a sample's payload in its chunk file."""
    with acumen.open(path) as ds:
        row = ds.index.iloc[sample]
    chunk, offset = path / row["ai:chunk_name"], int(row["ai:offset_bytes"])
    size = int(row["ai:size_bytes"])
    start = start if start >= 0 else size + start
    with open(chunk, "r+b") as handle:
        handle.seek(offset + start)
        handle.write(data)


@pytest.mark.parametrize("storage", ["mmap", "seek", "memory"])
@pytest.mark.parametrize(
    ("config", "start", "data"),
    [
        ({"format": "png"}, 60, b"\x00\xff" * 8),  # inside the pixel data: zlib/CRC notice
        ({"format": "png"}, -12, b"QQQQ"),  # the closing IEND chunk
        ({"format": "png"}, 0, b"GIF89a"),  # the signature
        ({"format": "jpeg"}, 0, b"\x00\x00"),  # the SOI marker
        ({"format": "jpeg"}, -2, b"\x00\x00"),  # the EOI marker: looks cut short
        ({"format": "webp"}, 4, b"\x00\x00\x00\x01"),  # the RIFF size
        ({"format": "webp"}, 12, b"JUNK"),  # the VP8 chunk header
    ],
)
def test_damaged_payload_is_corrupt_on_read(
    tmp_path: Path, storage: str, config: dict, start: int, data: bytes
) -> None:
    path = tmp_path / "ds"
    images = write_dataset(path, config)
    overwrite(path, 3, start, data)
    with acumen.open(path, storage) as ds:
        with pytest.raises(CorruptDatasetError, match=r"sample 3: .*image"):
            ds[3]
        assert ds.read(2).shape == images[2].shape  # the others still read


# --- hostile headers --------------------------------------------------------------------
def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def with_png_size(payload: bytes, width: int, height: int) -> bytes:
    """The PNG with its IHDR declaring another size (and a valid CRC, so only size lies)."""
    ihdr = bytearray(payload[8 + 8 : 8 + 8 + 13])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return payload[:16] + bytes(ihdr) + crc + payload[16 + 13 + 4 :]


@pytest.fixture
def no_pixel_decoding(monkeypatch: pytest.MonkeyPatch):
    """Fails the test if any image's pixels are decoded (the codec would turn a raised
    error into CorruptDatasetError, so calls are recorded and checked afterwards)."""
    loads: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def record(self: ImageFile.ImageFile):
        loads.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", record)
    yield
    assert loads == [], f"pixels were decoded for {loads}"


def test_a_decompression_bomb_is_refused_unread(no_pixel_decoding: None) -> None:
    # A real bomb: 4000x4000 black compresses to ~16 kB and would decode to 16 MB.
    bomb = png_bytes(Image.new("L", (4000, 4000)))
    assert len(bomb) < 50_000
    with pytest.raises(CorruptDatasetError, match=r"4000x4000 L image.*index says 4096 bytes"):
        ImageCodec().decode(bomb, 64 * 64)


@pytest.mark.parametrize("limit", [None, Image.MAX_IMAGE_PIXELS])
def test_a_lying_header_is_refused_unread(
    no_pixel_decoding: None, monkeypatch: pytest.MonkeyPatch, limit: int | None
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)  # our check does not rely on it
    small = png_bytes(Image.fromarray(RGB))
    for width, height in ((100_000, 100_000), (5000, 5000), (32, 33)):
        with pytest.raises(CorruptDatasetError, match=r"codec 'image'|does not decode"):
            ImageCodec().decode(with_png_size(small, width, height), RGB.nbytes)


def test_a_png_header_agreeing_with_a_huge_index_is_refused_unread(
    no_pixel_decoding: None,
) -> None:
    """Header and index agree on 5000x5000 RGB (75 MB): Pillow would allocate the image
    before finding the pixels missing; 3 kB of PNG cannot hold it."""
    small = png_bytes(Image.fromarray(RGB))
    with pytest.raises(CorruptDatasetError, match="cannot hold the 75000000 bytes"):
        ImageCodec().decode(with_png_size(small, 5000, 5000), 5000 * 5000 * 3)


def test_the_size_mismatch_names_the_codec_and_both_sizes() -> None:
    payload = ImageCodec().encode(RGB)
    with pytest.raises(
        CorruptDatasetError,
        match=r"codec 'image': .*32x32 RGB image \(3072 bytes\), but the index says 3073 bytes",
    ):
        ImageCodec().decode(payload, RGB.nbytes + 1)


def test_a_payload_of_another_format_is_corrupt() -> None:
    png = ImageCodec().encode(RGB)
    for codec in (ImageCodec(format="jpeg"), ImageCodec(format="webp")):
        with pytest.raises(CorruptDatasetError, match="not a complete"):
            codec.decode(png, RGB.nbytes)


def test_decoding_does_not_need_the_writing_instance() -> None:
    # Grayscale WebP comes back as RGB from Pillow, opaque RGBA as RGB: both restored.
    gray = smooth_image(np.random.default_rng(4), (20, 30))
    opaque = np.concatenate([RGB, np.full((32, 32, 1), 255, np.uint8)], axis=-1)
    codec = ImageCodec(format="webp", lossless=True)
    for array in (gray, gray[..., None], opaque):
        decoded = ImageCodec.from_config(codec.get_config()).decode(
            codec.encode(array), array.nbytes
        )
        assert bytes(decoded) == array.tobytes()
