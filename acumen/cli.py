"""The ``acumen`` command."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acumen.cli_options import add_remote_options, check_used, for_path
from acumen.cli_options import positive_count as _count
from acumen.commands import completion, head, info, show
from acumen.commands import shuffle_report as shuffle_command
from acumen.commands import view as view_command
from acumen.commands.parser import Parser, version_text
from acumen.errors import AcumenError, quote
from acumen.format.layout import WRITING_MARKER
from acumen.versions import commands as version_commands

#: The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130
#: Set to 1 for the traceback of an error, as ``--debug`` does.
DEBUG_ENVIRONMENT = "ACUMEN_DEBUG"
#: Subcommands in modules of their own: each has ``add_parsers``, ``NAMES`` and ``run``.
COMMAND_MODULES = (info, head, show, version_commands, shuffle_command, view_command)


class UsageError(AcumenError, ValueError):
    """A command's arguments cannot work together (a level for a codec that has none)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every error a user can cause is one line on stderr and exit 1
    (2 for a usage mistake, 130 for Ctrl-C), never a traceback (``--debug`` or
    ``$ACUMEN_DEBUG=1`` print it)."""
    parser = build_parser()
    parser.argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENVIRONMENT, "") not in ("", "0")
    try:
        return _run(args, parser)
    except BrokenPipeError:  # `acumen head ... | head -3`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (AcumenError, OSError, ValueError) as error:
        # OSError: a file the system will not read; ValueError: a value the user gave (a
        # setting a plugin's constructor refuses, a value in a config).
        if debug:
            traceback.print_exc()
        print(f"acumen: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"acumen: interrupted{_after_interrupt(args)}", file=sys.stderr)
        return INTERRUPTED
    except Exception as error:  # a bug: still one line, and how to see more
        if debug:
            traceback.print_exc()
        hint = "" if debug else f" (run `acumen --debug {args.command} ...` for the traceback)"
        print(
            f"acumen: error: unexpected {type(error).__name__}: {_one_line(error)}{hint}",
            file=sys.stderr,
        )
        return 1


def build_parser() -> Parser:
    """The ``acumen`` command's parser, every subcommand included."""
    parser = Parser(prog="acumen", description=__doc__)
    parser.add_argument("-V", "--version", action="version", version=version_text())
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"print the traceback of an error (also ${DEBUG_ENVIRONMENT}=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="convert a generated dataset and read it back")
    demo.add_argument("--samples", type=_count, default=20_000)
    demo.add_argument("--output", help="keep the datasets in this folder")
    info.add_parsers(commands)
    head.add_parsers(commands)
    show.add_parsers(commands)
    commands.add_parser("plugins", help="list installed plugins")
    verify = commands.add_parser(
        "verify", help="check every chunk against its checksum and every sample decodes"
    )
    verify.add_argument("path", help="a folder or a URL (s3://, gs://, https://...)")
    verify.add_argument(
        "--jobs", type=_count, help="files (for a URL: 16 MiB blocks) checked at once (default: 4)"
    )
    verify.add_argument("--chunks-only", action="store_true", help="do not decode samples")
    which = verify.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="check this version (default: the newest)")
    which.add_argument(
        "--all-versions", action="store_true", help="check every version, oldest first"
    )
    verify.add_argument("--dtype", type=_dtype, help="dtype of an original acumenindexer dataset")
    verify.add_argument("--gzip", action="store_true", help="an original dataset uses gzip")
    add_remote_options(verify)
    convert = commands.add_parser(
        "convert", help="convert files into a dataset as a config (TOML, YAML, JSON) describes"
    )
    convert.add_argument("config")
    add_remote_options(convert)  # for a URL output.path
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
    recode.add_argument("source", help="a folder or a URL")
    recode.add_argument("destination", help="a new folder or URL")
    recode.add_argument(
        "--codec",
        type=_plugin_spec,
        help='codec name, or JSON {"name": ..., "configuration": {...}} as in a config '
        "(default: the source's)",
    )
    recode.add_argument(
        "--level", type=int, help="the codec's compression level (codecs that have one)"
    )
    recode.add_argument(
        "--index", type=_plugin_spec, help="index format: csv, parquet, arrow... (or JSON)"
    )
    recode.add_argument("--chunk-size", type=_byte_size, help="e.g. 64MiB (default: source's)")
    recode.add_argument("--jobs", type=_jobs, default=1, help="worker processes (-1: all cores)")
    recode.add_argument("--no-verify", action="store_true", help="skip the read-back check")
    recode.add_argument(
        "--skip-damaged",
        action="store_true",
        help="leave samples that fail the source's checksums out of the copy (listed in "
        "DESTINATION/recode-skipped.json) instead of stopping",
    )
    recode.add_argument("--dtype", type=_dtype, help="dtype of an original acumenindexer source")
    recode.add_argument("--gzip", action="store_true", help="an original source uses gzip")
    add_remote_options(recode)  # for source and destination alike
    clean = commands.add_parser(
        "clean", help="remove what an interrupted upload left at a URL (never a dataset)"
    )
    clean.add_argument("url")
    clean.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    add_remote_options(clean)
    version_commands.add_parsers(commands)
    shuffle_command.add_parsers(commands)
    view_command.add_parsers(commands)
    completion.add_parsers(commands)
    return parser


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the subcommand ``args`` names; the exit status."""
    for module in COMMAND_MODULES:
        if args.command in module.NAMES:
            return module.run(args)
    if args.command in completion.NAMES:
        return completion.run(args, parser)
    if args.command == "demo":
        from acumen.demo import run

        run(args.samples, args.output)
    elif args.command == "plugins":
        _plugins()
    elif args.command == "recode":
        _recode(args)
    elif args.command == "verify":
        from acumen.verify import verify as run_verify

        check_used(args, args.path)
        options = {"dtype": args.dtype} if args.dtype else {}
        if args.gzip:
            options["use_gzip"] = True
        options.update(for_path(args, args.path))
        versions: list[int | None] = [args.version]
        if args.all_versions:
            from acumen.versions.history import history

            versions = [entry.version for entry in history(args.path)]
        ok = True
        for version in versions:
            chosen = {"version": version} if version is not None else {}
            report = run_verify(
                args.path, jobs=args.jobs, samples=not args.chunks_only, **options, **chosen
            )
            print(f"version {version}: {report}" if len(versions) > 1 else report)
            ok = ok and report.ok
        return 0 if ok else 1
    elif args.command == "convert":
        from acumen.cli_options import convert_config
        from acumen.convert import check, convert
        from acumen.convert.config import load_config

        progress = False if args.no_progress else None
        config = convert_config(load_config(args.config), args)
        if args.check:
            checked = check(config, progress=progress)
            print(checked)
            return 0 if checked.ok else 1
        print(convert(config, progress=progress))
    elif args.command == "clean":
        from acumen.clean import clean
        from acumen.cli_options import storage_options

        print(clean(args.url, storage_options=storage_options(args), dry_run=args.dry_run))
    return 0


def _one_line(error: BaseException) -> str:
    """The error's message on one line (a message with several keeps them, joined)."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _after_interrupt(args: argparse.Namespace) -> str:
    """What Ctrl-C left, and what to do about it."""
    if args.command == "convert":
        return (
            "; the conversion can be resumed: run the same command again "
            f"(acumen convert {args.config}) and it goes on from where it stopped"
        )
    if args.command == "clean":
        return f"; run it again (acumen clean {args.url}) to remove what is left"
    if args.command == "verify":
        return f"; verify only reads, nothing changed: run it again (acumen verify {args.path})"
    if args.command == "recode" and (Path(args.destination) / WRITING_MARKER).exists():
        return f"; {args.destination} is left incomplete: remove it before recoding again"
    return ""


