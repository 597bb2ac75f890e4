"""What the hand-written parts of acumen buy, measured against the libraries they replace.

    .venv/bin/python benchmarks/handwritten.py [--rows 1000000] [--chunks 1000] [--repeats 5]
        [--shapes fixed,variable] [--msgspec-path /tmp/msgspec_pkg]

1. The ``csv`` index writer: ``csv_text.csv_bytes`` (what ``CsvIndex.write`` stores) against
   ``table.to_frame().to_csv(index=False, lineterminator=...)`` encoded to UTF-8 (what it
   replaced), for an index of ``--rows`` samples in 10 MiB chunks (``make_table`` of
   ``benchmarks/open_index.py``: offsets, sizes, a fixed or a varying shape column, an int
   and a str metadata column). The two byte strings are compared and the result printed;
   ``to_frame()`` and the line-terminator scan are timed on their own.
2. The manifest's validator: a dataset of ``--chunks`` chunk files is written with
   ``acumen.Writer`` (ten tiny samples a chunk), then its ``manifest.json`` is loaded:
   ``json.loads`` alone, ``Manifest.from_json`` without the seal (the validation), the seal
   check (``manifest_seal``), ``Manifest.load`` in all, and ``acumen.open`` of the dataset
   for scale. When msgspec imports (``--msgspec-path`` adds a folder holding it to
   ``sys.path``), the same bytes are decoded into typed ``msgspec.Struct`` classes that
   mirror the manifest's keys, and both libraries' messages for one damaged value (a
   chunk's ``size_bytes`` written as a string) are printed side by side.
3. The conversion config's validator: ``load_config`` of the TOML example of
   ``docs/convert.md`` (and of the same config as JSON) against the parser alone, and
   ``load_config`` of the parsed dict (the validation alone).

Every time is a median over rounds that run the competing calls in turn, so a busy machine
slows them alike: ``--repeats`` rounds for part 1, three times as many for the short parts
2 and 3 (which also loop inside each round).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from open_index import make_table  # the same index the open benchmark measures

import acumen
from acumen.convert.config import load_config
from acumen.errors import ManifestError
from acumen.format.checksums import SEAL_KEY, manifest_seal, sealed
from acumen.format.layout import MANIFEST_FILE
from acumen.format.manifest import Manifest
from acumen.index_formats.csv_text import csv_bytes, line_terminator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SAMPLES_PER_CHUNK = 10  # manifest benchmark: tiny samples per chunk file
CONFIG_TOML = """\
# convert.toml: every .npy file under scans/ into one dataset
[source]
glob = "scans/**/*.npy"
path_metadata = "path"

[reader]
name = "npy"

[output]
path = "scans-dataset"
codec = { name = "zstd", configuration = { level = 9 } }
index_format = "parquet"
chunk_size = "64MiB"

[run]
n_jobs = -1
on_error = "skip"
part_size = 20
"""


def medians(calls: list[Callable[[], object]], repeats: int, number: int = 1) -> list[float]:
    """Median seconds of one call of each, over ``repeats`` rounds that run ``number`` calls
    of each in turn (interleaved, so a busy machine slows all of them alike)."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for call, spent in zip(calls, times, strict=True):
            gc.collect()
            start = time.perf_counter()
            for _ in range(number):
                result = call()
            spent.append((time.perf_counter() - start) / number)
            del result
    return [statistics.median(spent) for spent in times]


