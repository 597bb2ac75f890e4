"""``acumen head PATH [-n N]``: the first index rows as a table (``--json``: JSON lines),
from the index alone: where each sample lies, its shape, its metadata."""

from __future__ import annotations

import argparse
import json
from typing import Any

from acumen.cli_options import add_remote_options, check_used, for_path

NAMES = ("head",)


def add_parsers(commands: Any) -> None:
    """Add ``head`` to the ``acumen`` parser."""
    head = commands.add_parser(
        "head", help="print the first index rows: position, chunk, offset, size, shape, metadata"
    )
    head.add_argument("path", help="a folder or a URL (s3://, gs://, https://...)")
    head.add_argument(
        "-n", "--rows", type=_rows, default=10, metavar="N", help="how many rows (default 10)"
    )
    head.add_argument("--json", action="store_true", help="one JSON object a line, for scripts")
    add_remote_options(head)


def run(args: argparse.Namespace) -> int:
    """Run ``acumen head``; the exit status."""
    import acumen

    check_used(args, args.path)
    with acumen.open(args.path, **for_path(args, args.path)) as ds:
        rows = index_rows(ds, 0, min(args.rows, len(ds)))
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        print(table_text(rows))
    return 0


def index_rows(ds: Any, start: int, end: int) -> list[dict[str, Any]]:
    """The index rows ``start:end`` of ``ds`` as dicts (plain Python values)."""
    table = ds.table
    rows = []
    for i in range(start, end):
        chunk, offset, size = table.locate(i)
        row: dict[str, Any] = {
            "position": i,
            "chunk": table.chunk_names[chunk],
            "offset": offset,
            "size": size,
        }
        if table.shapes is not None:
            row["shape"] = list(table.shapes[i])
        for name, columns in table.fields.items():
            row[f"shape:{name}"] = list(columns.shapes[i])
        row.update(ds.metadata(i))
        rows.append(row)
    return rows


def table_text(rows: list[dict[str, Any]]) -> str:
    """Rows as a table with a header; numbers right-aligned."""
    if not rows:
        return "(no rows)"
    names = list(rows[0])
    cells = [[_cell(row[name]) for name in names] for row in rows]
    widths = [max(len(name), *(len(r[k]) for r in cells)) for k, name in enumerate(names)]
    right = [isinstance(rows[0][name], (int, float)) for name in names]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ).rstrip()

    return "\n".join([line(names), *(line(c) for c in cells)])


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return f"({', '.join(map(str, value))}{',' if len(value) == 1 else ''})"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _rows(text: str) -> int:
    """A number of rows, 0 or more (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a number of rows: {text!r} (0 or more)")
    return value
