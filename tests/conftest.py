"""Shared test set-up.

Only acumen's own plugins load (``ACUMEN_PLUGINS=builtin``), so whatever else is installed
on a machine cannot change a test's outcome; plugin tests widen it themselves.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["ACUMEN_PLUGINS"] = "builtin"

import numpy as np
import pytest

from acumen import plugins

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "original"
CODECS = ("raw", "gzip", "zstd", "lz4")
STORAGES = ("seek", "mmap", "memory")
INDEX_FORMATS = ("csv", "parquet", "arrow")


@pytest.fixture(autouse=True)
def _builtin_plugins_only(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin")
    plugins.reload()
    yield
    plugins.reload()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh site directory on ``sys.path`` for throwaway plugin distributions
    (``tests.test_plugins.make_distribution``); their modules are forgotten afterwards."""
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    yield directory
    for name in [m for m in sys.modules if m.startswith("acumen_test")]:
        del sys.modules[name]
    # Back to acumen's own plugins before the shared fixture reloads them, so a broken
    # test plugin cannot warn during teardown.
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin")
    plugins.reload()


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def load_fixture(name: str) -> tuple[Path, dict, list[np.ndarray], list[dict]]:
    """(folder, params, expected arrays, expected metadata with None for NaN)."""
    folder = FIXTURES / name
    params = json.loads((folder / "params.json").read_text())
    with np.load(folder / "expected.npz") as npz:
        arrays = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    meta = json.loads((folder / "expected_meta.json").read_text(encoding="utf-8"))
    return folder, params, arrays, meta


# --- servers for the remote-storage tests (tests/remote_servers.py) ---------------------------


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 on 127.0.0.1 for the whole session, with the AWS environment pinned to fake
    credentials (``remote_servers.AWS_ENVIRONMENT``) so nothing real leaks in. Yields a
    ``remote_servers.S3Server``: ``endpoint_url``, ``storage_options`` (for s3fs),
    ``make_bucket()``, ``client()`` (boto3), ``reset()``."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    from tests.remote_servers import AWS_ENVIRONMENT, AWS_UNSET, S3Server

    with pytest.MonkeyPatch.context() as mp:
        for name, value in AWS_ENVIRONMENT.items():
            mp.setenv(name, value)
        for name in AWS_UNSET:
            mp.delenv(name, raising=False)
        with S3Server() as server:
            yield server


@pytest.fixture
def s3_bucket(s3_server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on ``s3_server`` (its name), the AWS environment pinned again
    for this test (a test's own monkeypatching cannot undo the session's)."""
    from tests.remote_servers import AWS_ENVIRONMENT, AWS_UNSET

    for name, value in AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    for name in AWS_UNSET:
        monkeypatch.delenv(name, raising=False)
    return s3_server.make_bucket()


@pytest.fixture
def http_server(tmp_path_factory: pytest.TempPathFactory):
    """A ``remote_servers.RangeHTTPServer`` over a fresh empty folder, for one test: ``root``
    (write files there), ``base_url``, ``url(name)``, ``log`` (``requests``, ``bytes_sent``,
    ``records``, ``count(method, ranged=)``, ``reset()``)."""
    from tests.remote_servers import RangeHTTPServer

    with RangeHTTPServer(tmp_path_factory.mktemp("http-root")) as server:
        yield server


@pytest.fixture
def http_fault_proxy(http_server):
    """A ``remote_servers.FaultProxy`` in front of ``http_server``: ``base_url``,
    ``url(name)`` (a file's address through the proxy), ``inject(kind, times, ...)``,
    ``delay``, ``clear()``, ``log``; ``upstream`` is the ``http_server``."""
    from tests.remote_servers import FaultProxy

    with FaultProxy(http_server.base_url, upstream=http_server) as proxy:
        yield proxy


@pytest.fixture
def s3_fault_proxy(s3_server, s3_bucket):
    """A ``remote_servers.FaultProxy`` in front of ``s3_server``: ``endpoint_url`` and
    ``storage_options`` point s3fs at the proxy; ``bucket`` is a fresh bucket (``s3_bucket``);
    ``upstream`` is the ``s3_server``; ``inject``, ``delay``, ``clear()``, ``log`` as for
    ``http_fault_proxy``."""
    from tests.remote_servers import FaultProxy

    with FaultProxy(s3_server.endpoint_url, upstream=s3_server) as proxy:
        proxy.bucket = s3_bucket
        yield proxy