def show(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def row(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:52} {show(seconds):>11}  {note}", flush=True)


# 1. the csv index ------------------------------------------------------------------------


def bench_csv(rows: int, kinds: list[str], repeats: int) -> None:
    print(f"1. csv index writing, {rows:,} rows")
    for kind in kinds:
        table, chunks = make_table(rows, kind == "variable")
        terminator = line_terminator(table)
        ours = csv_bytes(table, terminator)
        theirs = table.to_frame().to_csv(index=False, lineterminator=terminator).encode("utf-8")
        print(
            f" {kind} shapes, {len(chunks):,} chunks: {len(ours) / 1e6:.1f} MB; bytes equal to "
            f"pandas': {ours == theirs}"
        )
        del ours, theirs
        frame = table.to_frame()
        scan, texts_s, ours_s, frame_s, to_csv_s = medians(
            [
                lambda t=table: line_terminator(t),
                lambda s=table.shapes: s.to_texts(),
                lambda t=table, e=terminator: csv_bytes(t, e),
                lambda t=table: t.to_frame(),
                lambda f=frame, e=terminator: f.to_csv(index=False, lineterminator=e).encode(),
            ],
            repeats,
        )
        del frame
        pandas_s = frame_s + to_csv_s
        row("line_terminator(table) (both ways need it)", scan)
        row("shapes.to_texts() (inside both ways)", texts_s)
        row("acumen csv_bytes(table, terminator)", ours_s, f"{ours_s / rows * 1e9:.0f} ns/row")
        row("pandas: table.to_frame()", frame_s)
        row("pandas: frame.to_csv(...).encode()", to_csv_s)
        row(
            "pandas: to_frame + to_csv + encode",
            pandas_s,
            f"{pandas_s / ours_s:.2f}x acumen's time (+{show(pandas_s - ours_s)})",
        )
        mine, theirs = ours_s - texts_s, pandas_s - texts_s
        print(
            f"  {'both without shapes.to_texts()':52} {show(mine):>11} vs {show(theirs)}: "
            f"{theirs / mine:.2f}x"
        )
        del table


# 2. the manifest -------------------------------------------------------------------------


def write_dataset(root: Path, chunks: int) -> None:
    """``chunks`` chunk files of ``SAMPLES_PER_CHUNK`` float32 (16,) samples each."""
    sample_bytes = 16 * 4
    rng = np.random.default_rng(0)
    splits = ("train", "val", "test")
    with acumen.Writer(
        root, chunk_size_bytes=SAMPLES_PER_CHUNK * sample_bytes, durable=False
    ) as writer:
        for i in range(chunks * SAMPLES_PER_CHUNK):
            writer.add(rng.random(16, dtype=np.float32), label=i % 1000, split=splits[i % 3])


def msgspec_manifest_type(msgspec: Any) -> type:
    """Typed Structs mirroring the keys of a written manifest (unknown keys ignored, as
    ``Manifest.from_json`` ignores them); counts are non-negative, checksums match.
    Built with ``defstruct``: this module's annotations are strings."""
    count = Annotated[int, msgspec.Meta(ge=0)]
    checksum = Annotated[str, msgspec.Meta(pattern=r"^xxh3_64:[0-9a-f]{16}$")]
    config = ("configuration", dict[str, Any], {})
    plugin = msgspec.defstruct("PluginConfig", [("name", str), config])
    index = msgspec.defstruct("IndexConfig", [("name", str), ("file", str), config])
    layout = msgspec.defstruct(
        "Layout", [("chunk_size_bytes", count), ("chunk_file_pattern", str | None, None)]
    )
    chunk = msgspec.defstruct(
        "Chunk",
        [
            ("file", str),
            ("size_bytes", count),
            ("n_samples", count),
            ("checksum", checksum | None, None),
        ],
    )
    column = msgspec.defstruct("Column", [("name", str), ("type", str)])
    return msgspec.defstruct(
        "ManifestStruct",
        [
            ("format", str),
            ("format_version", int),
            ("n_samples", count),
            ("dtype", Any),
            ("shape", list[count] | None),
            ("codec", plugin),
            ("index", index),
            ("layout", layout),
            ("chunks", list[chunk]),
            ("metadata", list[column]),
            ("acumen_version", str, "unknown"),
            ("plugins", dict[str, Any], {}),
            ("fields", list[dict[str, Any]] | None, None),
            ("files", dict[str, checksum], {}),
            ("manifest_checksum", checksum | None, None),
        ],
    )


def import_msgspec(path: str | None) -> Any:
    if path:
        sys.path.insert(0, path)
    try:
        import msgspec
    except ImportError:
        return None
    return msgspec


def bench_manifest(chunks: int, repeats: int, msgspec_path: str | None) -> None:
    number = max(1, 100 // max(1, chunks // 100))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        start = time.perf_counter()
        write_dataset(root, chunks)
        built = time.perf_counter() - start
        path = root / MANIFEST_FILE
        data = path.read_bytes()
        raw = json.loads(data)
        assert len(raw["chunks"]) == chunks, len(raw["chunks"])
        print(
            f"2. manifest.json of {chunks:,} chunks ({len(data) / 1e3:.0f} KB; the dataset "
            f"written in {show(built)})"
        )
        unsealed = {k: v for k, v in raw.items() if k != SEAL_KEY}
        msgspec = import_msgspec(msgspec_path)
        calls = [
            path.read_bytes,
            lambda: json.loads(data.decode("utf-8")),
            lambda: Manifest.from_json(unsealed, path),
            lambda: manifest_seal(raw),
            lambda: Manifest.load(path),
            lambda: acumen.open(root),
        ]
        if msgspec is not None:
            decoder = msgspec.json.Decoder(msgspec_manifest_type(msgspec))
            typed = decoder.decode(data)
            assert len(typed.chunks) == chunks
            assert typed.chunks[0].file == raw["chunks"][0]["file"]
            calls.append(lambda: decoder.decode(data))
        read_s, loads_s, check_s, seal_s, load_s, open_s, *rest = medians(calls, repeats, number)
        row("path.read_bytes()", read_s)
        row("json.loads(bytes)", loads_s)
        row(
            "Manifest.from_json, no seal (the validation)",
            check_s,
            f"{check_s / chunks * 1e9:.0f} ns/chunk; {check_s / open_s:.0%} of acumen.open",
        )
        row("manifest_seal(raw) (the seal check)", seal_s)
        row("Manifest.load (read + loads + validate + seal)", load_s)
        row(
            f"acumen.open of the dataset ({chunks * SAMPLES_PER_CHUNK:,} samples)",
            open_s,
            f"Manifest.load is {load_s / open_s:.0%} of it",
        )

        if msgspec is None:
            print("  msgspec not installed (give --msgspec-path to a folder holding it)")
            return
        msgspec_s = rest[0]
        ours = loads_s + check_s
        row(
            f"msgspec {msgspec.__version__} typed decode (parse + validate)",
            msgspec_s,
            f"json.loads + from_json is {ours / msgspec_s:.1f}x it (+{show(ours - msgspec_s)})",
        )
        row(
            "read + msgspec decode + json.loads + seal check",
            read_s + msgspec_s + loads_s + seal_s,
            f"vs Manifest.load {show(load_s)}",
        )
        print("  (the seal hashes the raw dict's canonical text: a typed decode keeps json.loads)")

        damaged = json.loads(data)
        damaged["chunks"][3]["size_bytes"] = str(damaged["chunks"][3]["size_bytes"])
        damaged = sealed(damaged)
        try:
            Manifest.from_json(damaged, path)
        except ManifestError as error:
            print(f"  acumen on a chunk's size as a string:  {error}")
        try:
            decoder.decode(json.dumps(damaged).encode("utf-8"))
        except msgspec.ValidationError as error:
            print(f"  msgspec on a chunk's size as a string: {error}")


# 3. the conversion config ----------------------------------------------------------------


def bench_config(repeats: int) -> None:
    print("3. conversion config (the TOML example of docs/convert.md)")
    number = 200
    with tempfile.TemporaryDirectory() as tmp:
        toml_path = Path(tmp) / "convert.toml"
        toml_path.write_text(CONFIG_TOML, encoding="utf-8")
        parsed = tomllib.loads(CONFIG_TOML)
        json_text = json.dumps(parsed)
        json_path = Path(tmp) / "convert.json"
        json_path.write_text(json_text, encoding="utf-8")
        load_config(toml_path)  # plugin imports out of the timing
        toml_s, json_s, check_s, toml_all, json_all = medians(
            [
                lambda: tomllib.loads(CONFIG_TOML),
                lambda: json.loads(json_text),
                lambda: load_config(parsed),
                lambda: load_config(toml_path),
                lambda: load_config(json_path),
            ],
            repeats,
            number,
        )
        row("tomllib.loads(text)", toml_s)
        row("json.loads(text)", json_s)
        row("load_config(dict) (the validation, plugins built)", check_s)
        row("load_config(convert.toml) in all", toml_all)
        row("load_config(convert.json) in all", json_all)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="index rows (part 1)")
    parser.add_argument("--chunks", type=int, default=1_000, help="manifest chunks (part 2)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shapes", default="fixed,variable", help="shape kinds of part 1")
    parser.add_argument("--msgspec-path", help="a folder holding msgspec, put on sys.path")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, acumen {acumen.__version__}")
    bench_csv(args.rows, args.shapes.split(","), args.repeats)
    bench_manifest(args.chunks, 3 * args.repeats, args.msgspec_path)
    bench_config(3 * args.repeats)


if __name__ == "__main__":
    main()
