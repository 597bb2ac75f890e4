"""The server of ``acumen view``: the standard library's threaded HTTP server on 127.0.0.1,
answering one page (HTML, CSS and JavaScript inline: no build step, nothing fetched from
elsewhere) and a small JSON API (:mod:`acumen.commands.view_data`), GET only. Requests naming
another host are refused (a web page elsewhere cannot reach the viewer through DNS
rebinding), and nothing a request sends is run, except a filter that
:func:`acumen.read.query_check.check_query` has found to be a plain metadata query.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from acumen.commands.view_data import MAX_PAGE, THUMBNAIL_SIZES, Viewer, ViewError
from acumen.commands.view_page import PAGE
from acumen.errors import AcumenError

HOST = "127.0.0.1"
#: What a page from the viewer may load: only itself (no network, no other site).
_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def make_server(viewer: Viewer, port: int = 0) -> ThreadingHTTPServer:
    """The viewer's server on 127.0.0.1 (``port`` 0: a free one), not yet serving."""

    class Handler(_Handler):
        pass

    Handler.viewer = viewer
    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    return server


class _Handler(BaseHTTPRequestHandler):
    """GET only; every answer is the page, JSON, or an image."""

    viewer: Viewer
    server_version = "acumen-view"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the terminal is the URL's
        pass

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.headers.get("Host") not in (f"{HOST}:{port}", f"localhost:{port}"):
            self._json(403, {"error": "the viewer answers requests for 127.0.0.1 only"})
            return
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, max_num_fields=20).items()}
        try:
            self._route(url.path, query)
        except ViewError as error:
            self._json(400, {"error": str(error)})
        except (AcumenError, OSError, ValueError) as error:  # a damaged sample, a lost file
            message = "; ".join(line for line in str(error).splitlines() if line.strip())
            self._json(500, {"error": message or type(error).__name__})

    def _route(self, path: str, query: dict[str, str]) -> None:
        viewer = self.viewer
        if path == "/":
            self._send(200, "text/html; charset=utf-8", PAGE.encode())
        elif path == "/api/summary":
            self._json(200, viewer.summary())
        elif path == "/api/rows":
            offset = viewer.number(query.get("offset"), "offset", 0, 2**62, 0)
            limit = viewer.number(query.get("limit"), "limit", 1, MAX_PAGE, 50)
            self._json(200, viewer.rows(query.get("filter"), offset, limit))
        elif path == "/api/sample":
            self._json(200, viewer.sample(viewer.sample_position(query.get("i"))))
        elif path == "/api/thumbnail":
            i = viewer.sample_position(query.get("i"))
            size = viewer.number(
                query.get("size"), "size", THUMBNAIL_SIZES.start, THUMBNAIL_SIZES.stop - 1, 256
            )
            kind, data = viewer.thumbnail(i, viewer.field(query.get("field")), size)
            self._send(200, kind, data)
        elif path == "/api/histogram":
            self._json(200, viewer.histogram(query.get("column"), query.get("filter")))
        else:
            self._json(404, {"error": f"nothing at {path[:80]}"})

    def do_HEAD(self) -> None:
        self._json(405, {"error": "GET only"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body, allow_nan=False, ensure_ascii=False).encode()
        self._send(status, "application/json; charset=utf-8", data)

    def _send(self, status: int, kind: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", _POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)
