"""The static rules of ``wsdiag check``, each stating the WebSocket stacks it applies to.

A rule is silent outside its stacks: a flask-sock app is never told to move onto
gevent-websocket's handler, a Flask-SocketIO app is never told to change its worker to
one that breaks it, and a file of another framework (Bottle, Quart, aiohttp, Django...)
is out of scope (``WS521``, info) and never flagged as Flask.

| rule                   | stacks                                   | FAILURES |
|------------------------|------------------------------------------|----------|
| WS501/509/706/701/506/507 route rules | Flask routes that read ``wsgi.websocket`` | core, FM-15, FM-17, FM-21 |
| WS502 socket in a hook | gevent-websocket                          | core     |
| WS503 flask-sockets    | flask-sockets (silent on Werkzeug < 2, installed or pinned) | FM-16 |
| WS504 server, WS505 worker | gevent-websocket, flask-sockets (or a named file of unknown stack) | FM-10 |
| WS512 WebSocketHandler | flask-sock                                | FM-11    |
| WS513 sync worker      | flask-sock                                | FM-12    |
| WS520 dev server       | flask-sock (info)                         | FM-13    |
| WS518, WS519 patching  | flask-sock on gevent; any stack           | FM-14    |
| WS516, WS517 lifecycle | every WebSocket stack                     | FM-22    |
| WS514 workers          | socketio                                  | FM-25    |
| WS515 -k gevent        | socketio, gevent-websocket installed      | FM-10, FM-28 |
| WS522 facts, WS523 origins, WS524 no WebSocket driver (``sio``) | socketio | FM-23, FM-25, FM-26 |
| WS508 blueprint hooks  | blueprint routes that fail routing (``bphooks``) | FM-20 |
| WS525 health check     | websocket=True rules, flask-sock (``health``) | FM-21 |
| WS511 does not parse   | every file                                | -        |

Pure: standard library only.
"""

from __future__ import annotations

from wsdiag.check import advice as _advice
from wsdiag.check import bphooks as _bphooks
from wsdiag.check import health as _health
from wsdiag.check import model as _model
from wsdiag.check import sio as _sio
from wsdiag.check import static as _s
from wsdiag.core.findings import Finding, Location, SuggestedFix

APPLIES = {
    "WS501": {"gevent-websocket"}, "WS502": {"gevent-websocket"}, "WS503": {"flask-sockets"},
    "WS504": _model.RAW_STACKS, "WS505": _model.RAW_STACKS, "WS512": {"flask-sock"}, "WS513": {"flask-sock"},
    "WS514": {"socketio"}, "WS515": {"socketio"}, "WS522": {"socketio"}, "WS523": {"socketio"}, "WS524": {"socketio"}, "WS516": _model.WS_STACKS, "WS517": _model.WS_STACKS,
    "WS518": {"flask-sock"}, "WS519": _model.WS_STACKS, "WS520": {"flask-sock"},
    "WS508": {"gevent-websocket"}, "WS525": {"gevent-websocket", "flask-sock"},
}
# decided for the project as a whole (a server or worker in one file, the stack in another)
CROSS = {"WS503", "WS504", "WS505", "WS512", "WS513", "WS514", "WS515", "WS518", "WS519", "WS520",
         "WS522", "WS523", "WS524", "WS525"}


def findings(scans: list, werkzeug: str | None, versions: dict | None = None, routes=None) -> list[Finding]:
    """Every static finding for a project of scanned files. ``routes`` (``projpins.Routes``): the
    Werkzeug each file's route rules judge with, from the project's pins (None: ``werkzeug``)."""
    out: list[Finding] = []
    for s in scans:
        out += file_findings(s, routes.for_file(s.file) if routes is not None else werkzeug)
    return out + project_findings([summary(s) for s in scans], werkzeug, versions)


