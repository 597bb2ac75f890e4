"""The commands of datasets that change: their arguments and what they run."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(commands: Any) -> None:
    """Add this package's subcommands to the ``acumen`` parser."""
    history = commands.add_parser("history", help="list a dataset's versions, oldest first")
    history.add_argument("path")
    history.add_argument("--json", action="store_true", help="a JSON list, for scripts")


NAMES = ("history",)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand ``args.command`` (one of :data:`NAMES`); the exit status."""
    if args.command == "history":
        from acumen.versions.history import format_history, history

        print(format_history(history(args.path), args.json))
    return 0
