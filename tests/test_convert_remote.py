"""``acumen convert`` with its source in object storage, and a URL output written by the
workers straight to the store, against moto's S3 on 127.0.0.1.

A conversion of a bucket's .npy files is byte for byte the conversion of the same files on
disk; the Dask engine's workers upload their parts' chunk files themselves (the driver's
staging folder never holds one); a driver killed mid-conversion resumes; a missing object
is an error naming its URL.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import s3fs

import acumen
from acumen.convert import ConversionError, convert
from acumen.errors import IncompleteDatasetError
from tests.test_convert import all_files, write_json
from tests.test_remote_write import objects

ROOT = Path(__file__).resolve().parents[1]
# Names whose order differs between a flat listing ("b-1" < "b/") and a walk ("b" < "b-1").
NAMES = ["a.npy", "b-1.npy", "b/0.npy", "b/1.npy", "b/c/2.npy", "c.npy"] + [
    f"d/{n:02d}.npy" for n in range(14)
]


def make_source(folder: Path, fs: s3fs.S3FileSystem, bucket: str) -> None:
    """The same .npy files (shapes vary) on disk under ``folder`` and at s3://bucket/src."""
    rng = np.random.default_rng(3)
    for number, name in enumerate(NAMES):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, rng.normal(size=(1 + number % 4, 3)).astype(np.float32))
        fs.pipe_file(f"{bucket}/src/{name}", path.read_bytes())


def config(root: str, output: str, options: dict, **run) -> dict:
    zstd = {"name": "zstd", "configuration": {"dictionary_size": 256, "train_samples": 20}}
    out: dict = {"path": output, "codec": zstd, "chunk_size": 200, "index_format": "parquet"}
    if "://" in output:
        out.update(storage_options=options, cache="cache")
    source = {"glob": "**/*.npy", "root": root}
    if "://" in root:
        source["storage_options"] = options
    return {
        "source": source,
        "reader": {"name": "npy"},
        "output": out,
        "run": {"progress": False, "part_size": 4, **run},
    }


def dataset_files(files: dict[str, bytes]) -> dict[str, bytes]:
    """What must be the same bytes: all but the report (it names the config and items)."""
    return {k: v for k, v in files.items() if k != "convert-report.json"}


@pytest.fixture
def source(tmp_path: Path, s3_server, s3_bucket: str):
    """(local folder, its URL, storage options, the reference: a local conversion)."""
    options = s3_server.storage_options
    make_source(tmp_path / "src", s3fs.S3FileSystem(**options), s3_bucket)
    reference = tmp_path / "reference"
    convert(write_json(tmp_path / "ref.json", config(str(tmp_path / "src"), str(reference), {})))
    return tmp_path / "src", f"s3://{s3_bucket}/src", options, reference


def test_s3_source_to_local_and_to_s3_matches_a_local_source(tmp_path: Path, source):
    _, url, options, reference = source
    expected = dataset_files(all_files(reference))
    local = tmp_path / "from-s3"
    convert(write_json(tmp_path / "a.json", config(url, str(local), options, n_jobs=2)))
    assert dataset_files(all_files(local)) == expected
    with acumen.open(local) as ds:
        assert [ds.metadata(i)["path"] for i in range(len(ds))] == [
            "a.npy",
            "b/0.npy",
            "b/1.npy",
            "b/c/2.npy",
            "b-1.npy",
            "c.npy",
            *NAMES[6:],
        ]
    target = url.replace("/src", "/out")
    summary = convert(write_json(tmp_path / "b.json", config(url, target, options)))
    assert summary.samples == len(NAMES)
    published = objects(s3fs.S3FileSystem(**options), target)
    assert dataset_files(published) == expected  # the zstd dictionary too
    assert not any((tmp_path / "cache" / "staging").iterdir())
    cache = tmp_path / "cache"
    with (
        acumen.open(target, storage_options=options, cache=cache) as ds,
        acumen.open(reference) as expected_ds,
    ):
        assert len(ds) == len(expected_ds)
        for i in range(len(ds)):
            assert ds[i][0].tobytes() == expected_ds[i][0].tobytes()


