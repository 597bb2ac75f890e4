"""Checksums and ``acumen verify``: what is recorded, what is checked, what is reported.

Every chunk file's xxh3-64 is in the manifest (and stays right through a conversion's merge
and a recode); ``verify`` finds a flipped byte (by chunk file, and by sample when samples
decode), reports an unreadable dataset instead of raising, and notes what it cannot check;
``acumen.open(..., verify="chunk")`` hashes each chunk once, on first touch, and the default
open hashes nothing.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import xxhash

import acumen
import acumen.read.verifiers
import acumen.verify
from acumen import cli
from acumen.convert import convert
from acumen.errors import CorruptDatasetError, ManifestError
from acumen.read.verifiers import ChunkVerifier
from acumen.recode import recode
from acumen.verify import VerifyReport, verify
from tests.dataset_edits import manifest_of, save_manifest

from .conftest import CODECS, INDEX_FORMATS, STORAGES, fixture_names, load_fixture

N = 60
CHUNK_BYTES = 400  # several chunk files, several samples in each


def sample(i: int) -> np.ndarray:
    """Sample ``i``: a small float32 array whose shape varies; compressible, not trivially."""
    rng = np.random.default_rng(i)
    return rng.integers(0, 40, size=(3 + i % 4, 5)).astype(np.float32)


def write(path: Path, codec: str = "raw", index_format: str = "csv", n: int = N) -> Path:
    with acumen.Writer(
        path, codec=codec, index_format=index_format, chunk_size_bytes=CHUNK_BYTES
    ) as writer:
        for i in range(n):
            writer.add(sample(i), number=i)
    return path


def xxh3(path: Path) -> str:
    return f"xxh3_64:{xxhash.xxh3_64(path.read_bytes()).hexdigest()}"


def assert_checksums_match_files(path: Path) -> None:
    chunks = manifest_of(path)["chunks"]
    assert chunks, "a dataset with samples has chunk files"
    on_disk = sorted(p.relative_to(path).as_posix() for p in (path / "chunks").glob("*.chnk"))
    assert sorted(c["file"] for c in chunks) == on_disk
    for entry in chunks:
        assert entry["checksum"] == xxh3(path / entry["file"]), entry["file"]


def locate(path: Path, position: int) -> tuple[Path, int, int]:
    """(chunk file, offset, size) of sample ``position``."""
    with acumen.open(path) as ds:
        chunk = int(ds.table.chunk_ids[position])
        return (
            Path(ds.storage.paths[chunk]),
            int(ds.table.offsets[position]),
            int(ds.table.sizes[position]),
        )


def flip_byte(file: Path, offset: int) -> None:
    data = bytearray(file.read_bytes())
    data[offset] ^= 0xFF
    file.write_bytes(bytes(data))


def damage_sample(path: Path, position: int) -> Path:
    """Flip a byte in the middle of sample ``position``'s payload; return its chunk file."""
    file, offset, size = locate(path, position)
    flip_byte(file, offset + size // 2)
    return file


def samples_in_chunk(path: Path, file: Path) -> list[int]:
    with acumen.open(path) as ds:
        chunk = [Path(p) for p in ds.storage.paths].index(file)
        return np.flatnonzero(ds.table.chunk_ids == chunk).tolist()


# --- checksums in the manifest ------------------------------------------------------------
@pytest.mark.parametrize("index_format", INDEX_FORMATS)
@pytest.mark.parametrize("codec", CODECS)
def test_manifest_checksums_are_xxh3_of_each_chunk_file(tmp_path, codec, index_format):
    path = write(tmp_path / "ds", codec, index_format)
    assert len(manifest_of(path)["chunks"]) > 2
    assert_checksums_match_files(path)
    assert all(
        c["checksum"].startswith("xxh3_64:") and len(c["checksum"]) == len("xxh3_64:") + 16
        for c in manifest_of(path)["chunks"]
    )


def test_checksums_survive_a_conversion_merge(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(40):
        np.save(data / f"s{i:03d}.npy", sample(i))
    config = {
        "source": {"glob": "data/*.npy", "root": str(tmp_path)},
        "reader": {"name": "npy"},
        "output": {"path": str(tmp_path / "out"), "codec": "zstd", "chunk_size": CHUNK_BYTES},
        "run": {"progress": False, "part_size": 7},  # several parts, merged at the end
    }
    summary = convert(config)
    out = tmp_path / "out"
    assert summary.samples == 40
    assert len(manifest_of(out)["chunks"]) > 5
    assert_checksums_match_files(out)
    report = verify(out, progress=False)
    assert report.ok, report.problems
    assert report.samples_checked == 40


@pytest.mark.parametrize("codec", ["raw", "lz4"])
def test_checksums_survive_a_recode(tmp_path, codec):
    source = write(tmp_path / "src", "zstd")
    recode(source, tmp_path / "dst", codec=codec, chunk_size_bytes=300, progress=False)
    assert_checksums_match_files(tmp_path / "dst")
    assert verify(tmp_path / "dst", progress=False).ok


# --- verify on good datasets -------------------------------------------------------------
@pytest.mark.parametrize("codec", CODECS)
def test_verify_good_dataset_is_ok(tmp_path, codec):
    path = write(tmp_path / "ds", codec)
    report = verify(path, progress=False)
    assert isinstance(report, VerifyReport)
    assert report.ok and report.problems == []
    assert report.chunks_checked == len(manifest_of(path)["chunks"])
    if codec == "raw":
        assert report.samples_checked == 0
        assert any("raw samples carry no checksum" in note for note in report.notes)
    else:
        assert report.samples_checked == N
        assert report.notes == []
    assert "all well" in str(report)


def test_verify_without_samples_decodes_nothing(tmp_path):
    path = write(tmp_path / "ds", "zstd")
    report = verify(path, samples=False, progress=False)
    assert report.ok
    assert report.samples_checked == 0
    assert report.chunks_checked == len(manifest_of(path)["chunks"])


def test_verify_accepts_the_manifest_path(tmp_path):
    path = write(tmp_path / "ds", "lz4")
    assert verify(path / "manifest.json", progress=False).ok


def test_verify_shows_progress_on_stderr(tmp_path, capsys):
    path = write(tmp_path / "ds", "zstd")
    assert verify(path, progress=True).ok
    captured = capsys.readouterr()
    assert "verify ds" in captured.err
    assert captured.out == ""


# --- verify on damaged datasets ----------------------------------------------------------
def test_verify_names_the_chunk_with_a_flipped_byte_raw(tmp_path):
    path = write(tmp_path / "ds", "raw")
    bad = damage_sample(path, 17)
    report = verify(path, progress=False)
    assert not report.ok
    assert len(report.problems) == 1
    assert str(bad) in report.problems[0]
    assert "checksum" in report.problems[0]
    assert "1 problem(s)" in str(report)


@pytest.mark.parametrize("codec", ["zstd", "lz4", "gzip"])
def test_verify_names_the_chunk_and_the_sample_compressed(tmp_path, codec):
    path = write(tmp_path / "ds", codec)
    bad = damage_sample(path, 23)
    report = verify(path, progress=False)
    assert not report.ok
    chunk_problems = [p for p in report.problems if str(bad) in p and "checksum" in p]
    sample_problems = [p for p in report.problems if "sample 23:" in p]
    assert len(chunk_problems) == 1, report.problems
    assert len(sample_problems) == 1, report.problems
    assert str(path) in sample_problems[0]
    # Only the damaged chunk and the damaged sample are reported.
    assert len(report.problems) == 2, report.problems
    assert report.samples_checked == N


def test_verify_reports_every_damaged_chunk(tmp_path):
    path = write(tmp_path / "ds", "raw")
    first, last = damage_sample(path, 0), damage_sample(path, N - 1)
    assert first != last
    report = verify(path, progress=False)
    assert len(report.problems) == 2
    assert any(str(first) in p for p in report.problems)
    assert any(str(last) in p for p in report.problems)


def test_verify_reports_a_truncated_chunk_instead_of_raising(tmp_path):
    path = write(tmp_path / "ds", "raw")
    file, _, _ = locate(path, 30)
    file.write_bytes(file.read_bytes()[:-7])
    with pytest.raises(CorruptDatasetError):
        acumen.open(path)  # opening itself fails
    report = verify(path, progress=False)
    assert not report.ok
    assert len(report.problems) == 1
    assert str(file) in report.problems[0] or file.name in report.problems[0]
    assert report.chunks_checked == 0


def test_verify_reports_a_missing_dataset_instead_of_raising(tmp_path):
    report = verify(tmp_path / "nothing", progress=False)
    assert not report.ok
    assert "nothing" in report.problems[0]


def test_verify_reports_a_missing_chunk_file(tmp_path):
    path = write(tmp_path / "ds", "raw")
    file, _, _ = locate(path, 5)
    file.unlink()
    report = verify(path, progress=False)
    assert not report.ok
    assert any(file.name in p for p in report.problems), report.problems


def test_missing_checksum_is_a_note_not_a_problem(tmp_path):
    path = write(tmp_path / "ds", "zstd")
    raw = manifest_of(path)
    removed = raw["chunks"][1].pop("checksum")
    assert removed
    save_manifest(path, raw)
    report = verify(path, progress=False)
    assert report.ok, report.problems
    unchecked = str(path / raw["chunks"][1]["file"])
    assert [n for n in report.notes if "no checksum" in n] == [f"{unchecked}: no checksum recorded"]
    assert report.samples_checked == N


def test_missing_checksum_and_damage_the_samples_still_catch_it(tmp_path):
    path = write(tmp_path / "ds", "lz4")
    raw = manifest_of(path)
    bad = damage_sample(path, 0)
    for entry in raw["chunks"]:
        if path / entry["file"] == bad:
            del entry["checksum"]
    save_manifest(path, raw)
    report = verify(path, progress=False)
    assert not report.ok
    assert len(report.problems) == 1 and "sample 0:" in report.problems[0]


@pytest.mark.parametrize(
    "checksum", ["md5:0123456789abcdef", "xxh3_64:0123", "xxh3_64:XYZ3456789abcdef", 12345]
)
def test_malformed_checksum_is_a_manifest_error(tmp_path, checksum):
    path = write(tmp_path / "ds", "raw")
    raw = manifest_of(path)
    raw["chunks"][2]["checksum"] = checksum
    save_manifest(path, raw)
    with pytest.raises(ManifestError, match=r"chunks\[2\]\.checksum") as caught:
        acumen.open(path)
    assert caught.value.key == "chunks[2].checksum"
    report = verify(path, progress=False)
    assert not report.ok
    assert "chunks[2].checksum" in report.problems[0]


@pytest.mark.parametrize("name", fixture_names())
def test_verify_original_dataset(name):
    folder, params, _, _ = load_fixture(name)
    report = verify(folder, progress=False, dtype=params["dtype"], use_gzip=params["use_gzip"])
    assert report.ok, report.problems
    assert report.chunks_checked == 0
    assert any("original acumenindexer dataset records no checksums" in n for n in report.notes)
    if params["use_gzip"]:
        assert report.samples_checked == params["n_samples"]
    else:
        assert report.samples_checked == 0


def test_jobs_do_not_change_the_report(tmp_path):
    path = write(tmp_path / "ds", "gzip", n=120)
    raw = manifest_of(path)
    del raw["chunks"][0]["checksum"]
    save_manifest(path, raw)
    for position in (10, 50, 111):
        damage_sample(path, position)
    one = verify(path, jobs=1, progress=False)
    four = verify(path, jobs=4, progress=False)
    assert one.problems == four.problems
    assert one.notes == four.notes
    assert (one.chunks_checked, one.samples_checked) == (four.chunks_checked, four.samples_checked)
    assert len(one.problems) >= 4


# --- the command -------------------------------------------------------------------------
def test_cli_verify_good_dataset_exits_0(tmp_path, capsys):
    path = write(tmp_path / "ds", "zstd")
    assert cli.main(["verify", str(path), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "all well" in out
    assert f"{N} samples" in out


def test_cli_verify_damaged_dataset_exits_1_naming_file_and_sample(tmp_path, capsys):
    path = write(tmp_path / "ds", "zstd")
    bad = damage_sample(path, 42)
    assert cli.main(["verify", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(str(bad) in line and "checksum" in line for line in lines)
    assert any("sample 42:" in line for line in lines)
    assert "2 problem(s)" in lines[-1]


def test_cli_verify_chunks_only_skips_decoding(tmp_path, capsys):
    path = write(tmp_path / "ds", "zstd")
    bad = damage_sample(path, 42)
    assert cli.main(["verify", str(path), "--chunks-only"]) == 1
    out = capsys.readouterr().out
    assert str(bad) in out
    assert "sample 42" not in out
    assert "and 0 samples checked" in out


def test_cli_verify_raw_dataset_flipped_byte(tmp_path, capsys):
    path = write(tmp_path / "ds", "raw")
    bad = damage_sample(path, 3)
    assert cli.main(["verify", str(path)]) == 1
    assert str(bad) in capsys.readouterr().out


def test_cli_verify_original_dataset_with_dtype_and_gzip(capsys):
    folder, params, _, _ = load_fixture("gzip_f32")
    assert params["use_gzip"]
    assert cli.main(["verify", str(folder), "--dtype", params["dtype"], "--gzip"]) == 0
    out = capsys.readouterr().out
    assert "original acumenindexer" in out
    assert f"{params['n_samples']} samples" in out


def test_cli_verify_missing_path_exits_1(tmp_path, capsys):
    assert cli.main(["verify", str(tmp_path / "nope")]) == 1
    assert "nope" in capsys.readouterr().out


# --- acumen.open(..., verify="chunk") ----------------------------------------------------
@pytest.mark.parametrize("storage", STORAGES)
def test_open_verify_chunk_reads_good_chunks(tmp_path, storage):
    path = write(tmp_path / "ds", "raw")
    with acumen.open(path, storage=storage, verify="chunk") as ds:
        assert isinstance(ds._read_bytes, ChunkVerifier)
        for i in range(N):
            assert ds.read(i).tobytes() == sample(i).tobytes()
        assert ds.read_batch([0, 5, 59])[2].tobytes() == sample(59).tobytes()


@pytest.mark.parametrize("verify", ["chunk", "sample"])
def test_views_check_what_their_dataset_checks(tmp_path, verify):
    path = tmp_path / "ds"
    with acumen.Writer(path, chunk_size_bytes=256, checksums="sample") as writer:
        for i in range(N):
            writer.add(sample(i), label=i % 3)
    damage_sample(path, 25)
    with acumen.open(path, verify=verify) as ds:
        for view in (ds.select([3, 25, 7]), ds.filter(f"label == {25 % 3}")):
            assert view.verify == verify
            row = list(view.positions).index(25)
            with pytest.raises(CorruptDatasetError, match=f"sample {row}:"):
                view.read(row)
            with pytest.raises(CorruptDatasetError):
                view.read_batch([row])


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_open_verify_chunk_refuses_a_damaged_chunk(tmp_path, storage, codec):
    path = write(tmp_path / "ds", codec)
    bad = damage_sample(path, 25)
    neighbours = samples_in_chunk(path, bad)
    other = next(i for i in range(N) if i not in neighbours)
    with acumen.open(path, storage=storage, verify="chunk") as ds:
        with pytest.raises(CorruptDatasetError) as caught:
            ds.read(25)
        message = str(caught.value)
        assert str(bad) in message
        assert "sample 25:" in message
        assert "checksum" in message
        # Every sample of that chunk is refused, even those whose own bytes are intact...
        for i in neighbours:
            with pytest.raises(CorruptDatasetError, match=f"sample {i}:"):
                ds.read(i)
        with pytest.raises(CorruptDatasetError):
            ds[neighbours[0]]
        # ...while other chunks still read.
        assert ds.read(other).tobytes() == sample(other).tobytes()
        for i in range(N):
            if i not in neighbours:
                assert ds.read(i).tobytes() == sample(i).tobytes()


def test_open_verify_chunk_refuses_damage_in_batches_and_iteration(tmp_path):
    path = write(tmp_path / "ds", "raw")
    bad = damage_sample(path, 25)
    with acumen.open(path, verify="chunk") as ds:
        with pytest.raises(CorruptDatasetError, match=str(bad)):
            ds.read_batch(range(N))
        with pytest.raises(CorruptDatasetError, match=str(bad)):
            list(ds)


def test_open_verify_chunk_hashes_each_chunk_once(tmp_path, monkeypatch):
    path = write(tmp_path / "ds", "zstd")
    n_chunks = len(manifest_of(path)["chunks"])
    real = acumen.read.verifiers.file_checksum
    calls: list[str] = []

    def counting(file):
        calls.append(str(file))
        return real(file)

    monkeypatch.setattr(acumen.read.verifiers, "file_checksum", counting)
    with acumen.open(path, verify="chunk") as ds:
        assert calls == []  # opening hashes nothing: only a first read does
        ds.read(0)
        assert len(calls) == 1
        for _ in range(3):
            for i in range(N):
                ds.read(i)
        ds.read_batch(range(N))
    assert len(calls) == n_chunks
    assert sorted(calls) == sorted(set(calls))


def test_default_open_does_no_hashing(tmp_path, monkeypatch):
    path = write(tmp_path / "ds", "zstd")
    raw_path = write(tmp_path / "raw", "raw")

    def forbidden(file):
        raise AssertionError(f"hashed {file} on the default read path")

    monkeypatch.setattr(acumen.read.verifiers, "file_checksum", forbidden)
    for where in (path, raw_path):
        for storage in STORAGES:
            with acumen.open(where, storage=storage) as ds:
                assert not isinstance(ds._read_bytes, ChunkVerifier)
                for i in range(N):
                    assert ds.read(i).tobytes() == sample(i).tobytes()
                ds.read_batch(range(N))
                list(ds)


@pytest.mark.parametrize("value", ["sample", "chunks", "all", True, ""])
def test_open_verify_other_values_are_refused(tmp_path, value):
    path = write(tmp_path / "ds", "raw")
    with pytest.raises(ValueError, match="verify"):
        acumen.open(path, verify=value)


def test_pickled_dataset_keeps_verifying(tmp_path, monkeypatch):
    path = write(tmp_path / "ds", "raw")
    with acumen.open(path, storage="seek", verify="chunk") as ds:
        ds.read(0)  # chunk 0 verified in this process
        data = pickle.dumps(ds)
    bad = damage_sample(path, 0)  # damaged after the pickle was taken
    copy = pickle.loads(data)
    try:
        assert isinstance(copy._read_bytes, ChunkVerifier)
        with pytest.raises(CorruptDatasetError, match=str(bad)):
            copy.read(0)
        real = acumen.read.verifiers.file_checksum
        calls: list[str] = []
        monkeypatch.setattr(
            acumen.read.verifiers,
            "file_checksum",
            lambda file: calls.append(str(file)) or real(file),
        )
        other = next(i for i in range(N) if i not in samples_in_chunk(path, bad))
        assert copy.read(other).tobytes() == sample(other).tobytes()
        copy.read(other)
        assert len(calls) == 1
    finally:
        copy.close()


def test_pickled_default_dataset_stays_unverified(tmp_path, monkeypatch):
    path = write(tmp_path / "ds", "raw")
    with acumen.open(path) as ds:
        copy = pickle.loads(pickle.dumps(ds))
    monkeypatch.setattr(
        acumen.read.verifiers, "file_checksum", lambda file: pytest.fail(f"hashed {file}")
    )
    with copy:
        assert copy.read(7).tobytes() == sample(7).tobytes()
