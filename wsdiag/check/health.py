"""FAILURES.md FM-21 on the static side: a health check pointed at a WebSocket-only rule.

A rule declared ``websocket=True`` (and every flask-sock ``@sock.route``, which flask-sock
registers with ``websocket=True``) answers a plain GET or HEAD, which is what every HTTP
health check sends, with ``400 Bad Request`` (Werkzeug's ``WebsocketMismatch``): true of
every Werkzeug release from 1.0 to 3.1 (``tests/test_check_fm20_fm21.py`` checks it against
the installed release and the matrix virtualenvs). A probe pointed at such a path fails
forever: the container is restarted, the pod never becomes ready, the load balancer takes
the instance out of service.

``read_probes`` finds the paths health checks request in the deployment files
``wsdiag.check.deploy`` already reads:

* Dockerfile ``HEALTHCHECK ... CMD curl/wget http://.../path``;
* docker-compose ``healthcheck:`` blocks whose ``test`` runs curl or wget;
* Kubernetes ``livenessProbe`` / ``readinessProbe`` / ``startupProbe`` with ``httpGet: path:``
  (or an ``exec`` probe running curl/wget);
* nginx ``health_check uri=/path`` and an AWS load balancer's ``HealthCheckPath: /path``.

Probes of containers that run something else (an ``image:`` of nginx, redis, postgres... with
no ``build:``; a Dockerfile ``FROM nginx``) are left out. ``project_findings`` maps each path
onto the project's WebSocket rules (Werkzeug rule syntax with its converters; blueprint
``url_prefix`` from ``Blueprint(...)`` and ``register_blueprint(...)``) and reports ``WS525``
when only WebSocket rules match it (a plain rule at the same path answers the probe).

Pure: standard library only.
"""

from __future__ import annotations

import ast
import os
import re
from urllib.parse import urlsplit, urlunsplit

from wsdiag.check.astutil import Loc, SourceText, const_str, dotted, kw, last_name
from wsdiag.check.fixes import Edit, edit_diff
from wsdiag.core.findings import Finding, Location, SuggestedFix

INFRA = ("nginx", "redis", "postgres", "mysql", "mariadb", "mongo", "rabbitmq", "traefik", "haproxy", "caddy",
         "envoy", "memcached", "elasticsearch", "kafka", "zookeeper", "minio", "grafana", "prometheus", "httpd")