def test_a_missing_object_is_named(tmp_path: Path, s3_server, s3_bucket: str):
    """A table at a URL lists an object that is not there: the error names its URL; with
    on_error = "skip" the report does."""
    options = s3_server.storage_options
    fs = s3fs.S3FileSystem(**options)
    for n in (0, 2):
        buffer = (tmp_path / f"{n}.npy").as_posix()
        np.save(buffer, np.full((2,), n, dtype=np.int16))
        fs.pipe_file(f"{s3_bucket}/t/{n}.npy", Path(buffer).read_bytes())
    fs.pipe_file(f"{s3_bucket}/t/list.csv", b"path,label\n0.npy,0\n1.npy,1\n2.npy,2\n")
    cfg = {
        "source": {"table": f"s3://{s3_bucket}/t/list.csv", "storage_options": options},
        "reader": {"name": "npy"},
        "output": {"path": str(tmp_path / "out")},
        "run": {"progress": False},
    }
    missing = f"s3://{s3_bucket}/t/1.npy"
    with pytest.raises(ConversionError, match=rf"item 1 \({missing}\): .*no such object"):
        convert(cfg)
    cfg["run"]["on_error"] = "skip"
    summary = convert(cfg)  # resumes the same conversion, now skipping
    assert summary.samples == 2 and summary.skipped[0]["item"] == missing
    with acumen.open(tmp_path / "out") as ds:
        assert [ds.metadata(i) for i in range(2)] == [
            {"label": 0, "path": "0.npy"},
            {"label": 2, "path": "2.npy"},
        ]


def test_an_http_table_source(tmp_path: Path, http_server):
    """A table served over HTTP lists images beside it: each fetched whole (no listing
    needed); one that is not there is skipped and named."""
    from PIL import Image

    for n in range(3):
        Image.fromarray(np.full((2, 3), n, np.uint8)).save(http_server.root / f"{n}.png")
    (http_server.root / "list.csv").write_text("path\n0.png\ngone.png\n2.png\n1.png\n")
    cfg = {
        "source": {"table": http_server.url("list.csv")},
        "reader": {"name": "image"},
        "output": {"path": str(tmp_path / "out")},
        "run": {"progress": False, "on_error": "skip"},
    }
    summary = convert(cfg)
    assert [s["item"] for s in summary.skipped] == [http_server.url("gone.png")]
    with acumen.open(tmp_path / "out") as ds:
        assert [int(ds[i][0][0, 0]) for i in range(len(ds))] == [0, 2, 1]


def test_an_http_glob_source_listed_through_its_html_index(tmp_path: Path):
    """A glob over an HTTP server that serves folder indexes (Python's http.server)."""
    import functools
    import http.server
    import threading

    from PIL import Image

    (tmp_path / "site" / "imgs" / "sub").mkdir(parents=True)
    for n, name in enumerate(["0.png", "1.png", "sub/2.png"]):
        Image.fromarray(np.full((2, 2), n, np.uint8)).save(tmp_path / "site" / "imgs" / name)
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site")
    )
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            root = f"http://127.0.0.1:{server.server_address[1]}/imgs"
            convert(
                {
                    "source": {"glob": "**/*.png", "root": root},
                    "reader": {"name": "image"},
                    "output": {"path": str(tmp_path / "out")},
                    "run": {"progress": False},
                }
            )
        finally:
            server.shutdown()
            thread.join()
    with acumen.open(tmp_path / "out") as ds:
        assert [ds.metadata(i)["path"] for i in range(len(ds))] == ["0.png", "1.png", "sub/2.png"]
        assert [int(ds[i][0][0, 0]) for i in range(len(ds))] == [0, 1, 2]


