"""The layer rule of docs/design.md, enforced on every module of the package.

Each module's imports (top-level and inside functions) are read with ``ast`` and checked
against what its layer may import.  A new module or a new import that breaks the rule fails
here, naming the file, line and import.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "wsdiag"

_STDLIB_DIR = Path(sysconfig.get_paths()["stdlib"]).resolve()


def is_stdlib(top: str) -> bool:
    names = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return top in names
    if top in sys.builtin_module_names:  # Python 3.9: no stdlib_module_names
        return True
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return spec is not None
    origin = Path(spec.origin).resolve()
    return _STDLIB_DIR in origin.parents and "site-packages" not in origin.parts


# layer -> (what it may import at module level, what it may import inside functions).
# Entries are wsdiag sub-packages/modules ("wsdiag.core") or third-party top-level names.
RULES: dict[str, tuple[set[str], set[str]]] = {
    # the pure core: the standard library and itself, nothing else, anywhere
    "wsdiag.core": ({"wsdiag.core"}, set()),
    # static analysis of sources: pure too; --app is delegated to the Flask layer lazily
    # (TOML pins, wsdiag.check.pins: tomllib, stdlib from Python 3.11, so named here for the 3.9/3.10
    # runs where it is not the standard library's; tomli, the `toml` extra, below 3.11)
    "wsdiag.check": ({"wsdiag.core", "wsdiag.check"}, {"wsdiag.flaskapp", "tomllib", "tomli"}),
    # network edges: the core, themselves; websocket-client only where its profile runs
    "wsdiag.net": ({"wsdiag.core", "wsdiag.net"}, {"websocket", "wsdiag.proc"}),
    # the one child-process module: standard library only
    "wsdiag.proc": (set(), {"wsdiag.core"}),
    # presentation: reads core records and check results; rich only when printing
    "wsdiag.ui": ({"wsdiag.core", "wsdiag.check", "wsdiag.ui"}, {"rich"}),
    # the served side: Flask and friends, the core, the trace client, the child protocol
    "wsdiag.flaskapp": (
        {"wsdiag.core", "wsdiag.check", "wsdiag.flaskapp", "wsdiag.net.traceclient", "wsdiag.proc", "flask", "werkzeug"},
        {"gevent", "geventwebsocket", "gunicorn", "flask_sock", "simple_websocket", "flask_socketio", "socketio",
         "engineio", "flask_sockets", "importlib_metadata"},
    ),
}


def layer_of(module: str) -> str | None:
    for layer in sorted(RULES, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path):
    """(line, imported module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    top_level = {id(n) for n in tree.body}
    # imports under `if TYPE_CHECKING:` at module level are for the type checker only
    typing_only = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for n in ast.walk(node)}
        if isinstance(node, (ast.If, ast.Try)):
            top_level |= {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    pkg = module_name(path)
    if path.name != "__init__.py":
        pkg = pkg.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "wsdiag":  # `from wsdiag import x` imports wsdiag.x (or __version__)
                for alias in node.names:
                    target = "wsdiag" if alias.name == "__version__" else f"wsdiag.{alias.name}"
                    yield node.lineno, target, id(node) in top_level
            else:
                yield node.lineno, mod, id(node) in top_level


def allowed(target: str, permitted: set[str]) -> bool:
    if target == "wsdiag" or target == "__future__":
        return True
    top = target.split(".")[0]
    if top != "wsdiag":
        return top in permitted or is_stdlib(top)
    return any(target == p or target.startswith(p + ".") for p in permitted if p.startswith("wsdiag"))


MODULES = sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


# front ends (cli, flask_command, pytest_plugin, __main__) may import every layer
LAYERED = [p for p in MODULES if layer_of(module_name(p)) is not None]


@pytest.mark.parametrize("path", LAYERED, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_respects_its_layer(path):
    layer = layer_of(module_name(path))
    eager, lazy = RULES[layer]
    bad = []
    for line, target, at_top in imports(path):
        ok = allowed(target, eager) or (not at_top and allowed(target, lazy))
        if not ok:
            bad.append(f"{path.relative_to(ROOT)}:{line}: {'module-level ' if at_top else ''}import of {target}"
                       f" is not allowed in layer {layer}")
    assert not bad, "\n".join(bad)


def test_only_front_ends_import_the_cli():
    users = []
    for path in MODULES:
        for line, target, _ in imports(path):
            if target == "wsdiag.cli" and module_name(path) not in ("wsdiag.__main__", "wsdiag.flask_command"):
                users.append(f"{path.relative_to(ROOT)}:{line}")
    assert not users, f"only __main__ and flask_command may import wsdiag.cli: {users}"


def test_every_package_module_has_a_layer_or_is_a_front_end():
    front = {"wsdiag", "wsdiag.__main__", "wsdiag.cli", "wsdiag.flask_command", "wsdiag.fleet_command", "wsdiag.pytest_plugin"}
    orphans = [module_name(p) for p in MODULES if layer_of(module_name(p)) is None and module_name(p) not in front]
    assert not orphans, f"modules outside every layer (add them to RULES and docs/design.md): {orphans}"


def test_the_rule_catches_a_violation(tmp_path):
    """The checker itself can fail: a core module importing Flask is reported."""
    core = tmp_path / "wsdiag" / "core"
    core.mkdir(parents=True)
    bad = core / "bad.py"
    bad.write_text("import json\n\ndef f():\n    import flask\n    from wsdiag.net import transport\n")
    global ROOT
    saved = ROOT
    ROOT = tmp_path
    try:
        found = [(t, top) for _, t, top in imports(bad)]
        eager, lazy = RULES[layer_of(module_name(bad))]
        rejected = [t for t, top in found if not (allowed(t, eager) or (not top and allowed(t, lazy)))]
    finally:
        ROOT = saved
    assert rejected == ["flask", "wsdiag.net"]
