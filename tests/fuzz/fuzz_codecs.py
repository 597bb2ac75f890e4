"""Atheris harness: random payloads and declared sizes into every compressing codec.

``python tests/fuzz/fuzz_codecs.py -atheris_runs=20000 [corpus dirs]``: ``decode`` must
return exactly the declared number of bytes or raise CorruptDatasetError.
"""

from __future__ import annotations

import sys

import _common  # noqa: F401  (sets up the import path and plugins)
import atheris
import lz4.frame  # noqa: F401  (the libraries are not instrumented, acumen is)
import zstandard  # noqa: F401

with atheris.instrument_imports(include=["acumen"]):
    import acumen.codecs.gzip
    import acumen.codecs.lz4
    import acumen.codecs.zstd
    from acumen import plugins
    from acumen.errors import CorruptDatasetError

assert acumen.codecs.gzip and acumen.codecs.lz4 and acumen.codecs.zstd
CODECS = [plugins.codec(name) for name in ("gzip", "zstd", "lz4")]


def one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    codec = CODECS[provider.ConsumeIntInRange(0, len(CODECS) - 1)]
    declared = provider.ConsumeIntInRange(0, 1 << 16)
    payload = provider.ConsumeBytes(provider.remaining_bytes())
    try:
        result = codec.decode(payload, declared)
    except CorruptDatasetError:
        return
    if memoryview(result).nbytes != declared:
        raise AssertionError(f"{codec.name}: {memoryview(result).nbytes} bytes, not {declared}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
