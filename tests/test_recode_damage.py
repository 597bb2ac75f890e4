"""recode of a damaged source: checked against the source's checksums as it is read.

Damage stops the recode (nothing committed at the destination) unless damaged samples are
to be skipped: then they are left out of the copy and listed in a report and a warning.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import acumen
import acumen.read.verifiers
import acumen.recode
from acumen import cli
from acumen.errors import CorruptDatasetError, IncompleteDatasetError
from acumen.recode import SKIPPED_REPORT, DamagedSamplesWarning, recode
from acumen.verify import verify
from tests.conftest import FIXTURES

rng = np.random.default_rng(11)
ARRAYS = [rng.normal(size=(i % 4 + 2, 3)).astype(np.float32) for i in range(40)]
DAMAGED = 17


def write(path: Path, codec: str = "raw", **options) -> None:
    with acumen.Writer(path, codec=codec, chunk_size_bytes=400, durable=False, **options) as w:
        for i, array in enumerate(ARRAYS):
            w.add(array, i=i)


def damage(path: Path, sample: int) -> tuple[Path, list[int]]:
    """Flip one byte in the middle of ``sample``'s payload (the file keeps its size).

    Returns the chunk file and the samples it holds.
    """
    with acumen.open(path) as ds:
        chunk = int(ds.table.chunk_ids[sample])
        file = Path(ds.storage.paths[chunk])
        offset, size = int(ds.table.offsets[sample]), int(ds.table.sizes[sample])
        in_chunk = np.flatnonzero(ds.table.chunk_ids == chunk).tolist()
    data = bytearray(file.read_bytes())
    data[offset + size // 2] ^= 0x01
    file.write_bytes(bytes(data))
    return file, in_chunk


def assert_nothing_committed(path: Path) -> None:
    if path.exists():
        with pytest.raises(IncompleteDatasetError):
            acumen.open(path)


@pytest.mark.parametrize(("codec", "n_jobs"), [("raw", 1), ("raw", 2), ("zstd", 1)])
def test_a_damaged_chunk_stops_the_recode(tmp_path: Path, codec: str, n_jobs: int) -> None:
    write(tmp_path / "src", codec)
    file, in_chunk = damage(tmp_path / "src", DAMAGED)
    with pytest.raises(CorruptDatasetError) as caught:
        recode(tmp_path / "src", tmp_path / "dst", n_jobs=n_jobs, progress=False)
    message = str(caught.value)
    # The chunk checksum cannot say which sample is damaged: the first one read is named.
    assert str(file) in message and f"sample {in_chunk[0]}:" in message
    assert "checksum" in message and "skip" in message
    assert_nothing_committed(tmp_path / "dst")


def test_a_damaged_sample_is_named_with_sample_checksums(tmp_path: Path) -> None:
    write(tmp_path / "src", checksums="sample")
    file, in_chunk = damage(tmp_path / "src", DAMAGED)
    assert in_chunk[0] != DAMAGED
    with pytest.raises(CorruptDatasetError, match=f"sample {DAMAGED}:") as caught:
        recode(tmp_path / "src", tmp_path / "dst", progress=False)
    assert str(file) in str(caught.value)
    assert_nothing_committed(tmp_path / "dst")


def test_skip_leaves_out_only_the_damaged_sample_with_sample_checksums(tmp_path: Path) -> None:
    write(tmp_path / "src", checksums="sample")
    damage(tmp_path / "src", DAMAGED)
    left_out = rf"1 damaged sample\(s\) left out: \[{DAMAGED}\]"
    with pytest.warns(DamagedSamplesWarning, match=left_out):
        manifest = recode(tmp_path / "src", tmp_path / "dst", on_damage="skip", progress=False)
    kept = [i for i in range(len(ARRAYS)) if i != DAMAGED]
    assert manifest.n_samples == len(kept)
    report = verify(tmp_path / "dst", progress=False)
    assert report.ok, report
    with acumen.open(tmp_path / "dst") as ds:
        assert [ds.metadata(k)["i"] for k in range(len(ds))] == kept
        assert all(ds.read(k).tobytes() == ARRAYS[i].tobytes() for k, i in enumerate(kept))
    listed = json.loads((tmp_path / "dst" / SKIPPED_REPORT).read_text())
    assert [entry["sample"] for entry in listed["skipped"]] == [DAMAGED]
    assert "checksum" in listed["skipped"][0]["problem"]
    assert listed["source"] == str(tmp_path / "src") and listed["samples_copied"] == len(kept)


def test_skip_leaves_out_the_whole_damaged_chunk_without_sample_checksums(tmp_path: Path) -> None:
    write(tmp_path / "src")
    _, in_chunk = damage(tmp_path / "src", DAMAGED)
    assert len(in_chunk) > 1
    with pytest.warns(DamagedSamplesWarning, match=str(in_chunk[0])):
        recode(tmp_path / "src", tmp_path / "dst", n_jobs=2, on_damage="skip", progress=False)
    assert verify(tmp_path / "dst", progress=False).ok
    listed = json.loads((tmp_path / "dst" / SKIPPED_REPORT).read_text())
    assert [entry["sample"] for entry in listed["skipped"]] == in_chunk
    with acumen.open(tmp_path / "dst") as ds:
        kept = [i for i in range(len(ARRAYS)) if i not in in_chunk]
        assert [ds.metadata(k)["i"] for k in range(len(ds))] == kept


def test_each_chunk_is_hashed_once(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "src")
    with acumen.open(tmp_path / "src") as ds:
        n_chunks = len(ds.table.chunk_names)
    hashed: list[str] = []
    real = acumen.read.verifiers.file_checksum
    monkeypatch.setattr(
        acumen.read.verifiers, "file_checksum", lambda p: hashed.append(p) or real(p)
    )
    recode(tmp_path / "src", tmp_path / "dst", progress=False)
    assert len(hashed) == len(set(hashed)) == n_chunks
    assert not (tmp_path / "dst" / SKIPPED_REPORT).exists()


def test_an_undamaged_source_with_sample_checksums_recodes(tmp_path: Path) -> None:
    write(tmp_path / "src", checksums="sample")
    recode(tmp_path / "src", tmp_path / "dst", codec="lz4", n_jobs=2, progress=False)
    with acumen.open(tmp_path / "dst") as ds:
        assert all(ds.read(i).tobytes() == a.tobytes() for i, a in enumerate(ARRAYS))


def test_a_source_without_checksums_is_copied_as_read_and_said_so(tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="acumen.recode"):
        recode(
            FIXTURES / "raw_f32_varlen",
            tmp_path / "dst",
            progress=False,
            source_options={"dtype": "float32"},
        )
    assert "records no checksums" in caplog.text


def test_an_original_gzip_source_is_checked_by_its_frames(tmp_path: Path) -> None:
    """No checksums but the codec's own: a damaged gzip member stops the recode, or is
    left out (read in the parent first) when damaged samples are to be skipped."""
    shutil.copytree(FIXTURES / "gzip_f32", tmp_path / "src")
    options = {"dtype": "float32", "use_gzip": True}
    with acumen.open(tmp_path / "src", **options) as ds:
        file = Path(ds.storage.paths[int(ds.table.chunk_ids[5])])
        offset, size, n = int(ds.table.offsets[5]), int(ds.table.sizes[5]), len(ds)
    data = bytearray(file.read_bytes())
    data[offset + size - 6] ^= 0x01  # in the member's CRC-32
    file.write_bytes(bytes(data))
    with pytest.raises(CorruptDatasetError, match="sample 5:"):
        recode(tmp_path / "src", tmp_path / "a", source_options=options, progress=False)
    assert_nothing_committed(tmp_path / "a")
    with pytest.warns(DamagedSamplesWarning, match=r"\[5\]"):
        manifest = recode(
            tmp_path / "src",
            tmp_path / "b",
            n_jobs=2,
            on_damage="skip",
            source_options=options,
            progress=False,
        )
    assert manifest.n_samples == n - 1 and verify(tmp_path / "b", progress=False).ok


def test_cli_stops_on_damage_and_skips_with_the_flag(tmp_path: Path, capsys) -> None:
    write(tmp_path / "src", checksums="sample")
    damage(tmp_path / "src", DAMAGED)
    assert cli.main(["recode", str(tmp_path / "src"), str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert f"sample {DAMAGED}:" in err and "--skip-damaged" in err
    assert_nothing_committed(tmp_path / "a")
    with pytest.warns(DamagedSamplesWarning):
        status = cli.main(["recode", str(tmp_path / "src"), str(tmp_path / "b"), "--skip-damaged"])
    assert status == 0
    out = capsys.readouterr().out
    assert f"{len(ARRAYS) - 1} samples" in out
    assert f"1 damaged sample(s) left out, listed in {tmp_path / 'b' / SKIPPED_REPORT}" in out
