"""moto's S3 on 127.0.0.1 behind a launcher fast enough for benchmarks, and a child process
that runs it with the tests' ``FaultProxy`` (round-trip delay, request and byte counts).

moto's own launcher (``ThreadedMotoServer``, werkzeug's development server, the one
``tests/remote_servers.py`` ``S3Server`` uses) is fine for correctness but not for speed: it
closes the connection after every response, waits 10 ms after each one to drain the socket,
and moto copies the whole object to answer a ranged GET of a few bytes. Here the same moto
application (the same buckets, objects, multipart uploads, errors) is served by a small
HTTP/1.1 bridge instead:

- connections are kept alive and ``TCP_NODELAY`` is set (one thread per connection);
- a plain GET of an object, or of one byte range of it (``Range: bytes=a-b`` or ``a-``; no
  query, no condition) is answered from the object's buffer directly: only the range is
  read;
- everything else goes to moto's WSGI application unchanged.

:class:`Servers` starts the server and a ``FaultProxy`` in front of it in a child process
(spawned: the clients measured elsewhere share no interpreter lock with them), with a small
control address; :class:`Counter` resets and reads the proxy's counts through it, from any
process.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_SKIP = frozenset(("connection", "content-length", "transfer-encoding", "keep-alive"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:
        pass

    def __getattr__(self, name: str):
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _body(self) -> bytes:
        from tests.remote_servers import read_body

        return read_body(self)

    def _handle(self) -> None:
        body = self._body()
        if self.command == "GET" and self._range_fast():
            return
        self._wsgi(body)

    def _range_fast(self) -> bool:
        """One range of an object (or the whole of it), read from its buffer; False to let
        moto answer (a query, a conditional request, several ranges...)."""
        asked = self.headers.get("Range")
        match = _RANGE.match(asked.strip()) if asked is not None else None
        if (asked is not None and match is None) or "?" in self.path:
            return False
        if any(name.lower().startswith("if-") for name in self.headers):
            return False
        from urllib.parse import unquote

        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        bucket, _, name = unquote(self.path).lstrip("/").partition("/")
        try:
            key = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, name)
        except Exception:
            return False
        if key is None:
            return False
        size = key.size
        if match is None:
            start, end = 0, size
        else:
            start = int(match.group(1))
            end = min(int(match.group(2)) + 1 if match.group(2) else size, size)
            if start >= size or end <= start:
                return False  # moto's 416
        with key.lock:
            key._value_buffer.seek(start)
            payload = key._value_buffer.read(end - start)
        headers = {**key.metadata, **key.response_dict}
        self.send_response(206 if match is not None else 200)
        for name, value in headers.items():
            if name.lower() not in _SKIP and not name.lower().startswith("x-amz-checksum-"):
                self.send_header(name, value)
        self.send_header("Accept-Ranges", "bytes")
        if match is not None:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        return True

    def _wsgi(self, body: bytes) -> None:
        path, _, query = self.path.partition("?")
        from urllib.parse import unquote

        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": self.path,
            "REQUEST_URI": self.path,
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers
            return lambda data: answer.setdefault("written", []).append(data)

        result = self.server.app(environ, start_response)
        try:
            payload = b"".join(answer.get("written", [])) + b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        code, _, reason = answer["status"].partition(" ")
        self.send_response(int(code), reason)
        length = None
        for name, value in answer["headers"]:
            if name.lower() == "content-length":
                length = value
            if name.lower() not in _SKIP:
                self.send_header(name, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", length or "0")
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


class FastS3Server:
    """moto's S3 application served on 127.0.0.1 (a free port) by the bridge above."""

    def __init__(self) -> None:
        import logging

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        for name in ("werkzeug", "moto"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.app = DomainDispatcherApplication(create_backend_app)
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FastS3Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


# --- the child process ------------------------------------------------------------------
class _ControlHandler(BaseHTTPRequestHandler):
    """``GET /reset``: forget the proxy's counts; ``GET /counts``: them, as JSON."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:
        pass

    def do_GET(self) -> None:
        import json

        log = self.server.proxy.log
        if self.path == "/reset":
            log.reset()
            payload = b"{}"
        else:
            records = log.records
            payload = json.dumps(
                {
                    "requests": len(records),
                    "gets": sum(1 for r in records if r.method == "GET"),
                    "bytes": sum(r.body_bytes for r in records),
                    "methods": sorted({r.method for r in records}),
                }
            ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _serve(connection, delay: float, environment: dict) -> None:
    import os

    os.environ.update(environment)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.remote_servers import FaultProxy

    server = FastS3Server().start()
    proxy = FaultProxy(server.endpoint_url).start()
    proxy.delay = delay
    control = _Server(("127.0.0.1", 0), _ControlHandler)
    control.proxy = proxy
    threading.Thread(target=control.serve_forever, daemon=True).start()
    host, port = control.server_address[:2]
    connection.send((server.endpoint_url, proxy.endpoint_url, f"http://{host}:{port}"))
    try:
        connection.recv()  # "stop", or EOF when the parent is gone
    except EOFError:
        pass
    finally:
        control.shutdown()
        proxy.stop()
        server.stop()


class Counter:
    """Reads and resets the proxy's counts through the control address (from any process)."""

    def __init__(self, control_url: str) -> None:
        self.control_url = control_url

    def _get(self, path: str) -> dict:
        import http.client
        import json
        from urllib.parse import urlsplit

        parts = urlsplit(self.control_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request("GET", path)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def reset(self) -> None:
        """Forget the proxy's counts."""
        self._get("/reset")

    def counts(self) -> dict:
        """Requests, GETs and body bytes through the proxy since the last :meth:`reset`."""
        return self._get("/counts")


class Servers:
    """The child process's S3 server (``endpoint_url``: direct, for writing), proxy
    (``proxy_url``: with the delay, counted, for reading) and ``counter``."""

    def __init__(self, delay: float, environment: dict) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, delay, environment), daemon=True
        )
        self._process.start()
        self.endpoint_url, self.proxy_url, self.control_url = self._connection.recv()
        self.counter = Counter(self.control_url)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
