"""How many connections a store's client may open: as many as requests acumen sends at once.

s3fs's client (aiobotocore) opens at most ``max_pool_connections`` connections, 10 by
default: with 64 requests in flight, 54 would wait for a connection, and a batch of 256
ranges would take 26 waves of round trips instead of four. :func:`pooled` adds
``config_kwargs={"max_pool_connections": max_requests}`` to the options of an ``s3://``
URL unless the user set it. (fsspec's HTTP client, aiohttp, allows 100 per session.)
"""

from __future__ import annotations

from typing import Any

_S3 = ("s3://", "s3a://")


def pooled(store: Any) -> dict[str, Any]:
    """A :class:`~acumen.files.remote.RemoteStore`'s ``storage_options``, with a connection
    pool of its ``max_requests`` for an S3 URL."""
    out = dict(store.storage_options)
    if store.url.lower().startswith(_S3):
        config = dict(out.get("config_kwargs") or {})
        config.setdefault("max_pool_connections", max(10, int(store.max_requests)))
        out["config_kwargs"] = config
    return out
