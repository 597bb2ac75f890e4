"""Every Python and shell block of README.md and docs/*.md runs as written.

A document is one session: its blocks run in order, in a fresh temporary folder, as a
reader who pastes them would run them. The Python blocks make one script (a ``python``
block's variables are there for the next one), and each shell block runs at its place in
it, in the same folder, so ``acumen convert convert.toml`` works after a block that wrote
the files. The script keeps the Markdown's line numbers (blank lines pad the gaps), so a
traceback's line is the line in the document, a failing shell block's too.

Which blocks run, by the fence's language (every block names one: ``text`` for a listing,
an output or a tree, so a command never hides in an unnamed block):

- ``python``: Python, in the one script.
- ``bash``, ``sh``, ``shell``: one bash script per block (``-e -o pipefail``: it stops at
  the first failing command, and must exit 0). Each block is its own shell (a ``cd`` or a
  variable does not carry to the next); the folder is shared.
- ``console``: a session; each line starting ``$ `` is a command (a ``\\`` at the end of
  the line continues it), the lines up to the next ``$ `` what it prints. Every command must
  exit 0. What it prints is not compared (timings, paths and sizes vary), unless the block
  is marked ``<!-- output: checked -->``: then it must be what the block shows, stdout and
  stderr together, with ``...`` for any text (several lines too), as doctest's ELLIPSIS.
- anything else (``toml``, ``json``, ``text``...) is not run, unless marked ``file``.

Commands find the test's interpreter as ``python`` and this checkout's ``acumen`` (``python
-m acumen.cli``) first on ``PATH``, then the interpreter's own folder (``pip``, ``dask``).

Marks, HTML comments on the lines just before a block (several may stand one per line):

- ``<!-- no-run: REASON -->``: it cannot run here (REASON says why). Keep these rare.
- ``<!-- excerpt: PATH -->``: the block quotes the file PATH of this repository (a plugin's
  class body, say); it is checked instead: its lines must appear in PATH, in one run.
- ``<!-- requires: MODULE [MODULE ...] -->``: it runs where these modules are importable (an
  optional dependency such as jax) and is left out elsewhere; later blocks must not need it.
- ``<!-- file: NAME -->``: the block's text is written to the file NAME (a config the next
  command reads, shown as the reader would save it); it is not run.
- ``<!-- output: checked -->``: a console block's output is compared (above).
- ``<!-- exit: N -->``: a shell block, or a console block's last command, exits with N
  (``acumen convert CONFIG --check`` exits 1 when an item cannot be read).
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

from tests.docs_blocks import console_commands, output_matches

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Seconds one document's blocks may take together (they take a few).
TIMEOUT = 120

SHELLS = ("bash", "sh", "shell")
MARKS = ("no-run", "excerpt", "requires", "file", "output", "exit")

_FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)\s*$")
_MARK = re.compile(r"^\s*<!--\s*(?P<kind>[\w-]+):\s*(?P<value>.*?)\s*-->\s*$")
#: The script's first line (a document's line 1 is never code: a fence comes first).
_HARNESS = (
    "from tests.docs_blocks import run_console as _docs_console, run_shell as _docs_shell, "
    "write_file as _docs_file  # tests/test_docs_run.py"
)


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # 1-based line of the block's first code line
    lang: str  # the fence's language, "" for none
    code: str
    marks: dict[str, str]  # {"no-run": reason, "file": name, ...}

    def where(self) -> str:
        name = (
            self.document.relative_to(ROOT)
            if self.document.is_relative_to(ROOT)
            else self.document.name
        )
        return f"{name}:{self.line}"

    @property
    def kind(self) -> str:
        """How it runs: ``python``, ``shell``, ``console``, ``file`` or ``other`` (not)."""
        if "file" in self.marks:
            return "file"
        if self.lang in SHELLS:
            return "shell"
        return self.lang if self.lang in ("python", "console") else "other"

    def runs(self) -> bool:
        """Runnable, not marked ``no-run`` or ``excerpt``, and each ``requires``d module
        importable here."""
        if self.kind == "other" or "no-run" in self.marks or "excerpt" in self.marks:
            return False
        return all(
            importlib.util.find_spec(name) is not None
            for name in self.marks.get("requires", "").split()
        )

    def script_lines(self) -> list[str]:
        """What the document's script holds at this block's line."""
        where = repr(self.where())
        if self.kind == "python":
            return self.code.splitlines()
        if self.kind == "file":
            return [f"_docs_file({self.marks['file']!r}, {self.code!r})"]
        status = int(self.marks.get("exit", 0))
        if self.kind == "shell":
            return [f"_docs_shell({self.code!r}, exit={status}, where={where})"]
        checked = self.marks.get("output") == "checked"
        return [f"_docs_console({self.code!r}, checked={checked}, exit={status}, where={where})"]


def blocks(document: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, dedented, with the marks before each."""
    lines = document.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
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
        body = [line[len(fence["indent"]) :] for line in lines[number + 1 : end]]
        code = textwrap.dedent("\n".join(body))
        found.append(Block(document, number + 2, fence["lang"], code, _marks(lines, number)))
        number = end + 1
    return found


