"""``acumen info PATH``: a dataset summarised for people (``--json`` for scripts,
``--manifest`` for the manifest as it is stored)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from acumen.cli_options import add_remote_options, check_used, for_path
from acumen.progress import size_text

NAMES = ("info",)


def add_parsers(commands: Any) -> None:
    """Add ``info`` to the ``acumen`` parser."""
    info = commands.add_parser(
        "info",
        help="summarise a dataset: samples, dtype and shapes, codec, sizes, chunks, metadata "
        "statistics, versions",
    )
    info.add_argument("path", help="a folder or a URL (s3://, gs://, https://...)")
    shown = info.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="a JSON object, for scripts")
    shown.add_argument(
        "--manifest", action="store_true", help="the dataset's repr and its manifest as JSON"
    )
    add_remote_options(info)


def run(args: argparse.Namespace) -> int:
    """Run ``acumen info``; the exit status."""
    import acumen

    check_used(args, args.path)
    options = for_path(args, args.path)
    with acumen.open(args.path, **options) as ds:
        if args.manifest:
            print(_manifest(ds))
            return 0
        from acumen.commands.summary import summarize

        summary = summarize(ds, args.path, options.get("storage_options"))
    print(json.dumps(summary, indent=1, ensure_ascii=False) if args.json else describe(summary))
    return 0


def _manifest(ds: Any) -> str:
    from acumen.format.checksums import sealed

    if ds.manifest is None:
        return f"{ds!r}\noriginal acumenindexer dataset (no manifest)"
    manifest = json.dumps(sealed(ds.manifest.to_json()), indent=1, ensure_ascii=False)
    return f"{ds!r}\n{manifest}"


def describe(summary: dict[str, Any]) -> str:
    """The summary as lines of text, one topic a line."""
    from acumen.commands.summary import shape_text

    n = summary["samples"]
    lines = [f"{summary['path']}: {n:,} sample{'s' if n != 1 else ''}{_schema(summary)}"]

    def add(label: str, text: str) -> None:
        lines.append(f"  {label:<11} {text}")

    for field in summary["fields"] or []:
        kind = "bytes" if field["type"] == "bytes" else field["dtype"]
        add(
            f"field {field['name']}",
            f"{kind}, shape {shape_text(field['shape'])}, codec {plugin_text(field['codec'])}",
        )
    if summary["codec"] is not None:
        add("codec", plugin_text(summary["codec"]))
    index = summary["index"]
    add("index", f"{plugin_text(index)} ({index.get('file', 'index')})")
    add("storage", summary["storage"])
    add("size", _size_text(summary["size"]))
    add("chunks", _chunks_text(summary["chunks"]))
    written = summary["written_by"]
    if written is None:
        add("written by", "original acumenindexer dataset (no manifest)")
    else:
        add(
            "written by",
            f"acumen {written['acumen_version']} (format version {written['format_version']})",
        )
    columns = summary["metadata"]
    add(
        "metadata",
        f"{len(columns)} column{'s' if len(columns) != 1 else ''}" if columns else "none",
    )
    width = max((len(c["name"]) for c in columns), default=0)
    for column in columns:
        lines.append(f"    {column['name']:<{width}}  {column['type']:<5}  {_stats_text(column)}")
    versions = summary["versions"]
    if versions is not None:
        add("versions", f"version {versions['current']} of {versions['count']}; the last:")
        for entry in versions["last"]:
            deleted = f", {entry['n_deleted']:,} deleted" if entry["n_deleted"] else ""
            lines.append(
                f"    {entry['version']:>4}  {entry['operation']:<8} {entry['committed_at']}  "
                f"{entry['n_samples']:,} samples{deleted}"
            )
    return "\n".join(lines)


def _schema(summary: dict[str, Any]) -> str:
    from acumen.commands.summary import shape_text

    if summary["fields"] is not None:
        return f", {len(summary['fields'])} fields"
    codec = summary["codec"]["name"]
    return f", {summary['dtype']}, shape {shape_text(summary['shape'])}, codec {codec}"


def plugin_text(config: dict[str, Any]) -> str:
    """``zstd (level 3)``: a plugin's name and its settings."""
    settings = config.get("configuration") or {}
    shown = ", ".join(f"{key} {_value(value)}" for key, value in settings.items())
    return f"{config['name']} ({shown})" if shown else config["name"]


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _size_text(size: dict[str, Any]) -> str:
    if size["counted"] == "every file in the folder":
        text = f"{size_text(size['bytes'])} on disk (chunk files {size_text(size['chunk_bytes'])})"
    else:
        text = f"{size_text(size['bytes'])} of chunk files (as the manifest lists them)"
    if size["ratio"] is not None:
        text += f"; {size['ratio']:.2f}x the arrays' {size_text(size['raw_bytes'])} raw"
    return text


def _chunks_text(chunks: dict[str, Any]) -> str:
    count = chunks["count"]
    text = f"{count:,} file{'s' if count != 1 else ''}"
    if count:
        low, high = chunks["min_bytes"], chunks["max_bytes"]
        each = " each" if count > 1 else ""
        if low == high:
            text += f", {size_text(low)}{each}"
        else:
            median = size_text(chunks["median_bytes"])
            text += f", {size_text(low)} to {size_text(high)} (median {median})"
        few, most = chunks["min_samples"], chunks["max_samples"]
        text += f", {few:,}{f' to {most:,}' if most != few else ''} samples{each}"
    if chunks["target_bytes"]:
        text += f"; target {size_text(chunks['target_bytes'])}"
    return text


def _stats_text(column: dict[str, Any]) -> str:
    if "share_true" in column:
        return f"{column['share_true']:.1%} true"
    if "mean" in column:
        nan = f", {column['nan']:,} NaN" if column.get("nan") else ""
        return f"min {_number(column['min'])}, max {_number(column['max'])}, mean " + (
            f"{_number(column['mean'])}{nan}"
        )
    if "distinct" in column:
        common = ", ".join(f"{value!r} ({count:,})" for value, count in column["most_common"])
        return f"{column['distinct']:,} distinct; most common: {common}"
    if column.get("nan"):
        return f"all {column['nan']:,} NaN"
    return "(no values)"


def _number(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.6g}"
