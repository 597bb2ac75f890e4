"""The commands of datasets that change: their arguments and what they run."""

from __future__ import annotations

import argparse
from typing import Any

from acumen.cli_options import add_remote_options, check_used, for_path, positive_count


def add_parsers(commands: Any) -> None:
    """Add this package's subcommands to the ``acumen`` parser."""
    history = commands.add_parser("history", help="list a dataset's versions, oldest first")
    history.add_argument("path")
    history.add_argument("--json", action="store_true", help="a JSON list, for scripts")
    add_remote_options(history)
    concat = commands.add_parser(
        "concat", help="a new dataset of the samples of others (their chunk files hard-linked)"
    )
    concat.add_argument("out", help="the new dataset's folder (absent or empty)")
    concat.add_argument("sources", nargs="+", help="the datasets, in order")
    concat.add_argument(
        "--copy", action="store_true", help="copy the chunk files (another file system)"
    )
    delete = commands.add_parser(
        "delete", help="delete samples in a new version (nothing is rewritten)"
    )
    delete.add_argument("path")
    which = delete.add_mutually_exclusive_group(required=True)
    which.add_argument("--where", help='a condition on the metadata, e.g. "label == -1"')
    which.add_argument(
        "--indices", type=_indices, help="sample numbers of the newest version, e.g. 3,5,7"
    )
    compact = commands.add_parser(
        "compact", help="one index segment of live rows; mostly deleted chunk files rewritten"
    )
    compact.add_argument("path")
    compact.add_argument(
        "--min-live",
        type=_share,
        default=0.5,
        help="rewrite chunk files whose live bytes are below this share of them (default 0.5)",
    )
    vacuum = commands.add_parser(
        "vacuum", help="remove the files no kept version names (old versions stop opening)"
    )
    vacuum.add_argument("path")
    vacuum.add_argument(
        "--keep", type=positive_count, default=1, help="how many newest versions keep their files"
    )
    vacuum.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    vacuum.add_argument(
        "--grace",
        type=float,
        help="a URL: leave objects younger than this many seconds (default 3600: a writer "
        "may still be uploading them)",
    )
    add_remote_options(vacuum)


NAMES = ("history", "concat", "delete", "compact", "vacuum")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand ``args.command`` (one of :data:`NAMES`); the exit status."""
    if args.command == "history":
        from acumen.versions.history import format_history, history

        check_used(args, args.path)
        options = for_path(args, args.path).get("storage_options")
        print(format_history(history(args.path, storage_options=options), args.json))
    elif args.command == "concat":
        from acumen.versions.concat import concat

        manifest = concat(args.sources, args.out, link=not args.copy)
        how = "copied" if args.copy else "hard-linked"
        print(
            f"{args.out}: {manifest.n_samples:,} samples from {len(args.sources)} datasets "
            f"({len(manifest.chunks)} chunk files {how})"
        )
    elif args.command == "delete":
        from acumen.versions.delete import delete_samples

        print(delete_samples(args.path, where=args.where, indices=args.indices))
    elif args.command == "compact":
        from acumen.versions.compact import compact_dataset

        print(compact_dataset(args.path, min_live=args.min_live))
    elif args.command == "vacuum":
        from acumen.versions.vacuum import vacuum

        check_used(args, args.path)
        options = for_path(args, args.path).get("storage_options")
        print(
            vacuum(
                args.path,
                keep=args.keep,
                dry_run=args.dry_run,
                storage_options=options,
                grace=args.grace,
            )
        )
    return 0


def _indices(text: str) -> list[int]:
    """``3,5,7`` (an argparse type): sample numbers, separated by commas."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"not sample numbers separated by commas: {text!r}")
    return values


def _share(text: str) -> float:
    """A number from 0 to 1 (an argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"not a share from 0 to 1: {text!r}")
    return value
