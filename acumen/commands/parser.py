"""The ``acumen`` command's parser class and its version line: a usage mistake is one line,
with "did you mean" for a misspelt command, choice or option."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from acumen.errors import did_you_mean


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr, like every other error, with
    "did you mean" for a misspelt command, choice or option."""

    argv: Sequence[str] = ()

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"acumen: error: {self._suggest(message)} (see `{self.prog} --help`)\n")

    def _suggest(self, message: str) -> str:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:
            words = [w.strip().strip("'") for w in choice.group(2).split(",")]
            word = choice.group(1)
            starting = [w for w in words if word and w.startswith(word)]
            guess = f"did you mean {' or '.join(map(repr, starting))}?" if starting else ""
            guess = guess or did_you_mean(word, words)
            return f"{message}; {guess}" if guess else message
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if unknown and unknown.group(1).startswith("-"):
            close = difflib.get_close_matches(unknown.group(1), self._option_strings(), n=1)
            return f"{message}; did you mean {close[0]}?" if close else message
        return message

    def _option_strings(self) -> list[str]:
        """The options of the subcommand in ``argv`` (or the command's own)."""
        parser: argparse.ArgumentParser = self
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                named = [a for a in self.argv if a in action.choices]
                parser = action.choices[named[0]] if named else self
        return [s for a in parser._actions for s in a.option_strings if s.startswith("--")]


def version_text() -> str:
    """``acumen 0.1.0 from /path/to/acumen (python 3.11)``, as ``pip --version`` says it."""
    import acumen

    where = Path(acumen.__file__).resolve().parent
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"acumen {acumen.__version__} from {where} (python {python})"
