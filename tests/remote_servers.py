"""Real servers on 127.0.0.1 for the remote-storage tests: an S3 look-alike, an HTTP file
server that honours ``Range``, and a proxy that injects faults in front of either.

- :class:`S3Server` runs moto's server mode (``ThreadedMotoServer``) on a free port. Known
  limits, fine for correctness tests: moto reads the whole object for every ranged GET and may
  close a connection after a response, so it says nothing about speed or connection reuse.
- :class:`RangeHTTPServer` serves the files under a folder over HTTP/1.1 with keep-alive:
  GET and HEAD, a single ``Range`` (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) answered 206
  with ``Content-Range``; a multi-range or malformed ``Range`` is ignored (200, whole body, as
  RFC 9110 allows); 416 for an unsatisfiable range, 404 for a missing file.
- :class:`FaultProxy` parses one request at a time from its client, forwards it on its own
  upstream connection and relays the answer re-framed with ``Content-Length``, after applying
  the faults it was told to inject (:meth:`FaultProxy.inject`).

Every server counts what it saw in a :class:`Log` (thread-safe), which tests clear with
``reset()``. A request is logged before its answer goes out, so a test that reads the log as
soon as its client returns finds it there. The pytest fixtures over these live in
``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import re
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = [
    "AWS_ENVIRONMENT",
    "Fault",
    "FaultProxy",
    "Log",
    "RangeHTTPServer",
    "Record",
    "S3Server",
]

# What the S3 fixtures put in the environment so no real AWS credentials or config leak in.
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
AWS_UNSET = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")

# Headers that describe one hop, not the message; the proxy never relays them.
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    )
)


# --- counting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One request a server answered (or a proxy handled)."""

    method: str
    path: str
    range: str | None  # the Range header as the client sent it
    status: int | None  # None where no status line was sent (reset, stall)
    body_bytes: int  # body bytes the answer carries (fewer for a short or reset fault)
    fault: str | None = None  # the fault a proxy injected, if any


class Log:
    """Thread-safe list of :class:`Record`, with totals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Record] = []

    def add(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self._records)

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return sum(r.body_bytes for r in self._records)

    def count(self, method: str | None = None, *, ranged: bool | None = None) -> int:
        """Requests of ``method`` (any if None); ``ranged`` True/False: with/without Range."""
        return sum(
            1
            for r in self.records
            if (method is None or r.method == method)
            and (ranged is None or (r.range is not None) == ranged)
        )


# --- S3 (moto) --------------------------------------------------------------------------------


class S3Server:
    """moto's S3 on 127.0.0.1 at a free port. ``with S3Server() as s3:`` starts and stops it."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        # werkzeug logs a line per request; moto's own loggers are chatty too.
        for name in ("werkzeug", "moto"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.host = "127.0.0.1"
        self.port = 0
        self._client = None

    def start(self) -> S3Server:
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def storage_options(self) -> dict:
        """Keyword arguments for ``s3fs.S3FileSystem`` (and ``fsspec.filesystem("s3")``)."""
        return s3_storage_options(self.endpoint_url)

    def client(self):
        """A boto3 S3 client on this server (made once)."""
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                region_name="us-east-1",
            )
        return self._client

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name unless given) and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset endpoint)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request("POST", "/moto-api/reset")
            connection.getresponse().read()
        finally:
            connection.close()


def s3_storage_options(
    endpoint_url: str, *, attempts: int | None = None, timeout: float | None = None
) -> dict:
    """s3fs options for a test endpoint: fixed fake credentials and region, nothing from the
    environment, no listing cache (tests write and list in the same breath).

    ``attempts``: botocore's total attempts per call (1: no botocore retry; s3fs retries on
    its own too, ``S3FileSystem.retries`` = 5, a class attribute to set on the instance).
    ``timeout``: botocore's connect and read timeouts in seconds.
    """
    config = {}
    if attempts is not None:
        config["retries"] = {"total_max_attempts": attempts}
    if timeout is not None:
        config["connect_timeout"] = config["read_timeout"] = timeout
    options = {
        "endpoint_url": endpoint_url,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
        "use_listings_cache": False,
        "skip_instance_cache": True,
    }
    if config:
        options["config_kwargs"] = config
    return options


# --- HTTP file server with Range --------------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The half-open byte span a ``Range`` header asks of a ``size``-byte file; None to
    ignore the header (absent, malformed, several ranges); ``"unsatisfiable"`` for 416."""
    if header is None:
        return None
    m = _RANGE.match(header.strip().replace(" ", ""))
    if m is None:
        return None
    first, last = m.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size
    start = int(first)
    if last != "" and int(last) < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        return "unsatisfiable"
    end = size if last == "" else min(int(last) + 1, size)
    return start, end


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """A request's body: by its Content-Length, or chunked (s3fs's uploads)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            n = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if n == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(handler.rfile.read(n))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection is dropped after this

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args) -> None:
        pass


