"""The child side of the crash tests of tests/test_versions_ops.py: a delete and a
compaction that die by SIGKILL on cue.

``python -m tests.versions_crash_helpers serve`` is the server of tests/crash_helpers.py
(one fork per request, ``"kill": [probe, phase, nth]`` or ``"trace": FILE``) with two more
jobs: ``delete`` (``spec``: path, indices) and ``compact`` (path, min_live).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tests import crash_helpers

#: Where a delete or a compaction can die: its file writes and renames, the version
#: file's exclusive create, ``manifest.json`` and ``index.csv`` following it, the claim.
#: (No fsync: a kill, unlike a power cut, loses nothing the kernel has.)
PROBES = (
    "pathlib.Path.mkdir",
    "pathlib.Path.unlink",
    "os.replace",
    "os.link",
    "os.unlink",
    "acumen.files.claim.claim_folder",
    "acumen.files.local.replace_durably",
    "acumen.files.local.write_atomically",
    "acumen.format.version_files.commit_version",
    "acumen.write.versioning.refresh_view",
    "acumen.write.chunk_writer.ChunkWriter._finish_chunk",
    "acumen.index_formats.csv.CsvIndex.write",
    "acumen.index_formats.parquet.ParquetIndex.write",
)


def delete_job(spec: dict[str, Any]) -> None:
    import acumen

    acumen.delete(spec["path"], indices=spec["indices"])


def compact_job(spec: dict[str, Any]) -> None:
    import acumen

    acumen.compact(spec["path"], min_live=spec["min_live"])


def serve() -> None:
    import acumen
    import acumen.index_formats.csv
    import acumen.index_formats.parquet
    import acumen.versions.compact
    import acumen.versions.delete  # noqa: F401

    crash_helpers.JOBS["delete"] = (delete_job, PROBES)
    crash_helpers.JOBS["compact"] = (compact_job, PROBES)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(crash_helpers.run_forked(json.loads(line))), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        raise SystemExit("usage: python -m tests.versions_crash_helpers serve")
    serve()
