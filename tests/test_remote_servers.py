"""The servers the remote-storage tests rely on (``tests/remote_servers.py``) behave as those
tests assume, checked with plain clients: s3fs, fsspec's HTTP filesystem, http.client and
urllib."""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.request

import pytest

from tests.remote_servers import parse_range

fsspec = pytest.importorskip("fsspec")
aiohttp = pytest.importorskip("aiohttp")

DATA = bytes(range(256)) * 16  # 4 KiB, every offset recognisable modulo 256

# urllib without any proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, headers: dict | None = None, method: str = "GET", timeout: float = 10):
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    with OPENER.open(request, timeout=timeout) as response:
        return response.status, dict(response.headers), response.read()


def http_fs():
    return fsspec.filesystem("http", skip_instance_cache=True)


@pytest.fixture
def served(http_server):
    (http_server.root / "data.bin").write_bytes(DATA)
    (http_server.root / "empty.bin").write_bytes(b"")
    return http_server


# --- S3 ---------------------------------------------------------------------------------------


def test_s3_round_trip(s3_server, s3_bucket):
    s3fs = pytest.importorskip("s3fs")
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    assert fs.ls(s3_bucket) == []
    fs.pipe(f"{s3_bucket}/a/data.bin", DATA)
    assert fs.info(f"{s3_bucket}/a/data.bin")["size"] == len(DATA)
    # s3fs's cat_file takes version_id third: start and end must be keywords.
    assert fs.cat_file(f"{s3_bucket}/a/data.bin", start=1000, end=2024) == DATA[1000:2024]
    assert fs.cat_file(f"{s3_bucket}/a/data.bin") == DATA
    assert fs.ls(f"{s3_bucket}/a") == [f"{s3_bucket}/a/data.bin"]
    with pytest.raises(FileNotFoundError):
        fs.info(f"{s3_bucket}/a/missing")


def test_s3_buckets_are_fresh_and_environment_is_fake(s3_server, s3_bucket):
    assert s3_server.make_bucket() != s3_bucket
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert "AWS_PROFILE" not in os.environ
    assert "AWS_SESSION_TOKEN" not in os.environ
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")


def test_s3_through_the_proxy(s3_fault_proxy):
    s3fs = pytest.importorskip("s3fs")
    proxy = s3_fault_proxy
    fs = s3fs.S3FileSystem(**proxy.storage_options)
    fs.pipe(f"{proxy.bucket}/data.bin", DATA)  # a PUT with a body goes through
    proxy.log.reset()
    assert fs.cat_file(f"{proxy.bucket}/data.bin", start=10, end=1034) == DATA[10:1034]
    (record,) = proxy.log.records
    assert (record.method, record.range, record.status) == ("GET", "bytes=10-1033", 206)
    assert record.body_bytes == 1024
    # A 503 is retried by botocore/s3fs and the read still succeeds.
    proxy.inject("status", status=503)
    assert fs.cat_file(f"{proxy.bucket}/data.bin", start=0, end=10) == DATA[:10]
    assert [r.fault for r in proxy.log.records[1:]] == ["status", None]


def test_s3_faults_surface_without_retries(s3_fault_proxy):
    s3fs = pytest.importorskip("s3fs")
    from tests.remote_servers import s3_storage_options

    proxy = s3_fault_proxy
    fs = s3fs.S3FileSystem(**s3_storage_options(proxy.endpoint_url, attempts=1, timeout=0.3))
    fs.retries = 1  # s3fs's own retry loop
    key = f"{proxy.bucket}/data.bin"
    fs.pipe(key, DATA)
    proxy.inject("status", status=503)
    with pytest.raises(OSError):
        fs.cat_file(key, start=0, end=10)
    proxy.inject("status", status=404)
    with pytest.raises(FileNotFoundError):
        fs.cat_file(key, start=0, end=10)
    proxy.inject("short", size=3)
    with pytest.raises(aiohttp.ClientPayloadError):
        fs.cat_file(key, start=0, end=10)
    proxy.inject("long", size=3)
    assert fs.cat_file(key, start=0, end=10) == DATA[:13]  # s3fs: silent too
    proxy.inject("stall", seconds=10)
    with pytest.raises(pytest.importorskip("botocore.exceptions").ReadTimeoutError):
        fs.cat_file(key, start=0, end=10)
    proxy.clear()
    assert fs.cat_file(key, start=0, end=10) == DATA[:10]


