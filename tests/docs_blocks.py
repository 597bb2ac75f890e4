"""What a document's script (tests/test_docs_run.py) calls for its non-Python blocks.

The script runs in the document's folder with ``acumen`` and ``python`` on ``PATH``; these
functions run a shell block there, or write a block's text to the file it names, and raise
``BlockFailed`` (its traceback line is the block's line in the document) when a command
fails or its output is not the one shown.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

#: Seconds one command may take.
COMMAND_TIMEOUT = 110


class BlockFailed(AssertionError):
    """A shell block's command exited with another status, or printed something else."""


def write_file(name: str, text: str) -> None:
    """Write a ``<!-- file: NAME -->`` block's text to NAME, as a reader saves it."""
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def run_shell(script: str, exit: int = 0, where: str = "") -> None:
    """Run a ```bash block (at ``where``, FILE:LINE) as one bash script that stops at the
    first failing command."""
    status, output = _bash(script, "-e")
    if status != exit:
        raise BlockFailed(_failure(where, script, status, exit, output))


def run_console(block: str, checked: bool = False, exit: int = 0, where: str = "") -> None:
    """Run each ``$ `` command of a ```console block in turn: each must exit 0 (the last
    ``exit``), and print what the block shows after it when ``checked``."""
    commands = console_commands(block)
    for number, (command, expected) in enumerate(commands):
        wanted = exit if number == len(commands) - 1 else 0
        status, output = _bash(command)
        if status != wanted:
            raise BlockFailed(_failure(where, command, status, wanted, output))
        if checked and not output_matches(expected, output):
            raise BlockFailed(
                f"{where}: `{command}` printed\n{output.rstrip()}\n-- but the document shows --\n"
                f"{expected.rstrip()}"
            )


def console_commands(block: str) -> list[tuple[str, str]]:
    """A console block's ``(command, output shown)`` pairs: a line starting ``$ `` is a
    command (a line ending in ``\\`` continues it), the lines up to the next one its output."""
    commands: list[tuple[str, list[str]]] = []
    continued = False
    for line in block.splitlines():
        if line.startswith("$ ") or line == "$":
            commands.append((line[2:], []))
        elif continued:
            commands[-1] = (commands[-1][0] + "\n" + line, commands[-1][1])
        elif commands:
            commands[-1][1].append(line)
        else:
            raise ValueError(f"a console block shows output before any `$ ` command: {line!r}")
        continued = line.endswith("\\") and not commands[-1][1]
    return [(command, "\n".join(output)) for command, output in commands]


def output_matches(expected: str, output: str) -> bool:
    """Whether ``output`` is ``expected``, where ``...`` stands for any text (several lines
    too), trailing spaces and the blank lines around it aside."""

    def tidy(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")

    pattern = ".*?".join(re.escape(part) for part in tidy(expected).split("..."))
    return re.fullmatch(pattern, tidy(output), re.DOTALL) is not None


def _bash(script: str, *flags: str) -> tuple[int, str]:
    """Run a script; what it printed is printed again, for the test's report."""
    sys.stdout.flush()  # the blocks' own prints first, in the report too
    done = subprocess.run(
        ["bash", *flags, "-o", "pipefail", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    print(f"$ {script}\n{done.stdout}", end="", flush=True)
    return done.returncode, done.stdout


def _failure(where: str, command: str, status: int, wanted: int, output: str) -> str:
    return f"{where}: `{command}` exited with {status}, not {wanted}; it printed:\n{output[-4000:]}"