_URL = re.compile(r"https?://[^\s\"'\],;)]+")
_HTTP_TOOL = re.compile(r"(?<![\w-])(curl|wget|http|httpie|urlopen|requests\.(?:get|head))(?![\w-])")
_YAML_KEY = re.compile(r"^(\s*)(-\s+)?(healthcheck|livenessProbe|readinessProbe|startupProbe)\s*:\s*(.*)$")
_NGINX = re.compile(r"(?<![\w-])health_check\b[^;#]*?\buri=(\S+?)(?=[;\s]|$)")
_AWS = re.compile(r"(?i)^\s*(?:-\s+)?\"?HealthCheckPath\"?\s*[:=]\s*[\"']?(/[^\s\"',]*)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _path_of(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    return path or "/"


def _infra(image: str) -> bool:
    name = image.strip("'\"").split("@")[0].rsplit("/", 1)[-1].split(":")[0].lower()
    return any(w == name or name.startswith(w + "-") or name.startswith(w + "_") for w in INFRA)


def read_probes(text: str, file: str) -> list[dict]:
    """The health-check probes of one deployment file: ``path``, ``url`` as written, ``probe`` (what
    kind), ``loc`` (a ``Loc`` of the path or URL)."""
    base = os.path.basename(file).lower()
    lines = [ln.rstrip("\r\n") for ln in SourceText(text).lines]  # the line table findings use
    if base.startswith("dockerfile") or base.endswith(".dockerfile"):
        return _dockerfile(lines)
    out: list[dict] = []
    if base.endswith((".yml", ".yaml")):
        out += _yaml(lines)
    for n, line in enumerate(lines, 1):
        if line.lstrip().startswith("#"):
            continue
        if base.endswith(".conf"):
            for m in _NGINX.finditer(line):
                out.append(_probe(m.group(1), m.group(1), "nginx health_check", n, m.start(1)))
        m = _AWS.match(line)
        if m:
            out.append(_probe(m.group(1), m.group(1), "load balancer HealthCheckPath", n, m.start(1)))
    return [p for p in out if p["path"].startswith("/")]


HEALTH_PATH = "/healthz"  # the plain route the fix adds (or finds) and points the probe at


def _probe(url: str, path: str, probe: str, line: int, col: int) -> dict:
    new = HEALTH_PATH
    if "://" in url:
        parts = urlsplit(url)
        new = urlunsplit((parts.scheme, parts.netloc, HEALTH_PATH, "", ""))
    return {"path": path.split("?", 1)[0].split("#", 1)[0], "url": url, "probe": probe, "new": new,
            "loc": Loc(line, col, line, col + len(url))}


def probe_diff(s, p: dict) -> str | None:
    """The edit pointing probe ``p`` of config scan ``s`` at HEALTH_PATH (the URL or path as written, replaced)."""
    t, loc = s.table, p["loc"]
    if loc.line > len(t.lines) or t.line(loc.line)[loc.col:loc.end_col] != p["url"]:
        return None
    at = t.starts[loc.line - 1] + loc.col
    return edit_diff(s, Edit(s.file, at, at + len(p["url"]), p["new"]))


def _dockerfile(lines: list[str]) -> list[dict]:
    out: list[dict] = []
    i = 0
    while i < len(lines):
        first = i
        parts = [lines[i]]
        while parts[-1].rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            parts.append(lines[i])
        i += 1
        head = parts[0].strip()
        if re.match(r"(?i)^FROM\s", head) and _infra(head.split()[1] if len(head.split()) > 1 else ""):
            return []  # the image runs nginx, redis...: its health check is not the app's
        if not re.match(r"(?i)^HEALTHCHECK\s", head) or re.match(r"(?i)^HEALTHCHECK\s+NONE\b", head):
            continue
        if not _HTTP_TOOL.search(" ".join(parts)):
            continue
        for k, line in enumerate(parts):
            for m in _URL.finditer(line):
                out.append(_probe(m.group(), _path_of(m.group()), "Dockerfile HEALTHCHECK", first + k + 1, m.start()))
    return out


def _yaml(lines: list[str]) -> list[dict]:
    out: list[dict] = []
    for n, line in enumerate(lines):
        m = _YAML_KEY.match(line)
        if not m or line.lstrip().startswith("#"):
            continue
        key_indent = len(m.group(1)) + len(m.group(2) or "")
        end = n + 1
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > key_indent):
            end += 1
        if _sibling_infra(lines, n, key_indent, end):
            continue
        kind = m.group(3)
        probe = "docker-compose healthcheck" if kind == "healthcheck" else f"Kubernetes {kind}"
        block = [(n, m.group(4))] + [(k, lines[k]) for k in range(n + 1, end)]
        http_get = any(re.match(r"^\s*(-\s+)?httpGet\s*:", t) for _, t in block)
        if http_get:
            for k, t in block:
                pm = re.match(r"^\s*(?:-\s+)?path\s*:\s*[\"']?([^\s\"'#]+)", t)
                if pm:
                    out.append(_probe(pm.group(1), pm.group(1), probe + " httpGet", k + 1, pm.start(1)))
            continue
        if not any(_HTTP_TOOL.search(t) for _, t in block if not t.lstrip().startswith("#")):
            continue
        for k, t in block:
            if t.lstrip().startswith("#"):
                continue
            col0 = m.start(4) if k == n else 0
            for um in _URL.finditer(t):
                out.append(_probe(um.group(), _path_of(um.group()), probe, k + 1, col0 + um.start()))
    return out