# --- HTTP server ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "span"),
    [
        (None, 10, None),
        ("bytes=2-5", 10, (2, 6)),
        ("bytes=2-", 10, (2, 10)),
        ("bytes=-3", 10, (7, 10)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=8-100", 10, (8, 10)),
        ("bytes=10-", 10, "unsatisfiable"),
        ("bytes=-0", 10, "unsatisfiable"),
        ("bytes=-1", 0, "unsatisfiable"),
        ("bytes=5-2", 10, None),
        ("bytes=0-1,4-5", 10, None),
        ("items=0-1", 10, None),
    ],
)
def test_parse_range(header, size, span):
    assert parse_range(header, size) == span


def test_fsspec_ranged_reads_make_one_get_each(served):
    fs = http_fs()
    url = served.url("data.bin")
    assert fs.info(url)["size"] == len(DATA)
    served.log.reset()
    assert fs.cat_file(url, 1024, 2048) == DATA[1024:2048]
    # One ranged GET of 1 KiB, no HEAD before it.
    assert served.log.count() == 1
    assert served.log.count("GET", ranged=True) == 1
    assert served.log.bytes_sent == 1024
    assert fs.cat_file(url, -10) == DATA[-10:]  # bytes=-10, still no HEAD
    assert fs.cat_file(url, 4000) == DATA[4000:]  # bytes=4000-
    assert [r.range for r in served.log.records[1:]] == ["bytes=-10", "bytes=4000-"]
    assert fs.cat_file(url) == DATA
    assert served.log.count("HEAD") == 0


def test_fsspec_errors(served):
    fs = http_fs()
    with pytest.raises(FileNotFoundError):
        fs.cat_file(served.url("missing.bin"), 0, 10)
    with pytest.raises(FileNotFoundError):
        fs.info(served.url("missing.bin"))
    with pytest.raises(aiohttp.ClientResponseError) as caught:
        fs.cat_file(served.url("data.bin"), len(DATA), len(DATA) + 10)
    assert caught.value.status == 416
    with pytest.raises(aiohttp.ClientResponseError):
        fs.cat_file(served.url("empty.bin"), -10)
    with pytest.raises(FileNotFoundError):
        fs.cat_file(served.url("../outside"), 0, 1)


def test_http_headers_and_keep_alive(served):
    connection = http.client.HTTPConnection(served.host, served.port, timeout=10)
    try:
        connection.request("GET", "/data.bin", headers={"Range": "bytes=10-19"})
        response = connection.getresponse()
        assert response.status == 206
        assert response.getheader("Content-Range") == f"bytes 10-19/{len(DATA)}"
        assert response.getheader("Content-Length") == "10"
        assert response.getheader("Accept-Ranges") == "bytes"
        assert response.read() == DATA[10:20]
        first_socket = connection.sock
        connection.request("HEAD", "/data.bin")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(len(DATA))
        assert response.read() == b""
        connection.request("GET", "/data.bin", headers={"Range": "bytes=0-1,5-6"})
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, DATA)  # multi-range: ignored
        connection.request("GET", "/data.bin", headers={"Range": f"bytes={len(DATA)}-"})
        response = connection.getresponse()
        assert response.status == 416
        assert response.getheader("Content-Range") == f"bytes */{len(DATA)}"
        assert response.read() == b""
        connection.request("GET", "/missing.bin")
        response = connection.getresponse()
        assert response.status == 404
        response.read()
        assert connection.sock is first_socket  # one connection throughout
    finally:
        connection.close()
    assert served.log.requests == 5


# --- fault proxy ------------------------------------------------------------------------------


@pytest.fixture
def proxy(http_fault_proxy, served):
    return http_fault_proxy


