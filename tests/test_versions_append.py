"""Appends: samples added to a complete dataset as new versions, over every plugin
combination; versions pinned by readers; settings checked against the dataset's; the
original reader sees every live sample; concurrent appenders never lose a commit."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from pathlib import Path

import acumenindexer
import numpy as np
import pytest

import acumen
from acumen.cli import main as cli
from acumen.errors import DatasetNotFoundError, IncompleteDatasetError, ManifestError, SampleError
from acumen.format.versions import list_versions
from acumen.verify import verify
from acumen.versions.history import history

CODECS = ["raw", "gzip", "zstd", "lz4"]
INDEXES = ["csv", "parquet", "arrow"]


def value(i: int) -> np.ndarray:
    return np.arange(6, dtype=np.float32).reshape(2, 3) + i


def write(path: Path, start: int, n: int, mode: str = "create", **options) -> acumen.Writer:
    with acumen.Writer(path, mode=mode, durable=False, **options) as writer:
        for i in range(start, start + n):
            writer.add(value(i), i=i, name=f"s{i}")
    return writer


def check(path: Path, n: int, version: int | None = None) -> None:
    with acumen.open(path, version=version) as ds:
        assert len(ds) == n
        for i in range(n):
            array, metadata = ds[i]
            assert np.array_equal(array, value(i)), i
            assert metadata == {"i": i, "name": f"s{i}"}
        batch = ds.read_batch(np.arange(n)[::-1])
        assert np.array_equal(batch, np.stack([value(i) for i in range(n)][::-1]))


@pytest.mark.parametrize("index_format", INDEXES)
@pytest.mark.parametrize("codec", CODECS)
def test_appends_read_back_at_every_version(tmp_path, codec, index_format):
    path = tmp_path / "ds"
    write(path, 0, 5, codec=codec, index_format=index_format, dtype="float32", chunk_size_bytes=64)
    write(path, 5, 4, mode="append")
    write(path, 9, 3, mode="append")
    check(path, 12)
    check(path, 5, version=1)
    check(path, 9, version=2)
    assert [e.n_samples for e in history(path)] == [5, 9, 12]
    assert [e.operation for e in history(path)] == ["write", "append", "append"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["version"] == 3
    assert manifest["parent"] == 2
    assert verify(path, progress=False).ok
    with acumen.open(path) as ds:
        assert ds.version == 3
        assert ds.storage.paths[0].endswith("chunks/chunk_0.chnk")  # never rewritten


def test_a_reader_keeps_its_version_while_appends_commit(tmp_path):
    path = tmp_path / "ds"
    write(path, 0, 4, dtype="float32", index_format="arrow")
    with acumen.open(path) as before:
        write(path, 4, 4, mode="append")
        assert len(before) == 4 and before.version == 1
        assert np.array_equal(before.read(3), value(3))
        check(path, 8)


def test_existing_chunks_and_index_files_are_never_rewritten(tmp_path):
    path = tmp_path / "ds"
    write(path, 0, 5, dtype="float32", index_format="parquet", chunk_size_bytes=64)
    before = {
        p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in path.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    write(path, 5, 5, mode="append")
    for p, (inode, mtime, data) in before.items():
        assert (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) == (inode, mtime, data)


def test_the_original_reader_sees_every_live_sample_after_appends(tmp_path):
    for codec in ("raw", "gzip"):
        path = tmp_path / codec
        write(path, 0, 3, codec=codec, dtype="float32", chunk_size_bytes=64)
        write(path, 3, 4, mode="append")
        index = acumenindexer.load_index(str(path / "index.csv"))
        assert list(index["i"]) == list(range(7))
        read = acumenindexer.read_from_index(
            index, dtype=np.float32, use_gzip=codec == "gzip", chunk_paths=str(path)
        )
        for i in range(7):
            array, metadata = read(i)
            assert np.array_equal(np.asarray(array).reshape(2, 3), value(i))
            assert metadata["name"] == f"s{i}"


def test_fields_a_trained_dictionary_and_sample_checksums_carry_over(tmp_path):
    fields = {"image": {"dtype": "uint8", "codec": "lz4"}, "jpeg": "bytes"}
    path = tmp_path / "fields"
    with acumen.Writer(path, fields=fields, checksums="sample", index_format="arrow") as w:
        w.add({"image": np.full((2, 2), 1, np.uint8), "jpeg": b"ab"}, k=1)
    with acumen.Writer(path, mode="append") as w:
        w.add({"image": np.full((2, 2), 2, np.uint8), "jpeg": b"cde"}, k=2)
    with acumen.open(path) as ds:
        assert [ds[i][0]["jpeg"] for i in range(2)] == [b"ab", b"cde"]
        assert ds.table.checksums is not None and len(ds.table.checksums) == 2
    assert verify(path, progress=False).ok
    trained = tmp_path / "zstd"
    codec = {"name": "zstd", "configuration": {"dictionary_size": 1024, "train_samples": 8}}
    rng = np.random.default_rng(0)
    rows = [rng.integers(0, 4, 64).astype(np.uint8) for _ in range(24)]
    with acumen.Writer(trained, codec=codec) as w:
        for row in rows[:12]:
            w.add(row)
    dictionary = (trained / "codecs" / "data.zstd.dict").read_bytes()
    with acumen.Writer(trained, mode="append") as w:
        for row in rows[12:]:
            w.add(row)
    assert (trained / "codecs" / "data.zstd.dict").read_bytes() == dictionary
    with acumen.open(trained) as ds:
        assert all(np.array_equal(ds[i][0], rows[i]) for i in range(24))


def test_a_new_metadata_column_reads_as_missing_in_older_samples(tmp_path):
    path = tmp_path / "ds"
    write(path, 0, 2, dtype="float32", index_format="parquet")
    with acumen.Writer(path, mode="append") as w:
        w.add(value(2), i=2, name="s2", score=0.5, note="new")
    with acumen.open(path) as ds:
        assert ds.metadata(0) == {
            "i": 0,
            "name": "s0",
            "score": pytest.approx(np.nan, nan_ok=True),
            "note": "",
        }
        assert ds.metadata(2) == {"i": 2, "name": "s2", "score": 0.5, "note": "new"}
        assert ds.columns == ["i", "name", "score", "note"]
    refusals = [
        ({"count": 7}, "new column of type int"),
        ({"note": None}, r"lacks the dataset's columns \['note'\]"),
        ({"i": 3.5}, r"'i' is float .* the dataset's column is int"),
    ]
    for change, message in refusals:
        metadata = {"i": 3, "name": "s3", "score": 1.0, "note": "", **change}
        metadata = {k: v for k, v in metadata.items() if v is not None}
        with pytest.raises(SampleError, match=message), acumen.Writer(path, mode="append") as w:
            w.add(value(3), **metadata)
    assert len(acumen.open(path)) == 3  # the refused appends committed nothing


def test_settings_that_differ_from_the_dataset_are_refused(tmp_path):
    path = tmp_path / "ds"
    write(path, 0, 2, codec="zstd", dtype="float32", index_format="arrow")
    with pytest.raises(ValueError, match="codec='lz4' differs from the dataset's"):
        acumen.Writer(path, mode="append", codec="lz4")
    with pytest.raises(ValueError, match="index_format='csv' differs"):
        acumen.Writer(path, mode="append", index_format="csv")
    with pytest.raises(ValueError, match="dtype='int8' differs"):
        acumen.Writer(path, mode="append", dtype="int8")
    acumen.Writer(path, mode="append", codec="zstd", dtype="float32").close()  # agreeing
    shape = r"sample 1: shape \(3, 2\) differs .* \(2, 3\)"
    with pytest.raises(SampleError, match=shape), acumen.Writer(path, mode="append") as w:
        w.add(value(2), i=2, name="s2")
        w.add(np.zeros((3, 2), np.float32), i=3, name="s3")
    with acumen.Writer(path, mode="append") as w:  # cast as a create would (astype)
        w.add(value(2).astype(np.float64), i=2, name="s2")
    check(path, 3)
    assert len(history(path)) == 2  # refused and empty appends made no version


def test_only_a_complete_acumen_dataset_takes_an_append(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no dataset to change"):
        acumen.Writer(tmp_path / "missing", mode="append")
    original = tmp_path / "orig"
    original.mkdir()
    (original / "index.csv").write_text("ai:chunk_name,ai:offset_bytes,ai:size_bytes,ai:shape\n")
    with pytest.raises(DatasetNotFoundError, match="original acumenindexer dataset"):
        acumen.Writer(original, mode="append")
    writer = acumen.Writer(tmp_path / "partial", dtype="float32")
    writer.add(value(0))
    writer.abort()
    with pytest.raises(IncompleteDatasetError, match="incomplete"):
        acumen.Writer(tmp_path / "partial", mode="append")
    with pytest.raises(ValueError, match="mode must be"):
        acumen.Writer(tmp_path / "x", mode="overwrite")


def test_versions_that_do_not_exist_are_named(tmp_path):
    path = tmp_path / "ds"
    write(path, 0, 2, dtype="float32")
    with pytest.raises(DatasetNotFoundError, match="never changed"):
        acumen.open(path, version=2)
    write(path, 2, 2, mode="append")
    with pytest.raises(DatasetNotFoundError, match="no version 7; it has versions 1-2"):
        acumen.open(path, version=7)


def test_a_version_file_that_lies_about_its_number_is_refused(tmp_path):
    path = tmp_path / "ds"
    write(path, 0, 2, dtype="float32")
    write(path, 2, 2, mode="append")
    second = path / "_versions" / f"{2:020d}.json"
    os.replace(second, path / "_versions" / f"{3:020d}.json")
    with pytest.raises(ManifestError, match="must be 3, as the file's name says"):
        acumen.open(path)


def test_a_damaged_segment_is_refused_by_its_checksum(tmp_path):
    path = tmp_path / "ds"
    write(path, 0, 2, dtype="float32", index_format="parquet")
    write(path, 2, 2, mode="append")
    (segment,) = (path / "_index").glob("*.parquet")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(acumen.CorruptDatasetError, match="checksum"):
        acumen.open(path)
    assert not verify(path, progress=False).ok
    check(path, 2, version=1)  # the version before it does not need it


def test_history_command(tmp_path, capsys):
    path = tmp_path / "ds"
    write(path, 0, 2, dtype="float32")
    assert cli(["history", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[::2] == ["1", "write"]
    write(path, 2, 3, mode="append")
    assert cli(["history", str(path), "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [(e["version"], e["parent"], e["operation"], e["n_samples"]) for e in entries] == [
        (1, None, "write", 2),
        (2, 1, "append", 5),
    ]


def _append_many(path: str, worker: int, count: int) -> None:
    for k in range(count):
        with acumen.Writer(path, mode="append", durable=False) as writer:
            writer.add(np.full(2, worker * 100 + k, np.int64), worker=worker, k=k)


def test_concurrent_appenders_never_lose_a_commit(tmp_path):
    path = tmp_path / "ds"
    with acumen.Writer(path, dtype="int64", index_format="arrow") as writer:
        writer.add(np.full(2, -1, np.int64), worker=-1, k=-1)
    workers, count = 4, 5
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_append_many, args=(str(path), w, count)) for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    assert list_versions(path) == list(range(1, 2 + workers * count))
    with acumen.open(path) as ds:
        seen = sorted((ds.metadata(i)["worker"], ds.metadata(i)["k"]) for i in range(len(ds)))
        assert seen == [(-1, -1)] + [(w, k) for w in range(workers) for k in range(count)]
        for i in range(len(ds)):
            meta = ds.metadata(i)
            assert ds.read(i).tolist() == [meta["worker"] * 100 + meta["k"]] * 2 or meta["k"] < 0
    assert verify(path, progress=False).ok


def test_verify_checks_every_version_and_the_original_readers_index(tmp_path, capsys):
    path = tmp_path / "ds"
    write(path, 0, 3, dtype="float32")
    write(path, 3, 2, mode="append")
    assert cli(["verify", str(path), "--all-versions"]) == 0
    out = capsys.readouterr().out
    assert "version 1: " in out and "version 2: " in out and out.count("all well") == 2
    current = (path / "index.csv").read_text()
    first = json.loads((path / "_versions" / f"{1:020d}.json").read_text())["segments"][0]
    (path / "index.csv").write_text((path / first["file"]).read_text())  # as a crash leaves it
    report = verify(path, progress=False)
    assert report.ok and "holds version 1, not the newest (2)" in str(report)
    (path / "index.csv").write_text("\n".join(current.splitlines()[:-1]) + "\n")
    report = verify(path, progress=False)
    assert not report.ok
    assert "does not hold version 2's 5 live samples (4 rows), nor its parent's" in str(report)
    assert verify(path, progress=False, version=1).ok  # index.csv follows the newest only
    assert acumen.vacuum(path).refreshed == ["index.csv"]  # what vacuum puts right
    assert verify(path, progress=False).ok


def test_a_changed_dataset_opens_from_a_url_at_any_version(
    tmp_path, http_server, s3_server, s3_bucket
):
    """Over S3 the newest version is listed; over HTTP (no listing) manifest.json decides,
    which a writer's crash may leave one version behind: a whole version all the same."""
    from tests.test_remote_open import upload_s3

    path = tmp_path / "ds"
    write(path, 0, 3, dtype="float32", index_format="arrow", chunk_size_bytes=64)
    write(path, 3, 3, mode="append")
    behind = (path / "manifest.json").read_bytes()
    write(path, 6, 2, mode="append")
    (path / "manifest.json").write_bytes(behind)  # killed before manifest.json followed
    s3_url = upload_s3(path, s3_server, s3_bucket)
    shutil.copytree(path, http_server.root / "ds")
    http_url = http_server.url("ds")
    options = {"storage_options": s3_server.storage_options, "cache": tmp_path / "c1"}
    for url, newest, kwargs in [
        (s3_url, 3, options),
        (http_url, 2, {"cache": tmp_path / "c2"}),
    ]:
        with acumen.open(url, **kwargs) as ds:
            assert ds.version == newest and len(ds) == [3, 6, 8][newest - 1]
            assert all(np.array_equal(ds[i][0], value(i)) for i in range(len(ds)))
            assert np.array_equal(
                ds.read_batch([len(ds) - 1, 0]), np.stack([value(len(ds) - 1), value(0)])
            )
        for version, n in [(1, 3), (2, 6), (3, 8)]:
            with acumen.open(url, version=version, **kwargs) as ds:
                assert ds.version == version and len(ds) == n
                assert np.array_equal(ds[n - 1][0], value(n - 1))
        with pytest.raises(DatasetNotFoundError, match="no version 9"):
            acumen.open(url, version=9, **kwargs)


