"""Writing a dataset to object storage: staged locally, committed there, then published with
``manifest.json`` last, against moto's S3 on 127.0.0.1.

Every codec x index format round-trips byte for byte; a URL that holds a dataset is refused
before any sample and again at the publication; a writer killed while publishing leaves a
URL that never opens as complete, and that a new writer refuses until it is removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import s3fs

import acumen
from acumen.errors import DatasetExistsError, IncompleteDatasetError
from tests.test_remote_open import CODECS, INDEX_FORMATS, N, check_all, sample

ROOT = Path(__file__).resolve().parents[1]


def add_samples(writer: acumen.Writer) -> None:
    for i in range(N):
        writer.add(sample(i), label=i, split=("train", "val", "test")[i % 3])


def objects(fs: s3fs.S3FileSystem, url: str) -> dict[str, bytes]:
    prefix = url[len("s3://") :]
    return {path[len(prefix) + 1 :]: fs.cat_file(path) for path in fs.find(prefix)}


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("index_format", INDEX_FORMATS)
def test_writer_round_trip(tmp_path: Path, s3_server, s3_bucket: str, codec, index_format):
    options, cache = s3_server.storage_options, tmp_path / "cache"
    url = f"s3://{s3_bucket}/ds"
    settings = {"codec": codec, "index_format": index_format, "chunk_size_bytes": 256}
    with acumen.Writer(url, storage_options=options, cache=cache, **settings) as writer:
        add_samples(writer)
    with acumen.Writer(tmp_path / "local", **settings) as writer:
        add_samples(writer)
    fs = s3fs.S3FileSystem(**options)
    published, local = objects(fs, url), local_files(tmp_path / "local")
    assert ".acumen-writing" not in published
    assert {k: v for k, v in published.items() if k != "manifest.json"} == {
        k: v for k, v in local.items() if k != "manifest.json"
    }
    assert len([k for k in published if k.startswith("chunks/")]) > 1
    with acumen.open(url, storage_options=options, cache=cache) as ds:
        check_all(ds)
    assert not any((cache / "staging").iterdir())  # the staging folder is gone


def test_split_into_chunks_to_a_url(tmp_path: Path, s3_server, s3_bucket: str):
    options, cache = s3_server.storage_options, tmp_path / "cache"
    url = f"s3://{s3_bucket}/split"
    items = [(sample(i), {"label": i}) for i in range(N)]
    manifest = acumen.split_into_chunks(
        items, url, dtype=None, codec="gzip", chunk_size_bytes=300, n_jobs=2,
        storage_options=options, cache=cache,
    )  # fmt: skip
    assert manifest.n_samples == N
    with acumen.open(url, storage_options=options, cache=cache) as ds:
        for i in range(N):
            array, metadata = ds[i]
            assert array.tobytes() == sample(i).tobytes() and metadata == {"label": i}
    with pytest.raises(DatasetExistsError, match="already holds a dataset"):
        acumen.split_into_chunks(items, url, storage_options=options, cache=cache)


def test_a_second_writer_is_refused_at_creation(tmp_path: Path, s3_server, s3_bucket: str):
    options, cache = s3_server.storage_options, tmp_path / "cache"
    url = f"s3://{s3_bucket}/ds"
    with acumen.Writer(url, storage_options=options, cache=cache) as writer:
        add_samples(writer)
    with pytest.raises(DatasetExistsError, match="already holds a dataset"):
        acumen.Writer(url, storage_options=options, cache=cache)


def test_a_commit_in_between_wins(tmp_path: Path, s3_server, s3_bucket: str):
    """Another writer commits at the URL after this one started: this one's publication is
    refused before it uploads anything, and the other's dataset stays as it was."""
    options, cache = s3_server.storage_options, tmp_path / "cache"
    url = f"s3://{s3_bucket}/ds"
    first = acumen.Writer(url, storage_options=options, cache=cache, codec="lz4")
    add_samples(first)
    with acumen.Writer(url, storage_options=options, cache=cache) as second:
        add_samples(second)
    fs = s3fs.S3FileSystem(**options)
    before = objects(fs, url)
    with pytest.raises(DatasetExistsError, match="already holds a dataset"):
        first.close()
    assert objects(fs, url) == before
    with acumen.open(url, storage_options=options, cache=cache) as ds:
        check_all(ds)
        assert ds.manifest.codec["name"] == "raw"


def test_the_manifest_is_created_conditionally(tmp_path: Path, s3_server, s3_bucket: str):
    """A manifest that lands between the check and the conditional PUT (If-None-Match: *,
    honoured by moto as by S3) is not overwritten."""
    options, cache = s3_server.storage_options, tmp_path / "cache"
    url = f"s3://{s3_bucket}/ds"
    writer = acumen.Writer(url, storage_options=options, cache=cache)
    add_samples(writer)
    destination = writer._destination
    checked = destination.check_free

    def check_then_lose(manifest=None):
        result = checked(manifest)
        s3fs.S3FileSystem(**options).pipe_file(f"{s3_bucket}/ds/manifest.json", b"{}")
        return result

    destination.check_free = check_then_lose
    with pytest.raises(DatasetExistsError, match="another writer committed"):
        writer.close()
    assert s3fs.S3FileSystem(**options).cat_file(f"{s3_bucket}/ds/manifest.json") == b"{}"


