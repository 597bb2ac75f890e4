"""The commands of datasets that change: their arguments and what they run."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(commands: Any) -> None:
    """Add this package's subcommands to the ``acumen`` parser."""
    history = commands.add_parser("history", help="list a dataset's versions, oldest first")
    history.add_argument("path")
    history.add_argument("--json", action="store_true", help="a JSON list, for scripts")
    concat = commands.add_parser(
        "concat", help="a new dataset of the samples of others (their chunk files hard-linked)"
    )
    concat.add_argument("out", help="the new dataset's folder (absent or empty)")
    concat.add_argument("sources", nargs="+", help="the datasets, in order")
    concat.add_argument(
        "--copy", action="store_true", help="copy the chunk files (another file system)"
    )


NAMES = ("history", "concat")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand ``args.command`` (one of :data:`NAMES`); the exit status."""
    if args.command == "history":
        from acumen.versions.history import format_history, history

        print(format_history(history(args.path), args.json))
    elif args.command == "concat":
        from acumen.versions.concat import concat

        manifest = concat(args.sources, args.out, link=not args.copy)
        how = "copied" if args.copy else "hard-linked"
        print(
            f"{args.out}: {manifest.n_samples:,} samples from {len(args.sources)} datasets "
            f"({len(manifest.chunks)} chunk files {how})"
        )
    return 0
