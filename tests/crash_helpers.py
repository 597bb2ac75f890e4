"""The child side of tests/test_crash_safety.py: writers that die by SIGKILL on cue.

Run as ``python -m tests.crash_helpers serve``, it imports acumen once, then reads one JSON
request per line on stdin and answers one JSON line on stdout. Each request forks a fresh
child that writes a dataset (or runs a conversion) and dies by SIGKILL:

* at a deterministic point: ``"kill": [probe, phase, nth]`` makes the child kill itself
  (``os.kill(os.getpid(), SIGKILL)``) when ``probe`` is entered (phase ``"enter"``) or has
  returned (``"exit"``) for the ``nth`` time;
* at a random point: ``"delay": seconds`` makes the server SIGKILL the child from outside.

``"trace": FILE`` runs the job without a kill and saves the sequence of probe events, so the
test can then kill the child at every one of them. ``python -m tests.crash_helpers write
SPEC_JSON`` runs one write in a fresh interpreter (killed from outside by the test).

Samples are deterministic: sample ``i`` is ``np.full(sample_shape(i), i)`` with metadata
``{"i": i}``; the test checks every sample a surviving dataset returns against them.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
from collections import Counter
from typing import Any

import numpy as np

DTYPE = np.dtype("<i4")

# Functions and methods the child can die in (each is patched where it is defined and in
# every acumen module that imported it by name).
PROBES = (
    "pathlib.Path.mkdir",
    "pathlib.Path.unlink",
    "os.replace",
    "os.fsync",
    "acumen.files.claim.claim_folder",
    "acumen.write.writer.Writer.add",
    "acumen.write.chunk_writer.ChunkWriter._finish_chunk",
    "acumen.files.local.replace_durably",
    "acumen.files.local.write_atomically",
    "acumen.files.local.fsync_directory",
    "acumen.format.manifest.Manifest.write",
    "acumen.write.commit.commit_dataset",
    "acumen.index_formats.csv.CsvIndex.write",
    "acumen.index_formats.parquet.ParquetIndex.write",
)

# Conversion kill points: the merge's renames and the steps around the commit.
CONVERT_PROBES = (
    "acumen.convert.merge.os.replace",
    "acumen.convert.merge.merge_parts",
    "acumen.files.local.write_atomically",
    "acumen.format.manifest.Manifest.write",
    "acumen.write.commit.commit_dataset",
    "pathlib.Path.unlink",
    "shutil.rmtree",
)


def sample_shape(i: int) -> tuple[int, ...]:
    return (i % 3 + 1, 2)


def sample(i: int) -> np.ndarray:
    return np.full(sample_shape(i), i, dtype=DTYPE)


def convert_inputs(folder: str, count: int) -> None:
    """The .npy files a conversion test converts (deterministic)."""
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        np.save(os.path.join(folder, f"s{i:04d}.npy"), sample(i))


def convert_config(root: str, chunk_size_bytes: int, part_size: int) -> dict[str, Any]:
    return {
        "source": {"glob": os.path.join(root, "in", "*.npy")},
        "reader": {"name": "npy"},
        "output": {
            "path": os.path.join(root, "out"),
            "codec": "zstd",
            "index_format": "parquet",
            "chunk_size": chunk_size_bytes,
        },
        "run": {"progress": False, "part_size": part_size, "n_jobs": 1},
    }


# --- probes ------------------------------------------------------------------------------
class _Killer:
    def __init__(self, kill: list | None, trace: list[str] | None) -> None:
        self.kill = tuple(kill) if kill else None
        self.trace = trace
        self.counts: Counter = Counter()

    def hit(self, probe: str, phase: str) -> None:
        self.counts[probe, phase] += 1
        if self.trace is not None:
            self.trace.append(f"{probe}|{phase}")
        if self.kill == (probe, phase, self.counts[probe, phase]):
            os.kill(os.getpid(), signal.SIGKILL)


def _resolve(dotted: str) -> tuple[Any, str, Any]:
    """(owner, attribute, original) for a dotted name: module.attr or module.Class.attr."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:-1]:
            owner = getattr(owner, name)
        return owner, parts[-1], getattr(owner, parts[-1])
    raise ImportError(dotted)