def _marks(lines: list[str], fence: int) -> dict[str, str]:
    before = fence - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    marks: dict[str, str] = {}
    while before >= 0 and (found := _MARK.match(lines[before])):
        marks.setdefault(found["kind"], found["value"])
        before -= 1
    return marks


def problems(block: Block) -> list[str]:
    """What is wrong with a block's language or marks, each said once."""
    said: list[str] = []
    if not block.lang:
        said.append("the block names no language (```text for a listing or an output)")
    for kind, value in block.marks.items():
        if kind not in MARKS:
            said.append(f"unknown mark {kind!r} (marks: {', '.join(MARKS)})")
        elif not value:
            said.append(f"a {kind} mark must say what")
    if "output" in block.marks and (block.kind != "console" or block.marks["output"] != "checked"):
        said.append("`output: checked` is the one output mark, on a console block")
    if "exit" in block.marks and (
        block.kind not in ("shell", "console") or not block.marks["exit"].isdigit()
    ):
        said.append("`exit: N` takes a number, on a shell or console block")
    if "file" in block.marks and (block.lang in SHELLS or block.lang == "console"):
        said.append("a shell block cannot be a file mark's text")
    if block.lang in SHELLS and any(line.startswith("$ ") for line in block.code.splitlines()):
        said.append("a block of `$ ` commands and their output is ```console")
    if block.lang == "console":
        try:
            if not console_commands(block.code):
                said.append("a console block holds no `$ ` command")
        except ValueError as error:
            said.append(str(error))
    return [f"{block.where()}: {message}" for message in said]


def script_of(found: list[Block]) -> str:
    """The runnable blocks as one script, each at its own line number in the document."""
    lines = [_HARNESS]
    for block in found:
        if not block.runs():
            continue
        lines += [""] * (block.line - 1 - len(lines))
        lines += block.script_lines()
    return "\n".join(lines) + "\n"


