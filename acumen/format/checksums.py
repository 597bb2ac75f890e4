"""Checksums of a dataset's files and of its manifest: XXH3-64, written ``xxh3_64:<hex>``.

Chunk files, the index and every other file the manifest names are hashed whole; the
manifest seals itself with ``manifest_checksum``, the hash of its own canonical JSON text
(keys sorted, no spaces, UTF-8) without that key, so damage anywhere in it is found.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import xxhash

from acumen.files.local import open_for_reading

CHECKSUM = re.compile(r"xxh3_64:[0-9a-f]{16}")  # a whole value: fullmatch
SEAL_KEY = "manifest_checksum"
#: Bytes read at a time, into one buffer reused (1 MiB stays in the CPU's cache: a new 8 MiB
#: block per read made hashing a 22 MB index 16 ms instead of 2).
BLOCK = 1 << 20


def bytes_checksum(data: Any) -> str:
    """``xxh3_64:<hex>`` of bytes."""
    return f"xxh3_64:{xxhash.xxh3_64_hexdigest(data)}"


def file_checksum(path: str | os.PathLike[str], what: str = "chunk file") -> str:
    """``xxh3_64:<hex>`` of a file, read in blocks; ``what`` names it if it is not a
    regular file (a FIFO would never end: see :func:`acumen.layout.open_regular`)."""
    digest = xxhash.xxh3_64()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with open_for_reading(path, what) as file:
        while n := file.readinto(buffer):
            digest.update(view[:n])
    return f"xxh3_64:{digest.hexdigest()}"


def manifest_seal(raw: dict[str, Any]) -> str:
    """The checksum a manifest's ``manifest_checksum`` must hold: of its canonical JSON text
    without that key (so it does not depend on indentation or key order)."""
    unsealed = {key: value for key, value in raw.items() if key != SEAL_KEY}
    text = json.dumps(unsealed, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return bytes_checksum(text.encode("utf-8"))


def sealed(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with its seal last (what a writer, or a test editing a manifest, stores)."""
    unsealed = {key: value for key, value in raw.items() if key != SEAL_KEY}
    return {**unsealed, SEAL_KEY: manifest_seal(unsealed)}
