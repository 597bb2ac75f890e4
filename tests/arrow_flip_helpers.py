"""The child side of ``tests/test_arrow_hostile.py``: damage a dataset's ``index.arrow`` one
flip at a time and use the dataset in every way that reads its index, in a process of its
own so that a crash inside pyarrow is seen by the parent as a signal, not felt by pytest.

``python -m tests.arrow_flip_helpers < SPEC`` where SPEC is JSON: ``{"work": DIR, "flips":
[[position, mask], ...]}``; ``work`` is a copy of a sound dataset. For each flip it
xors the byte, exercises the dataset, restores the byte, and prints one line,
``FLIP position mask outcome detail``, flushed at once (so the parent knows which flip a crash
came from). Outcomes: ``same`` (every answer is the clean one), ``error`` (some use raised an
acumen error naming the dataset, or ``verify`` reported a problem), ``different`` (every use
answered, something differs from the clean answers), ``escaped`` (something else was raised:
detail says what).
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import acumen
from acumen.errors import AcumenError
from acumen.verify import verify
from tests.dataset_edits import reseal


def _comparable(value: Any) -> Any:
    """``value`` in a form ``==`` compares exactly (arrays by dtype, shape and bytes)."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, dict):
        return {key: _comparable(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    return value


def _frame(ds: acumen.Dataset) -> Any:
    frame = ds.index
    return [list(frame.columns), [_comparable(list(frame[c])) for c in frame.columns]]


def _uses(root: Path) -> dict[str, Callable[[acumen.Dataset], Any]]:
    """Each way of reading a dataset, by name; each returns what it read."""
    return {
        "items": lambda ds: [ds[i] for i in range(len(ds))],
        "reads": lambda ds: [ds.read(i, copy=True) for i in range(len(ds))],
        "metadata": lambda ds: [ds.metadata(i) for i in range(len(ds))],
        "iteration": lambda ds: list(ds),
        "batch": lambda ds: ds.read_batch(np.arange(len(ds))[::-1]),
        "view": lambda ds: list(ds.select(np.arange(len(ds))[::-2])),
        "index": _frame,
        "check_index": lambda ds: ds.check_index(),
        "pickled": lambda ds: list(pickle.loads(pickle.dumps(ds))),
    }


def answers(root: Path) -> dict[str, Any]:
    """What every use answers for the dataset at ``root``: a value, or ``("error", message)``
    for an acumen error. Anything else raised propagates."""
    found: dict[str, Any] = {}
    try:
        ds = acumen.open(root)
    except AcumenError as error:
        found["open"] = ("error", str(error))
    else:
        with ds:
            for name, use in _uses(root).items():
                try:
                    found[name] = _comparable(use(ds))
                except AcumenError as error:
                    found[name] = ("error", str(error))
    report = verify(root, jobs=1, progress=False)
    found["verify"] = ("error", report.problems[0]) if report.problems else "ok"
    return found


def outcome(clean: dict[str, Any], found: dict[str, Any], work: Path) -> tuple[str, str]:
    """(outcome, detail) of one damaged file's answers against the clean ones."""
    errors = [v[1] for v in found.values() if isinstance(v, tuple) and v[:1] == ("error",)]
    unnamed = [message for message in errors if str(work) not in message]
    if unnamed:
        return "escaped", f"an error not naming the dataset: {unnamed[0][:200]}"
    if errors:
        return "error", errors[0][:200]
    if found != clean:
        return "different", ",".join(k for k in clean if found.get(k) != clean[k])
    return "same", ""


def main(spec: dict[str, Any]) -> None:
    work = Path(spec["work"])
    index = work / "index.arrow"
    clean = answers(Path(spec["work"]))
    original = index.read_bytes()
    for position, mask in spec["flips"]:
        damaged = bytearray(original)
        damaged[position] ^= mask
        index.write_bytes(damaged)
        reseal(work)  # the checksums cannot tell: what is used in place is checked
        try:
            result = outcome(clean, answers(work), work)
        except Exception as error:
            result = ("escaped", f"{type(error).__name__}: {str(error)[:200]}")
        print("FLIP", position, mask, result[0], result[1].replace("\n", " "), flush=True)
    index.write_bytes(original)
    reseal(work)


if __name__ == "__main__":
    main(json.loads(sys.stdin.read()))