def _jobs(text: str) -> int:
    """A number of worker processes, or -1 for every core (an argparse type)."""
    if text.strip() == "-1":
        return -1
    try:
        return _count(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"not a number of processes: {text!r} (a positive whole number, or -1 for all cores)"
        ) from None


def _dtype(text: str) -> str:
    """A numpy dtype name (an argparse type)."""
    import numpy as np

    try:
        np.dtype(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"not a dtype: {text!r} (e.g. float32, uint8, <f2)"
        ) from None
    return text


def _plugin_spec(text: str) -> str | dict[str, Any]:
    """A plugin as a config names it: a name, or JSON ``{"name", "configuration"}``."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            'empty: give a name, or {"name": "...", "configuration": {...}}'
        )
    if not text.lstrip().startswith("{"):
        return text
    try:
        spec = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}: {quote(text)}") from None
    configuration = spec.get("configuration", {}) if isinstance(spec, dict) else None
    if (
        not isinstance(spec, dict)
        or not isinstance(spec.get("name"), str)
        or set(spec) - {"name", "configuration"}
        or not isinstance(configuration, dict)
    ):
        raise argparse.ArgumentTypeError(
            f'expected a name or {{"name": "...", "configuration": {{...}}}}, got {quote(spec)}'
        )
    return {"name": spec["name"], "configuration": configuration}


def _byte_size(text: str) -> int:
    from acumen.convert.config import parse_byte_size

    size = parse_byte_size(text)
    if size is None or size <= 0:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 10485760, 64MiB, 10MB)")
    return size


def _recode(args: argparse.Namespace) -> None:
    from acumen import plugins
    from acumen.read.opening import open_dataset
    from acumen.recode import SKIPPED_REPORT, recode, skipped_report

    check_used(args, args.source, args.destination)
    source_options: dict = for_path(args, args.source)
    if args.dtype:
        source_options["dtype"] = args.dtype
    if args.gzip:
        source_options["use_gzip"] = True
    codec = args.codec
    if args.level is not None:
        if codec is None:
            with open_dataset(args.source, **source_options) as src:
                names = sorted({r.codec.name for r in src.field_readers} or {src.codec.name})
            if len(names) > 1:
                raise UsageError(
                    f"--level: the fields of {args.source} use codecs {', '.join(names)}: "
                    "say which with --codec"
                )
            codec = names[0]
        codec = _with_level(codec, args.level)
    # A bad name or setting is reported before any work.
    if codec is not None:
        _checked("--codec", plugins.codec, codec)
    if args.index is not None:
        _checked("--index", plugins.index_format, args.index)
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
        **for_path(args, args.destination),
    )
    total = sum(c.size_bytes for c in manifest.chunks)
    checked = "verified" if not args.no_verify else "not verified"
    print(
        f"{args.destination}: {manifest.n_samples:,} samples, {len(manifest.chunks)} chunk "
        f"files, {total:,} bytes, codec {manifest.codec['name']}, index "
        f"{manifest.index['name']}; {checked}"
    )
    if args.skip_damaged:
        report = skipped_report(args.destination, for_path(args, args.destination))
        if report is not None:
            skipped = len(json.loads(report)["skipped"])
            where = f"{str(args.destination).rstrip('/')}/{SKIPPED_REPORT}"
            print(f"{skipped:,} damaged sample(s) left out, listed in {where}")


def _with_level(codec: str | dict[str, Any], level: int) -> dict[str, Any]:
    """``codec`` (a name or config) with ``level`` added, if the codec has a level."""
    from acumen import plugins

    spec = {"name": codec, "configuration": {}} if isinstance(codec, str) else codec
    name, configuration = spec["name"], dict(spec["configuration"])
    options = _options(plugins.plugin_class("codec", name))
    if options is not None and "level" not in options:
        if not options:
            raise UsageError(f"--level: codec {name!r} has no level (it has no settings)")
        raise UsageError(
            f"--level: codec {name!r} has no level; its settings: {', '.join(options)}; give "
            f'them as --codec \'{{"name": "{name}", "configuration": {{...}}}}\''
        )
    if configuration.get("level", level) != level:
        raise UsageError(
            f"--level {level} contradicts the level {configuration['level']!r} in --codec; "
            "give it once"
        )
    return {"name": name, "configuration": {**configuration, "level": level}}


def _options(cls: type) -> list[str] | None:
    """The keyword options a plugin class takes; None when it takes any (``**kwargs``)."""
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):  # no signature to read: let the plugin decide
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _checked(option: str, make: Any, spec: str | dict[str, Any]) -> None:
    """Build the plugin ``spec`` names; what its constructor refuses names the option."""
    try:
        make(spec)
    except AcumenError:
        raise  # not installed: the message lists what is
    except (TypeError, ValueError) as error:
        shown = spec if isinstance(spec, str) else json.dumps(spec)
        raise UsageError(f"{option} {shown}: {error}") from None


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
