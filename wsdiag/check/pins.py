"""The project's version pins: the releases the app will run with, read from its packaging files.

The one pin reader of the app model (``model.FileFacts.pins``, ``model.Project``). A file's
pins are kept for the packages the rules care about (``TRACKED``), each as a PEP 440
specifier (``==2.0.1``, ``>=2.0,<3.0``; ``""``: any release) with the line that declares it:

* ``requirements*.txt|.in`` and ``constraints*.txt|.in`` (pip syntax; ``-r``/``-c`` includes are
  followed when the project is related, ``resolve``, at most ``MAX_INCLUDE_DEPTH`` deep and
  never outside the project's root);
* ``pyproject.toml``: PEP 621 ``[project] dependencies`` and ``optional-dependencies``, PEP 735
  ``[dependency-groups]``, ``[tool.pdm.dev-dependencies]``, ``[tool.poetry.dependencies]``,
  ``[tool.poetry.dev-dependencies]`` and ``[tool.poetry.group.*.dependencies]`` (poetry's
  ``^``/``~``/``*`` constraints translated to the range they mean, per poetry's documentation:
  ``^1.2.3`` is ``>=1.2.3,<2.0.0``, ``^0.2.3`` ``>=0.2.3,<0.3.0``, ``~1.2`` ``>=1.2,<1.3``, ``~1``
  ``>=1,<2``, ``1.*`` ``>=1,<2``, a bare version is exact);
* ``setup.cfg`` ``[options] install_requires`` / ``[options.extras_require]``; ``setup.py``
  ``install_requires=[...]`` / ``extras_require={...}`` literal lists (read with ``ast``, never run);
* ``Pipfile`` ``[packages]``/``[dev-packages]``;
* lock files, exact versions: ``Pipfile.lock``, ``poetry.lock``, ``uv.lock``, ``pdm.lock``.

Precedence (``Resolution``), per package: a lock file beats requirements/constraints files,
which beat the declared ranges (pyproject.toml, setup.cfg, setup.py, Pipfile), which beat what
is installed where wsdiag runs. A range keeps the installed release when it allows it. A lock
that locks Flask describes the app's whole environment: a tracked package missing from it is
not installed there.

TOML is read with ``tomllib`` (Python >= 3.11) or ``tomli`` (the ``toml`` extra below 3.11,
not a dependency: other tools react to its presence); without either a TOML file is skipped with a one-line reason. A file
that does not parse is skipped the same way (``read`` returns the reason), never raised.
Pure otherwise: standard library only (``resolve`` reads included requirements files).
"""

from __future__ import annotations

import ast
import json
import os
import re

TRACKED = ("werkzeug", "flask", "flask-sock", "simple-websocket", "gevent-websocket", "flask-sockets",
           "flask-socketio", "python-socketio", "python-engineio", "gunicorn", "gevent", "eventlet")
LOCK, REQUIREMENTS, DECLARED = 1, 2, 3  # precedence tiers: the lowest number wins
TIER_NAMES = {LOCK: "lock file", REQUIREMENTS: "requirements", DECLARED: "declared range"}
PIN_NAMES = re.compile(r"(?i)^((requirements|constraints).*\.(txt|in)|pyproject\.toml|setup\.cfg|pipfile(\.lock)?"
                       r"|(poetry|uv|pdm)\.lock)$")
MAX_INCLUDE_DEPTH = 5
MAX_INCLUDED_FILES = 50

_REQ = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$")
_CLAUSE = re.compile(r"^\s*(===|==|!=|~=|<=|>=|<|>)\s*v?([0-9][0-9A-Za-z.*+!-]*)\s*$")


