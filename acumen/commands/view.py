"""``acumen view PATH``: a local, read-only web page to look at a dataset.

The server (:mod:`acumen.commands.view_server`) answers one page and a small JSON API
(:mod:`acumen.commands.view_data`) on 127.0.0.1; it stops on Ctrl-C or SIGTERM with exit
status 0. Here: the command's arguments, and the server's life.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from acumen.cli_options import add_remote_options, check_used, for_path

NAMES = ("view",)


def add_parsers(commands: Any) -> None:
    """Add ``view`` to the ``acumen`` parser."""
    view = commands.add_parser(
        "view", help="look at a dataset in the browser: summary, index, samples, histograms"
    )
    view.add_argument("path", help="a folder or a URL (s3://, gs://, https://...)")
    view.add_argument(
        "--port", type=_port, default=0, help="the port on 127.0.0.1 (default: a free one)"
    )
    view.add_argument("--no-browser", action="store_true", help="print the address only")
    add_remote_options(view)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r} (0 to 65535; 0: a free one)")
    return int(text)


class _Stop(Exception):
    """SIGTERM, raised in the main thread to end ``serve_forever``."""


def run(args: argparse.Namespace) -> int:
    """Run ``acumen view`` until Ctrl-C or SIGTERM; the exit status."""
    import acumen
    from acumen.commands.view_data import Viewer
    from acumen.commands.view_server import HOST, make_server

    check_used(args, args.path)
    with acumen.open(args.path, **for_path(args, args.path)) as ds:
        try:
            server = make_server(Viewer(ds, str(args.path)), args.port)
        except OSError as error:
            raise OSError(
                f"cannot serve on {HOST}:{args.port}: {error.strerror or error}; "
                "try another --port (or none: a free one)"
            ) from None
        url = f"http://{HOST}:{server.server_address[1]}/"
        print(f"acumen view: {args.path} at {url} (Ctrl-C to stop)", flush=True)
        if not args.no_browser:
            _open_browser(url)

        def stop(signum: int, frame: Any) -> None:
            raise _Stop

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            server.serve_forever()
        except (KeyboardInterrupt, _Stop):
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.server_close()
    print("acumen view: stopped", flush=True)
    return 0


def _open_browser(url: str) -> None:
    """Open ``url`` in a graphical browser; with no display, the printed URL is all (a text
    browser would take over the terminal the server prints to)."""
    import webbrowser

    graphical = sys.platform in ("darwin", "win32") or any(
        os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")
    )
    if graphical:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