def file_findings(s, werkzeug) -> list[Finding]:
    """The findings one file decides alone: routes, hooks, lifecycle, parse errors, other frameworks.
    ``werkzeug``: the installed release (a string) or the project's (``advice.Release``, ``projpins``)."""
    rel = _advice.release(werkzeug)
    if s.parse_error is not None:
        line, col, msg = s.parse_error
        imported = {x.split(" ")[1] for x in s.fallback if x.startswith("imports ")}
        others = sorted(_model.OTHER_FRAMEWORKS[m] for m in imported if m in _model.OTHER_FRAMEWORKS)
        if others and not any(m.startswith("flask") for m in imported) and not s.explicit:
            # another framework's file (a Python 2 Bottle app...): out of scope, even unparsed
            return [Finding("WS521", {"framework": others[0]}, subject=s.file,
                            location=Location(s.file, 1, 1, source=s.table.line(1)))]
        ev = {"message": msg, "seen": "; ".join(s.fallback[:8]) or "nothing"}
        return [Finding("WS511", ev, subject=s.file, location=Location(s.file, line, col, line, col, s.table.line(line)))]
    other = s.facts.other_framework
    if other:
        if s.facts.stacks or s.uses_websocket:
            return [Finding("WS521", {"framework": other}, subject=s.file,
                            location=Location(s.file, 1, 1, source=s.table.line(1)))]
        return []
    out = _route_rules(s, rel)
    out += _bphooks.findings(s, out)  # WS508: blueprint hooks the failing upgrade never runs (FM-20)
    for lc in s.facts.lifecycle:
        ev = dict(view=f"{lc.function}()", **lc.detail)
        out.append(Finding(lc.code, ev, subject=lc.function, location=_s.location(s, lc.loc)))
    return out


def summary(s) -> dict | None:
    """One file's compact, JSON-able facts for the project rules (None: nothing they use)."""
    f = s.facts
    if s.parse_error is not None or f.other_framework:
        return None
    routing = None  # WS525: the rules a health check may hit, and blueprint prefixes
    if f.sock_routes or any(r.websocket is True for r in s.routes) or "register_blueprint" in s.text:
        routing = _health.python_facts(s) if s.file.endswith((".py", ".pyw")) else None
    if not (f.stacks or f.launches or s.servers or f.deploys or s.gunicorn or f.pins or f.pin_includes or f.socketio
            or f.patch_all is not None or s.flask_sockets or f.health or routing):
        return None
    config = not s.file.endswith(".py") or bool(f.deploys and not s.routes and not f.launches)
    out: dict = {"file": s.file, "explicit": bool(s.explicit), "config": config, "stacks": sorted(f.stacks),
                 "imports": sorted({m for m in f.local_imports if m and not m.startswith(("flask", "werkzeug", "gevent"))}),
                 "patched": f.patch_all is not None, "tls": list(f.tls),
                 "socketio": [dict({k: v for k, v in c.items() if k != "loc"}, loc=_loc(s, c["loc"])) for c in f.socketio],
                 "pins": dict(f.pins), "pin_includes": list(f.pin_includes), "servers": [], "launches": [], "gunicorn": [], "deploys": [], "sockets": []}
    for sv in s.servers:
        ev = {"call": sv.call, "server": sv.server}
        out["servers"].append({"ev": ev, "loc": _loc(s, sv.loc), "ok": sv.entry and sv.flask_app,
                               "diff": _s.edits_diff(s, sv.edits) if sv.edits else None})
    for ln in f.launches:
        ev = {"launch": ln.call}
        out["launches"].append({"ev": ev, "loc": _loc(s, ln.loc), "kind": ln.kind, "call": ln.call, "ok": ln.entry and ln.flask_app})
    for g in s.gunicorn:
        ev = {"worker": g.worker}
        out["gunicorn"].append({"ev": ev, "loc": _loc(s, g.loc), "diff": _s.edit_diff(s, g.diff_edit) if g.diff_edit is not None else None})
    for d in f.deploys:
        ev = {"worker": d.worker, "workers": d.workers, "threads": d.threads}
        out["deploys"].append({"ev": ev, "loc": _loc(s, d.loc), "worker": d.worker, "kind": d.worker_kind, "workers": d.workers,
                               "threads": d.threads, "configured": d.configured, "preload": d.preload,
                               "tls": getattr(d, "tls", False)})
    routed = False
    for r in s.routes:
        if r.receiver_kind == "sockets":
            routed = True
            ev = {"route": _s._route_label(r), "rule": r.rule, "view": _s._view_label(r), "receiver": r.receiver,
                  "via": r.via}
            out["sockets"].append({"ev": ev, "loc": _loc(s, r.loc), "advice": _s._advice_sockets(),
                                   "subject": r.rule or "?"})
    if s.flask_sockets and not routed:
        what, loc = s.flask_sockets[0]
        out["sockets"].append({"ev": {"route": "(its routes)"}, "loc": _loc(s, loc), "advice": _s._advice_sockets(),
                               "subject": what})
    if f.health:
        out["health"] = [dict(p, loc=_loc(s, p["loc"]), diff=_health.probe_diff(s, p)) for p in f.health]
    if routing:
        out["rules"] = [dict(r, loc=_loc(s, r["loc"])) for r in routing["rules"]]
        out["prefixes"], out["registered"] = routing["prefixes"], routing["registered"]
    if f.late_import:
        mod, line = f.late_import
        out["late_patch"] = {"ev": {"imported": mod, "first_line": line}, "loc": _loc(s, f.patch_all)}
    return out