def test_appends_to_a_dataset_in_s3_commit_by_conditional_create(tmp_path, s3_server, s3_bucket):
    """Two appenders at one URL: both land (the second builds again on the first's
    version); manifest.json and index.csv follow; readers see each version."""
    from tests.test_remote_open import upload_s3

    path = tmp_path / "ds"
    write(path, 0, 3, dtype="float32", chunk_size_bytes=64)  # csv: index.csv follows too
    url = upload_s3(path, s3_server, s3_bucket)
    options = {"storage_options": s3_server.storage_options, "cache": tmp_path / "cache"}
    first = acumen.Writer(url, mode="append", durable=False, **options)
    second = acumen.Writer(url, mode="append", durable=False, **options)
    for writer, start in [(first, 3), (second, 5)]:
        for i in range(start, start + 2):
            writer.add(value(i), i=i, name=f"s{i}")
    assert first.close().versioned.version == 2
    assert second.close().versioned.version == 3  # built again on version 2
    with acumen.open(url, **options) as ds:
        assert ds.version == 3 and len(ds) == 7
        assert all(np.array_equal(ds[i][0], value(i)) for i in range(7))
        assert [ds.metadata(i)["i"] for i in range(7)] == list(range(7))
    with acumen.open(url, version=1, **options) as ds:
        assert len(ds) == 3
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    index = fs.cat(f"{url}/index.csv").decode().splitlines()
    assert len(index) == 8 and index[-1].split(",")[-2:] == ["6", "s6"]
    assert json.loads(fs.cat(f"{url}/manifest.json"))["version"] == 3
    assert not list((tmp_path / "cache").rglob("change-*"))  # staging folders removed
    entries = history(url, storage_options=s3_server.storage_options)
    assert [(e.version, e.operation, e.n_samples) for e in entries] == [
        (1, "write", 3),
        (2, "append", 5),
        (3, "append", 7),
    ]


