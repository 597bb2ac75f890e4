"""A filter expression from somewhere less trusted than the caller, checked before pandas sees it.

``ds.filter`` hands its expression to ``DataFrame.eval``, which can reach attributes and call
what it finds (``@local.__class__...``): fine for an expression the programmer wrote, not for
one that arrives over HTTP (``acumen view``). :func:`check_query` lets through only what a
metadata query needs: column names, numbers and strings, comparisons, ``in``, ``and/or/not``
(``& | ~``) and arithmetic on columns. The check works on the tokens pandas itself parses
(Python's tokenizer), so nothing can mean one thing here and another there.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Sequence

from acumen.errors import AcumenError

#: The longest expression accepted (a query, not a program).
MAX_LENGTH = 1000

_KEYWORDS = {"and", "or", "not", "in", "True", "False"}
_OPERATORS = {
    *("==", "!=", "<", "<=", ">", ">="),
    *("+", "-", "*", "/", "//", "%", "**"),
    *("&", "|", "~", "(", ")", "[", "]", ","),
}
_SKIPPED = {tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT}
#: What a query's syntax tree may hold (no calls, attributes, indexing, lambdas...).
_NODES = (
    *(ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Name, ast.Constant),
    *(ast.List, ast.Tuple, ast.Load, ast.boolop, ast.operator, ast.unaryop, ast.cmpop),
)
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)


class QueryError(AcumenError, ValueError):
    """A filter expression that is not a plain metadata query."""


def check_query(
    expression: str, columns: Sequence[str], numeric: Sequence[str] | None = None
) -> None:
    """Raise :class:`QueryError` unless ``expression`` is a plain query on ``columns``
    (arithmetic only on the ``numeric`` ones, when given).

    Backtick-quoted names (`` `my column` ``) are accepted in an expression without quoted
    strings (where their bounds cannot be read two ways)."""
    if len(expression) > MAX_LENGTH:
        raise QueryError(f"the filter is longer than {MAX_LENGTH} characters")
    if any(not c.isprintable() for c in expression):
        raise QueryError("the filter holds a control character (a newline, a tab...)")
    source, aliases = _without_backticks(expression, set(columns))
    names = set(columns) | set(aliases)
    numbers = set(numeric) if numeric is not None else set(columns)
    numbers |= {alias for alias, column in aliases.items() if column in numbers}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as error:
        raise QueryError(f"cannot read the filter: {error}") from None
    for token in tokens:
        kind, text = token.type, token.string
        if kind in _SKIPPED or kind == tokenize.NUMBER:
            continue
        if kind == tokenize.STRING:
            if text[0] not in "'\"" or text.startswith(("'''", '"""')):
                raise QueryError(f"only plain 'quoted' strings are allowed, not {text[:20]}")
        elif kind == tokenize.NAME:
            if text not in names and text not in _KEYWORDS:
                raise QueryError(
                    f"{text!r} is not a metadata column (columns: {', '.join(columns) or 'none'})"
                )
        elif kind == tokenize.OP and text in _OPERATORS:
            continue
        elif not text.isspace():
            raise QueryError(f"{text!r} is not allowed in a filter (comparisons, and/or/not)")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as error:
        raise QueryError(f"cannot read the filter: {error.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise QueryError(f"{type(node).__name__.lower()} is not allowed in a filter")
        if isinstance(node, ast.BinOp) and isinstance(node.op, _ARITHMETIC):
            _check_arithmetic(node, numbers)


def _check_arithmetic(node: ast.BinOp, numeric: set[str]) -> None:
    """Arithmetic is on number columns and numbers only, with a column on one side: on
    constants alone (``9 ** 9 ** 9``), strings or lists (``'a' * 10 ** 9``) it is all a
    filter could spend unbounded time or memory on."""
    parts = list(ast.walk(node))
    for part in parts:
        if isinstance(part, ast.Name) and part.id not in numeric:
            raise QueryError(f"arithmetic on {part.id!r}: only number columns take arithmetic")
        if isinstance(part, ast.Constant) and not isinstance(part.value, int | float):
            raise QueryError(f"arithmetic on {part.value!r}: only numbers take arithmetic")
        if not isinstance(
            part,
            ast.BinOp
            | ast.UnaryOp
            | ast.Name
            | ast.Constant
            | ast.operator
            | ast.unaryop
            | ast.expr_context,
        ):
            raise QueryError("arithmetic on lists or comparisons is not allowed in a filter")
    if not any(isinstance(part, ast.Name) for part in parts):
        raise QueryError("arithmetic needs a column on one side (write the value itself)")


def _without_backticks(expression: str, columns: set[str]) -> tuple[str, dict[str, str]]:
    """``expression`` with each `` `column` `` as a plain name the tokenizer reads as one, and
    those names' columns; unchanged when it holds no backticks. Only without quotes, where
    the bounds of a backtick-quoted name cannot be read two ways."""
    if "`" not in expression:
        return expression, {}
    if "'" in expression or '"' in expression:
        raise QueryError("backtick-quoted names and quoted strings cannot be mixed in a filter")
    parts = expression.replace("``", "\0").split("`")
    if len(parts) % 2 == 0:
        raise QueryError("a backtick-quoted name is not closed")
    out, aliases = [], {}
    for n, part in enumerate(parts):
        part = part.replace("\0", "`")
        if n % 2 == 1:
            if part not in columns:
                raise QueryError(f"`{part}` is not a metadata column")
            aliases[f"_column_{n}"] = part
            part = f" _column_{n} "
        out.append(part)
    return "".join(out), aliases
