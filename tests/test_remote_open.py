"""``acumen.open(URL)``: datasets read where they are, from real servers on 127.0.0.1.

Every codec x index format round-trips from an S3-compatible server (moto) and from an
HTTP server honouring ``Range``; the original package's datasets read over HTTP; a random
sample costs one ranged GET of its own bytes, a batch a few coalesced GETs; damage and
missing objects are errors naming the URL, never wrong bytes.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import s3fs

import acumen
from acumen.errors import CorruptDatasetError, DatasetNotFoundError
from tests.conftest import fixture_names, load_fixture
from tests.test_original_format import assert_same_array, assert_same_metadata

CODECS = ["raw", "gzip", "zstd", "lz4"]
INDEX_FORMATS = ["csv", "parquet", "arrow"]
N = 60


def sample(i: int) -> np.ndarray:
    return np.arange(i % 7 + 1, dtype=np.float32).reshape(-1, 1) * (i + 1)


def write_local(root: Path, codec: str, index_format: str, checksums: str | None = None) -> Path:
    with acumen.Writer(
        root,
        codec=codec,
        index_format=index_format,
        chunk_size_bytes=256,
        **({"checksums": checksums} if checksums else {}),
    ) as writer:
        for i in range(N):
            writer.add(sample(i), label=i, split=("train", "val", "test")[i % 3])
    return root


def upload_s3(local: Path, s3_server, bucket: str, name: str = "ds") -> str:
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            fs.pipe(f"{bucket}/{name}/{path.relative_to(local).as_posix()}", path.read_bytes())
    return f"s3://{bucket}/{name}"


def serve_http(local: Path, http_server, name: str = "ds") -> str:
    shutil.copytree(local, http_server.root / name)
    return http_server.url(name)


def check_all(ds: acumen.Dataset) -> None:
    assert len(ds) == N
    for i in range(N):
        array, metadata = ds[i]
        assert array.tobytes() == sample(i).tobytes() and array.shape == sample(i).shape
        assert metadata == {"label": i, "split": ("train", "val", "test")[i % 3]}
    batch = ds.read_batch(list(range(N - 1, -1, -3)))
    for got, i in zip(batch, range(N - 1, -1, -3), strict=True):
        assert got.tobytes() == sample(i).tobytes()
    assert [a.tobytes() for a, _ in ds] == [sample(i).tobytes() for i in range(N)]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("index_format", INDEX_FORMATS)
def test_every_codec_and_index_format_reads_from_s3(
    tmp_path: Path, s3_server, s3_bucket: str, codec: str, index_format: str
) -> None:
    url = upload_s3(write_local(tmp_path / "local", codec, index_format), s3_server, s3_bucket)
    options = s3_server.storage_options
    with acumen.open(url, storage_options=options, cache=tmp_path / "cache") as ds:
        assert ds.storage.name == "remote"
        check_all(ds)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("index_format", INDEX_FORMATS)
def test_every_codec_and_index_format_reads_over_http(
    tmp_path: Path, http_server, codec: str, index_format: str
) -> None:
    url = serve_http(write_local(tmp_path / "local", codec, index_format), http_server)
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        check_all(ds)


def test_a_url_to_the_manifest_stands_for_the_dataset(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    with acumen.open(url + "/manifest.json", cache=tmp_path / "cache") as ds:
        assert len(ds) == N and str(ds.root) == url


@pytest.mark.parametrize("name", fixture_names())
def test_original_datasets_read_over_http(tmp_path: Path, http_server, name: str) -> None:
    path, meta, arrays, metadata = load_fixture(name)
    url = serve_http(path, http_server, name)
    options = {"use_gzip": meta["use_gzip"], "dtype": meta["dtype"]}
    with acumen.open(url, cache=tmp_path / "cache", **options) as ds:
        assert len(ds) == len(arrays)
        for i, expected in enumerate(arrays):
            got, row = ds[i]
            assert_same_array(got, expected)
            assert_same_metadata(row, metadata[i])


def test_a_random_sample_is_one_ranged_get_of_its_own_bytes(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "arrow"), http_server)
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        log = http_server.log
        for i in (41, 3, 17):
            log.reset()
            assert ds.read(i).tobytes() == sample(i).tobytes()
            assert log.count("GET") == 1 and log.count("HEAD") == 0
            assert log.bytes_sent == sample(i).nbytes


def test_a_batch_is_a_few_coalesced_gets(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "zstd", "parquet"), http_server)
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        chunks = len(ds.storage.paths)
        http_server.log.reset()
        order = np.random.default_rng(0).permutation(N)
        batch = ds.read_batch(order)
        assert [b.tobytes() for b in batch] == [sample(int(i)).tobytes() for i in order]
        assert http_server.log.count("GET") <= chunks


def test_opening_again_fetches_the_manifest_and_reuses_the_index(
    tmp_path: Path, http_server
) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "parquet"), http_server)
    acumen.open(url, cache=tmp_path / "cache").close()
    http_server.log.reset()
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        assert len(ds) == N
    paths = [record.path for record in http_server.log.records]
    assert paths == ["/ds/manifest.json"]


def test_an_s3_open_is_two_gets_and_a_sample_one_more(tmp_path: Path, s3_fault_proxy) -> None:
    """The open's target (issue 14: at most three round trips plus the index's transfer):
    the manifest's GET, then the index's; no HEAD before either (s3fs asks an object's size
    first when it may fetch it in parts); a sample is then one ranged GET."""
    proxy = s3_fault_proxy
    url = upload_s3(write_local(tmp_path / "local", "zstd", "arrow"), proxy.upstream, proxy.bucket)
    proxy.log.reset()
    with acumen.open(url, storage_options=proxy.storage_options, cache=tmp_path / "c") as ds:
        opened = [(r.method, r.path.rsplit("/", 1)[-1]) for r in proxy.log.records]
        proxy.log.reset()
        assert np.array_equal(ds[7][0], sample(7))
        read = [(r.method, r.status) for r in proxy.log.records]
    assert opened == [("GET", "manifest.json"), ("GET", "index.arrow")]
    assert read == [("GET", 206)]


def test_a_worker_process_reads_the_remote_dataset(tmp_path: Path, http_server) -> None:
    import multiprocessing

    url = serve_http(write_local(tmp_path / "local", "lz4", "csv"), http_server)
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        blob = pickle.dumps(ds)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.apply(_read_in_child, (blob, 23))
    assert got == sample(23).tobytes()


def _read_in_child(blob: bytes, i: int) -> bytes:
    return pickle.loads(blob).read(i).tobytes()


def test_a_forked_child_never_closes_the_parents_connections(tmp_path: Path, http_server) -> None:
    """A child makes its own filesystem; the parent's, inherited, must never be closed
    there: closing takes its sockets out of the epoll the two processes share, and the
    parent's next reads wait for ever (a DataLoader epoch hung this way)."""
    import gc
    import os
    import threading

    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    first = acumen.open(url, cache=tmp_path / "c1", cache_size=0)
    second = acumen.open(url, cache=tmp_path / "c2", cache_size=0)  # same session, unread
    first.read_batch(list(range(0, N, 2)))  # connections open in the parent
    pid = os.fork()
    if pid == 0:  # the child: reads (a filesystem of its own), drops the parent's
        code = 0
        try:
            first.read_batch(list(range(1, N, 2)))
            gc.collect()
        except BaseException:
            code = 1
        os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    got: list = []
    reader = threading.Thread(target=lambda: got.append(second.read_batch(list(range(N)))))
    reader.daemon = True
    reader.start()
    reader.join(30)
    assert got, "the parent's read after the child's did not finish in 30 s"
    for row, i in zip(got[0], range(N), strict=True):
        assert row.tobytes() == sample(i).tobytes()


