"""acumen's own plugins pass the conformance kit that third parties use."""

from __future__ import annotations

from acumen.codecs.gzip import GzipCodec
from acumen.codecs.lz4 import Lz4Codec
from acumen.codecs.raw import RawCodec
from acumen.codecs.zstd import ZstdCodec
from acumen.index_formats.csv import CsvIndex
from acumen.index_formats.parquet import ParquetIndex
from acumen.storage.memory import MemoryStorage
from acumen.storage.mmap import MmapStorage
from acumen.storage.seek import SeekStorage
from acumen.testing import CodecTests, IndexFormatTests, StorageTests


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
