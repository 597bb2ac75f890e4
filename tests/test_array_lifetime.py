"""Zero-copy arrays outlive their dataset, and reads racing ``close()`` stay correct.

Each case runs in a fresh interpreter: a use-after-unmap is a segfault, which would take
pytest down with it; here it is a non-zero exit status that names the case.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import STORAGES

# Every read path that can hand out a view on a chunk: each keeps arrays from the first
# dataset, closes or drops it, maps a second dataset with other bytes at the same offsets,
# then checks the arrays still hold the first dataset's values.
LIFETIME_SCRIPT = """
import gc, sys
import numpy as np
import acumen

root, storage = sys.argv[1], sys.argv[2]

def write(path, base):
    with acumen.Writer(path, codec="raw") as writer:
        for i in range(64):
            writer.add(np.full(2048, base + i, np.float32), label=i)
    with acumen.Writer(path + "-fields", codec="raw") as writer:
        for i in range(8):
            writer.add({"a": np.full(512, base + i, np.int32), "b": bytes([i]) * 9})

write(root + "/one", 0)
write(root + "/two", 1000)

def other_bytes_mapped():
    # Map and read the second dataset, so reused memory would show its values.
    for path in (root + "/two", root + "/two-fields"):
        other = acumen.open(path, storage)
        for i in range(len(other)):
            other.read(i)
        other.read_batch(range(len(other)))
        del other
    gc.collect()

def check(name, arrays, first=0):
    for k, array in enumerate(arrays):
        if not (array == first + k).all():
            sys.exit(f"{name}: array {k} changed after its dataset was closed")

def read_path(name):
    ds = acumen.open(root + "/one", storage)
    ds.read(0)  # the chunk is open: later reads take the direct path
    if name == "read":
        arrays = [ds.read(i) for i in range(64)]
    elif name == "getitem":
        arrays = [ds[i][0] for i in range(64)]
    elif name == "batch":
        arrays = list(ds.read_batch(range(64)))
    elif name == "iterate":
        arrays = [array for array, _ in ds]
    elif name == "select":
        view = ds.select(range(64))
        arrays = [view.read(i) for i in range(64)]
        del view
    elif name == "fields":
        ds = acumen.open(root + "/one-fields", storage)
        ds.read(0)
        arrays = [ds.read(i)["a"] for i in range(8)]
    elif name == "torch":
        from acumen.torch import TorchDataset
        train = TorchDataset(root + "/one", storage=storage)
        arrays = [train[i][0].numpy() for i in range(64)]
        del train
    return ds, arrays

for name in ("read", "getitem", "batch", "iterate", "select", "fields", "torch"):
    if name == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            continue
    for ending in ("close", "with", "drop"):
        ds, arrays = read_path(name)
        if ending == "close":
            ds.close()
        elif ending == "with":
            with ds:
                pass
        del ds
        gc.collect()
        other_bytes_mapped()
        check(f"{name}/{ending}", arrays)
print("ok")
"""


@pytest.mark.parametrize("storage", STORAGES)
def test_arrays_outlive_their_dataset(tmp_path: Path, storage: str) -> None:
    """Arrays read through every path keep their bytes after close, ``with`` or GC."""
    script = tmp_path / "lifetime.py"
    script.write_text(LIFETIME_SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path), storage],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
    assert run.stdout.strip().endswith("ok")


RACE_SCRIPT = """
import sys, threading, os
import numpy as np
import acumen
from acumen.errors import AcumenError

root, storage, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name, base in (("one", 0), ("two", 100000)):
    with acumen.Writer(f"{root}/{name}", codec="raw", chunk_size_bytes=64 << 10) as writer:
        for i in range(400):
            writer.add(np.full(256, base + i, np.int32))

ds = acumen.open(f"{root}/one", storage)
other = acumen.open(f"{root}/two", "seek")
stop = threading.Event()
failures = []

def reader(seed):
    rng = np.random.default_rng(seed)
    while not stop.is_set():
        i = int(rng.integers(400))
        try:
            array = ds.read(i)
            if not (array == i).all():
                failures.append(f"sample {i} read {array[:4]}")
            batch = ds.read_batch(rng.integers(0, 400, 16))
        except AcumenError:
            pass  # a clear error is allowed while the dataset closes
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")

def closer():
    # Close, then reopen other files so a freed descriptor number is reused at once.
    for _ in range(rounds):
        ds.close()
        other.close()
        for j in range(0, 400, 37):
            other.read(j)

threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
for thread in threads:
    thread.start()
closer()
stop.set()
for thread in threads:
    thread.join()
if failures:
    sys.exit("; ".join(failures[:5]) + f" ({len(failures)} failures)")
print("ok")
"""


@pytest.mark.parametrize("storage", STORAGES)
def test_reads_racing_close_are_correct_or_errors(tmp_path: Path, storage: str) -> None:
    """Threads read while another closes the dataset again and again: no crash, and no
    sample returns another's bytes (a closed descriptor's number reused by a new open)."""
    script = tmp_path / "race.py"
    script.write_text(textwrap.dedent(RACE_SCRIPT))
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path), storage, "3000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
