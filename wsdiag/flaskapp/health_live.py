"""`check --app`: health-check paths routed through the live app (FAILURES.md FM-21, WS525).

The static rule (``wsdiag.check.health``) maps a probe's path onto the rules it can read in the
source. With the app loaded, the installed Werkzeug decides instead: a plain GET of the path
(what a health check sends) is routed with Flask's own URL adapter, nothing dispatched. If it
raises ``WebsocketMismatch`` (400) only WebSocket rules match it, and WS525 stands (or is added
when the source alone could not tell, e.g. a computed ``url_prefix``); if it reaches a view, or
routing fails otherwise, a static WS525 for that probe is dropped: the live app wins.
"""

from __future__ import annotations

import inspect
import os

from wsdiag.core.findings import Finding, Location, SuggestedFix


def merge(findings: list, app, scans: list, display=None) -> list:
    """``findings`` with each probe's WS525 decided by routing its path in the live ``app``."""
    from wsdiag.check import health as _health
    from wsdiag.flaskapp.appserver import _flask_mounts

    display = display or (lambda p: p)
    mounts = _flask_mounts(app) or [("", app)]
    static = {(f.location.file, f.location.line, f.location.column): f for f in findings
              if f.code == "WS525" and f.location is not None}
    drop, add = set(), []
    for s in scans:
        for p in getattr(s.facts, "health", ()):
            key = (s.file, p["loc"].line, p["loc"].col + 1)
            verdict = _route(mounts, p["path"])
            if verdict is None:
                continue  # no mounted Flask app serves this path: leave the static verdict
            if verdict["routing"] != "WebsocketMismatch":
                if key in static:
                    drop.add(key)
                continue
            if key in static:
                static[key].evidence["routed_by"] = "the live app: a plain GET gets 400 (WebsocketMismatch)"
                continue
            where = Location(s.file, p["loc"].line, p["loc"].col + 1, p["loc"].end_line, p["loc"].end_col + 1,
                             s.table.line(p["loc"].line))
            ev = {"probe": p["probe"], "path": p["path"], "url": p["url"], "route": repr(verdict["rule"]),
                  "rule_at": verdict["at"], "view": verdict["view"], "declared": "websocket=True",
                  "routed_by": "the live app: a plain GET gets 400 (WebsocketMismatch)"}
            r = {"bp": verdict["blueprint"]}
            add.append(Finding("WS525", ev, subject=p["path"], location=where,
                               fix=SuggestedFix(advice=_health.advice_text(r, p))))
    return [f for f in findings if not (f.code == "WS525" and f.location is not None
                                          and (f.location.file, f.location.line, f.location.column) in drop)] + add


def _route(mounts: list, path: str) -> dict | None:
    """How the live app routes a plain GET of ``path``: its routing outcome and, for a WebSocket-only
    path, the rule (found by routing the same path as an upgrade)."""
    from wsdiag.core.profiles import PROFILES
    from wsdiag.flaskapp.inprocess import route_upgrade

    for prefix, app in sorted(mounts, key=lambda m: -len(m[0])):
        if prefix and not (path == prefix or path.startswith(prefix.rstrip("/") + "/")):
            continue
        sub = path[len(prefix):] or "/"
        host = app.config.get("SERVER_NAME") or "localhost"
        plain = route_upgrade(app, sub, host, None)
        out = {"routing": plain.routing, "rule": None, "at": "?", "view": "?", "blueprint": None}
        if plain.routing == "WebsocketMismatch":
            up = route_upgrade(app, sub, host, PROFILES["minimal"])
            if up.routing == "match" and up.endpoint:
                rule = next((r for r in app.url_map.iter_rules() if r.endpoint == up.endpoint
                             and getattr(r, "websocket", False)), None)
                out["rule"] = prefix + rule.rule if rule is not None else sub
                out["blueprint"] = up.endpoint.rsplit(".", 1)[0] if "." in up.endpoint else None
                view = app.view_functions.get(up.endpoint)
                out["view"], out["at"] = _where(view)
            else:
                out["rule"] = path
        return out
    return None


def _where(view) -> tuple[str, str]:
    if view is None:
        return "?", "?"
    target = getattr(view, "view_class", None) or inspect.unwrap(view)
    name = getattr(target, "__qualname__", "?")
    try:
        path = inspect.getsourcefile(target)
        line = inspect.getsourcelines(target)[1]
    except (OSError, TypeError):
        return f"{name}()", "?"
    rel = os.path.relpath(path) if path else "?"
    return f"{name}()", f"{path if rel.startswith('..') else rel}:{line}"