def test_compact_merges_the_small_chunk_files_of_many_appends(tmp_path):
    path = tmp_path / "ds"
    write(path, 0, 2, dtype="float32", index_format="arrow", chunk_size_bytes=1024)
    for start in range(2, 40, 2):
        write(path, start, 2, mode="append")
    with acumen.open(path) as ds:
        assert len(ds.storage.paths) == 20  # one small chunk file per append
    acumen.compact(path)
    check(path, 40)
    with acumen.open(path) as ds:
        assert len(ds.storage.paths) == 40 * 24 // 1024 + 1  # full chunk files again
    assert verify(path, progress=False).ok


def test_a_pickled_dataset_stays_at_its_version(tmp_path):
    """DataLoader workers unpickle the dataset: they read the version the parent opened."""
    import pickle

    path = tmp_path / "ds"
    write(path, 0, 3, dtype="float32", index_format="arrow")
    with acumen.open(path) as ds:
        write(path, 3, 3, mode="append")
        acumen.delete(path, indices=[0])
        copy = pickle.loads(pickle.dumps(ds))
        assert copy.version == 1 and len(copy) == 3
        assert np.array_equal(copy.read(0), value(0))
    with acumen.open(path) as ds:
        copy = pickle.loads(pickle.dumps(ds))
        assert copy.version == 3 and len(copy) == 5
        assert np.array_equal(copy.read(0), value(1))


