"""Optional per-sample checksums: kept in the index, checked by verify and verify="sample"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xxhash

import acumen
from acumen.errors import CorruptDatasetError
from acumen.verify import verify
from tests.conftest import CODECS, INDEX_FORMATS, STORAGES

rng = np.random.default_rng(9)
ARRAYS = [rng.normal(size=(i % 5 + 1, 3)).astype(np.float32) for i in range(40)]


def write(path: Path, codec: str = "raw", index_format: str = "csv", **options) -> None:
    with acumen.Writer(
        path,
        codec=codec,
        index_format=index_format,
        chunk_size_bytes=300,
        durable=False,
        checksums="sample",
        **options,
    ) as writer:
        for i, array in enumerate(ARRAYS):
            writer.add(array, i=i)


def flip(path: Path, sample: int) -> None:
    """Flip a byte inside one sample's payload (file size unchanged)."""
    with acumen.open(path) as ds:
        chunk = ds.storage.paths[int(ds.table.chunk_ids[sample])]
        offset, size = int(ds.table.offsets[sample]), int(ds.table.sizes[sample])
    data = bytearray(Path(chunk).read_bytes())
    data[offset + size // 2] ^= 0x20
    Path(chunk).write_bytes(bytes(data))


@pytest.mark.parametrize("index_format", INDEX_FORMATS)
@pytest.mark.parametrize("codec", CODECS)
def test_checksums_are_kept_per_sample_and_read_back(tmp_path, codec, index_format) -> None:
    write(tmp_path / "ds", codec, index_format)
    with acumen.open(tmp_path / "ds") as ds:
        table = ds.table
        assert table.checksums is not None and table.checksums.dtype == np.int64
        for i in range(len(ds)):
            chunk = Path(ds.storage.paths[int(table.chunk_ids[i])]).read_bytes()
            payload = chunk[int(table.offsets[i]) : int(table.offsets[i] + table.sizes[i])]
            assert table.checksums.view(np.uint64)[i] == xxhash.xxh3_64_intdigest(payload)
            np.testing.assert_array_equal(ds.read(i), ARRAYS[i])
    assert verify(tmp_path / "ds", progress=False).ok


def test_the_csv_column_and_its_default_absence(tmp_path: Path) -> None:
    write(tmp_path / "with")
    assert "ai:xxh3_64" in pd.read_csv(tmp_path / "with" / "index.csv").columns
    with acumen.Writer(tmp_path / "without") as writer:
        writer.add(ARRAYS[0], i=0)
    assert "ai:xxh3_64" not in pd.read_csv(tmp_path / "without" / "index.csv").columns
    with pytest.raises(ValueError, match="checksums must be 'chunk' or 'sample'"):
        acumen.Writer(tmp_path / "bad", checksums="file")


@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_verify_names_the_damaged_sample_even_for_raw(tmp_path: Path, codec: str) -> None:
    write(tmp_path / "ds", codec)
    flip(tmp_path / "ds", 17)
    report = verify(tmp_path / "ds", progress=False)
    assert not report.ok
    assert any("sample 17: payload checksum differs" in p for p in report.problems)


@pytest.mark.parametrize("storage", STORAGES)
def test_open_verify_sample_checks_every_read(tmp_path: Path, storage: str) -> None:
    write(tmp_path / "ds")
    flip(tmp_path / "ds", 9)
    with acumen.open(tmp_path / "ds", storage=storage, verify="sample") as ds:
        np.testing.assert_array_equal(ds.read(8), ARRAYS[8])
        with pytest.raises(CorruptDatasetError, match=r"sample 9: .*checksum differs"):
            ds.read(9)
        with pytest.raises(CorruptDatasetError, match="sample 9"):
            ds.read_batch([8, 9])
        with pytest.raises(CorruptDatasetError, match="sample 9"):
            list(ds)
    with acumen.open(tmp_path / "ds", storage=storage) as ds:  # unchecked: no error
        assert ds.read(9).shape == ARRAYS[9].shape


def test_verify_sample_with_fields_and_without_checksums(tmp_path: Path) -> None:
    with acumen.Writer(tmp_path / "f", checksums="sample") as writer:
        for i in range(6):
            writer.add({"a": np.full(3, i, np.int16), "b": bytes([i]) * 4})
    with acumen.open(tmp_path / "f", verify="sample", fields=["b"]) as ds:
        assert ds.read(5) == {"b": b"\x05" * 4}
        assert [s["b"][0] for s, _ in ds] == list(range(6))
    with acumen.Writer(tmp_path / "plain") as writer:
        writer.add(ARRAYS[0])
    with pytest.raises(ValueError, match="keeps no per-sample checksums"):
        acumen.open(tmp_path / "plain", verify="sample")