def _sibling_infra(lines: list[str], n: int, key_indent: int, end: int) -> bool:
    """Is the probe's container/service an infrastructure image (``image: nginx``) with no ``build:``?"""
    siblings = []
    k = n - 1
    while k >= 0:
        t = lines[k]
        if t.strip() and not t.lstrip().startswith("#"):
            ind = _indent(t)
            if ind < key_indent:
                if t.lstrip().startswith("- ") and ind + 2 == key_indent:
                    siblings.append(t.lstrip()[2:])
                break
            if ind == key_indent:
                siblings.append(t.strip())
        k -= 1
    k = end
    while k < len(lines):
        t = lines[k]
        if t.strip() and not t.lstrip().startswith("#"):
            if _indent(t) < key_indent:
                break
            if _indent(t) == key_indent:
                siblings.append(t.strip())
        k += 1
    if any(s.startswith("build:") for s in siblings):
        return False
    images = [s.split(":", 1)[1].strip() for s in siblings if s.startswith("image:")]
    return any(_infra(i) for i in images)


# -- the Python side: rules and blueprint prefixes ---------------------------------------------


def python_facts(s) -> dict:
    """The facts of one scanned Python file the WS525 rule relates: its rules (``rule``, ``ws``:
    WebSocket-only, ``bp``: the blueprint receiver or None, ``loc``), its blueprints' own
    ``url_prefix`` and its ``register_blueprint`` calls."""
    f = s.facts
    rules: list[dict] = []
    for r in s.routes:
        if r.receiver_kind == "sockets":
            continue
        if r.rule is None:  # a computed rule: it may answer any probe (the live app decides: check --app)
            if r.websocket is not True:
                rules.append({"rule": "<path:computed>", "ws": False, "maybe_ws": False, "bp": None, "loc": r.loc,
                              "view": r.view, "how": "a computed rule", "app": None})
            continue
        bp = r.receiver if r.receiver_kind == "blueprint" else None
        known = r.receiver_kind in ("app", "blueprint")
        rules.append({"rule": r.rule, "ws": r.websocket is True and known, "maybe_ws": r.websocket not in (True, False),
                      "bp": bp, "loc": r.loc, "view": r.view, "how": "websocket=True",
                      "app": r.receiver if r.receiver_kind == "app" else None})
    for sr in f.sock_routes:
        if sr["rule"] is None:
            continue
        rules.append({"rule": sr["rule"], "ws": True, "maybe_ws": False, "bp": sr["bp"], "loc": sr["loc"],
                      "view": sr["view"], "how": f"flask-sock {sr['receiver']}.route", "app": None})
    prefixes: dict = {}
    registered: list = []
    if rules or "register_blueprint" in s.text:
        for node in s.nodes():  # the scan's own tree, walked once: the file is not parsed a second time
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and last_name(node.value.func) == "Blueprint":
                for tg in node.targets:
                    prefixes[dotted(tg)] = _prefix(kw(node.value, "url_prefix"))
            elif isinstance(node, ast.Call) and last_name(node.func) == "register_blueprint" and node.args:
                receiver = dotted(node.func.value) if isinstance(node.func, ast.Attribute) else ""
                registered.append({"bp": dotted(node.args[0]).split(".")[-1], "into": receiver,
                                   "prefix": _prefix(kw(node, "url_prefix"), absent="(blueprint's own)")})
    tree = s.syntax_tree() if any(r["ws"] and not r["bp"] for r in rules) else None
    if tree is not None:
        flask_apps = [dotted(tg) for st in tree.body if isinstance(st, ast.Assign) and isinstance(st.value, ast.Call)
                      and last_name(st.value.func) == "Flask" for tg in st.targets if isinstance(tg, ast.Name)]
        for r in rules:
            if r["ws"] and not r["bp"]:
                r["route_diff"] = _route_diff(s, tree, r, r["app"] or (flask_apps[0] if len(flask_apps) == 1 else None))
    return {"rules": rules, "prefixes": prefixes, "registered": registered}


