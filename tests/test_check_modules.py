"""The modules of ``wsdiag.check`` import each other without a cycle at module level, and the
shared helpers (``astutil``) are a leaf: they import nothing of wsdiag."""

from __future__ import annotations

import ast
from pathlib import Path

CHECK = Path(__file__).resolve().parent.parent / "wsdiag" / "check"


def _module_level_imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only: lazy imports are allowed
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wsdiag"):
            if node.module == "wsdiag.check":
                out |= {f"wsdiag.check.{a.name}" for a in node.names}
            else:
                out.add(".".join(node.module.split(".")[:3]))
        elif isinstance(node, ast.Import):
            out |= {".".join(a.name.split(".")[:3]) for a in node.names if a.name.startswith("wsdiag")}
    return out


def test_check_modules_import_without_a_cycle():
    graph = {f"wsdiag.check.{p.stem}": {m for m in _module_level_imports(p) if m.startswith("wsdiag.check.")}
             for p in CHECK.glob("*.py")}
    assert graph["wsdiag.check.static"] >= {"wsdiag.check.deploy", "wsdiag.check.astutil"}  # the split is real
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycles.append(path[path.index(nxt):] + [nxt])
            else:
                visit(nxt, path + [nxt])

    for start in graph:
        visit(start, [start])
    assert not cycles, cycles


def test_astutil_is_a_leaf():
    assert _module_level_imports(CHECK / "astutil.py") == set()