def test_proxy_passes_through_on_one_connection(proxy):
    connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    try:
        for _ in range(2):
            connection.request("GET", "/data.bin", headers={"Range": "bytes=-5"})
            response = connection.getresponse()
            assert (response.status, response.read()) == (206, DATA[-5:])
            assert (
                response.getheader("Content-Range")
                == f"bytes {len(DATA) - 5}-{len(DATA) - 1}/{len(DATA)}"
            )
        connection.request("HEAD", "/data.bin")
        response = connection.getresponse()
        assert response.getheader("Content-Length") == str(len(DATA))
        assert response.read() == b""
        connection.request("GET", "/missing.bin")
        response = connection.getresponse()
        assert response.status == 404
        response.read()
    finally:
        connection.close()
    assert proxy.log.requests == proxy.upstream.log.requests == 4
    fs = http_fs()
    assert fs.cat_file(proxy.url("data.bin"), 100, 200) == DATA[100:200]
    assert fs.info(proxy.url("data.bin"))["size"] == len(DATA)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_proxy_status_for_the_next_requests(proxy, status):
    proxy.inject("status", times=2, status=status)
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError) as caught:
            fetch(proxy.url("data.bin"), {"Range": "bytes=0-9"})
        assert caught.value.code == status
        caught.value.close()
    assert fetch(proxy.url("data.bin"), {"Range": "bytes=0-9"})[2] == DATA[:10]
    assert proxy.upstream.log.requests == 1  # the faults never reached the server
    with pytest.raises(aiohttp.ClientResponseError) as caught:
        proxy.inject("status", status=status)
        http_fs().cat_file(proxy.url("data.bin"), 0, 10)
    assert caught.value.status == status


def test_proxy_fault_only_for_a_method(proxy):
    proxy.inject("status", method="GET")
    assert fetch(proxy.url("data.bin"), method="HEAD")[0] == 200
    with pytest.raises(urllib.error.HTTPError) as caught:
        fetch(proxy.url("data.bin"))
    caught.value.close()
    assert proxy.pending == 0


def test_proxy_short_body(proxy):
    proxy.inject("short", size=30)
    with pytest.raises(http.client.IncompleteRead) as caught:
        fetch(proxy.url("data.bin"), {"Range": "bytes=0-99"})
    assert len(caught.value.partial) == 70
    proxy.inject("short", size=30)
    with pytest.raises(aiohttp.ClientPayloadError):
        http_fs().cat_file(proxy.url("data.bin"), 0, 100)
    assert fetch(proxy.url("data.bin"), {"Range": "bytes=0-99"})[2] == DATA[:100]


def test_proxy_reset_mid_body(proxy):
    proxy.inject("reset", size=10)
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        fetch(proxy.url("data.bin"), {"Range": "bytes=0-99"})
    proxy.inject("reset", size=10)
    with pytest.raises(aiohttp.ClientPayloadError):
        http_fs().cat_file(proxy.url("data.bin"), 0, 100)
    assert [r.body_bytes for r in proxy.log.records] == [10, 10]


def test_proxy_long_body(proxy):
    proxy.inject("long", size=8)
    status, headers, body = fetch(proxy.url("data.bin"), {"Range": "bytes=10-19"})
    # Consistently framed, just more than was asked for.
    assert status == 206
    assert headers["Content-Range"] == f"bytes 10-27/{len(DATA)}"
    assert headers["Content-Length"] == "18"
    assert body == DATA[10:28]
    proxy.inject("long", size=8)
    assert http_fs().cat_file(proxy.url("data.bin"), 10, 20) == DATA[10:28]  # fsspec: silent


def test_proxy_stall(proxy):
    proxy.inject("stall", seconds=30)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        fetch(proxy.url("data.bin"), {"Range": "bytes=0-9"}, timeout=0.3)
    proxy.clear()  # ends the stall at once
    proxy.inject("stall", seconds=0.05)
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError)):
        fetch(proxy.url("data.bin"), {"Range": "bytes=0-9"})
    assert [r.fault for r in proxy.log.records] == ["stall", "stall"]
    assert proxy.upstream.log.requests == 0


def test_proxy_delay(proxy):
    proxy.delay = 0.2
    began = time.perf_counter()
    assert fetch(proxy.url("data.bin"), {"Range": "bytes=0-9"})[2] == DATA[:10]
    assert time.perf_counter() - began >= 0.2
    proxy.clear()
    assert proxy.delay == 0