def _route_diff(s, tree: ast.Module, r: dict, app: str | None) -> str | None:
    """The edit adding ``@app.route(HEALTH_PATH)`` right after the WebSocket view (module level, where
    ``app`` exists), or None when it cannot be made safely."""
    f = s.functions.get(r["view"] or "")
    text = s.text
    if (app is None or f is None or f.scope or f.cls or "\r" in text or not text.endswith("\n")
            or any(x.rule == HEALTH_PATH for x in s.routes)
            or any(isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and st.name == "healthz"
                   for st in tree.body)
            or not any(st is f.node for st in tree.body)):
        return None
    t = s.table
    end = f.node.end_lineno  # type: ignore[attr-defined]
    at = t.starts[end] if end < len(t.lines) else len(text)
    new = f'\n\n@{app}.route("{HEALTH_PATH}")\ndef healthz():\n    return "ok"\n'
    return edit_diff(s, Edit(s.file, at, at, new))


def _prefix(k, absent=None):
    """A literal url_prefix, ``absent`` when not given, ``"(computed)"`` when not a literal."""
    if k is None:
        return absent
    if isinstance(k.value, ast.Constant) and k.value.value is None:
        return absent
    v = const_str(k.value)
    return v if v is not None else "(computed)"


def join(prefix: str | None, rule: str) -> str:
    """Flask's join of a blueprint url_prefix and a rule."""
    if not prefix:
        return rule
    return "/".join((prefix.rstrip("/"), rule.lstrip("/"))) if rule else prefix


_VAR = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<args>[^)]*)\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_CONV = {None: r"[^/]+", "default": r"[^/]+", "string": r"[^/]+", "int": r"\d+", "float": r"\d+\.\d+",
         "path": r"[^/].*?", "uuid": r"[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}"}


def rule_regex(rule: str):
    """A regex for the paths a Werkzeug rule string matches, or None (a custom converter: unknown)."""
    out, at = [], 0
    for m in _VAR.finditer(rule):
        out.append(re.escape(rule[at:m.start()]))
        conv = m.group("conv")
        if conv == "any":
            items = [x.strip().strip("'\"") for x in (m.group("args") or "").split(",") if x.strip()]
            if not items:
                return None
            out.append("(?:" + "|".join(re.escape(x) for x in items) + ")")
        elif conv in _CONV:
            out.append(_CONV[conv])
        else:
            return None
        at = m.end()
    out.append(re.escape(rule[at:]))
    return re.compile("".join(out) + r"\Z")


def matches(rule: str, path: str) -> bool | None:
    """Does the rule match the path (True/False), or cannot it be told (None: a custom converter)?"""
    rx = rule_regex(rule)
    return None if rx is None else bool(rx.match(path))


def full_paths(rule: dict, file: str, prefixes: dict, registered: list) -> list[str] | None:
    """The URL rules a rule of ``file`` is served at; None when it cannot be told (a computed prefix,
    a blueprint nested in another blueprint, registrations of that name that cannot be traced to it)."""
    bp = rule["bp"]
    if not bp:
        return [rule["rule"]]
    own = prefixes.get(file, {}).get(bp)
    name = bp.split(".")[-1]
    stem = os.path.splitext(os.path.basename(file))[0]
    if stem == "__init__":
        stem = os.path.basename(os.path.dirname(file))
    named = [r for r in registered if r["bp"] == name]
    regs = [r for r in named if r["file"] == file] or [
        r for r in named if any(stem in imp.split(".") for imp in r["imports"])]
    if named and not regs:
        return None  # registered somewhere, but not traceably this blueprint
    if not regs:
        return None if own == "(computed)" else [join(own, rule["rule"])]
    out = []
    for r in regs:
        if r["nested"] or r["prefix"] == "(computed)":
            return None
        p = own if r["prefix"] == "(blueprint's own)" else r["prefix"]
        if p == "(computed)":
            return None
        out.append(join(p, rule["rule"]))
    return out


