"""acumen's own plugins pass the conformance kit that third parties use."""

from __future__ import annotations

import numpy as np
import pytest

from acumen.abc.reader import Reader
from acumen.codecs.gzip import GzipCodec
from acumen.codecs.lz4 import Lz4Codec
from acumen.codecs.raw import RawCodec
from acumen.codecs.zstd import ZstdCodec
from acumen.index_formats.csv import CsvIndex
from acumen.index_formats.parquet import ParquetIndex
from acumen.readers.bytes import BytesReader
from acumen.readers.callable import CallableReader
from acumen.readers.image import ImageReader
from acumen.readers.npy import NpyReader
from acumen.storage.memory import MemoryStorage
from acumen.storage.mmap import MmapStorage
from acumen.storage.seek import SeekStorage
from acumen.testing import CodecTests, IndexFormatTests, ReaderTests, StorageTests


class TestRawCodec(CodecTests):
    codec_class = RawCodec


class TestGzipCodec(CodecTests):
    codec_class = GzipCodec
    configurations = ({}, {"level": 1}, {"level": 9})


class TestZstdCodec(CodecTests):
    codec_class = ZstdCodec
    configurations = ({}, {"level": -5}, {"level": 19})


class TestLz4Codec(CodecTests):
    codec_class = Lz4Codec
    configurations = ({}, {"level": 9})


class TestSeekStorage(StorageTests):
    storage_class = SeekStorage


class TestMmapStorage(StorageTests):
    storage_class = MmapStorage


class TestMemoryStorage(StorageTests):
    storage_class = MemoryStorage
    configurations = ({}, {"preload": True})


class TestCsvIndex(IndexFormatTests):
    index_format_class = CsvIndex


class TestParquetIndex(IndexFormatTests):
    index_format_class = ParquetIndex
    configurations = ({}, {"compression": "none"}, {"compression": "snappy"})


from acumen.index_formats.arrow import ArrowIndex  # noqa: E402 (appended with its test class)


class TestArrowIndex(IndexFormatTests):
    index_format_class = ArrowIndex


# --- readers (acumen convert's [reader]) ---------------------------------------------------
class TestNpyReader(ReaderTests):
    reader_class = NpyReader

    def make_items(self, folder, reader):
        rng = np.random.default_rng(0)
        arrays = [
            rng.random((3, 4), dtype=np.float32),
            np.zeros((0,), np.float32),
            np.float32(2.5).reshape(()),
            np.asfortranarray(rng.random((2, 3, 4), dtype=np.float32)),
            np.arange(6, dtype=">f4").reshape(2, 3),  # big-endian, as another machine saves
            np.arange(5, dtype=np.int16),  # casts safely to the first dtype
        ]
        cases = []
        for n, array in enumerate(arrays):
            path = folder / f"{n}.npy"
            np.save(path, array)
            cases.append((str(path), array, {}))
        return cases

    def make_bad_items(self, folder, reader):
        np.save(folder / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        np.save(folder / "cut.npy", np.arange(100.0))
        (folder / "cut.npy").write_bytes((folder / "cut.npy").read_bytes()[:-8])
        (folder / "text.npy").write_text("not a numpy file")
        return [str(folder / n) for n in ("missing.npy", "objects.npy", "cut.npy", "text.npy")]


class TestImageReader(ReaderTests):
    reader_class = ImageReader
    configurations = ({}, {"mode": "RGB"}, {"mode": "L"}, {"mode": "RGBA"})

    def make_items(self, folder, reader):
        from PIL import Image

        rng = np.random.default_rng(1)
        images = {
            "rgb.png": Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)),
            "gray.png": Image.fromarray(rng.integers(0, 256, (4, 6), dtype=np.uint8)),
            "rgba.png": Image.fromarray(rng.integers(0, 256, (3, 2, 4), dtype=np.uint8)),
            "palette.png": Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).convert(
                "P"
            ),
        }
        kept = {"RGB", "L", "RGBA"}  # modes the reader keeps when it is given none
        cases = []
        for name, image in images.items():
            image.save(folder / name)
            wanted = reader.mode or (image.mode if image.mode in kept else "RGB")
            expected = np.asarray(image if image.mode == wanted else image.convert(wanted))
            cases.append((str(folder / name), expected, {}))
        return cases

    def make_bad_items(self, folder, reader):
        (folder / "text.png").write_text("not an image")
        return [str(folder / "missing.png"), str(folder / "text.png")]


class TestBytesReader(ReaderTests):
    reader_class = BytesReader
    configurations = ({}, {"field": "jpeg"})

    def make_items(self, folder, reader):
        contents = [b"\xff\xd8\xff\xe0 some bytes", b"", bytes(range(256)) * 40]
        cases = []
        for n, content in enumerate(contents):
            (folder / f"{n}.bin").write_bytes(content)
            cases.append((str(folder / f"{n}.bin"), {reader.field: content}, {}))
        return cases

    def make_bad_items(self, folder, reader):
        (folder / "a-folder").mkdir()
        return [str(folder / "missing.bin"), str(folder / "a-folder")]


class TestCallableReader(ReaderTests):
    reader_class = CallableReader
    configurations = (
        {"function": "tests.convert_helpers:read_with_stem"},
        {"function": "tests.convert_helpers:read_image_and_mask"},
    )

    def make_items(self, folder, reader):
        cases = []
        for n in range(3):
            image = np.arange(n * 4, dtype=np.int32).reshape(n, 4) - 2
            np.save(folder / f"scan-{n}.npy", image)
            if reader.function.endswith("read_with_stem"):
                sample, metadata = image, {"stem": f"scan-{n}"}
            else:
                mask = (image > 0).astype(np.uint8)
                sample, metadata = {"image": image, "mask": mask}, {"positive": int(mask.sum())}
            cases.append((str(folder / f"scan-{n}.npy"), sample, metadata))
        return cases


class _ForgetfulReader(Reader):
    """Leaves ``scale`` out of its configuration and returns a list with None metadata."""

    name = "forgetful"

    def __init__(self, scale: int = 1) -> None:
        self.scale = scale

    def read(self, item):
        return [self.scale * int(item)], {"note": None}


class _ForgetfulKit(ReaderTests):
    reader_class = _ForgetfulReader
    configurations = ({"scale": 3},)
    registered = False

    def make_items(self, folder, reader):
        return [("2", np.array([6]), {})]


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ("test_reads_every_item", "the sample is a list, not an ndarray"),
        ("test_config_round_trips_and_pickles", "from its config"),
    ],
)
def test_the_reader_kit_fails_a_reader_a_conversion_cannot_use(tmp_path, test, message):
    with pytest.raises(AssertionError, match=message):
        getattr(_ForgetfulKit(), test)(tmp_path)