class _TrackingServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a burst of concurrent connections (a batch's
    # GETs) overflows it and the kernel retries the dropped ones after 1 s, then 3 s.
    request_queue_size = 1024

    def __init__(self, address, handler) -> None:
        super().__init__(address, handler)
        self.connections: set[socket.socket] = set()

    def close_connections(self) -> None:
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Background:
    """A :class:`_TrackingServer` served from a daemon thread on 127.0.0.1, free port."""

    def __init__(self, handler) -> None:
        self._httpd = _TrackingServer(("127.0.0.1", 0), handler)
        self._httpd.owner = self
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class _RangeHandler(_QuietHandler):
    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        owner: RangeHTTPServer = self.server.owner
        asked = self.headers.get("Range")
        path = owner.resolve(self.path)
        if path is None:
            self._answer(404, b"not found\n", body, asked)
            return
        size = path.stat().st_size
        span = parse_range(asked, size)
        if span == "unsatisfiable":
            self._answer(416, b"", body, asked, {"Content-Range": f"bytes */{size}"})
            return
        start, end = span if span is not None else (0, size)
        self.send_response(206 if span is not None else 200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        if span is not None:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        status = 206 if span is not None else 200
        owner.log.add(Record(self.command, self.path, asked, status, end - start if body else 0))
        self.end_headers()
        if body:
            sent = 0
            with open(path, "rb") as f:
                f.seek(start)
                while sent < end - start:
                    chunk = f.read(min(1 << 20, end - start - sent))
                    if not chunk:
                        break  # the file shrank under us
                    self.wfile.write(chunk)
                    sent += len(chunk)

    def _answer(self, status, payload, body, asked, headers=None) -> None:
        self.send_response(status)
        self.send_header("Accept-Ranges", "bytes")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.server.owner.log.add(
            Record(self.command, self.path, asked, status, len(payload) if body else 0)
        )
        self.end_headers()
        if body:
            self.wfile.write(payload)


class RangeHTTPServer(_Background):
    """Serves the files under ``root`` at ``base_url``; ``url(name)`` is one file's address;
    ``log`` counts requests and body bytes sent."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self.log = Log()
        super().__init__(_RangeHandler)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{urllib.parse.quote(name)}"

    def resolve(self, request_path: str) -> Path | None:
        """The file a request path names, or None when missing or outside ``root``."""
        relative = urllib.parse.unquote(urllib.parse.urlsplit(request_path).path).lstrip("/")
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path


# --- fault-injecting proxy --------------------------------------------------------------------

_ERROR_CODES = {
    403: "AccessDenied",
    404: "NoSuchKey",
    416: "InvalidRange",
    429: "SlowDown",
    500: "InternalError",
    503: "SlowDown",
}


@dataclass
class Fault:
    """One kind of misbehaviour, for the next ``times`` requests of ``method`` (any if None).

    kind: ``"status"`` (answer ``status`` without forwarding), ``"reset"`` (send the headers
    and ``size`` body bytes, then a TCP reset), ``"short"`` (full ``Content-Length``, ``size``
    bytes fewer, then close), ``"long"`` (a GET's range widened by ``size`` bytes upstream and
    relayed with consistent ``Content-Range``/``Content-Length``: more than asked), ``"stall"``
    (read the request, answer nothing for ``seconds``, then close), ``"drop"`` (forward the
    request, so that it takes effect upstream, then reset the connection without a word: the
    answer is lost). ``path``: only requests
    whose path (with its query) contains this text.
    """

    kind: str
    times: int = 1
    method: str | None = None
    path: str | None = None
    status: int = 503
    size: int | None = None
    seconds: float = 30.0
    done: int = field(default=0, init=False)


class _ProxyHandler(_QuietHandler):
    upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
        super().finish()

    def __getattr__(self, name: str):
        if name.startswith("do_"):
            return self._relay
        raise AttributeError(name)

    def _request_body(self) -> bytes:
        return read_body(self)

    def _forward(self, headers: dict, body: bytes) -> http.client.HTTPResponse:
        owner: FaultProxy = self.server.owner
        for attempt in (0, 1):
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(
                    owner.upstream_host, owner.upstream_port, timeout=60
                )
            try:
                self.upstream.request(self.command, self.path, body=body or None, headers=headers)
                return self.upstream.getresponse()
            except (ConnectionError, http.client.HTTPException, OSError):
                # The upstream dropped an idle keep-alive connection: once more on a fresh one.
                self.upstream.close()
                self.upstream = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _relay(self) -> None:
        owner: FaultProxy = self.server.owner
        body = self._request_body()
        asked = self.headers.get("Range")
        fault = owner._take(self.command, self.path)
        kind = fault.kind if fault else None

        if owner.delay:
            time.sleep(owner.delay)
        if kind == "stall":
            owner.log.add(Record(self.command, self.path, asked, None, 0, kind))
            owner._unstall.wait(fault.seconds)
            self.close_connection = True
            return
        if kind == "status":
            self._send_status(fault.status, asked)
            return

        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if kind == "long" and asked is not None:
            headers = {k: v for k, v in headers.items() if k.lower() != "range"}
            headers["Range"] = _widen(asked, fault.size or 16)
        response = self._forward(headers, body)
        payload = response.read()
        if response.will_close or kind == "drop":
            self.upstream.close()
            self.upstream = None
        if kind == "drop":
            owner.log.add(Record(self.command, self.path, asked, response.status, 0, kind))
            self._reset()
            return
        out_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        length = next((v for k, v in out_headers if k.lower() == "content-length"), None)
        if self.command != "HEAD":
            if kind == "long" and (asked is None or response.status == 200):
                payload += b"\0" * (fault.size or 16)
            length = str(len(payload))
        out_headers = [(k, v) for k, v in out_headers if k.lower() != "content-length"]

        self.send_response(response.status, response.reason)
        for name, value in out_headers:
            self.send_header(name, value)
        if length is not None and response.status not in (204, 304):
            self.send_header("Content-Length", length)
        if self.command == "HEAD":
            owner.log.add(Record(self.command, self.path, asked, response.status, 0, kind))
            self.end_headers()
            return
        if kind in ("reset", "short"):
            n = fault.size if fault.size is not None else len(payload) // 2
            sent = payload[: max(0, min(n if kind == "reset" else len(payload) - n, len(payload)))]
            owner.log.add(Record(self.command, self.path, asked, response.status, len(sent), kind))
            self.end_headers()
            self.wfile.write(sent)
            self.wfile.flush()
            if kind == "reset":
                self._reset()
            self.close_connection = True
            return
        owner.log.add(Record(self.command, self.path, asked, response.status, len(payload), kind))
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        """End the connection with a TCP reset (SO_LINGER with a zero timeout: close()
        sends RST instead of FIN)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _send_status(self, status: int, asked: str | None) -> None:
        code = _ERROR_CODES.get(status, "InternalError")
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        if status in (429, 503):
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(payload)))
        sent = 0 if self.command == "HEAD" else len(payload)
        self.server.owner.log.add(Record(self.command, self.path, asked, status, sent, "status"))
        self.end_headers()
        self.wfile.write(payload[:sent])


