"""Every Python block of README.md and docs/*.md runs as written.

A file's blocks run in order, as one script, in a fresh temporary folder: what a reader gets
by pasting them into a file. The script keeps the Markdown's line numbers (blank lines pad
the gaps), so a traceback's line is the line in the document.

Marks, an HTML comment on the line before a block, say why a block is not run, or when:

- ``<!-- excerpt: PATH -->``: the block quotes the file PATH of this repository (a plugin's
  class body, say); it is checked instead: its lines must appear in PATH, in one run.
- ``<!-- no-run: REASON -->``: it cannot run here (REASON says why). Keep these rare.
- ``<!-- requires: MODULE [MODULE ...] -->``: it runs where these modules are importable (an
  optional dependency such as jax) and is left out elsewhere; later blocks must not need it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Seconds one document's blocks may take together (they take a few).
TIMEOUT = 120

_FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)\s*$")
_MARK = re.compile(r"^\s*<!--\s*(?P<kind>no-run|excerpt|requires):\s*(?P<value>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # 1-based line of the block's first code line
    code: str
    mark: tuple[str, str] | None  # ("no-run", reason), ("excerpt", path), ("requires", mods)

    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"

    def runs(self) -> bool:
        """Unmarked, or marked ``requires`` with every module named importable here."""
        if self.mark is None:
            return True
        kind, value = self.mark
        return kind == "requires" and all(
            importlib.util.find_spec(name) is not None for name in value.split()
        )


def python_blocks(document: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, dedented, with the mark before each."""
    lines = document.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    number = 0
    while number < len(lines):
        fence = _FENCE.match(lines[number])
        if fence is None:
            number += 1
            continue
        end = number + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"{document.name}:{number + 1}: a code block is never closed")
        if fence["lang"] == "python":
            body = [line[len(fence["indent"]) :] for line in lines[number + 1 : end]]
            blocks.append(
                Block(document, number + 2, textwrap.dedent("\n".join(body)), _mark(lines, number))
            )
        number = end + 1
    return blocks


def _mark(lines: list[str], fence: int) -> tuple[str, str] | None:
    before = fence - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    found = _MARK.match(lines[before]) if before >= 0 else None
    return (found["kind"], found["value"]) if found else None


def script_of(blocks: list[Block]) -> str:
    """The runnable blocks as one script, each at its own line number in the document."""
    lines: list[str] = []
    for block in blocks:
        if not block.runs():
            continue
        lines += [""] * (block.line - 1 - len(lines))
        lines += block.code.splitlines()
    return "\n".join(lines) + "\n"


def _documents_with_python() -> list[Path]:
    return [d for d in DOCUMENTS if python_blocks(d)]


def test_the_documents_hold_python_blocks() -> None:
    names = {d.name for d in _documents_with_python()}
    assert {"README.md", "usage.md", "convert.md", "plugins.md"} <= names


@pytest.mark.parametrize("document", _documents_with_python(), ids=lambda d: d.name)
def test_python_blocks_run_in_order(document: Path, tmp_path: Path) -> None:
    blocks = python_blocks(document)
    for block in blocks:
        if block.mark is not None and block.mark[0] in ("no-run", "requires"):
            assert block.mark[1], f"{block.where()}: a {block.mark[0]} mark must say what"
    script = tmp_path / f"{document.stem}_blocks.py"
    script.write_text(script_of(blocks), encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), environment.get("PYTHONPATH", "")) if p
    )
    environment["MPLBACKEND"] = "Agg"
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, (
        f"{document.relative_to(ROOT)}: its Python blocks fail (line numbers are the "
        f"document's):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    )


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_excerpts_quote_their_file(document: Path) -> None:
    for block in python_blocks(document):
        if block.mark is None or block.mark[0] != "excerpt":
            continue
        source = ROOT / block.mark[1]
        assert source.is_file(), f"{block.where()}: the excerpt's file {source} does not exist"
        # Line by line, indentation aside (an excerpt of a class body is dedented).
        quoted = [line.strip() for line in block.code.strip("\n").splitlines()]
        original = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()]
        assert contains_run(original, quoted), (
            f"{block.where()}: the block is no longer an excerpt of {block.mark[1]}"
        )


def contains_run(lines: list[str], run: list[str]) -> bool:
    """Whether ``run`` appears in ``lines`` as consecutive lines."""
    return any(lines[i : i + len(run)] == run for i in range(len(lines) - len(run) + 1))


def test_marks_and_fences_are_read_as_meant(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text(
        "text\n\n```python\nx = 1\n```\n\n<!-- no-run: needs a GPU -->\n```python\n"
        "import cuda\n```\n\n- item\n\n  ```python\n  y = x + 1\n  ```\n"
        "<!-- excerpt: a/b.py -->\n\n```python\n    def f(self): ...\n```\n```bash\nls\n```\n"
        "<!-- requires: json -->\n```python\nz = 2\n```\n"
        "<!-- requires: json no_such_module_acumen -->\n```python\nw = 3\n```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(document)
    assert [(b.line, b.code, b.mark) for b in blocks] == [
        (4, "x = 1", None),
        (9, "import cuda", ("no-run", "needs a GPU")),
        (15, "y = x + 1", None),
        (20, "def f(self): ...", ("excerpt", "a/b.py")),
        (27, "z = 2", ("requires", "json")),
        (31, "w = 3", ("requires", "json no_such_module_acumen")),
    ]
    script = script_of(blocks).splitlines()
    assert script[3] == "x = 1" and script[14] == "y = x + 1" and script[26] == "z = 2"
    assert len(script) == 27  # the block needing a module that is not there is left out
    assert contains_run(["a", "b", "c"], ["b", "c"]) and not contains_run(["a", "b"], ["b", "a"])