def _loc(s, loc) -> dict:
    """A location in a file's JSON-able summary (``_at`` reads it back)."""
    return _s.location(s, loc).to_dict()


def at(item: dict) -> Location:
    """The location of a summary item (a server, launch, worker, deployment...)."""
    return Location(**item["loc"])


def project_findings(summaries: list, werkzeug: str | None, versions: dict | None = None) -> list[Finding]:
    """The rules that relate files: servers and workers against the stack of the code they serve."""
    rel = _advice.release(werkzeug)
    proj = _model.Project(summaries, versions)
    werkzeug_1 = (rel.version is not None and rel.version < (2,)) or proj.pinned_werkzeug_1()
    out: list[Finding] = []
    for x in proj.items:
        stacks = proj.stacks(x)
        raw = bool(stacks & _model.RAW_STACKS) or (not stacks and x["explicit"] and x["config"])
        sock, sio = "flask-sock" in stacks, "socketio" in stacks
        if not werkzeug_1:
            out += [Finding("WS503", dict(it["ev"], werkzeug=proj.version_text("werkzeug")), subject=it["subject"], location=at(it),
                            fix=SuggestedFix(advice=it["advice"])) for it in x["sockets"]]
        if x.get("late_patch") and stacks & _model.WS_STACKS:
            late = x["late_patch"]
            out.append(Finding("WS519", dict(late["ev"]), subject="monkey.patch_all()", location=at(late)))
        for sv in x["servers"]:
            if sv["ok"] and raw:
                ev = dict(sv["ev"])
                # never move a flask-sock app onto WebSocketHandler
                fix = SuggestedFix(diff=sv["diff"]) if sv["diff"] and not sock else None
                out.append(Finding("WS504", ev, subject=ev["call"], location=at(sv), fix=fix))
        for ln in x["launches"]:
            if not (ln["ok"] and sock):
                continue
            ev, where = dict(ln["ev"]), at(ln)
            if ln["kind"] == _model.GEVENT_WS:
                out.append(Finding("WS512", ev, subject=ln["call"], location=where))
            elif ln["kind"] == _model.SOCKETIO_RUN and proj.installed("gevent-websocket") and proj.installed("gevent") and all(
                    c["async_mode"] in (None, "gevent") for c in proj.socketio_calls(x)):
                ev["launch"] = f"{ln['call']} (gevent mode, gevent-websocket installed)"
                ev["gevent_websocket"] = proj.version_text("gevent-websocket")  # installed, or the project's pin
                out.append(Finding("WS512", ev, subject=ln["call"], location=where))
            elif ln["kind"] == _model.GEVENT and not proj.patched(x):
                out.append(Finding("WS518", ev, subject=ln["call"], location=where))
            elif ln["kind"] == _model.DEV:
                out.append(Finding("WS520", ev, subject=ln["call"], location=where))
        if raw:
            for g in x["gunicorn"]:
                ev = dict(g["ev"])
                fix = SuggestedFix(diff=g["diff"]) if g["diff"] and not sock else None
                out.append(Finding("WS505", ev, subject=ev["worker"], location=at(g), fix=fix))
        queue = any(c["message_queue"] for c in proj.socketio_calls(x))
        for d in x["deploys"]:
            ev, kind, where = dict(d["ev"]), d["kind"], at(d)
            if sock and kind == _model.GEVENT_WS:
                out.append(Finding("WS512", dict(ev, launch=f"gunicorn -k {d['worker']}"), subject=d["worker"], location=where))
            if sock and kind == "sync" and not d["configured"] and (d["threads"] or 1) <= 1:
                out.append(Finding("WS513", ev, subject=d["worker"], location=where))
            if sio and (d["workers"] or 1) > 1 and not queue:
                out.append(Finding("WS514", ev, subject=f"-w {d['workers']}", location=where))
            if sio and kind == "gevent" and proj.installed("gevent-websocket"):
                out.append(Finding("WS515", dict(ev, worker=f"-k {d['worker']}", gevent_websocket=proj.version_text("gevent-websocket")), subject=d["worker"], location=where))
            if d.get("preload") and kind in ("gevent", _model.GEVENT_WS) and stacks & _model.WS_STACKS:
                # FM-14 (c): the arbiter imports the app before the gevent worker monkey-patches
                out.append(Finding("WS519", dict(ev, imported="the whole app (gunicorn --preload / preload_app)",
                                                 first_line=where.line), subject="preload", location=where))
    out += _sio.project_findings(proj, proj.versions)  # WS522-WS524: Flask-SocketIO's facts and rules
    out += _health.project_findings(proj)  # WS525: a health check pointed at a WebSocket-only rule (FM-21)
    return out


