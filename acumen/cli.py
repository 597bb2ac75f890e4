"""The ``acumen`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from acumen.checksums import sealed
from acumen.errors import AcumenError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acumen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="convert a generated dataset and read it back")
    demo.add_argument("--samples", type=int, default=20_000)
    demo.add_argument("--output", help="keep the datasets in this folder")
    info = commands.add_parser("info", help="describe a dataset")
    info.add_argument("path")
    commands.add_parser("plugins", help="list installed plugins")
    verify = commands.add_parser(
        "verify", help="check every chunk against its checksum and every sample decodes"
    )
    verify.add_argument("path")
    verify.add_argument("--jobs", type=int, help="files checked at once (default: up to 4)")
    verify.add_argument("--chunks-only", action="store_true", help="do not decode samples")
    verify.add_argument("--dtype", help="dtype of an original acumenindexer dataset")
    verify.add_argument("--gzip", action="store_true", help="an original dataset uses gzip")
    convert = commands.add_parser(
        "convert", help="convert files into a dataset as a config (TOML, YAML, JSON) describes"
    )
    convert.add_argument("config")
    convert.add_argument("--no-progress", action="store_true", help="no progress display")
    convert.add_argument(
        "--check",
        action="store_true",
        help="read every item, write nothing, list the unreadable ones (exit 1 if any)",
    )
    recode = commands.add_parser(
        "recode",
        help="re-write a dataset with another codec, index format or chunk size, and verify it",
    )
    recode.add_argument("source")
    recode.add_argument("destination")
    recode.add_argument("--codec", help="codec name (default: the source's)")
    recode.add_argument("--level", type=int, help="the codec's compression level")
    recode.add_argument("--index", help="index format: csv, parquet, arrow...")
    recode.add_argument("--chunk-size", type=_byte_size, help="e.g. 64MiB (default: source's)")
    recode.add_argument("--jobs", type=int, default=1, help="worker processes (-1: all cores)")
    recode.add_argument("--no-verify", action="store_true", help="skip the read-back check")
    recode.add_argument(
        "--skip-damaged",
        action="store_true",
        help="leave samples that fail the source's checksums out of the copy (listed in "
        "DESTINATION/recode-skipped.json) instead of stopping",
    )
    recode.add_argument("--dtype", help="dtype of an original acumenindexer source")
    recode.add_argument("--gzip", action="store_true", help="an original source uses gzip")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from acumen.demo import run

            run(args.samples, args.output)
        elif args.command == "info":
            _info(args.path)
        elif args.command == "plugins":
            _plugins()
        elif args.command == "recode":
            _recode(args)
        elif args.command == "verify":
            from acumen.verify import verify as run_verify

            options = {"dtype": args.dtype} if args.dtype else {}
            if args.gzip:
                options["use_gzip"] = True
            report = run_verify(args.path, jobs=args.jobs, samples=not args.chunks_only, **options)
            print(report)
            return 0 if report.ok else 1
        elif args.command == "convert":
            from acumen.convert import check, convert

            progress = False if args.no_progress else None
            if args.check:
                checked = check(args.config, progress=progress)
                print(checked)
                return 0 if checked.ok else 1
            print(convert(args.config, progress=progress))
    except (AcumenError, OSError) as error:  # OSError: a file the system will not read
        print(f"acumen: error: {error}", file=sys.stderr)
        return 1
    return 0


def _byte_size(text: str) -> int:
    from acumen.convert.config import parse_byte_size

    size = parse_byte_size(text)
    if size is None or size <= 0:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 10485760, 64MiB, 10MB)")
    return size


def _recode(args: argparse.Namespace) -> None:
    from acumen import plugins
    from acumen.opening import open_dataset
    from acumen.recode import SKIPPED_REPORT, recode

    source_options: dict = {}
    if args.dtype:
        source_options["dtype"] = args.dtype
    if args.gzip:
        source_options["use_gzip"] = True
    codec = args.codec
    if args.level is not None:
        if codec is None:
            with open_dataset(args.source, **source_options) as src:
                codec = src.codec.name
        codec = {"name": codec, "configuration": {"level": args.level}}
    if codec is not None:
        plugins.codec(codec)  # a bad name or level is reported before any work
    manifest = recode(
        args.source,
        args.destination,
        codec=codec,
        index_format=args.index,
        chunk_size_bytes=args.chunk_size,
        n_jobs=args.jobs,
        verify=not args.no_verify,
        source_options=source_options,
        on_damage="skip" if args.skip_damaged else "stop",
    )
    total = sum(c.size_bytes for c in manifest.chunks)
    checked = "verified" if not args.no_verify else "not verified"
    print(
        f"{args.destination}: {manifest.n_samples:,} samples, {len(manifest.chunks)} chunk "
        f"files, {total:,} bytes, codec {manifest.codec['name']}, index "
        f"{manifest.index['name']}; {checked}"
    )
    report = Path(args.destination) / SKIPPED_REPORT
    if args.skip_damaged and report.is_file():
        skipped = len(json.loads(report.read_text(encoding="utf-8"))["skipped"])
        print(f"{skipped:,} damaged sample(s) left out, listed in {report}")


def _info(path: str) -> None:
    import acumen

    with acumen.open(path) as ds:
        print(repr(ds))
        if ds.manifest is not None:
            print(json.dumps(sealed(ds.manifest.to_json()), indent=1, ensure_ascii=False))
        else:
            print("original acumenindexer dataset (no manifest)")


def _plugins() -> None:
    from acumen import plugins
    from acumen.hookspecs import KINDS

    registry = plugins.registry()
    for kind, (_, _, label) in KINDS.items():
        print(f"{label}s:")
        for name, entry in sorted(registry.entries(kind).items()):
            source = f"{entry.distribution} {entry.version}" if entry.distribution else entry.plugin
            print(f"  {name:<10} {entry.target:<45} {source}")
    for failure in registry.failures:
        print(f"failed: {failure.plugin} ({failure.distribution}): {failure.reason}")


if __name__ == "__main__":
    sys.exit(main())