def canonical(name: str) -> str:
    """PEP 503: ``Flask_SocketIO`` -> ``flask-socketio``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_pin_file(path: str) -> bool:
    return bool(PIN_NAMES.match(os.path.basename(path))) or os.path.basename(path) == "setup.py"


# -- versions and specifiers ----------------------------------------------------------------


def version_tuple(text: str | None) -> tuple | None:
    """The release numbers of a version: ``"2.0.1rc1"`` -> ``(2, 0, 1)``; junk -> None."""
    if not text:
        return None
    text = text.strip().lstrip("vV").split("+")[0]
    text = text.split("!", 1)[-1]
    out = []
    for piece in text.split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        out.append(int(m.group()))
        if m.end() != len(piece):
            break
    return tuple(out) or None


def _cmp(a: tuple, b: tuple) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def clauses(spec: str) -> list | None:
    """``">=2.0,<3"`` -> ``[(">=", (2, 0), False), ("<", (3,), False)]`` (op, release, wildcard);
    ``""`` -> ``[]``; None when a clause cannot be read."""
    out = []
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        m = _CLAUSE.match(part)
        if not m:
            return None
        op, ver = m.group(1), m.group(2)
        star = ver.endswith(".*")
        v = version_tuple(ver[:-2] if star else ver)
        if v is None:
            return None
        out.append(("==" if op == "===" else op, v, star))
    return out


def _bump(v: tuple, at: int) -> tuple:
    return tuple(v[:at]) + (v[at] + 1,) if at < len(v) else v + (1,)


def _bounds(cl: list) -> tuple:
    """(lower, upper, upper inclusive) of the clauses (None: unbounded)."""
    lower = upper = None
    inclusive = False

    def up(v, inc):
        nonlocal upper, inclusive
        c = None if upper is None else _cmp(v, upper)
        if upper is None or c < 0 or (c == 0 and not inc):
            upper, inclusive = v, inc

    def low(v):
        nonlocal lower
        if lower is None or _cmp(v, lower) > 0:
            lower = v

    for op, v, star in cl:
        if op == "==" and star:
            low(v)
            up(_bump(v, len(v) - 1), False)
        elif op == "==":
            low(v)
            up(v, True)
        elif op in (">=", ">"):
            low(v)
        elif op == "<":
            up(v, False)
        elif op == "<=":
            up(v, True)
        elif op == "~=":
            low(v)
            up(_bump(v, max(len(v) - 2, 0)), False)
    return lower, upper, inclusive


def below(spec: str, bound: tuple) -> bool:
    """Does every release the specifier allows come before ``bound``?"""
    cl = clauses(spec)
    if not cl:
        return False
    _, upper, inclusive = _bounds(cl)
    if upper is None:
        return False
    c = _cmp(upper, bound)
    return c < 0 or (c == 0 and not inclusive)


def allows(spec: str, version: str | None) -> bool:
    """Does the specifier allow this release (pre-release tags ignored)?"""
    v = version_tuple(version)
    cl = clauses(spec)
    if v is None or cl is None:
        return False
    for op, w, star in cl:
        if star and op in ("==", "!="):
            same = v[:len(w)] == w
            if same != (op == "=="):
                return False
            continue
        c = _cmp(v, w)
        ok = {"==": c == 0, "!=": c != 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0,
              "~=": c >= 0 and _cmp(v, _bump(w, max(len(w) - 2, 0))) < 0}[op]
        if not ok:
            return False
    return True


def exact(spec: str) -> str | None:
    """The one release an ``==X`` specifier allows."""
    m = re.fullmatch(r"\s*===?\s*v?([0-9][0-9A-Za-z.+!-]*)\s*", spec or "")
    return m.group(1) if m and not m.group(1).endswith("*") else None


def lower_bound(spec: str) -> str | None:
    cl = clauses(spec)
    lower = _bounds(cl)[0] if cl else None
    return ".".join(map(str, lower)) if lower else None


def poetry_spec(text: str) -> str | None:
    """A poetry constraint as PEP 440 (``"^2.0"`` -> ``">=2.0,<3"``); None when it cannot be
    read (``||`` alternatives, junk): the package is declared with an unknown range."""
    text = (text or "").strip()
    if not text or "||" in text or "|" in text:
        return "" if text in ("", "*") else None
    out = []
    for part in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", text):
        part = part.strip()
        if not part or part == "*":
            continue
        if part.startswith("^"):
            v = version_tuple(part[1:])
            if v is None:
                return None
            nonzero = next((i for i, n in enumerate(v) if n), None)
            at = nonzero if nonzero is not None else len(v) - 1
            out += [">=" + part[1:].strip(), "<" + ".".join(map(str, _bump(v, at)))]
        elif part.startswith("~") and not part.startswith("~="):
            v = version_tuple(part[1:])
            if v is None:
                return None
            out += [">=" + part[1:].strip(), "<" + ".".join(map(str, _bump(v, 1 if len(v) >= 2 else 0)))]
        elif part.endswith("*") and part[0].isdigit():
            v = version_tuple(part.rstrip(".*"))
            if v is None:
                return None
            out += [">=" + ".".join(map(str, v)), "<" + ".".join(map(str, _bump(v, len(v) - 1)))]
        elif part[0].isdigit():
            out.append("==" + part)
        elif part.startswith("=") and not part.startswith("=="):
            out.append("=" + part)
        else:
            out.append(part)
    spec = ",".join(out)
    return spec if clauses(spec) is not None else None


# -- reading one file -------------------------------------------------------------------------


def _entry(spec: str | None, line: int, tier: int, text: str) -> dict:
    return {"spec": spec if spec is not None else "", "line": line, "tier": tier, "text": text.strip()[:120],
            "known": spec is not None}


def requirement(text: str) -> tuple[str, str | None] | None:
    """A PEP 508 requirement -> (canonical name, specifier); specifier None for a direct
    reference (``name @ url``) or a range that cannot be read."""
    text = text.split(" #", 1)[0].split(";", 1)[0].strip()
    m = _REQ.match(text)
    if not m:
        return None
    rest = m.group(3).strip()
    if rest.startswith("@"):
        return canonical(m.group(1)), None
    rest = rest.strip("()").strip()
    spec = ",".join(re.sub(r"\s+", "", p) for p in rest.split(",") if p.strip())
    return canonical(m.group(1)), (spec if clauses(spec) is not None else None)


def _keep(out: dict, name: str, spec: str | None, line: int, tier: int, text: str) -> None:
    if name in TRACKED and name not in out:
        out[name] = _entry(spec, line, tier, text)


def requirements_text(text: str, tier: int = REQUIREMENTS) -> tuple[dict, list]:
    """pip requirements syntax -> (pins, includes); an include is [target, line, "-r"|"-c"]."""
    pins: dict = {}
    includes: list = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start, logical = i + 1, lines[i]
        while logical.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            logical = logical.rstrip()[:-1] + " " + lines[i]
        i += 1
        stripped = re.sub(r"(^|\s)#.*$", "", logical).strip()
        if not stripped:
            continue
        m = re.match(r"^(-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?=\S))(\S+)", stripped)
        if m:
            includes.append([m.group(2), start, "-c" if m.group(1) in ("-c", "--constraint") else "-r"])
            continue
        if stripped.startswith("-"):
            continue  # -e, --index-url, --hash... (an editable path names no release)
        req = requirement(re.split(r"\s--", stripped)[0])
        if req:
            _keep(pins, req[0], req[1], start, tier, stripped)
    return pins, includes


def _toml():
    try:
        import tomllib  # Python >= 3.11

        return tomllib
    except ImportError:
        try:
            import tomli  # the ``toml`` extra (Python < 3.11)

            return tomli
        except ImportError:
            return None


def _name_pattern(name: str) -> str:
    return "[-_.]+".join(re.escape(p) for p in re.split(r"[-_.]+", name))


def _line_of(text: str, pattern: str, after: int = 0) -> int:
    """1-based line of the first match of ``pattern`` (case-insensitive, multiline) at or after
    line ``after``; else ``after`` (or 1)."""
    lines = text.splitlines()
    rx = re.compile(pattern, re.I)
    for n in range(max(after - 1, 0), len(lines)):
        if rx.search(lines[n]):
            return n + 1
    return max(after, 1)


def _section_line(text: str, header: str) -> int:
    parts = (r"[\"']?" + re.escape(p) + r"[\"']?" for p in header.split("."))
    return _line_of(text, r"^\s*\[\s*" + r"\s*\.\s*".join(parts) + r"\s*\]")


def _pep508_list(out: dict, items, text: str, tier: int, after: int) -> None:
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, str):
            continue  # {include-group = ...}
        req = requirement(item)
        if req and req[0] in TRACKED and req[0] not in out:
            line = _line_of(text, re.escape(item.strip()[:60]), after)
            _keep(out, req[0], req[1], line, tier, item)


def _poetry_table(out: dict, table, text: str, header: str) -> None:
    if not isinstance(table, dict):
        return
    after = _section_line(text, header)
    for name, value in table.items():
        key = canonical(name)
        if key not in TRACKED or key in out:
            continue
        if isinstance(value, list):  # several constraints by marker: the first
            value = value[0] if value else {}
        if isinstance(value, dict):
            raw = value.get("version")
            spec = poetry_spec(raw) if isinstance(raw, str) else None  # git/path/url: no release known
            shown = f"{name} = {value!r}"
        else:
            spec = poetry_spec(str(value))
            shown = f'{name} = "{value}"'
        line = _line_of(text, r"^\s*[\"']?" + _name_pattern(name) + r"[\"']?\s*=", after)
        _keep(out, key, spec, line, DECLARED, shown)


def _table(value) -> dict:
    return value if isinstance(value, dict) else {}


def pyproject(doc: dict, text: str) -> dict:
    out: dict = {}
    project = doc.get("project") if isinstance(doc.get("project"), dict) else {}
    _pep508_list(out, project.get("dependencies"), text, DECLARED, _section_line(text, "project"))
    for _group, items in sorted(_table(project.get("optional-dependencies")).items()):
        _pep508_list(out, items, text, DECLARED, _section_line(text, "project.optional-dependencies"))
    tool = doc.get("tool") if isinstance(doc.get("tool"), dict) else {}
    poetry = tool.get("poetry") if isinstance(tool.get("poetry"), dict) else {}
    _poetry_table(out, poetry.get("dependencies"), text, "tool.poetry.dependencies")
    _poetry_table(out, poetry.get("dev-dependencies"), text, "tool.poetry.dev-dependencies")
    for group, body in sorted(_table(poetry.get("group")).items()):
        if isinstance(body, dict):
            _poetry_table(out, body.get("dependencies"), text, f"tool.poetry.group.{group}.dependencies")
    groups = doc.get("dependency-groups") if isinstance(doc.get("dependency-groups"), dict) else {}
    for _group, items in sorted(groups.items()):
        _pep508_list(out, items, text, DECLARED, _section_line(text, "dependency-groups"))
    pdm = tool.get("pdm") if isinstance(tool.get("pdm"), dict) else {}
    for _group, items in sorted(_table(pdm.get("dev-dependencies")).items()):
        _pep508_list(out, items, text, DECLARED, _section_line(text, "tool.pdm.dev-dependencies"))
    return out


def pipfile(doc: dict, text: str) -> dict:
    out: dict = {}
    for section in ("packages", "dev-packages"):
        table = doc.get(section)
        if not isinstance(table, dict):
            continue
        after = _section_line(text, section)
        for name, value in table.items():
            key = canonical(name)
            if key not in TRACKED or key in out:
                continue
            raw = value.get("version") if isinstance(value, dict) else value
            spec = None if not isinstance(raw, str) else ("" if raw.strip() == "*" else raw.strip())
            if spec and clauses(spec) is None:
                spec = None
            line = _line_of(text, r"^\s*[\"']?" + _name_pattern(name) + r"[\"']?\s*=", after)
            _keep(out, key, spec, line, DECLARED, f"{name} = {value!r}")
    return out


def toml_lock(doc: dict, text: str) -> dict:
    """poetry.lock, uv.lock, pdm.lock: ``[[package]]`` tables with ``name`` and ``version``."""
    out: dict = {}
    for pkg in doc.get("package") if isinstance(doc.get("package"), list) else ():
        if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str):
            continue
        key = canonical(pkg["name"])
        version = pkg.get("version")
        if key in TRACKED and key not in out and isinstance(version, str):
            line = _line_of(text, r"^\s*name\s*=\s*[\"']" + _name_pattern(pkg["name"]) + r"[\"']\s*$")
            line = _line_of(text, r"^\s*version\s*=", line)  # the locked release's own line
            _keep(out, key, "==" + version, line, LOCK, f"{pkg['name']} {version}")
    return out


def pipfile_lock(doc: dict, text: str) -> dict:
    out: dict = {}
    for section in ("default", "develop"):
        table = doc.get(section)
        if not isinstance(table, dict):
            continue
        for name, value in table.items():
            key = canonical(name)
            version = value.get("version") if isinstance(value, dict) else None
            if key in TRACKED and key not in out and isinstance(version, str):
                spec = version.strip() if clauses(version.strip()) is not None else None
                line = _line_of(text, r"^\s*\"" + _name_pattern(name) + r"\"\s*:")
                line = _line_of(text, r"^\s*\"version\"\s*:", line)
                _keep(out, key, spec, line, LOCK, f"{name} {version}")
    return out


def setup_cfg(text: str) -> dict:
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)
    out: dict = {}
    values = []
    if parser.has_option("options", "install_requires"):
        values.append(parser.get("options", "install_requires"))
    if parser.has_section("options.extras_require"):
        values += [parser.get("options.extras_require", k) for k in parser.options("options.extras_require")]
    after = _section_line(text, "options")
    for value in values:
        for item in re.split(r"[\n;]", value):
            item = item.strip()
            req = requirement(item) if item and not item.startswith("#") else None
            if req and req[0] in TRACKED and req[0] not in out:
                _keep(out, req[0], req[1], _line_of(text, re.escape(item[:60]), after), DECLARED, item)
    return out


def setup_py(tree: ast.Module) -> dict:
    """``setup(install_requires=[...], extras_require={...})`` literal lists (also through a
    module-level name bound to a literal list), read with ``ast``: the file is never run."""
    names = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, (ast.List, ast.Tuple, ast.Dict)):
            for t in stmt.targets:
                if isinstance(t, ast.Name):
                    names[t.id] = stmt.value
    out: dict = {}

    def strings(node):
        if isinstance(node, ast.Name):
            node = names.get(node.id, node)
        if isinstance(node, (ast.List, ast.Tuple)):
            for e in node.elts:
                if isinstance(e, ast.Constant) and isinstance(e.value, str):
                    yield e
        elif isinstance(node, ast.Dict):
            for v in node.values:
                yield from strings(v)

    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "setup"):
            continue
        for kw in node.keywords:
            if kw.arg in ("install_requires", "extras_require"):
                for s in strings(kw.value):
                    req = requirement(s.value)
                    if req:
                        _keep(out, req[0], req[1], s.lineno, DECLARED, s.value)
    return out


def read(file: str, text: str) -> tuple[dict, list, str | None]:
    """One pin file (not setup.py: ``setup_py``) -> (pins, includes, why it was not read)."""
    name = os.path.basename(file).lower()
    try:
        if name.startswith(("requirements", "constraints")):
            pins, includes = requirements_text(text)
            return pins, includes, None
        if name == "setup.cfg":
            return setup_cfg(text), [], None
        if name == "pipfile.lock":
            doc = json.loads(text)
            return (pipfile_lock(doc, text) if isinstance(doc, dict) else {}), [], None
        toml = _toml()
        if toml is None:
            return {}, [], "cannot read TOML on this Python without tomli (pip install 'wsdiag[toml]')"
        doc = toml.loads(text)
        if name == "pyproject.toml":
            return pyproject(doc, text), [], None
        if name == "pipfile":
            return pipfile(doc, text), [], None
        return toml_lock(doc, text), [], None
    except Exception as exc:  # any parser's error (TOMLDecodeError, JSONDecodeError, configparser.Error...)
        msg = " ".join(str(exc).split()) or type(exc).__name__
        return {}, [], f"cannot parse {os.path.basename(file)}: {msg[:200]}"


# -- the project: precedence ------------------------------------------------------------------


def _includes(item: dict, budget: list) -> list:
    """The pins of the files an item's ``-r``/``-c`` lines include, recursively (bounded; inside
    the project's root; the including file's tier)."""
    out = []
    todo = [(item["file"], inc, 1) for inc in item.get("pin_includes") or ()]
    seen = {os.path.realpath(item["file"])}
    root = _root(item["file"])
    while todo and budget[0] > 0:
        base, (target, _line, _flag), depth = todo.pop(0)
        if "://" in target or depth > MAX_INCLUDE_DEPTH:
            continue
        path = os.path.normpath(os.path.join(os.path.dirname(base), target))
        real = os.path.realpath(path)
        if real in seen or not (real == root or real.startswith(root.rstrip(os.sep) + os.sep)):
            continue
        seen.add(real)
        budget[0] -= 1
        try:
            from wsdiag.check.fixwrite import read_text

            text = read_text(path)
        except (OSError, UnicodeDecodeError):
            continue
        pins, more = requirements_text(text)
        out.append({"file": path, "pins": pins})
        todo += [(path, inc, depth + 1) for inc in more]
    return out


def _root(file: str) -> str:
    """The project root an include may not leave: the project root of ``context.find_root`` (the
    one root finder), else the file's own directory."""
    from wsdiag.check.context import find_root

    here = os.path.dirname(os.path.realpath(file))
    found = find_root(os.path.realpath(file), cwd=here)
    return found[0] if found else here


