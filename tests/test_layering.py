"""The package's house rules (docs/architecture.md), checked on the source itself.

Imports run one way: errors <- files <- format <- plugins and their contracts <- read / write
<- commands. Every import counts, those inside functions included: a lazy import that only
hides a circle is still a circle. Imports under ``if TYPE_CHECKING`` cannot break anything at
run time, so they may point upwards, but may not close a circle either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "acumen"

#: Each part of the package and its layer: a module may import its own layer or lower ones.
LAYERS = {
    "acumen.errors": 0,
    "acumen._version": 0,
    "acumen.hookspecs": 0,
    "acumen.progress": 0,
    "acumen.files": 1,
    "acumen.format": 2,
    "acumen.abc": 3,
    "acumen.plugins": 3,
    "acumen.codecs": 3,
    "acumen.storage": 3,
    "acumen.index_formats": 3,
    "acumen.readers": 3,
    "acumen.read": 4,
    "acumen.write": 4,
    "acumen.convert": 5,
    "acumen.testing": 5,
    "acumen.verify": 5,
    "acumen.recode": 5,
    "acumen.compat": 5,
    "acumen.torch": 5,
    "acumen.cli": 5,
    "acumen.cli_options": 5,
    "acumen.clean": 5,
    "acumen.verify_remote": 5,
    "acumen.demo": 5,
    "acumen.versions": 5,
    "acumen": 5,
}
#: Parts of one layer that must not know each other.
STRANGERS = {("acumen.read", "acumen.write"), ("acumen.write", "acumen.read")}
MAX_LINES = 450
MAX_TOP_MODULES = 14


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def part_of(module: str) -> str:
    """The longest entry of LAYERS the module belongs to."""
    candidates = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    assert candidates, f"{module} belongs to no layer: add it to LAYERS in {__file__}"
    return max(candidates, key=len)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(module: str) -> list[tuple[str, int, bool]]:
    """(imported acumen module, line, type-only) for every import in ``module``'s source."""
    tree = ast.parse(MODULES[module].read_text())
    typing_only = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [t if t in MODULES else node.module for t in targets]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "acumen" and target in MODULES and target != module:
                found.append((target, node.lineno, node.lineno in typing_only))
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    here = part_of(module)
    wrong = []
    for target, line, typing_only in GRAPH[module]:
        there = part_of(target)
        if (here, there) in STRANGERS or (not typing_only and LAYERS[there] > LAYERS[here]):
            wrong.append(f"line {line}: {target}")
    assert not wrong, f"{module} ({here}, layer {LAYERS[here]}) imports upwards: {wrong}"


def test_no_import_circles() -> None:
    """Tarjan's strongly connected components over every import, type-only ones included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _, _ in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert not circles, f"modules that import each other: {circles}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module]}: {lines} lines (at most {MAX_LINES})"


def test_few_modules_at_the_top() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, f"{len(top)} modules directly in acumen/: {top}"
