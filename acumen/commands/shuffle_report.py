"""``acumen shuffle-report``: how random a chunk-window shuffle is, and its I/O cost."""

from __future__ import annotations

import argparse
import json
from typing import Any

from acumen.cli_options import add_remote_options, check_used, for_path, positive_count


def add_parsers(commands: Any) -> None:
    """Add ``shuffle-report`` to the ``acumen`` parser."""
    report = commands.add_parser(
        "shuffle-report",
        help="measure a chunk-window shuffle from the index alone: chunks and bytes per batch "
        "and window, label mix, locality, against a full shuffle (docs/shuffle.md)",
    )
    report.add_argument("path", help="a folder or a URL (s3://, gs://, https://...)")
    report.add_argument(
        "--window", type=positive_count, default=4, help="chunks per window (default 4)"
    )
    report.add_argument(
        "--batch-size", type=positive_count, default=256, help="samples per batch (default 256)"
    )
    report.add_argument("--by", metavar="COLUMN", help="a metadata column: its mix per batch")
    report.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    report.add_argument(
        "--epochs", type=positive_count, default=1, help="epochs measured, from 0 (default 1)"
    )
    report.add_argument("--json", action="store_true", help="a JSON object, for scripts")
    add_remote_options(report)


NAMES = ("shuffle-report",)


def run(args: argparse.Namespace) -> int:
    """Run ``acumen shuffle-report``; the exit status."""
    from acumen.read.shuffle_report import shuffle_report

    check_used(args, args.path)
    report = shuffle_report(
        args.path,
        window=args.window,
        batch_size=args.batch_size,
        by=args.by,
        seed=args.seed,
        epochs=args.epochs,
        **for_path(args, args.path),
    )
    print(json.dumps(report.to_json(), indent=1) if args.json else report)
    return 0
