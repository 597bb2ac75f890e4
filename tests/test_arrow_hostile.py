"""A damaged or hostile ``index.arrow`` is an acumen error, never a crash inside pyarrow.

The ``arrow`` index is used in place of its memory map, so whatever of it is read without a
copy (text offsets, dictionary codes, the buffers' extents) must be checked before a value
is read through it. Two kinds of test show it:

* a sweep of single-bit flips over the whole file of two small datasets (one bit of every
  byte, every bit of every buffer of offsets or codes), each flipped file used in every way
  that reads the index (``ds[i]``, ``read``, ``metadata``, iteration, batches, views,
  ``ds.index``, ``check_index``, pickling, ``acumen.verify``) in a child process
  (``tests/arrow_flip_helpers.py``), so that a segfault is a signal the test sees;
* hand-made files with the damage named: text offsets decreasing or past their bytes,
  dictionary codes outside the dictionary, dictionary text offsets broken, validity bitmaps
  and buffers shorter than the declared length, a record batch longer than its buffers, a
  truncated file.

A flip inside a value's own bytes (an int's payload, a letter of a text) can only be seen by
a checksum of the index file; the sweep counts those (``different``) and does not fail on
them. ``ACUMEN_EVERY_BIT=1`` sweeps every bit of both files (minutes, for a report).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

import acumen
from acumen.errors import CorruptDatasetError
from acumen.index_formats.arrow_text import ArrowStringColumn
from acumen.verify import verify

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "ACUMEN_PLUGINS": "builtin"}
NAMES = ["a", "bb", "ccc", "", "dddd", "é"]


def _varying(root: Path) -> None:
    """Six samples of one varying axis in two chunk files; int, float, str, bool metadata."""
    rng = np.random.default_rng(0)
    with acumen.Writer(root, index_format="arrow", durable=False, chunk_size_bytes=40) as writer:
        for i in range(6):
            array = rng.integers(0, 255, size=(2 + i % 3, 3), dtype=np.uint8)
            writer.add(array, label=7 * i - 3, score=i / 3, name=NAMES[i], ok=bool(i % 2))


def _ragged(root: Path) -> None:
    """Five samples whose number of dimensions varies (a list column with offsets)."""
    rng = np.random.default_rng(1)
    with acumen.Writer(root, index_format="arrow", durable=False) as writer:
        for i, shape in enumerate([(3,), (2, 2), (1, 2, 2), (4,), (2, 1)]):
            writer.add(rng.integers(0, 255, size=shape, dtype=np.uint8), name="x" * i)


DATASETS = {"varying": _varying, "ragged": _ragged}


def _in_place_buffers(path: Path) -> list[tuple[int, int]]:
    """(start, end) in the file of each buffer of offsets or codes: text and list offsets,
    dictionary codes and the dictionary's text offsets."""
    found = []
    with pa.memory_map(str(path)) as mapped:
        base = mapped.read_buffer().address
        mapped.seek(0)
        batch = ipc.open_file(mapped).get_batch(0)

        def visit(array: pa.Array) -> None:
            kind = array.type
            if pa.types.is_dictionary(kind):
                found.append(array.buffers()[1])
                visit(array.dictionary)
            elif pa.types.is_string(kind) or pa.types.is_large_list(kind):
                found.append(array.buffers()[1])

        for column in batch.columns:
            visit(column)
        return [(b.address - base, b.address - base + b.size) for b in found if b is not None]


def _flips(path: Path) -> list[tuple[int, int]]:
    """One bit of every byte (bit ``position % 8``: each bit in turn along the file) and
    every bit of the buffers used in place as offsets or codes; every bit of every byte
    with ``ACUMEN_EVERY_BIT=1``."""
    size = path.stat().st_size
    if os.environ.get("ACUMEN_EVERY_BIT") == "1":
        return [(p, 1 << b) for p in range(size) for b in range(8)]
    flips = {(p, 1 << (p % 8)) for p in range(size)}
    for start, end in _in_place_buffers(path):
        flips |= {(p, 1 << b) for p in range(start, end) for b in range(8)}
    return sorted(flips)


def _sweep(clean: Path, work: Path, flips: list[tuple[int, int]]) -> list[tuple[int, int, str, str]]:
    """Each flip's (position, mask, outcome, detail), from children that go on after a
    crash with the next flip; a child killed by a signal marks its flip ``crash``."""
    results: list[tuple[int, int, str, str]] = []
    todo = list(flips)
    while todo:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(clean, work)
        spec = json.dumps({"work": str(work), "flips": todo})
        try:
            done = subprocess.run(
                [sys.executable, "-m", "tests.arrow_flip_helpers", spec],
                cwd=REPO,
                env=ENV,
                capture_output=True,
                text=True,
                timeout=600,
            )
            stdout, code = done.stdout, done.returncode
        except subprocess.TimeoutExpired as expired:
            stdout, code = (expired.stdout or b"").decode(), "hang"
        lines = [line.split(" ", 4)[1:] for line in stdout.splitlines() if line.startswith("FLIP ")]
        results += [(int(p), int(m), outcome, detail) for p, m, outcome, detail in lines]
        todo = todo[len(lines) :]
        if todo and code == 0:
            raise AssertionError(f"the child stopped early without a crash: {done.stderr}")
        if todo:
            position, mask = todo.pop(0)
            results.append((position, mask, "crash", f"exit {code}"))
    return results


@pytest.mark.parametrize("kind", list(DATASETS))
def test_no_bit_flip_of_an_arrow_index_crashes_or_escapes(tmp_path: Path, kind: str) -> None:
    """Every flipped file gives the clean answers, an acumen error naming the dataset, or
    (a value's own bytes flipped) different values: never a crash, never another error."""
    clean = tmp_path / kind
    DATASETS[kind](clean)
    flips = _flips(clean / "index.arrow")
    results = _sweep(clean, tmp_path / "work", flips)
    assert len(results) == len(flips)
    counts = Counter(outcome for _, _, outcome, _ in results)
    bad = [r for r in results if r[2] not in ("same", "error", "different")]
    print(f"{kind}: {len(flips)} flips: {dict(counts)}")
    assert not bad, f"{len(bad)} of {len(flips)} flips crashed or escaped ({dict(counts)}): {bad[:8]}"