class Resolution:
    """The project's pins, by precedence (lock > requirements/constraints > declared > installed)."""

    def __init__(self, items: list):
        self.by_dist: dict[str, list] = {}  # dist -> [(tier, file, entry)]
        self.covering: list[str] = []  # lock files that lock Flask: the app's whole environment
        budget = [MAX_INCLUDED_FILES]
        sources = []
        for x in items:
            if x.get("pins") or x.get("pin_includes"):
                sources.append({"file": x["file"], "pins": x.get("pins") or {}})
                sources += _includes(x, budget) if x.get("pin_includes") else []
        for src in sources:
            for dist, e in src["pins"].items():
                if isinstance(e, dict):
                    self.by_dist.setdefault(dist, []).append((e.get("tier", DECLARED), src["file"], e))
            if any(isinstance(e, dict) and e.get("tier") == LOCK for e in src["pins"].values()) and "flask" in src["pins"]:
                self.covering.append(src["file"])
        for v in self.by_dist.values():
            v.sort(key=lambda t: t[0])

    def winning(self, dist: str) -> list:
        """The (tier, file, entry) pins of the highest-precedence tier that names ``dist``."""
        found = self.by_dist.get(dist) or []
        return [t for t in found if t[0] == found[0][0]] if found else []

    def version(self, dist: str, installed: str | None) -> tuple:
        """(release or None, where it comes from) for the project: ``("2.0.1", "poetry.lock:12")``,
        ``(None, "not in poetry.lock")``, ``("3.1.9", "installed")``."""
        win = self.winning(dist)
        if not win and self.covering:
            return None, "not in " + ", ".join(self.covering)
        if not win:
            return installed, "installed"
        for _tier, file, e in win:
            if exact(e["spec"]):
                return exact(e["spec"]), f"{file}:{e['line']}"
        tier, file, e = win[0]
        where = f"{file}:{e['line']}"
        if installed is not None and all(allows(t[2]["spec"], installed) for t in win if t[2]["known"] and t[2]["spec"]):
            return installed, f"installed, allowed by {where}"
        return (lower_bound(e["spec"]) or "*"), where

    def below(self, dist: str, bound: tuple, installed: str | None) -> tuple:
        """(True, where) when the project can only run ``dist`` before ``bound``: a pin of the
        winning tier says so, or a range of it allows the installed release, which is before it."""
        win = self.winning(dist)
        for _tier, file, e in win:
            if e["known"] and below(e["spec"], bound):
                return True, f"{file}:{e['line']}"
        if win:
            if any(exact(t[2]["spec"]) for t in win):
                return False, f"{win[0][1]}:{win[0][2]['line']}"
            v, where = self.version(dist, installed)
            t = version_tuple(v) if where.startswith("installed") else None
            return (t is not None and _cmp(t, bound) < 0), where
        if self.covering:
            return False, "not in " + ", ".join(self.covering)
        t = version_tuple(installed)
        return (t is not None and _cmp(t, bound) < 0), "installed"

    def text(self, dist: str, installed: str | None) -> str:
        """How the report names the release it judged with: ``werkzeug 2.0.1 (pyproject.toml:8)``."""
        v, where = self.version(dist, installed)
        win = self.winning(dist)
        shown = v if v is not None else "not installed"
        if win and not where.startswith("installed") and not exact(win[0][2]["spec"]):
            shown = win[0][2]["spec"] or "any release"  # a range the installed release is outside of
        said = f": {win[0][2]['text']}" if win and not where.startswith("installed") else ""
        return f"{dist} {shown} ({where}{said})"

    def versions(self, installed: dict) -> dict:
        """``installed`` with the project's pins applied (what the project rules judge with)."""
        out = dict(installed)
        for dist in TRACKED:
            if dist in self.by_dist or (self.covering and dist in installed):
                out[dist] = self.version(dist, installed.get(dist))[0]
        return out

    def pinned(self, dist: str) -> bool:
        return dist in self.by_dist or bool(self.covering)