# -- the rule ---------------------------------------------------------------------------------


def project_findings(proj) -> list[Finding]:
    """WS525: a health-check probe whose path only WebSocket rules of the project match."""
    probes = [(x, p) for x in proj.items for p in x.get("health", ())]
    if not probes:
        return []
    prefixes = {x["file"]: x.get("prefixes", {}) for x in proj.items}
    bp_vars = {v.split(".")[-1] for x in proj.items for v in x.get("prefixes", {})}
    registered = [dict(r, file=x["file"], imports=x.get("imports", ()), nested=r["into"].split(".")[-1] in bp_vars)
                  for x in proj.items for r in x.get("registered", ())]
    rules = []
    for y in proj.items:
        for r in y.get("rules", ()):
            rules.append((y, r, full_paths(r, y["file"], prefixes, registered)))
    out: list[Finding] = []
    seen = set()
    for x, p in probes:
        related = {y["file"] for y in proj.related(x)}
        hits, plain = [], False
        for y, r, paths in rules:
            if paths is None:
                # served at an unknown prefix: a plain rule may still answer the probe
                plain = plain or (not r["ws"] and (rule_regex(r["rule"]) is None or p["path"].endswith(
                    r["rule"].rstrip("/") or "/") or "<" in r["rule"]))
                continue
            for fp in paths:
                m = matches(fp, p["path"])
                if r["ws"] and m and y["file"] in related:
                    hits.append((y, r, fp))
                elif (not r["ws"] or r["maybe_ws"]) and m is not False:
                    plain = True
        key = (x["file"], p["loc"]["line"], p["loc"]["column"])
        if not hits or plain or key in seen:
            continue
        seen.add(key)
        y, r, fp = hits[0]
        where = f"{y['file']}:{r['loc']['line']}"
        ev = {"probe": p["probe"], "path": p["path"], "url": p["url"], "route": repr(fp), "rule_at": where,
              "view": f"{r['view']}()" if r.get("view") else "?", "declared": r["how"],
              "routes": [f"{repr(f)} ({yy['file']}:{rr['loc']['line']}, {rr['how']})" for yy, rr, f in hits]}
        out.append(Finding("WS525", ev, subject=p["path"], location=Location(**p["loc"]),
                           fix=SuggestedFix(diff=_fix_diff(p, r, fp, rules), advice=advice_text(r, p))))
    return out


def _fix_diff(p: dict, r: dict, fp: str, rules: list) -> str | None:
    """Point the probe at HEALTH_PATH, adding that plain route beside the WebSocket view unless the
    project already serves it; None when either half cannot be made."""
    if not p.get("diff"):
        return None
    serves = [(rr, paths) for _, rr, paths in rules if paths and any(matches(x, HEALTH_PATH) is not False for x in paths)]
    if any(rr["ws"] or rr["maybe_ws"] for rr, _ in serves):
        return None
    if serves:
        return p["diff"]
    if r.get("route_diff") and fp == r["rule"]:
        return r["route_diff"] + p["diff"]
    return None


def advice_text(r: dict, p: dict) -> str:
    """The fix in words and code: a plain HTTP route for the probe, and the probe pointed at it."""
    receiver = "app" if not r.get("bp") else r["bp"]
    new = "/healthz"
    if "://" in p["url"]:
        parts = urlsplit(p["url"])
        new = urlunsplit((parts.scheme, parts.netloc, "/healthz", "", ""))
    return ("Add a plain HTTP route for health checks and point the probe at it (a WebSocket rule answers "
            "every plain GET/HEAD with 400):\n"
            f"@{receiver}.route(\"/healthz\")\n"
            "def healthz():\n"
            "    return \"ok\"\n"
            f"# {p['probe']}: {p['url']} -> {new}\n")