def test_a_parallel_split_append_checks_shapes_too(tmp_path):
    path = tmp_path / "ds"
    acumen.split_into_chunks([(value(i), {"i": i, "name": f"s{i}"}) for i in range(2)], path)
    wrong = [(np.zeros((3, 3), np.float32), {"i": i, "name": "x"}) for i in range(4)]
    with pytest.raises(SampleError, match=r"shape \(3, 3\) differs from the dataset's \(2, 3\)"):
        acumen.split_into_chunks(wrong, path, mode="append", n_jobs=2)
    check(path, 2)


def test_vacuum_of_a_url_removes_what_no_kept_version_names(tmp_path, s3_server, s3_bucket):
    """Objects of an append that died before its commit, and those only older versions
    name, go; those a kept version names, or younger than the grace, stay."""
    import s3fs

    from tests.test_remote_open import upload_s3

    path = tmp_path / "ds"
    write(path, 0, 3, dtype="float32", index_format="arrow", chunk_size_bytes=64)
    write(path, 3, 3, mode="append")
    url = upload_s3(path, s3_server, s3_bucket)
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    orphan = f"{url}/chunks/20260101T000000-0123456789ab/chunk_0.chnk"
    fs.pipe(orphan, b"left by a dead append")
    options = {"storage_options": s3_server.storage_options}
    young = acumen.vacuum(url, **options)  # the orphan is younger than an hour: it stays
    assert young.removed == [] and young.running_writers == ["20260101T000000-0123456789ab"]
    assert fs.exists(orphan)
    kept_both = acumen.vacuum(url, keep=2, grace=0, **options)
    assert kept_both.removed == ["chunks/20260101T000000-0123456789ab/chunk_0.chnk"]
    assert not fs.exists(orphan)
    assert acumen.vacuum(url, keep=2, grace=0, **options).removed == []
    with acumen.open(url, cache=tmp_path / "cache", **options) as ds:
        assert len(ds) == 6 and np.array_equal(ds[5][0], value(5))
    with acumen.open(url, version=1, cache=tmp_path / "cache", **options) as ds:
        assert len(ds) == 3