KILLED_WRITER = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np
    import acumen
    from acumen.files.remote_write import RemoteWriter

    put_bytes = RemoteWriter.put_bytes

    def put_or_die(self, relative, data, what, **kwargs):
        if relative == "manifest.json":  # everything else is uploaded: die before the commit
            os.kill(os.getpid(), signal.SIGKILL)
        return put_bytes(self, relative, data, what, **kwargs)

    RemoteWriter.put_bytes = put_or_die
    url, options, cache = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    with acumen.Writer(url, storage_options=options, cache=cache, chunk_size_bytes=256) as w:
        for i in range(100):
            w.add(np.full((4,), i, dtype=np.int32), i=i)
    """
)


def run_killed(script: str, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, timeout=60)
    assert done.returncode == -9


def test_a_writer_killed_while_publishing(tmp_path: Path, s3_server, s3_bucket: str):
    options, cache = s3_server.storage_options, tmp_path / "cache"
    url = f"s3://{s3_bucket}/ds"
    run_killed(KILLED_WRITER, url, json.dumps(options), str(cache))
    fs = s3fs.S3FileSystem(**options)
    left = objects(fs, url)
    assert ".acumen-writing" in left and "manifest.json" not in left
    assert any(name.startswith("chunks/") for name in left) and "index.csv" in left
    with pytest.raises(IncompleteDatasetError, match=f"acumen clean {url}"):
        acumen.open(url, storage_options=options, cache=cache)
    with pytest.raises(DatasetExistsError, match=f"remove what it left with `acumen clean {url}`"):
        acumen.Writer(url, storage_options=options, cache=cache)
    fs.rm(f"{s3_bucket}/ds", recursive=True)
    with acumen.Writer(url, storage_options=options, cache=cache) as writer:
        add_samples(writer)
    with acumen.open(url, storage_options=options, cache=cache) as ds:
        check_all(ds)


# --- acumen convert to a URL ----------------------------------------------------------------
KILLED_CONVERSION = textwrap.dedent(
    """
    import importlib, os, signal, sys
    run = importlib.import_module("acumen.convert.run")
    from acumen.files.remote_write import RemoteWriter

    where = sys.argv[2]
    if where == "merge":  # the parts are written and uploaded: die before the index is made
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        run.merge_uploaded = die
    else:  # committed locally and uploaded: die before the manifest's PUT
        put_bytes = RemoteWriter.put_bytes
        def put_or_die(self, relative, data, what, **kwargs):
            if relative == "manifest.json":
                os.kill(os.getpid(), signal.SIGKILL)
            return put_bytes(self, relative, data, what, **kwargs)
        RemoteWriter.put_bytes = put_or_die
    from acumen.convert import convert
    convert(sys.argv[1], progress=False)
    """
)


def conversion(tmp_path: Path, url: str, options: dict) -> Path:
    from tests.test_convert import base_config, save_npys, write_json

    save_npys(tmp_path / "data", 40)
    output = {"storage_options": options, "cache": "cache", "codec": "lz4", "chunk_size": 300}
    config = base_config(url, output=output, run={"progress": False, "part_size": 10})
    return write_json(tmp_path / "cfg.json", config)


@pytest.mark.parametrize("where", ["merge", "publish"])
def test_convert_to_a_url_resumes_after_a_kill(
    tmp_path: Path, s3_server, s3_bucket: str, where: str
):
    from acumen.convert import convert

    options = s3_server.storage_options
    url, clean_url = f"s3://{s3_bucket}/converted", f"s3://{s3_bucket}/clean"
    (tmp_path / "clean").mkdir()
    convert(conversion(tmp_path / "clean", clean_url, options), progress=False)
    config = conversion(tmp_path, url, options)
    run_killed(KILLED_CONVERSION, str(config), where)
    fs = s3fs.S3FileSystem(**options)
    with pytest.raises(IncompleteDatasetError):  # the marker, the chunks, no manifest
        acumen.open(url, storage_options=options, cache=tmp_path / "cache")
    left = objects(fs, url)
    assert ".acumen-writing" in left and "manifest.json" not in left
    assert any(name.startswith("chunks/") for name in left)
    staging = next((tmp_path / "cache" / "staging").iterdir())
    assert (staging / "convert").is_dir()  # the local state a rerun resumes
    assert not list((staging / "convert").rglob("*.chnk"))  # the workers uploaded them
    summary = convert(config, progress=False)
    assert summary.samples == 40
    published, clean = objects(fs, url), objects(fs, clean_url)
    assert ".acumen-writing" not in published and "convert-report.json" in published
    same = [k for k in clean if k not in ("manifest.json", "convert-report.json")]
    assert {k: published[k] for k in same} == {k: clean[k] for k in same}
    assert sorted(published) == sorted(clean)
    assert not (tmp_path / "cache" / "staging").exists() or not any(
        (tmp_path / "cache" / "staging").iterdir()
    )
    with acumen.open(url, storage_options=options, cache=tmp_path / "cache") as ds:
        assert len(ds) == 40
    with pytest.raises(DatasetExistsError, match="already holds a dataset"):
        convert(config, progress=False)


def test_recode_local_to_a_url(tmp_path: Path, s3_server, s3_bucket: str):
    from acumen.recode import recode

    options, cache = s3_server.storage_options, tmp_path / "cache"
    with acumen.Writer(tmp_path / "local", chunk_size_bytes=256) as writer:
        add_samples(writer)
    url = f"s3://{s3_bucket}/recoded"
    manifest = recode(
        tmp_path / "local", url, codec="zstd", progress=False, storage_options=options, cache=cache
    )
    assert manifest.codec["name"] == "zstd"
    with acumen.open(url, storage_options=options, cache=cache) as ds:
        check_all(ds)
    with pytest.raises(DatasetExistsError):
        recode(tmp_path / "local", url, progress=False, storage_options=options, cache=cache)