def _route_rules(s, rel) -> list[Finding]:
    out: list[Finding] = []
    for r in s.routes:
        if r.receiver_kind == "sockets":
            continue  # WS503: a project rule (a requirements pin elsewhere may make it healthy)
        at = _s.location(s, r.loc)
        ev = {"route": _s._route_label(r), "rule": r.rule, "view": _s._view_label(r), "receiver": r.receiver, "via": r.via}
        subject = r.rule or "?"
        if r.websocket is True:
            bad = [m for m in (r.methods or ()) if m not in _s.WEBSOCKET_METHODS]
            if bad:
                out.append(Finding("WS506", dict(ev, methods=", ".join(r.methods)), subject=subject, location=at))
            if r.rule and len(r.rule) > 1 and r.rule.endswith("/") and r.strict_slashes is not False:
                out.append(Finding("WS507", dict(ev, alt_path=repr(r.rule.rstrip("/")), hidden="308 redirect"),
                                   subject=r.rule, location=at,
                                   fix=SuggestedFix(diff=_s._kw_diff(s, r, "strict_slashes=False"))))
            if rel.rule == "never":
                out.append(Finding("WS706", dict(ev, path=subject), subject=subject, location=at,
                                   fix=SuggestedFix(advice=_advice.websocket_rule_advice(rel))))
            elif rel.rule == "exact":
                out.append(Finding("WS701", dict(ev, failing="'keep-alive, Upgrade' (older Firefox)",
                                                 working="'Upgrade' (Chrome, current Firefox)",
                                                 window=f"Werkzeug {rel.text} detects only 'Connection: Upgrade'"),
                                   subject=subject, location=at,
                                   fix=SuggestedFix(advice=_advice.websocket_rule_advice(rel))))
            continue
        if not r.reads_socket:
            continue
        if rel.rule == "never":
            out.append(Finding("WS509", dict(ev, werkzeug=f"{rel.text} ({rel.source or 'installed'})"), subject=subject, location=at,
                               fix=SuggestedFix(advice=_advice.plain_rule_advice(rel))))
            continue
        ev["consequence"] = _advice.plain_rule_consequence(rel)
        if r.methods and "GET" not in r.methods:
            ev["consequence"] = ("the rule does not even allow GET, the only method gevent-websocket upgrades: "
                                 "upgrades get a hidden 405 (or 400)")
        blocker = _s.fix_blocker(r, rel)
        diff = _s.edit_diff(s, r.edit) if r.edit is not None and blocker is None else None
        out.append(Finding("WS501", ev, subject=subject, location=at,
                           fix=SuggestedFix(diff, blocker, _advice.plain_rule_advice(rel))))
    for sr in s.facts.sock_routes:  # flask-sock registers its routes websocket=True: the same ValueError
        bad = [m for m in (sr["methods"] or ()) if m not in _s.WEBSOCKET_METHODS]
        if bad:
            ev = {"route": repr(sr["rule"]) if sr["rule"] is not None else "(a computed rule)", "rule": sr["rule"],
                  "view": f"{sr['view']}()", "receiver": sr["receiver"], "via": "flask-sock route",
                  "methods": ", ".join(sr["methods"])}
            out.append(Finding("WS506", ev, subject=sr["rule"] or "?", location=_s.location(s, sr["loc"])))
    for h in s.hooks:
        if not h.reads_socket:
            continue
        ev = {"hook": f"{h.name}()", "level": h.level, "helpers": [f"{x}()" for x in h.helpers]}
        out.append(Finding("WS502", ev, subject=h.name, location=_s.location(s, h.loc),
                           fix=SuggestedFix(advice=_s._hook_advice(h, rel))))
    return out
