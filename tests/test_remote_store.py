"""Object storage: acumen.files.remote.RemoteStore and the ``remote`` storage, against a real
S3 server (moto) and a Range-honouring HTTP server, both started here on 127.0.0.1."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

from acumen.errors import CorruptDatasetError, RemoteError
from acumen.files.remote import RemoteStore, is_url, local_path
from acumen.storage.remote import RemoteStorage
from acumen.testing import StorageTests


# --- an HTTP server that honours Range (or, on request, ignores it) ---------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.objects: dict[str, bytes] = {}
        self.gets: dict[str, int] = {}
        self.ignore_range = False
        self.fail: dict[str, list[int]] = {}  # path -> statuses to answer before success
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def total_gets(self) -> int:
        return sum(self.gets.values())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        data = self.server.objects.get(self.path)
        if data is None:
            self._send(404, b"")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.gets[self.path] = server.gets.get(self.path, 0) + 1
            failing = server.fail.get(self.path)
            status = failing.pop(0) if failing else None
        if status is not None:
            self._send(status, b"failing on purpose")
            return
        data = server.objects.get(self.path)
        if data is None:
            self._send(404, b"not found")
            return
        wanted = self.headers.get("Range")
        if not wanted or server.ignore_range:
            self._send(200, data)
            return
        first, last = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted).groups()
        start, end = int(first), int(last) + 1 if last else len(data)
        if start >= len(data):
            self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            return
        end = min(end, len(data))
        self._send(206, data[start:end], {"Content-Range": f"bytes {start}-{end - 1}/{len(data)}"})


@pytest.fixture
def http_server():
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()  # the socket listens from the constructor on: no wait needed
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture(scope="module")
def s3_options():
    pytest.importorskip("s3fs")
    server_module = pytest.importorskip("moto.server")
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing"}
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True, **options)
    fs.mkdir("bucket")
    yield options
    server.stop()
    patch.undo()


def _data(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


_uploaders: dict[str, object] = {}


def _put_s3(options: dict, key: str, data: bytes) -> str:
    """Upload through one filesystem per server (a new session costs ~0.3 s)."""
    import fsspec

    fs = _uploaders.get(options["endpoint_url"])
    if fs is None:
        fs = _uploaders[options["endpoint_url"]] = fsspec.filesystem(
            "s3", skip_instance_cache=True, **options
        )
    fs.pipe(f"bucket/{key}", data)
    return f"s3://bucket/{key}"


# --- is_url, local_path ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("s3://bucket/ds", True),
        ("https://host/ds", True),
        ("gs://b/x", True),
        ("az://c/x", True),
        ("memory://x", True),
        (Path("s3:/b"), False),
        ("file:///tmp/ds", False),
        ("FILE:///tmp/ds", False),
        ("C://data/ds", False),
        ("C:\\data\\ds", False),
        ("/tmp/ds", False),
        ("ds", False),
        (b"s3://b/x", False),
        (None, False),
    ],
)
def test_is_url(path, url):
    assert is_url(path) is url


def test_local_path(tmp_path):
    assert local_path("file:///tmp/ds") == "/tmp/ds"
    assert local_path("file://localhost/tmp/ds") == "/tmp/ds"
    assert local_path("s3://b/x") == "s3://b/x"
    assert local_path(tmp_path) == tmp_path
    assert local_path("~/ds") == os.path.expanduser("~/ds")  # the issue asks for ~-paths
    assert not local_path("file://~/ds").startswith("~")


# --- RemoteStore ---------------------------------------------------------------------------
def test_read_range_http_exact(http_server):
    data = _data(100_000)
    http_server.objects["/ds/chunk_0.chnk"] = data
    store = RemoteStore(f"{http_server.url}/ds/")
    assert store.url == f"{http_server.url}/ds"
    url = store.url_of("chunk_0.chnk")
    assert store.read_range(url, 10, 1000, "chunk file") == data[10:1010]
    assert http_server.total_gets() == 1  # one ranged GET, no HEAD before it
    assert store.read_range(url, 5, 0, "chunk file") == b""
    assert http_server.total_gets() == 1
    assert store.read_bytes(url, "chunk file") == data
    assert store.size(url) == len(data)
    assert store.sizes([url, store.url_of("missing")]) == [len(data), None]


def test_read_range_s3_exact(s3_options):
    data = _data(70_000, 1)
    url = _put_s3(s3_options, "ds/chunk_0.chnk", data)
    store = RemoteStore("s3://bucket/ds", s3_options)
    assert store.url_of("chunk_0.chnk") == url
    assert store.read_range(url, 123, 4567, "chunk file") == data[123:4690]
    assert store.read_bytes(url, "chunk file") == data
    assert store.sizes([url, "s3://bucket/ds/nothing"]) == [len(data), None]
    with pytest.raises(FileNotFoundError):
        store.read_range("s3://bucket/ds/nothing", 0, 10, "chunk file")
    with pytest.raises(CorruptDatasetError, match=re.escape(url)):
        store.read_range(url, len(data) - 5, 10, "chunk file")
    with pytest.raises(CorruptDatasetError, match=re.escape(url)):
        store.read_range(url, len(data) + 5, 10, "chunk file")


def test_read_ranges_concurrent_and_ordered(http_server):
    objects = {f"/c{n}": _data(20_000, n) for n in range(4)}
    http_server.objects.update(objects)
    store = RemoteStore(http_server.url, max_requests=8)
    rng = np.random.default_rng(2)
    urls, starts, sizes, expected = [], [], [], []
    for _ in range(200):
        name = f"/c{int(rng.integers(0, 4))}"
        start = int(rng.integers(0, 19_000))
        size = int(rng.integers(0, 1000))
        urls.append(http_server.url + name)
        starts.append(start)
        sizes.append(size)
        expected.append(objects[name][start : start + size])
    assert store.read_ranges(urls, starts, sizes, "chunk file") == expected
    assert http_server.total_gets() == sum(1 for s in sizes if s)


def test_missing_object(http_server):
    store = RemoteStore(http_server.url)
    with pytest.raises(FileNotFoundError, match="nothing"):
        store.read_range(f"{http_server.url}/nothing", 0, 10, "chunk file")
    with pytest.raises(FileNotFoundError):
        store.read_bytes(f"{http_server.url}/nothing", "manifest")
    assert http_server.total_gets() == 2  # never retried


def test_range_past_the_end_names_the_url(http_server):
    http_server.objects["/c"] = _data(1000)
    store = RemoteStore(http_server.url, backoff=0.001)
    url = f"{http_server.url}/c"
    for start, size in ((990, 20), (1000, 1), (5000, 10)):
        with pytest.raises(CorruptDatasetError, match=re.escape(url)) as caught:
            store.read_range(url, start, size, "chunk file")
        assert "past the end" in str(caught.value) and "1000 bytes" in str(caught.value)


def test_server_ignoring_range_never_gives_wrong_bytes(http_server, monkeypatch):
    monkeypatch.setenv("ACUMEN_REMOTE_BACKOFF", "0.001")
    http_server.objects["/c"] = _data(5000)
    http_server.ignore_range = True
    store = RemoteStore(http_server.url, retries=2, backoff=0.001)
    with pytest.raises(CorruptDatasetError, match="ignores Range") as caught:
        store.read_range(f"{http_server.url}/c", 100, 50, "chunk file")
    assert f"{http_server.url}/c" in str(caught.value) and "bytes 100..150" in str(caught.value)
    assert http_server.total_gets() == 3  # tried, then retried twice
    with pytest.raises(CorruptDatasetError, match="ignores Range"):
        RemoteStorage([f"{http_server.url}/c"]).read_many([(0, 0, 10), (0, 200, 10)])


def test_503_is_retried(http_server):
    data = _data(3000)
    http_server.objects["/c"] = data
    http_server.objects["/d"] = data[::-1]
    http_server.fail["/c"] = [503, 503, 500]
    http_server.fail["/d"] = [429]
    store = RemoteStore(http_server.url, backoff=0.001)
    urls = [f"{http_server.url}/c", f"{http_server.url}/d"]
    assert store.read_ranges(urls, [10, 20], [100, 200], "chunk file") == [
        data[10:110],
        data[::-1][20:220],
    ]
    assert http_server.gets == {"/c": 4, "/d": 2}  # only the failed ones again


def test_503_for_ever_gives_up(http_server):
    http_server.objects["/c"] = _data(100)
    http_server.fail["/c"] = [503] * 10
    store = RemoteStore(http_server.url, retries=3, backoff=0.001)
    with pytest.raises(RemoteError, match="HTTP 503") as caught:
        store.read_range(f"{http_server.url}/c", 0, 10, "chunk file")
    assert f"{http_server.url}/c" in str(caught.value) and "chunk file" in str(caught.value)
    assert http_server.gets["/c"] == 4


def test_403_names_the_url_and_what_to_set(http_server):
    http_server.objects["/c"] = _data(100)
    http_server.fail["/c"] = [403] * 10
    store = RemoteStore(http_server.url, backoff=0.001)
    with pytest.raises(RemoteError, match="HTTP 403") as caught:
        store.read_range(f"{http_server.url}/c", 0, 10, "chunk file")
    message = str(caught.value)
    assert f"{http_server.url}/c" in message and "storage_options" in message
    assert isinstance(caught.value, OSError)
    assert http_server.gets["/c"] == 1  # never retried


def test_s3_without_credentials_says_what_to_set(s3_options, monkeypatch):
    url = _put_s3(s3_options, "secret/c", b"x" * 100)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    options = {"endpoint_url": s3_options["endpoint_url"], "skip_instance_cache": True}
    store = RemoteStore("s3://bucket/secret", options, backoff=0.001)
    with pytest.raises(RemoteError, match="AWS_ACCESS_KEY_ID") as caught:
        store.read_range(url, 0, 10, "chunk file")
    assert url in str(caught.value)


# --- the remote storage ---------------------------------------------------------------------
def test_read_many_coalesces_one_chunk(http_server):
    data = _data(200_000)
    http_server.objects["/c0"] = data
    storage = RemoteStorage([f"{http_server.url}/c0"])
    requests = [(0, 500 * n + 7, 300) for n in range(100)][::-1]  # within 64 KiB, unordered
    got = storage.read_many(requests)
    assert [bytes(g) for g in got] == [data[o : o + s] for _, o, s in requests]
    assert http_server.total_gets() == 1


def test_read_many_two_chunks_far_ranges_and_cache(http_server):
    first, second = _data(300_000, 1), _data(300_000, 2)
    http_server.objects.update({"/c0": first, "/c1": second})
    storage = RemoteStorage([f"{http_server.url}/c0", f"{http_server.url}/c1"], max_requests=4)
    requests = [(n % 2, 1000 * n, 100) for n in range(100)]
    got = storage.read_many(requests)
    files = (first, second)
    assert [bytes(g) for g in got] == [files[c][o : o + s] for c, o, s in requests]
    assert http_server.gets == {"/c0": 1, "/c1": 1}
    far = [(0, 0, 10), (0, 290_000, 10), (1, 5, 0), (1, 0, 0)]
    assert [bytes(g) for g in storage.read_many(far)] == [
        first[:10],
        first[290_000:290_010],
        b"",
        b"",
    ]
    # 290 000 apart: two GETs (the gap would take longer than a GET at the default costs)
    assert http_server.gets == {"/c0": 3, "/c1": 1}
    storage.prefetch([(1, 0, 50_000)])
    assert http_server.gets["/c1"] == 2
    assert bytes(storage.read(1, 100, 1000)) == second[100:1100]
    assert bytes(storage.read_many([(1, 5, 5)])[0]) == second[5:10]
    assert http_server.gets["/c1"] == 2  # served from memory
    assert bytes(storage.read(1, 60_000, 10)) == second[60_000:60_010]
    assert http_server.gets["/c1"] == 3
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{http_server.url}/c1")):
        storage.read_many([(0, 0, 10), (1, 299_995, 10)])


def test_storage_is_registered_and_pickles_without_secrets_in_repr(http_server):
    from acumen.plugins import storage as storage_plugin

    assert type(storage_plugin("remote", [f"{http_server.url}/c"])) is RemoteStorage
    storage = RemoteStorage([f"{http_server.url}/c"], {"headers": {"A": "b"}, "key": "k"})
    assert "'k'" not in repr(storage)
    copy = pickle.loads(pickle.dumps(storage))
    assert copy.get_config() == storage.get_config() and copy.paths == storage.paths
    store = pickle.loads(pickle.dumps(RemoteStore(http_server.url, {"a": 1}, retries=2)))
    assert (store.url, store.storage_options, store.retries) == (http_server.url, {"a": 1}, 2)


def _child_reads(storage, store, url, queue):
    queue.put((bytes(storage.read(0, 10, 20)), store.read_range(url, 5, 5, "chunk file")))


def test_storage_and_store_in_a_spawned_child(http_server):
    data = _data(1000)
    http_server.objects["/c"] = data
    url = f"{http_server.url}/c"
    storage, store = RemoteStorage([url]), RemoteStore(http_server.url)
    assert store.read_range(url, 0, 1, "chunk file") == data[:1]  # the parent's fs exists
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_child_reads, args=(storage, store, url, queue))
    child.start()
    got = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    assert got == (data[10:30], data[5:10])


# --- the storage conformance kit, over HTTP and S3 --------------------------------------------
class TestRemoteStorageHttp(StorageTests):
    storage_class = RemoteStorage
    configurations = ({}, {"coalesce_gap": 0, "max_requests": 2})

    @pytest.fixture
    def files(self, tmp_path, http_server):
        made = []
        for n, size in enumerate((0, 1, 4096, 100_003)):
            data = _data(size, n)
            http_server.objects[f"/ds/chunk_{n}.chnk"] = data
            made.append((f"{http_server.url}/ds/chunk_{n}.chnk", data))
        return made


class TestRemoteStorageS3(StorageTests):
    storage_class = RemoteStorage

    @pytest.fixture
    def files(self, tmp_path, s3_options, request):
        prefix = request.node.name.replace("[", "_").replace("]", "")
        made = []
        for n, size in enumerate((0, 1, 4096, 100_003)):
            data = _data(size, n)
            made.append((_put_s3(s3_options, f"{prefix}/chunk_{n}.chnk", data), data))
        self.configurations = ({"storage_options": s3_options},)
        return made


def test_the_deadline_grows_with_the_range_and_can_be_turned_off(monkeypatch):
    from acumen.files.retry import deadline

    assert deadline(30.0, 0) == 30.0
    assert deadline(30.0, 64 << 20) == 30.0 + 64  # a second per MiB: never a slow link's cut
    assert deadline(0.0, 1 << 20) is None
    monkeypatch.setenv("ACUMEN_REMOTE_TIMEOUT", "0")
    assert RemoteStore("http://127.0.0.1:1").timeout == 0.0
    monkeypatch.setenv("ACUMEN_REMOTE_TIMEOUT", "-1")
    with pytest.raises(ValueError, match="ACUMEN_REMOTE_TIMEOUT"):
        RemoteStore("http://127.0.0.1:1")
