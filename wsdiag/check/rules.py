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
| WS511 does not parse   | every file                                | -        |

Pure: standard library only.
"""

from __future__ import annotations

from wsdiag.check import advice as _advice
from wsdiag.check import model as _model
from wsdiag.check import static as _s
from wsdiag.core.findings import Finding

APPLIES = {
    "WS501": {"gevent-websocket"}, "WS502": {"gevent-websocket"}, "WS503": {"flask-sockets"},
    "WS504": _model.RAW_STACKS, "WS505": _model.RAW_STACKS, "WS512": {"flask-sock"}, "WS513": {"flask-sock"},
    "WS514": {"socketio"}, "WS515": {"socketio"}, "WS516": _model.WS_STACKS, "WS517": _model.WS_STACKS,
    "WS518": {"flask-sock"}, "WS519": _model.WS_STACKS, "WS520": {"flask-sock"},
}
# decided for the project as a whole (a server or worker in one file, the stack in another)
CROSS = {"WS503", "WS504", "WS505", "WS512", "WS513", "WS514", "WS515", "WS518", "WS519", "WS520"}


def findings(scans: list, werkzeug: str | None, versions: dict | None = None) -> list[Finding]:
    """Every static finding for a project of scanned files."""
    out: list[Finding] = []
    for s in scans:
        out += file_findings(s, werkzeug)
    return out + project_findings([summary(s) for s in scans], werkzeug, versions)


def file_findings(s, werkzeug: str | None) -> list[Finding]:
    """The findings one file decides alone: routes, hooks, lifecycle, parse errors, other frameworks."""
    rel = _advice.release(werkzeug)
    if s.parse_error is not None:
        line, col, msg = s.parse_error
        imported = {x.split(" ")[1] for x in s.fallback if x.startswith("imports ")}
        others = sorted(_model.OTHER_FRAMEWORKS[m] for m in imported if m in _model.OTHER_FRAMEWORKS)
        if others and not any(m.startswith("flask") for m in imported) and not s.explicit:
            # another framework's file (a Python 2 Bottle app...): out of scope, even unparsed
            return [Finding("WS521", {"file": s.file, "line": 1, "column": 1, "framework": others[0],
                                      "source": s.table.line(1)}, subject=s.file)]
        ev = {"file": s.file, "line": line, "column": col, "end_line": line, "end_column": col,
              "source": s.table.line(line), "message": msg, "seen": "; ".join(s.fallback[:8]) or "nothing"}
        return [Finding("WS511", ev, subject=s.file)]
    other = s.facts.other_framework
    if other:
        if s.facts.stacks or s.uses_websocket:
            return [Finding("WS521", {"file": s.file, "line": 1, "column": 1, "framework": other,
                                      "source": s.table.line(1)}, subject=s.file)]
        return []
    out = _route_rules(s, rel)
    for lc in s.facts.lifecycle:
        ev = _s.location(s, lc.loc)
        ev.update(view=f"{lc.function}()", **lc.detail)
        out.append(Finding(lc.code, ev, subject=lc.function))
    return out


def summary(s) -> dict | None:
    """One file's compact, JSON-able facts for the project rules (None: nothing they use)."""
    f = s.facts
    if s.parse_error is not None or f.other_framework:
        return None
    if not (f.stacks or f.launches or s.servers or f.deploys or s.gunicorn or f.pins or f.socketio
            or f.patch_all is not None or s.flask_sockets):
        return None
    config = not s.file.endswith(".py") or bool(f.deploys and not s.routes and not f.launches)
    out: dict = {"file": s.file, "explicit": bool(s.explicit), "config": config, "stacks": sorted(f.stacks),
                 "imports": sorted({m for m in f.local_imports if m and not m.startswith(("flask", "werkzeug", "gevent"))}),
                 "patched": f.patch_all is not None, "socketio": [{k: v for k, v in c.items() if k != "loc"} for c in f.socketio],
                 "pins": dict(f.pins), "servers": [], "launches": [], "gunicorn": [], "deploys": [], "sockets": []}
    for sv in s.servers:
        ev = _s.location(s, sv.loc)
        ev.update(call=sv.call, server=sv.server)
        out["servers"].append({"ev": ev, "ok": sv.entry and sv.flask_app,
                               "diff": _s.edits_diff(s, sv.edits) if sv.edits else None})
    for ln in f.launches:
        ev = _s.location(s, ln.loc)
        ev.update(launch=ln.call)
        out["launches"].append({"ev": ev, "kind": ln.kind, "call": ln.call, "ok": ln.entry and ln.flask_app})
    for g in s.gunicorn:
        ev = _s.location(s, g.loc)
        ev.update(worker=g.worker)
        out["gunicorn"].append({"ev": ev, "diff": _s.edit_diff(s, g.diff_edit) if g.diff_edit is not None else None})
    for d in f.deploys:
        ev = _s.location(s, d.loc)
        ev.update(worker=d.worker, workers=d.workers, threads=d.threads)
        out["deploys"].append({"ev": ev, "worker": d.worker, "kind": d.worker_kind, "workers": d.workers,
                               "threads": d.threads, "configured": d.configured, "preload": d.preload})
    routed = False
    for r in s.routes:
        if r.receiver_kind == "sockets":
            routed = True
            ev = _s.location(s, r.loc)
            ev.update(route=_s._route_label(r), rule=r.rule, view=_s._view_label(r), receiver=r.receiver, via=r.via,
                      advice=_s._advice_sockets())
            out["sockets"].append({"ev": ev, "subject": r.rule or "?"})
    if s.flask_sockets and not routed:
        what, loc = s.flask_sockets[0]
        out["sockets"].append({"ev": dict(_s.location(s, loc), route="(its routes)", advice=_s._advice_sockets()),
                               "subject": what})
    if f.late_import:
        mod, line = f.late_import
        ev = _s.location(s, f.patch_all)
        ev.update(imported=mod, first_line=line)
        out["late_patch"] = ev
    return out


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
            out += [Finding("WS503", dict(it["ev"]), subject=it["subject"]) for it in x["sockets"]]
        if x.get("late_patch") and stacks & _model.WS_STACKS:
            out.append(Finding("WS519", dict(x["late_patch"]), subject="monkey.patch_all()"))
        for sv in x["servers"]:
            if sv["ok"] and raw:
                ev = dict(sv["ev"])
                if sv["diff"] and not sock:  # never move a flask-sock app onto WebSocketHandler
                    ev["diff"] = sv["diff"]
                out.append(Finding("WS504", ev, subject=ev["call"]))
        for ln in x["launches"]:
            if not (ln["ok"] and sock):
                continue
            ev = dict(ln["ev"])
            if ln["kind"] == _model.GEVENT_WS:
                out.append(Finding("WS512", ev, subject=ln["call"]))
            elif ln["kind"] == _model.SOCKETIO_RUN and proj.installed("gevent-websocket") and proj.installed("gevent") and all(
                    c["async_mode"] in (None, "gevent") for c in proj.socketio_calls(x)):
                ev["launch"] = f"{ln['call']} (gevent mode, gevent-websocket installed)"
                out.append(Finding("WS512", ev, subject=ln["call"]))
            elif ln["kind"] == _model.GEVENT and not proj.patched(x):
                out.append(Finding("WS518", ev, subject=ln["call"]))
            elif ln["kind"] == _model.DEV:
                out.append(Finding("WS520", ev, subject=ln["call"]))
        if raw:
            for g in x["gunicorn"]:
                ev = dict(g["ev"])
                if g["diff"] and not sock:
                    ev["diff"] = g["diff"]
                out.append(Finding("WS505", ev, subject=ev["worker"]))
        queue = any(c["message_queue"] for c in proj.socketio_calls(x))
        for d in x["deploys"]:
            ev, kind = dict(d["ev"]), d["kind"]
            if sock and kind == _model.GEVENT_WS:
                out.append(Finding("WS512", dict(ev, launch=f"gunicorn -k {d['worker']}"), subject=d["worker"]))
            if sock and kind == "sync" and not d["configured"] and (d["threads"] or 1) <= 1:
                out.append(Finding("WS513", ev, subject=d["worker"]))
            if sio and (d["workers"] or 1) > 1 and not queue:
                out.append(Finding("WS514", ev, subject=f"-w {d['workers']}"))
            if sio and kind == "gevent" and proj.installed("gevent-websocket"):
                out.append(Finding("WS515", dict(ev, worker=f"-k {d['worker']}"), subject=d["worker"]))
            if d.get("preload") and kind in ("gevent", _model.GEVENT_WS) and stacks & _model.WS_STACKS:
                # FM-14 (c): the arbiter imports the app before the gevent worker monkey-patches
                out.append(Finding("WS519", dict(ev, imported="the whole app (gunicorn --preload / preload_app)",
                                                 first_line=ev["line"]), subject="preload"))
    return out


