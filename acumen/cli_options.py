"""The ``acumen`` command's options for datasets at URLs: ``--storage-option KEY=VALUE``
(repeatable), ``--cache DIR`` and ``$ACUMEN_STORAGE_OPTIONS`` (a JSON object).

The options go to the store's filesystem (fsspec) as ``storage_options=`` does in Python:
the environment's first, then the command line's, key by key. A value is JSON when it
parses as JSON (``anon=true``, ``client_kwargs={"region_name": "eu-west-1"}``, ``n=3``),
else the text itself (``endpoint_url=http://127.0.0.1:9000``). Values are never shown in a
message: they may be secrets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any

from acumen.errors import AcumenError
from acumen.files.cache_dir import url_folder
from acumen.files.remote import is_url

ENVIRONMENT = "ACUMEN_STORAGE_OPTIONS"


class OptionsError(AcumenError, ValueError):
    """Storage options that cannot be used (not KEY=VALUE, not a JSON object)."""


def add_remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage-option",
        dest="storage_options",
        metavar="KEY=VALUE",
        action="append",
        type=storage_option,
        default=[],
        help="an option of the store's filesystem for URLs (repeatable; VALUE as JSON when "
        f"it parses, e.g. anon=true, else text); also ${ENVIRONMENT} (a JSON object)",
    )
    parser.add_argument(
        "--cache", metavar="DIR", help="the local cache for URLs (default: $ACUMEN_CACHE)"
    )


def storage_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` as (key, value) (an argparse type); the value is never echoed."""
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals or not key:
        shown = key if equals else "(not shown)"
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got key {shown}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def storage_options(args: argparse.Namespace) -> dict[str, Any]:
    """The environment's options, then the command line's."""
    return {**environment_options(), **dict(getattr(args, "storage_options", None) or [])}


def environment_options() -> dict[str, Any]:
    """``$ACUMEN_STORAGE_OPTIONS``, checked."""
    options: dict[str, Any] = {}
    text = os.environ.get(ENVIRONMENT, "").strip()
    if text:
        try:
            found = json.loads(text)
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise OptionsError(
                f'${ENVIRONMENT} is not a JSON object such as {{"anon": true}} (its value is '
                "not shown: it may hold secrets)"
            )
        options.update(found)
    return options


def for_path(args: argparse.Namespace, path: Any) -> dict[str, Any]:
    """``storage_options=`` and ``cache=`` for opening or writing ``path``: both for a URL,
    nothing for a local path (``--storage-option`` given with no URL is a mistake)."""
    if is_url(path):
        return {"storage_options": storage_options(args), "cache": args.cache}
    return {}


def check_used(args: argparse.Namespace, *paths: Any) -> None:
    """``--storage-option`` or ``--cache`` given where no path is a URL: say so."""
    if any(is_url(p) for p in paths):
        return
    for flag, given in (("--storage-option", args.storage_options), ("--cache", args.cache)):
        if given:
            raise OptionsError(f"{flag} is for URLs (s3://, https://...): no path here is one")


def convert_config(config: Any, args: argparse.Namespace) -> Any:
    """A loaded conversion config whose URL output takes the command's storage options and
    ``--cache``: the environment's, then the config's, then the command line's, key by
    key."""
    output = config.output
    if output.url is None:
        check_used(args)
        return config
    flags = dict(args.storage_options or [])
    options = {**environment_options(), **(output.storage_options or {}), **flags}
    cache = os.path.abspath(os.path.expanduser(args.cache)) if args.cache else output.cache
    staging = url_folder(output.url, cache, "staging", create=False) / "convert"
    output = dataclasses.replace(output, storage_options=options, cache=cache, path=staging)
    return dataclasses.replace(config, output=output)


def positive_count(text: str) -> int:
    """A positive whole number (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value