def test_a_missing_dataset_names_the_url(tmp_path: Path, http_server, s3_server, s3_bucket):
    with pytest.raises(DatasetNotFoundError, match=r"http://.*/nothing"):
        acumen.open(http_server.url("nothing"), cache=tmp_path / "cache")
    options = s3_server.storage_options
    with pytest.raises(DatasetNotFoundError, match=rf"s3://{s3_bucket}/nothing"):
        acumen.open(f"s3://{s3_bucket}/nothing", storage_options=options, cache=tmp_path / "c")


def test_a_changed_remote_index_is_refused(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    index = http_server.root / "ds" / "index.csv"
    index.write_bytes(index.read_bytes().replace(b"val", b"VAL", 1))
    with pytest.raises(CorruptDatasetError, match=r"index\.csv.*checksum"):
        acumen.open(url, cache=tmp_path / "cache")


def test_a_truncated_remote_chunk_is_an_error_never_wrong_bytes(
    tmp_path: Path, http_server
) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        chunk = ds.storage.paths[int(ds.table.chunk_ids[N - 1])]
        name = chunk.split("/ds/", 1)[1]
        target = http_server.root / "ds" / name
        target.write_bytes(target.read_bytes()[:-4])
        with pytest.raises(CorruptDatasetError, match=rf"sample {N - 1}.*{name}"):
            ds.read(N - 1)


def test_storage_options_are_for_urls_only(tmp_path: Path) -> None:
    root = write_local(tmp_path / "local", "raw", "csv")
    with pytest.raises(ValueError, match="storage_options is for URLs"):
        acumen.open(root, storage_options={"anon": True})


def test_file_urls_and_home_paths_are_local(tmp_path: Path, monkeypatch) -> None:
    root = write_local(tmp_path / "local", "raw", "csv")
    with acumen.open(f"file://{root}") as ds:
        assert ds.storage.name == "mmap" and len(ds) == N
    monkeypatch.setenv("HOME", str(tmp_path))
    with acumen.open("~/local") as ds:
        assert len(ds) == N


def test_the_mirror_records_its_url(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    acumen.open(url, cache=tmp_path / "cache").close()
    (mirror,) = (tmp_path / "cache" / "remote").iterdir()
    assert (mirror / "url").read_text().strip() == url
    assert json.loads((mirror / "manifest.json").read_text())["n_samples"] == N


def test_verify_sample_checks_remote_payloads(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "lz4", "arrow", "sample"), http_server)
    # cache_size=0: the chunk is damaged in place below, under the same manifest, which
    # a disk cache of verified bytes would not see.
    with acumen.open(url, cache=tmp_path / "cache", verify="sample", cache_size=0) as ds:
        check_all(ds)
        chunk = ds.storage.paths[int(ds.table.chunk_ids[7])]
        target = http_server.root / "ds" / chunk.split("/ds/", 1)[1]
        data = bytearray(target.read_bytes())
        offset = int(ds.table.offsets[7])
        data[offset + 4] ^= 0xFF
        target.write_bytes(bytes(data))
        ds.storage.close()  # forget what was prefetched
        with pytest.raises(CorruptDatasetError, match="sample 7: the payload's checksum"):
            ds.read(7)


def test_verify_chunk_of_a_remote_dataset_is_refused(tmp_path: Path, http_server) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    with pytest.raises(ValueError, match="would download every chunk file"):
        acumen.open(url, cache=tmp_path / "cache", verify="chunk")


def test_a_chunk_missing_from_the_store_names_the_sample_and_url(
    tmp_path: Path, http_server
) -> None:
    url = serve_http(write_local(tmp_path / "local", "raw", "csv"), http_server)
    with acumen.open(url, cache=tmp_path / "cache") as ds:
        chunk = ds.storage.paths[int(ds.table.chunk_ids[30])]
        (http_server.root / "ds" / chunk.split("/ds/", 1)[1]).unlink()
        with pytest.raises(CorruptDatasetError, match=r"sample 30: .*chunk file is missing"):
            ds.read(30)
        with pytest.raises(CorruptDatasetError, match="chunk file is missing"):
            ds.read_batch([30, 31])


def test_torch_dataset_from_a_url(tmp_path: Path, s3_server, s3_bucket: str) -> None:
    torch = pytest.importorskip("torch")
    from acumen.torch import TorchDataset

    url = upload_s3(write_local(tmp_path / "local", "zstd", "parquet"), s3_server, s3_bucket)
    data = TorchDataset(
        url, target="label", storage_options=s3_server.storage_options, cache=tmp_path / "c"
    )
    tensor, label = data[12]
    assert label == 12 and torch.equal(tensor, torch.from_numpy(sample(12)))
    batch = data.__getitems__([5, 40, 2])
    assert [int(t[1]) for t in batch] == [5, 40, 2]


def test_acumen_verify_of_a_url_over_http(tmp_path: Path, http_server) -> None:
    """Streamed over plain HTTP too: each chunk object in one ranged GET, nothing cached."""
    from acumen.verify import verify

    url = serve_http(write_local(tmp_path / "local", "zstd", "csv"), http_server)
    http_server.log.reset()
    report = verify(url, progress=False, cache=tmp_path / "cache")
    assert report.ok, str(report)
    assert report.samples_checked == N and str(report).startswith(f"{url}: ")
    chunk_gets = [r for r in http_server.log.records if "/chunks/" in r.path]
    assert len(chunk_gets) == report.chunks_checked and all(r.range for r in chunk_gets)
    assert not (tmp_path / "cache" / "chunks").exists()
