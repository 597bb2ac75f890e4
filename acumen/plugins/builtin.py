"""acumen's own plugins, registered through the ``acumen`` entry-point group like any other."""

from __future__ import annotations

from acumen.hookspecs import hookimpl


@hookimpl
def acumen_codecs() -> dict[str, str]:
    return {
        "raw": "acumen.codecs.raw:RawCodec",
        "gzip": "acumen.codecs.gzip:GzipCodec",
        "zstd": "acumen.codecs.zstd:ZstdCodec",
        "lz4": "acumen.codecs.lz4:Lz4Codec",
    }


@hookimpl
def acumen_storages() -> dict[str, str]:
    return {
        "seek": "acumen.storage.seek:SeekStorage",
        "mmap": "acumen.storage.mmap:MmapStorage",
        "memory": "acumen.storage.memory:MemoryStorage",
        "remote": "acumen.storage.remote:RemoteStorage",
    }


@hookimpl
def acumen_index_formats() -> dict[str, str]:
    return {
        "csv": "acumen.index_formats.csv:CsvIndex",
        "parquet": "acumen.index_formats.parquet:ParquetIndex",
        "arrow": "acumen.index_formats.arrow:ArrowIndex",
    }


@hookimpl
def acumen_readers() -> dict[str, str]:
    return {
        "npy": "acumen.readers.npy:NpyReader",
        "image": "acumen.readers.image:ImageReader",
        "bytes": "acumen.readers.bytes:BytesReader",
        "callable": "acumen.readers.callable:CallableReader",
        "column": "acumen.readers.column:ColumnReader",
        "webdataset": "acumen.readers.webdataset:WebDatasetReader",
    }