def _widen(header: str, extra: int) -> str:
    """A Range header asking ``extra`` bytes more than ``header`` (unchanged if open-ended)."""
    m = _RANGE.match(header.strip())
    if m is None:
        return header
    first, last = m.groups()
    if first == "":
        return f"bytes=-{int(last) + extra}" if last else header
    if last == "":
        return header
    return f"bytes={first}-{int(last) + extra}"


class FaultProxy(_Background):
    """Relays HTTP/1.1 to ``upstream_url`` and injects the faults it is told to.

    ``delay`` (seconds, settable) is added before every request. :meth:`inject` queues a
    :class:`Fault`; queued faults apply in order, each to the next ``times`` matching
    requests. :meth:`clear` drops them and the delay and ends any stall. ``log`` records every
    request with the fault it got.
    """

    def __init__(self, upstream_url: str, upstream: object = None) -> None:
        parts = urllib.parse.urlsplit(upstream_url)
        self.upstream_url = upstream_url
        self.upstream = upstream  # the server object behind, for the tests' convenience
        self.bucket: str | None = None  # set by the s3_fault_proxy fixture
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.delay = 0.0
        self.log = Log()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._unstall = threading.Event()
        super().__init__(_ProxyHandler)

    def url(self, name: str) -> str:
        """A file's address through the proxy (for an HTTP upstream)."""
        return f"{self.base_url}/{urllib.parse.quote(name)}"

    @property
    def endpoint_url(self) -> str:
        return self.base_url

    @property
    def storage_options(self) -> dict:
        """s3fs options that reach an S3 upstream through the proxy."""
        return s3_storage_options(self.base_url)

    def inject(self, kind: str, times: int = 1, **options) -> Fault:
        """Queue a fault (see :class:`Fault` for ``kind`` and options) and return it."""
        if kind not in ("status", "reset", "short", "long", "stall", "drop"):
            raise ValueError(f"unknown fault {kind!r}")
        fault = Fault(kind, times, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
        self.delay = 0.0
        self._unstall.set()
        self._unstall = threading.Event()

    def reset(self) -> None:
        """Clear faults and delay, and the log."""
        self.clear()
        self.log.reset()

    def stop(self) -> None:
        self._unstall.set()
        super().stop()

    @property
    def pending(self) -> int:
        """Fault applications still queued."""
        with self._lock:
            return sum(f.times - f.done for f in self._faults)

    def _take(self, method: str, path: str = "") -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if (fault.method is None or fault.method == method) and (
                    fault.path is None or fault.path in path
                ):
                    fault.done += 1
                    if fault.done >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None