def install_probes(names: tuple[str, ...], killer: _Killer) -> None:
    for dotted in names:
        owner, attr, original = _resolve(dotted)

        def wrapper(*args: Any, __original: Any = original, __name: str = dotted, **kwargs: Any):
            killer.hit(__name, "enter")
            result = __original(*args, **kwargs)
            killer.hit(__name, "exit")
            return result

        if isinstance(owner, type):
            setattr(owner, attr, wrapper)
            continue
        if dotted == "acumen.convert.merge.os.replace":  # only the merge's own os.replace
            import types

            proxy = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os)})
            proxy.replace = wrapper
            sys.modules["acumen.convert.merge"].os = proxy
            continue
        setattr(owner, attr, wrapper)
        for module in list(sys.modules.values()):  # names imported with ``from x import f``
            if getattr(module, "__name__", "").startswith("acumen"):
                for key, value in list(vars(module).items()):
                    if value is original:
                        setattr(module, key, wrapper)


# --- jobs --------------------------------------------------------------------------------
def write_job(spec: dict[str, Any]) -> None:
    import acumen

    with acumen.Writer(
        spec["path"],
        codec=spec["codec"],
        index_format=spec["index_format"],
        chunk_size_bytes=spec["chunk_size_bytes"],
    ) as writer:
        for i in range(spec["n"]):
            writer.add(sample(i), i=i)


# An append's kill points: its chunks, its segment, the version's exclusive create, the
# manifest.json that follows it and (csv) the index.csv the original reader sees.
APPEND_PROBES = (
    "os.replace",
    "os.link",
    "acumen.write.writer.Writer.add",
    "acumen.write.chunk_writer.ChunkWriter._finish_chunk",
    "acumen.files.local.replace_durably",
    "acumen.files.local.write_atomically",
    "acumen.files.local.fsync_directory",
    "acumen.format.version_files.commit_version",
    "acumen.write.versioning.refresh_view",
    "acumen.write.append.Append.finish",
    "acumen.index_formats.csv.CsvIndex.write",
    "acumen.index_formats.parquet.ParquetIndex.write",
)


def append_job(spec: dict[str, Any]) -> None:
    """Samples ``start`` .. ``start + n - 1`` appended to the complete dataset at ``path``."""
    import acumen

    with acumen.Writer(spec["path"], mode="append", durable=False) as writer:
        for i in range(spec["start"], spec["start"] + spec["n"]):
            writer.add(sample(i), i=i)


def convert_job(spec: dict[str, Any]) -> None:
    from acumen.convert import convert

    convert(convert_config(spec["root"], spec["chunk_size_bytes"], spec["part_size"]))


JOBS = {
    "write": (write_job, PROBES),
    "convert": (convert_job, CONVERT_PROBES),
    "append": (append_job, APPEND_PROBES),
}


def _child(request: dict[str, Any]) -> None:
    job, probes = JOBS[request["job"]]
    trace: list[str] | None = [] if request.get("trace") else None
    install_probes(probes, _Killer(request.get("kill"), trace))
    job(request["spec"])
    if trace is not None:
        with open(request["trace"], "w", encoding="utf-8") as file:
            json.dump(trace, file)


def run_forked(request: dict[str, Any]) -> dict[str, Any]:
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: do the job, never return into the server loop
        code = 0
        try:
            _child(request)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stderr.flush()
            os._exit(code)
    delay = request.get("delay")
    deadline = start + float(request.get("timeout", 60))
    killed_by_us = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        now = time.monotonic()
        if (delay is not None and now - start >= delay and not killed_by_us) or now > deadline:
            os.kill(pid, signal.SIGKILL)
            killed_by_us = True
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.0005 if delay is not None else 0.002)
    signalled = os.WIFSIGNALED(status)
    return {
        "killed": signalled and os.WTERMSIG(status) == signal.SIGKILL,
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "timed_out": killed_by_us and delay is None,
        "seconds": time.monotonic() - start,
    }


def serve() -> None:
    import acumen
    import acumen.convert
    import acumen.index_formats.parquet  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        print(json.dumps(run_forked(json.loads(line))), flush=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        serve()
    elif argv[:1] == ["write"]:
        spec = json.loads(argv[1])
        import acumen  # noqa: F401

        print("ready", flush=True)
        write_job(spec)
    else:
        raise SystemExit("usage: python -m tests.crash_helpers serve | write SPEC_JSON")


if __name__ == "__main__":
    main(sys.argv[1:])