def run_document(document: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a document's blocks in ``tmp_path / "work"``, with this checkout's ``acumen``."""
    script = tmp_path / f"{document.stem}_blocks.py"
    script.write_text(script_of(blocks(document)), encoding="utf-8")
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, arguments in [("acumen", " -m acumen.cli"), ("python", ""), ("python3", "")]:
        shim = shims / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}"{arguments} "$@"\n', encoding="utf-8")
        shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), environment.get("PYTHONPATH", "")) if p
    )
    environment["PATH"] = os.pathsep.join(
        [str(shims), str(Path(sys.executable).parent), environment.get("PATH", "")]
    )
    environment["MPLBACKEND"] = "Agg"
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=work,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _documents_that_run() -> list[Path]:
    return [d for d in DOCUMENTS if any(b.runs() for b in blocks(d))]


def test_the_documents_hold_python_and_shell_blocks() -> None:
    kinds = {d.name: {b.kind for b in blocks(d)} for d in DOCUMENTS}
    for name in ("README.md", "usage.md", "convert.md", "plugins.md"):
        assert "python" in kinds[name], name
    for name in ("README.md", "usage.md", "convert.md", "shuffle.md", "versions.md"):
        assert kinds[name] & {"shell", "console"}, name


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_blocks_name_their_language_and_marks_are_known(document: Path) -> None:
    said = [message for block in blocks(document) for message in problems(block)]
    assert not said, "\n".join(said)


@pytest.mark.parametrize("document", _documents_that_run(), ids=lambda d: d.name)
def test_blocks_run_in_order(document: Path, tmp_path: Path) -> None:
    done = run_document(document, tmp_path)
    assert done.returncode == 0, (
        f"{document.relative_to(ROOT)}: its blocks fail (line numbers are the "
        f"document's):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    )


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_excerpts_quote_their_file(document: Path) -> None:
    for block in blocks(document):
        if "excerpt" not in block.marks:
            continue
        source = ROOT / block.marks["excerpt"]
        assert source.is_file(), f"{block.where()}: the excerpt's file {source} does not exist"
        # Line by line, indentation aside (an excerpt of a class body is dedented).
        quoted = [line.strip() for line in block.code.strip("\n").splitlines()]
        original = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()]
        assert contains_run(original, quoted), (
            f"{block.where()}: the block is no longer an excerpt of {block.marks['excerpt']}"
        )


def contains_run(lines: list[str], run: list[str]) -> bool:
    """Whether ``run`` appears in ``lines`` as consecutive lines."""
    return any(lines[i : i + len(run)] == run for i in range(len(lines) - len(run) + 1))


def _block_lines(found: list[Block]) -> list[tuple[int, str, str, dict[str, str]]]:
    return [(b.line, b.lang, b.code, b.marks) for b in found]


def test_marks_and_fences_are_read_as_meant(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text(
        "text\n\n```python\nx = 1\n```\n\n<!-- no-run: needs a GPU -->\n```python\n"
        "import cuda\n```\n\n- item\n\n  ```python\n  y = x + 1\n  ```\n"
        "<!-- excerpt: a/b.py -->\n\n```python\n    def f(self): ...\n```\n```bash\nls\n```\n"
        "<!-- requires: json -->\n```python\nz = 2\n```\n"
        "<!-- requires: json no_such_module_acumen -->\n```python\nw = 3\n```\n"
        "<!-- file: c.toml -->\n```toml\na = 1\n```\n"
        "<!-- output: checked -->\n<!-- exit: 1 -->\n```console\n$ acumen x\nout\n```\n"
        "```\ntree\n```\n",
        encoding="utf-8",
    )
    found = blocks(document)
    assert _block_lines(found) == [
        (4, "python", "x = 1", {}),
        (9, "python", "import cuda", {"no-run": "needs a GPU"}),
        (15, "python", "y = x + 1", {}),
        (20, "python", "def f(self): ...", {"excerpt": "a/b.py"}),
        (23, "bash", "ls", {}),
        (27, "python", "z = 2", {"requires": "json"}),
        (31, "python", "w = 3", {"requires": "json no_such_module_acumen"}),
        (35, "toml", "a = 1", {"file": "c.toml"}),
        (40, "console", "$ acumen x\nout", {"exit": "1", "output": "checked"}),
        (44, "", "tree", {}),
    ]
    assert [b.kind for b in found] == [
        *["python"] * 4,
        "shell",
        "python",
        "python",
        "file",
        "console",
        "other",
    ]
    script = script_of(found).splitlines()
    assert script[0].startswith("from tests.docs_blocks import")
    assert script[3] == "x = 1" and script[14] == "y = x + 1" and script[26] == "z = 2"
    assert script[22] == "_docs_shell('ls', exit=0, where='doc.md:23')"
    assert script[34] == "_docs_file('c.toml', 'a = 1')"
    assert script[39].startswith("_docs_console('$ acumen x\\nout', checked=True, exit=1")
    assert len(script) == 40  # the block needing a module that is not there is left out
    assert contains_run(["a", "b", "c"], ["b", "c"]) and not contains_run(["a", "b"], ["b", "a"])
    assert [p.split(": ", 1)[1] for b in found for p in problems(b)] == [
        "the block names no language (```text for a listing or an output)"
    ]


def test_console_blocks_are_read_and_compared_as_meant() -> None:
    block = "$ acumen plugins\ncodecs:\n  ...\n$ ls \\\n    -l\n$ true\n"
    assert console_commands(block) == [
        ("acumen plugins", "codecs:\n  ..."),
        ("ls \\\n    -l", ""),
        ("true", ""),
    ]
    with pytest.raises(ValueError, match="output before any"):
        console_commands("text\n$ ls")
    assert output_matches("codecs:\n  ...", "codecs:\n  gzip   \n  zstd\n\n")
    assert output_matches("a ... b", "a 183/s b") and output_matches("x", "\nx\n")
    assert not output_matches("codecs:\n  ...", "codecs:\nzstd")
    assert not output_matches("a ... b", "a 1 b c") and not output_matches("a.b", "axb")


def test_a_document_is_one_session_and_failures_name_the_line(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text(
        "# A session\n\n<!-- file: conf.txt -->\n```text\nhello\n```\n\n"
        "```python\nimport pathlib\nname = 'made.txt'\npathlib.Path(name).write_text('x')\n```\n\n"
        "```bash\ncat conf.txt made.txt > both.txt\n"
        'test "$(command -v acumen)" = "$(dirname "$PWD")/bin/acumen"\n```\n\n'
        "<!-- output: checked -->\n```console\n$ cat both.txt\nhel...x\n"
        "$ python -c 'import acumen.cli, sys; print(sys.prefix)'\n...\n```\n\n"
        "```python\nassert pathlib.Path('both.txt').read_text() == 'hello\\nx', name\n```\n\n"
        "<!-- exit: 3 -->\n```sh\nexit 3\n```\n",
        encoding="utf-8",
    )
    (tmp_path / "run").mkdir()
    done = run_document(document, tmp_path / "run")
    assert done.returncode == 0, done.stderr
    with document.open("a", encoding="utf-8") as adding:
        adding.write("\n```console\n$ acumen no-such-command\n```\n")
    (tmp_path / "again").mkdir()
    done = run_document(document, tmp_path / "again")
    assert done.returncode == 1
    assert "line 37" in done.stderr and "doc.md:37" in done.stderr, done.stderr
    assert "`acumen no-such-command` exited with 2, not 0" in done.stderr
