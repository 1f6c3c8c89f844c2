"""Small source helpers shared by the scanners of ``wsdiag check`` (a leaf: standard library only).

``static`` (the Python scanner), ``model`` (the app model's facts) and ``deploy`` (command
lines and config files) all use these; none of them is imported here, so there is no cycle.

* ``Loc`` is a source span (1-based lines, 0-based character columns) and ``SourceText`` the
  line table that turns ``ast``'s UTF-8 byte columns into character columns.
* ``dotted``, ``last_name``, ``const_str``, ``kw``, ``literal_bool``, ``literal_methods`` and
  ``walk_own`` read ``ast`` nodes.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Loc:
    """A source span: 1-based lines, 0-based character columns."""

    line: int
    col: int
    end_line: int
    end_col: int


class SourceText:
    """Line table for one file: ast's (line, UTF-8 byte column) -> character offsets."""

    def __init__(self, text: str):
        self.text = text
        # Python's own line breaks only (str.splitlines also splits on form feeds and U+2028)
        self.lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)
        self.starts = [0]
        for ln in self.lines:
            self.starts.append(self.starts[-1] + len(ln))

    def col(self, line: int, byte_col: int) -> int:
        if line - 1 >= len(self.lines):
            return byte_col
        raw = self.lines[line - 1].encode("utf-8")
        return len(raw[:byte_col].decode("utf-8", errors="replace"))

    def offset(self, line: int, byte_col: int) -> int:
        return self.starts[line - 1] + self.col(line, byte_col)

    def loc(self, node: ast.AST) -> Loc:
        end_line = getattr(node, "end_lineno", None) or node.lineno  # type: ignore[attr-defined]
        end_col = getattr(node, "end_col_offset", None)
        start = self.col(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        return Loc(node.lineno, start, end_line,  # type: ignore[attr-defined]
                   self.col(end_line, end_col) if end_col is not None else start + 1)

    def line(self, n: int) -> str:
        return self.lines[n - 1].rstrip("\r\n") if 0 < n <= len(self.lines) else ""


def dotted(node: ast.AST) -> str:
    """The expression as written (only used to name things in messages)."""
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every expression node
        return "?"


def last_name(node: ast.AST | None) -> str | None:
    """``x`` for ``x`` and ``a.b.x``; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def const_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def kw(call: ast.Call, name: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg == name), None)


def literal_bool(node: ast.AST) -> object:
    """True/False for a literal, ``"expr"`` for anything computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return "expr"


def literal_methods(node: ast.AST) -> tuple | None:
    """Upper-cased method names of a literal list/tuple/set of strings; None if any is computed."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        vals = [const_str(e) for e in node.elts]
        if all(v is not None for v in vals):
            return tuple(v.upper() for v in vals)  # type: ignore[union-attr]
    return None


def walk_own(fn: ast.AST, *, lambdas: bool = True, bare_strings: bool = True):
    """Nodes of a function's body, not descending into nested functions or classes.

    ``lambdas=False`` does not descend into lambdas either; ``bare_strings=False`` skips
    docstrings and bare string statements (they are not reads).
    """
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if not lambdas and isinstance(node, ast.Lambda):
            continue
        if not bare_strings and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))
