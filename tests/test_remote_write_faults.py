"""Faults on the publish path, injected by the proxy in front of moto's S3 on 127.0.0.1.

Each fault on an upload (a 5xx, a connection reset after the object landed, a stall, a
reply cut short; on a plain PUT, on a multipart part, on the marker or the manifest) is
retried, and the dataset is committed once, whole. An upload that keeps failing ends in a
``RemoteError`` naming the object's URL, within a bounded time (s3fs's and botocore's own
retries are off: acumen's loop is the only one), and leaves no manifest.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import s3fs

import acumen
from acumen.errors import IncompleteDatasetError, RemoteError
from acumen.files.remote import RemoteStore
from acumen.files.remote_write import RemoteWriter
from tests.remote_servers import s3_storage_options
from tests.test_remote_open import N, sample
from tests.test_remote_write import add_samples, objects

MiB = 1 << 20


def check_read(url: str, options: dict, cache: Path) -> None:
    """Every sample and its metadata, as written (one pass: few requests)."""
    with acumen.open(url, storage_options=options, cache=cache) as ds:
        assert [(a.tobytes(), m["label"]) for a, m in ds] == [
            (sample(i).tobytes(), i) for i in range(N)
        ]


def proxied(proxy, **kwargs) -> dict:
    return s3_storage_options(proxy.endpoint_url, **kwargs)


def records(proxy, method: str, path: str) -> list:
    return [r for r in proxy.log.records if r.method == method and path in r.path]


FAULTS = {
    "5xx": [
        (".acumen-writing", {"kind": "status", "status": 500, "times": 2}),
        ("manifest.json", {"kind": "status", "status": 503, "times": 2}),
    ],
    "503-and-stall": [
        ("chunks/", {"kind": "status", "status": 503, "times": 3}),
        ("index.csv", {"kind": "stall", "seconds": 5}),  # times out after 0.5 s
    ],
    # The object lands, its reply is lost. The manifest's retried conditional create finds
    # one there (412), reads it back: it is this writer's own.
    "reply-lost": [("chunks/", {"kind": "drop"}), ("manifest.json", {"kind": "drop"})],
}


@pytest.mark.parametrize("case", list(FAULTS))
def test_faults_on_uploads_are_retried_and_commit_once(
    tmp_path: Path, s3_fault_proxy, s3_server, monkeypatch, case: str
):
    monkeypatch.setenv("ACUMEN_REMOTE_BACKOFF", "0.01")
    proxy, url = s3_fault_proxy, f"s3://{s3_fault_proxy.bucket}/ds"
    options = proxied(proxy, timeout=0.5)  # a stalled request times out in 0.5 s
    for where, fault in FAULTS[case]:
        proxy.inject(method="PUT", path=f"/ds/{where}", **fault)
    with acumen.Writer(
        url, storage_options=options, cache=tmp_path / "c", chunk_size_bytes=256
    ) as w:
        add_samples(w)
    assert proxy.pending == 0  # every fault was met
    for where, fault in FAULTS[case]:
        faulted = [r for r in records(proxy, "PUT", f"/ds/{where}") if r.fault]
        assert len(faulted) == fault.get("times", 1)
    manifest_puts = [r.status for r in records(proxy, "PUT", "/ds/manifest.json") if not r.fault]
    assert manifest_puts == ([412] if case == "reply-lost" else [200])
    published = objects(s3fs.S3FileSystem(**s3_server.storage_options), url)
    assert ".acumen-writing" not in published and "manifest.json" in published
    check_read(url, s3_server.storage_options, tmp_path / "c")


def test_an_upload_that_keeps_failing_names_the_object_and_commits_nothing(
    tmp_path: Path, s3_fault_proxy, s3_server, monkeypatch, capsys
):
    from acumen.cli import main

    monkeypatch.setenv("ACUMEN_REMOTE_RETRIES", "5")
    monkeypatch.setenv("ACUMEN_REMOTE_BACKOFF", "0.02")  # 6 tries, at most 0.62 s of waits
    proxy, url = s3_fault_proxy, f"s3://{s3_fault_proxy.bucket}/ds"
    proxy.inject("status", times=1000, method="PUT", path="/ds/chunks/", status=503)
    writer = acumen.Writer(
        url, storage_options=proxy.storage_options, cache=tmp_path / "c", chunk_size_bytes=256
    )
    add_samples(writer)
    started = time.monotonic()
    with pytest.raises(RemoteError, match=rf"{url}/chunks/\S+: writing .* HTTP 503") as caught:
        writer.close()
    took = time.monotonic() - started
    assert "gave up after 5 retries" in str(caught.value)
    # 6 tries per object (no nested s3fs/botocore retries); the chunks upload side by side.
    failed = records(proxy, "PUT", "/ds/chunks/")
    assert len({r.path for r in failed}) * 6 >= len(failed) >= 6
    assert took < 4, took
    left = objects(s3fs.S3FileSystem(**s3_server.storage_options), url)
    assert "manifest.json" not in left and ".acumen-writing" in left
    with pytest.raises(IncompleteDatasetError, match=f"acumen clean {url}"):
        acumen.open(url, storage_options=s3_server.storage_options, cache=tmp_path / "c")
    proxy.clear()
    monkeypatch.setenv("ACUMEN_STORAGE_OPTIONS", json.dumps(s3_server.storage_options))
    assert main(["clean", url]) == 0
    assert objects(s3fs.S3FileSystem(**s3_server.storage_options), url) == {}
    assert ".acumen-writing" in capsys.readouterr().out
    with acumen.Writer(url, storage_options=proxy.storage_options, cache=tmp_path / "c") as w:
        add_samples(w)
    check_read(url, s3_server.storage_options, tmp_path / "c")


def test_an_endless_503_gives_up_within_seconds(s3_fault_proxy, monkeypatch):
    """The bound the docs state: retries + 1 requests, backoff * (2**retries - 1) s at most
    of waiting (each wait at most 10 s); here 3 retries after 0.05 s: 4 requests, under
    0.35 s of waits."""
    monkeypatch.setenv("ACUMEN_REMOTE_RETRIES", "3")
    monkeypatch.setenv("ACUMEN_REMOTE_BACKOFF", "0.05")
    proxy = s3_fault_proxy
    store = RemoteStore(f"s3://{proxy.bucket}/x", proxy.storage_options)
    writer = RemoteWriter(store)
    writer.put_bytes("a", b"hello", "object")
    for method, call in [
        ("GET", lambda: store.read_range(store.url_of("a"), 0, 3, "chunk file")),
        ("PUT", lambda: writer.put_bytes("b", b"hello", "object")),
    ]:
        proxy.reset()
        proxy.inject("status", times=1000, status=503)
        started = time.monotonic()
        with pytest.raises(RemoteError, match=r"HTTP 503.*gave up after 3 retries"):
            call()
        assert time.monotonic() - started < 2.5
        assert proxy.log.count(method) == 4, method


def test_multipart_parts_faults_are_retried(tmp_path: Path, s3_fault_proxy, s3_server):
    """A file of 11 MiB sent in 5 MiB parts (s3fs's multipart upload); a fault on a part
    or on the completion fails the upload, which is aborted and sent again whole."""
    proxy = s3_fault_proxy
    data = os.urandom(11 * MiB)
    (tmp_path / "big").write_bytes(data)
    writer = RemoteWriter(RemoteStore(f"s3://{proxy.bucket}/mp", proxied(proxy)), part_size=5 * MiB)
    proxy.inject("status", method="PUT", path="partNumber=2", status=503)
    proxy.inject("drop", method="PUT", path="partNumber=3")
    proxy.inject("short", method="POST", path="uploadId=", size=10)  # the completion's reply
    writer.put_file(tmp_path / "big", "big.bin", "chunk file")
    assert proxy.pending == 0
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    assert fs.cat_file(f"{proxy.bucket}/mp/big.bin") == data
    assert len(records(proxy, "PUT", "partNumber=1")) >= 2  # the upload was sent again
    # A part that keeps failing: RemoteError naming the object, and no object there.
    proxy.reset()
    proxy.inject("status", times=1000, method="PUT", path="partNumber=2", status=500)
    writer.store.retries, writer.store.backoff = 1, 0.01
    with pytest.raises(RemoteError, match=rf"s3://{proxy.bucket}/mp/other.bin: writing"):
        writer.put_file(tmp_path / "big", "other.bin", "chunk file")
    assert not fs.exists(f"{proxy.bucket}/mp/other.bin")
    assert fs.call_s3("list_multipart_uploads", Bucket=proxy.bucket).get("Uploads", []) == []
