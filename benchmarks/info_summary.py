"""What ``acumen info`` costs on a large dataset: the summary comes from the index alone.

    .venv/bin/python benchmarks/info_summary.py [--samples 10000000] [--formats arrow,parquet]

An index of N float16 samples of shape (L, 16), L in 1..64, with an int and a str metadata
column is written directly (as ``benchmarks/open_index.py`` does: sparse chunk files, no
payload bytes). Printed per index format: the time of ``acumen.open``, of the summary
(``acumen.commands.summary.summarize``: shapes' ranges, raw bytes, chunk sizes, metadata
statistics, the folder's size) and of the whole ``acumen info PATH`` command, in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

from open_index import make_dataset, make_table

import acumen
from acumen import cli
from acumen.commands.summary import summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--formats", default="arrow,parquet")
    args = parser.parse_args()
    table, chunks = make_table(args.samples, variable=True)
    print(f"{args.samples:,} samples, {len(chunks)} chunk files")
    print(f"{'index':<8} {'open s':>8} {'summary s':>10} {'acumen info s':>14}")
    for fmt in args.formats.split(","):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder) / "ds"
            make_dataset(root, table, chunks, fmt)
            start = time.perf_counter()
            with acumen.open(root) as ds:
                opened = time.perf_counter()
                summarize(ds, root)
                summarized = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli.main(["info", str(root)]) == 0
            done = time.perf_counter()
            print(
                f"{fmt:<8} {opened - start:>8.2f} {summarized - opened:>10.2f} "
                f"{done - summarized:>14.2f}"
            )


if __name__ == "__main__":
    main()