def _route_rules(s, rel) -> list[Finding]:
    out: list[Finding] = []
    for r in s.routes:
        ev = _s.location(s, r.loc)
        ev.update(route=_s._route_label(r), rule=r.rule, view=_s._view_label(r), receiver=r.receiver, via=r.via)
        if r.receiver_kind == "sockets":
            continue  # WS503: a project rule (a requirements pin elsewhere may make it healthy)
        if r.websocket is True:
            bad = [m for m in (r.methods or ()) if m not in _s.WEBSOCKET_METHODS]
            if bad:
                out.append(Finding("WS506", dict(ev, methods=", ".join(r.methods)), subject=r.rule or "?"))
            if r.rule and len(r.rule) > 1 and r.rule.endswith("/") and r.strict_slashes is not False:
                out.append(Finding("WS507", dict(ev, alt_path=repr(r.rule.rstrip("/")), hidden="308 redirect",
                                                 diff=_s._kw_diff(s, r, "strict_slashes=False")), subject=r.rule))
            if rel.rule == "never":
                out.append(Finding("WS706", dict(ev, path=r.rule or "?", advice=_advice.websocket_rule_advice(rel)),
                                   subject=r.rule or "?"))
            elif rel.rule == "exact":
                out.append(Finding("WS701", dict(ev, failing="'keep-alive, Upgrade' (older Firefox)",
                                                 working="'Upgrade' (Chrome, current Firefox)",
                                                 window=f"Werkzeug {rel.text} detects only 'Connection: Upgrade'",
                                                 advice=_advice.websocket_rule_advice(rel)), subject=r.rule or "?"))
            continue
        if not r.reads_socket:
            continue
        if rel.rule == "never":
            out.append(Finding("WS509", dict(ev, werkzeug=rel.text, advice=_advice.plain_rule_advice(rel)),
                               subject=r.rule or "?"))
            continue
        ev.update(consequence=_advice.plain_rule_consequence(rel), advice=_advice.plain_rule_advice(rel))
        if r.methods and "GET" not in r.methods:
            ev["consequence"] = ("the rule does not even allow GET, the only method gevent-websocket upgrades: "
                                 "upgrades get a hidden 405 (or 400)")
        ev.update(fix_blocker=_s.fix_blocker(r, rel))
        if r.edit is not None and ev["fix_blocker"] is None:
            ev["diff"] = _s.edit_diff(s, r.edit)
        out.append(Finding("WS501", ev, subject=r.rule or "?"))
    for h in s.hooks:
        if not h.reads_socket:
            continue
        ev = _s.location(s, h.loc)
        ev.update(hook=f"{h.name}()", level=h.level, helpers=[f"{x}()" for x in h.helpers],
                  advice=_s._hook_advice(h, rel))
        out.append(Finding("WS502", ev, subject=h.name))
    return out
