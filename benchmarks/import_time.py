"""Import-time benchmark: what ``import acumen`` costs a fresh interpreter (a DataLoader worker).

    .venv/bin/python benchmarks/import_time.py [--runs 15]

Each case runs in its own fresh interpreter (``sys.executable``, this environment), ``--runs``
times after one warm-up run each (so compiled modules are cached, as in a user's
environment, even where ``PYTHONDONTWRITEBYTECODE`` is set), the cases interleaved round by
round; the child times its statements with
``time.perf_counter`` (the interpreter's own start-up is left out) and reports which of
pandas, pyarrow and acumen.convert ended up in ``sys.modules``. Printed per case: the median
and the fastest run, the median's ratio to ``import numpy`` (the target is ``import acumen``
at most 2x), and the heavy modules loaded. The cases:

- ``import numpy``
- ``import acumen``
- ``import acumen; acumen.open(path)`` of a small dataset (10 float32 samples, raw codec,
  one ``label`` column) written here to a temporary folder with the ``csv`` index format,
  and the same with the ``arrow`` index format.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import acumen

WATCHED = ("pandas", "pyarrow", "acumen.convert")

CHILD = """
import sys, time, json
start = time.perf_counter()
{statements}
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "loaded": [m for m in {watched!r} if m in sys.modules]}}))
"""


def write_dataset(path: Path, index_format: str) -> None:
    with acumen.Writer(path, index_format=index_format) as writer:
        for i in range(10):
            writer.add(np.full((4, 4), i, dtype=np.float32), label=i)


def run_child(statements: str) -> dict:
    code = CHILD.format(statements=statements, watched=WATCHED)
    # As a user's interpreter runs: compiled modules cached (installed packages ship them;
    # acumen's are written by the warm-up run), whatever PYTHONDONTWRITEBYTECODE says here.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases: dict[str, str] = {
            "import numpy": "import numpy",
            "import acumen": "import acumen",
        }
        for index_format in ("csv", "arrow"):
            path = Path(tmp) / index_format
            write_dataset(path, index_format)
            cases[f"import acumen; open({index_format})"] = (
                f"import acumen\nacumen.open({str(path)!r})"
            )
        for statements in cases.values():  # warm-up: writes the bytecode caches
            run_child(statements)
        seconds: dict[str, list[float]] = {name: [] for name in cases}
        loaded: dict[str, set[str]] = {name: set() for name in cases}
        for _ in range(args.runs):
            for name, statements in cases.items():
                result = run_child(statements)
                seconds[name].append(result["seconds"])
                loaded[name].update(result["loaded"])
    numpy_median = statistics.median(seconds["import numpy"])
    print(f"{sys.executable} ({args.runs} fresh interpreters per case)")
    print(f"{'case':<30} {'median ms':>10} {'min ms':>8} {'x numpy':>8}  loaded")
    for name in cases:
        median = statistics.median(seconds[name])
        heavy = ", ".join(m for m in WATCHED if m in loaded[name]) or "-"
        print(
            f"{name:<30} {median * 1e3:>10.1f} {min(seconds[name]) * 1e3:>8.1f}"
            f" {median / numpy_median:>8.2f}  {heavy}"
        )


if __name__ == "__main__":
    main()
