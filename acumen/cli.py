"""The ``acumen`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

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
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from acumen.demo import run

            run(args.samples, args.output)
        elif args.command == "info":
            _info(args.path)
        elif args.command == "plugins":
            _plugins()
    except AcumenError as error:
        print(f"acumen: error: {error}", file=sys.stderr)
        return 1
    return 0


def _info(path: str) -> None:
    import acumen

    with acumen.open(path) as ds:
        print(repr(ds))
        if ds.manifest is not None:
            print(json.dumps(ds.manifest.to_json(), indent=1, ensure_ascii=False))
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
