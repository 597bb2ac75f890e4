"""Atheris harness: random bytes as a dataset's index (csv, parquet or arrow).

``python tests/fuzz/fuzz_index.py -atheris_runs=20000``: opening and reading every sample
raises only acumen's errors (CorruptDatasetError, ManifestError...), nothing else.
"""

from __future__ import annotations

import contextlib
import sys

import _common
import atheris
import pandas  # noqa: F401  (the parsers are not instrumented: acumen is)
import pyarrow.ipc
import pyarrow.parquet  # noqa: F401

with atheris.instrument_imports(include=["acumen"]):
    import acumen
    from acumen.errors import AcumenError, CorruptDatasetError

FORMATS = ("csv", "parquet", "arrow")
ROOTS = {fmt: _common.small_dataset("zstd", fmt) for fmt in FORMATS}


def one_input(data: bytes) -> None:
    if not data:
        return
    fmt = FORMATS[data[0] % 3]
    root = ROOTS[fmt]
    (root / f"index.{fmt}").write_bytes(data[1:])
    try:
        dataset = acumen.open(root)
    except AcumenError:
        return
    with dataset:
        for i in range(len(dataset)):
            with contextlib.suppress(CorruptDatasetError):
                dataset[i]


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