# --- the Dask engine: workers upload ---------------------------------------------------------
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """Workers in this process (threads): a killed driver leaves them running, as a real
    cluster's; and what they do is seen here."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=":0",
    ) as running:
        yield running


def test_dask_workers_upload_their_parts(tmp_path: Path, source, cluster, monkeypatch, caplog):
    from acumen.write.publish import Destination

    _, url, options, reference = source
    published_by_driver: list[str] = []
    upload = Destination._upload

    def watched(self, root, chunks, rest):
        published_by_driver.extend(chunks)
        return upload(self, root, chunks, rest)

    monkeypatch.setattr(Destination, "_upload", watched)
    target = url.replace("/src", "/dask")
    cfg = config(url, target, options, engine="dask", scheduler=cluster.scheduler_address)
    with caplog.at_level(logging.INFO, logger="acumen.convert.upload"):
        summary = convert(write_json(tmp_path / "d.json", cfg))
    assert summary.samples == len(NAMES) and summary.parts == 5
    assert published_by_driver == []  # the driver uploaded no chunk file
    uploads = [r for r in caplog.records if "chunk file(s) uploaded" in r.getMessage()]
    workers = set(cluster.scheduler_info["workers"])
    assert len(uploads) == 5  # each part's chunk files, by the worker that wrote it
    assert {r.getMessage().rsplit(" ", 1)[1] for r in uploads} <= workers
    published = objects(s3fs.S3FileSystem(**options), target)
    assert dataset_files(published) == dataset_files(all_files(reference))


KILLED_DRIVER = textwrap.dedent(
    """
    import importlib, os, signal, sys
    upload = importlib.import_module("acumen.convert.upload")
    record_part, recorded = upload.record_part, []

    def record_or_die(record, uploaded):  # dies once two parts are uploaded and recorded
        record_part(record, uploaded)
        recorded.append(record)
        if len(recorded) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    upload.record_part = record_or_die
    from acumen.convert import convert
    convert(sys.argv[1], progress=False)
    """
)


def test_a_killed_dask_conversion_to_s3_resumes(tmp_path: Path, source, cluster):
    folder, url, options, reference = source
    target = url.replace("/src", "/killed")
    cfg = config(url, target, options, engine="dask", scheduler=cluster.scheduler_address)
    path = write_json(tmp_path / "k.json", cfg)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", KILLED_DRIVER, str(path)], env=env, timeout=60)
    assert done.returncode == -9
    fs = s3fs.S3FileSystem(**options)
    left = objects(fs, target)
    assert ".acumen-writing" in left and "manifest.json" not in left
    assert any(name.startswith("chunks/") for name in left)
    with pytest.raises(IncompleteDatasetError):
        acumen.open(target, storage_options=options, cache=tmp_path / "cache")
    staging = next((tmp_path / "cache" / "staging").iterdir())
    assert not list((staging / "convert").rglob("*.chnk"))  # the driver's: never held one
    listing = staging / "convert" / ".acumen-convert" / "source-listing.jsonl"
    assert json.loads(listing.read_text().splitlines()[0])[0] == f"{url}/a.npy"
    fs.pipe_file(f"{url[5:]}/0-added-later.npy", (folder / "a.npy").read_bytes())
    summary = convert(path)  # resumes from the recorded listing: the new object is not in
    assert summary.resumed_parts == 2 and summary.samples == len(NAMES)
    assert dataset_files(objects(fs, target)) == dataset_files(all_files(reference))
    with acumen.open(target, storage_options=options, cache=tmp_path / "cache") as ds:
        assert len(ds) == len(NAMES)


def test_a_part_written_again_with_more_chunks_renumbers_the_parts_after_it(
    tmp_path: Path, s3_server, s3_bucket: str, monkeypatch
):
    """Recorded under "skip" with a bad item left out, a part is written again under
    "raise" once the item is fixed: it has one chunk file more, so the parts recorded after
    it were uploaded under numbers that are now wrong. The run says so and drops their
    records; the next run writes them anew, and the dataset is the clean conversion's."""
    import importlib

    run_module = importlib.import_module("acumen.convert.run")
    options = s3_server.storage_options
    data = tmp_path / "data"
    data.mkdir()
    for n in range(8):
        np.save(data / f"{n}.npy", np.full((4,), n, dtype=np.int64))
    (data / "2.npy").write_bytes(b"not a .npy file")
    url = f"s3://{s3_bucket}/renumbered"
    cfg = {
        "source": {"glob": "*.npy", "root": str(data)},
        "reader": {"name": "npy"},
        "output": {"path": url, "storage_options": options, "cache": str(tmp_path / "c")},
        "run": {"progress": False, "part_size": 4, "on_error": "skip"},
    }
    cfg["output"]["chunk_size"] = 16  # one sample a chunk file

    def stop(*args, **kwargs):
        raise KeyboardInterrupt  # every part recorded, stopped before the index

    with monkeypatch.context() as patch:
        patch.setattr(run_module, "merge_uploaded", stop)
        with pytest.raises(KeyboardInterrupt):
            convert(cfg)
    np.save(data / "2.npy", np.full((4,), 2, dtype=np.int64))  # fixed
    cfg["run"]["on_error"] = "raise"
    with pytest.raises(ConversionError, match="part 1 was uploaded as chunk files 3 onwards"):
        convert(cfg)
    summary = convert(cfg)
    assert summary.samples == 8 and summary.resumed_parts == 1  # part 0, recorded again
    clean = tmp_path / "clean"
    convert({**cfg, "output": {"path": str(clean), "chunk_size": 16}})
    published = objects(s3fs.S3FileSystem(**options), url)
    assert dataset_files(published) == dataset_files(all_files(clean))
