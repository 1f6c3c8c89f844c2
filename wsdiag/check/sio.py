"""Flask-SocketIO in the app model: its endpoint, async mode, WebSocket driver, origins, queue, workers.

One set of answers for ``check`` (from the source: ``model.socketio_facts``) and ``check --app``
(from the live objects: ``wsdiag.flaskapp.inprocess.socketio_facts``), so both say the same:

* ``WS522`` (info): the facts, one finding per ``SocketIO(...)``.
* ``WS523`` (warning): ``cors_allowed_origins`` that cannot match the origin the app is served
  from: an entry without a scheme, or with a path or a trailing slash (a browser's ``Origin`` is
  ``scheme://host[:port]`` exactly), or only ``http://`` origins while the app is served over
  TLS. python-engineio answers ``400 "Not an accepted origin."`` (FAILURES FM-23). An empty
  list is *not* flagged: python-engineio (3.x to 4.15) treats ``[]`` as "origin checks off".
* ``WS524`` (error): the async mode has no WebSocket driver. python-engineio >= 4.7.1 imports
  simple-websocket unconditionally in its threading driver (and in the gevent driver when
  gevent-websocket is absent), so without simple-websocket those modes fail to load and
  ``SocketIO()`` raises ``ValueError('Invalid async_mode specified')``: the app does not start.
  Older releases start without it and offer ``upgrades: []`` (FAILURES FM-26, FM-26b).

Every rule is silent outside Flask-SocketIO. Pure: standard library only.
"""

from __future__ import annotations

import re

from wsdiag.core.findings import Finding, Location, SuggestedFix

UNSET = "(not set)"  # model.SOCKETIO_UNSET
HARD_IMPORT = (4, 7, 1)  # python-engineio from which the threading driver needs simple-websocket to load
DEFAULT_MODES = ("eventlet", "gevent_uwsgi", "gevent", "threading")  # python-engineio's order
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#\s]+$", re.I)


def _version(text: str | None) -> tuple | None:
    if not text:
        return None
    nums = re.findall(r"\d+", text.split("+")[0])[:3]
    return tuple(int(n) for n in nums) if nums else None


def _installed(versions: dict, dist: str) -> bool | None:
    if dist not in versions:
        return None
    return versions.get(dist) is not None


def pick_driver(async_mode, versions: dict) -> dict:
    """What python-engineio will choose with the installed packages: ``mode``, ``websocket``
    (the driver, None when the mode has none), ``state`` (ok | no-websocket | refuses | unknown)."""
    if async_mode == "expr":
        return {"mode": "(computed)", "websocket": None, "state": "unknown"}
    needed = ("python-engineio", "eventlet", "gevent", "gevent-websocket", "simple-websocket")
    if any(d not in versions for d in needed):
        return {"mode": async_mode or "(default)", "websocket": None, "state": "unknown"}
    eio = _version(versions.get("python-engineio"))
    if eio is None:
        return {"mode": async_mode or "(default)", "websocket": None, "state": "unknown"}
    hard = eio >= HARD_IMPORT
    simple = _installed(versions, "simple-websocket")
    if async_mode in ("eventlet", "gevent") and not _installed(versions, async_mode):
        return {"mode": async_mode, "websocket": None, "state": "not-installed"}
    for mode in ([async_mode] if async_mode else list(DEFAULT_MODES)):
        if mode == "eventlet" and _installed(versions, "eventlet"):
            return {"mode": mode, "websocket": "eventlet.websocket", "state": "ok"}
        if mode == "gevent_uwsgi" and async_mode == "gevent_uwsgi":
            return {"mode": mode, "websocket": "uWSGI's websocket (only inside uWSGI)", "state": "ok"}
        if mode == "gevent" and _installed(versions, "gevent"):
            if _installed(versions, "gevent-websocket"):
                return {"mode": mode, "websocket": "gevent-websocket (needs its WebSocketHandler or GeventWebSocketWorker)",
                        "state": "ok"}
            if simple:
                return {"mode": mode, "websocket": "simple-websocket", "state": "ok"}
            if not hard:
                return {"mode": mode, "websocket": None, "state": "no-websocket"}
        if mode == "threading":
            if simple:
                return {"mode": mode, "websocket": "simple-websocket", "state": "ok"}
            if not hard:
                return {"mode": mode, "websocket": None, "state": "no-websocket"}
    if async_mode not in (None, "threading", "gevent"):
        return {"mode": async_mode, "websocket": None, "state": "unknown"}
    return {"mode": async_mode or "(default)", "websocket": None, "state": "refuses"}  # simple-websocket missing


def cors_problem(cors, tls: list) -> dict | None:
    """Why ``cors_allowed_origins`` cannot match the page's origin (None: it can, or it cannot be told)."""
    if cors in (UNSET, None, "*", "expr", []) or isinstance(cors, bool) or not isinstance(cors, (str, list)):
        return None
    origins = [cors] if isinstance(cors, str) else list(cors)
    if "*" in origins:
        return None
    never = [o for o in origins if not _ORIGIN.match(o)]
    fixed = [f for o in origins for f in _fixed(o, tls)]
    if never:
        return {"origins": origins, "never": never, "fixed": fixed,
                "problem": (f"{', '.join(repr(o) for o in never)} can never equal a browser's Origin header "
                            "(scheme://host[:port], no path, no trailing slash)")}
    if tls and all(o.lower().startswith("http://") for o in origins):
        return {"origins": origins, "never": origins, "fixed": fixed,
                "problem": (f"the app is served over TLS ({tls[0]}), so its pages send an https:// Origin, "
                            "and the list holds only http:// origins")}
    return None


def _fixed(origin: str, tls: list) -> list[str]:
    """The origin(s) a listed entry meant: scheme://host[:port] (both schemes when it names none
    and nothing says whether the app is behind TLS)."""
    o = origin.strip()
    schemes = None
    if "://" not in o:
        schemes = ["https"] if tls else ["https", "http"]
        o = "x://" + o
    scheme, rest = o.split("://", 1)
    host = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if schemes is None:
        schemes = ["https"] if tls and scheme.lower() == "http" else [scheme]
    return [f"{sc}://{host}" for sc in schemes]


def endpoint(path) -> str:
    if path in (UNSET, None, "expr") or not isinstance(path, str):
        return "/socket.io/" if path != "expr" else "(computed path)"
    return "/" + path.strip("/") + "/"


def _cors_text(cors) -> str:
    if cors in (UNSET, None):
        return "unset (same origin only)"
    if cors == []:
        return "[] (origin checks and CORS headers off)"
    if cors == "expr":
        return "(computed)"
    return repr(cors)


def facts_evidence(call: dict, versions: dict, workers: str, live: dict | None = None) -> dict:
    """The WS522 evidence of one SocketIO(...): from the source, overridden by the live app's facts."""
    mode = call.get("async_mode")
    picked = pick_driver(mode, versions)
    ev = {
        "endpoint": endpoint(call.get("path", UNSET)),
        "async_mode": "(computed)" if mode == "expr" else (mode or "default"),
        "driver": picked["websocket"] or {"no-websocket": "none (no WebSocket transport)",
                                          "refuses": "none: SocketIO() raises 'Invalid async_mode specified'",
                                          "not-installed": f"none: {mode} is not installed here",
                                          "unknown": "not determined"}.get(picked["state"], "none"),
        "cors": _cors_text(call.get("cors_allowed_origins", UNSET)),
        "queue": "yes" if call.get("message_queue") else "none (one process only)",
        "workers": workers,
        "source": "the source",
    }
    if mode is None and picked["state"] != "unknown":
        ev["async_mode"] = f"default, resolves to {picked['mode']}" if picked["state"] != "refuses" else "default (none loads)"
    if live:
        ev.update({k: v for k, v in live.items() if k in ev and v is not None})
        ev["source"] = "the running app (in-process)"
    return ev


def project_findings(proj, versions: dict) -> list[Finding]:
    """WS522/WS523/WS524 for each ``SocketIO(...)`` of the project's Flask-SocketIO files."""
    out: list[Finding] = []
    for x in proj.items:
        calls = [c for c in x.get("socketio", ()) if c.get("call", "SocketIO") == "SocketIO" and c.get("loc")]
        if not calls or "socketio" not in proj.stacks(x):
            continue
        related = proj.related(x)
        merged = _merge_init_app([c for y in related for c in y.get("socketio", ())])
        tls = [t for y in related for t in y.get("tls", ())] + deploy_tls(proj, x)
        workers = workers_text(proj, x)
        for c in calls:
            call = dict(c, **{k: v for k, v in merged.items() if v not in (UNSET, None)})
            call["message_queue"] = c.get("message_queue") or merged.get("message_queue")
            found = call_findings(call, versions, workers, tls, Location(**c["loc"]))
            pinned = [proj.version_text(d) for d in DRIVER_DISTS if hasattr(proj, "pins") and proj.pins.pinned(d)]
            for f in found:  # the project's pins (wsdiag.check.pins) decided the driver: say which, file:line
                if pinned and f.code in ("WS522", "WS524"):
                    f.evidence["versions_from"] = "; ".join(pinned)
            out += found
    return out


DRIVER_DISTS = ("python-engineio", "simple-websocket", "gevent", "gevent-websocket", "eventlet")


def call_findings(call: dict, versions: dict, workers: str, tls: list, where: Location | None,
                  live: dict | None = None) -> list[Finding]:
    ev = facts_evidence(call, versions, workers, live)
    ev["tls"] = ", ".join(dict.fromkeys(tls)) or "none seen"
    out = [Finding("WS522", ev, subject=ev["endpoint"], location=where)]
    cors = live["cors_value"] if live and "cors_value" in live else call.get("cors_allowed_origins", UNSET)
    bad = cors_problem(cors, tls)
    if bad:
        fixed = list(dict.fromkeys(bad["fixed"]))
        out.append(Finding("WS523", {"origins": repr(bad["origins"]), "problem": bad["problem"], "endpoint": ev["endpoint"]},
                           subject="cors_allowed_origins", location=where,
                           fix=SuggestedFix(advice=f"cors_allowed_origins={fixed!r}   # exactly the page's scheme://host[:port]")))
    state = live.get("websocket_state") if live else pick_driver(call.get("async_mode"), versions)["state"]
    if state in ("no-websocket", "refuses"):
        eio = versions.get("python-engineio") or "?"
        consequence = ("SocketIO() raises ValueError('Invalid async_mode specified'): the app does not start"
                       if state == "refuses" else
                       "the WebSocket transport is unavailable: the OPEN packet offers upgrades: [] and WebSocket "
                       "requests fail with 400 (clients with transports=['websocket'] never connect)")
        out.append(Finding("WS524", {"async_mode": call.get("async_mode") or "default", "engineio": eio,
                                     "consequence": consequence, "endpoint": ev["endpoint"]},
                           subject=ev["endpoint"], location=where))
    return out


def _merge_init_app(calls: list) -> dict:
    out: dict = {}
    for c in calls:
        if c.get("call") != "init_app":
            continue
        for k in ("async_mode", "cors_allowed_origins", "path"):
            if c.get(k) not in (UNSET, None):
                out[k] = c[k]
        out["message_queue"] = out.get("message_queue") or c.get("message_queue")
    return out


def deploy_tls(proj, x: dict) -> list:
    """gunicorn commands or configs serving the app over TLS themselves (--certfile/--keyfile)."""
    return [f"gunicorn --certfile ({y['file']})" for y in proj.items
            if any(d.get("tls") for d in y["deploys"]) and any(r["file"] == x["file"] for r in proj.related(y))]


def workers_text(proj, x: dict) -> str:
    """How many processes serve the app, from the deployments that relate to it."""
    seen = []
    for y in proj.items:
        if y["deploys"] and any(r["file"] == x["file"] for r in proj.related(y)):
            for d in y["deploys"]:
                seen.append(f"gunicorn -w {d['workers'] or 1} -k {d['worker']} ({y['file']})")
    for y in proj.related(x):
        for ln in y.get("launches", ()):
            if ln.get("call", "").startswith("socketio.run") or ln.get("kind") == "socketio.run":
                seen.append(f"{ln['call']} (one process)")
    return "; ".join(dict.fromkeys(seen)) or "no deployment seen"


SIO_CODES = ("WS522", "WS523", "WS524")


def merge_live(findings: list, live: list, versions: dict) -> list:
    """``check --app``: the live app's Flask-SocketIO facts replace the source's guesses.

    Each live extension takes the place (location, workers, TLS evidence) of the static WS522
    with the same endpoint (else the first); WS522-WS524 are then decided from the live facts.
    """
    if not live:
        return findings
    static = [f for f in findings if f.code == "WS522"]
    out = [f for f in findings if f.code not in SIO_CODES]
    for n, facts in enumerate(live):
        twin = next((f for f in static if f.evidence.get("endpoint") == facts["endpoint"]), None)
        twin = twin or (static[n] if n < len(static) else None)
        workers = twin.evidence.get("workers", "no deployment seen") if twin else "no deployment seen"
        tls = list(facts.get("tls") or [])
        if twin and twin.evidence.get("tls") not in (None, "none seen"):
            tls += [t.strip() for t in twin.evidence["tls"].split(", ")]
        call = {"async_mode": facts["async_mode"], "message_queue": facts["message_queue"],
                "cors_allowed_origins": facts["cors_value"]}
        out += call_findings(call, versions, workers, tls, twin.location if twin else None, live=facts)
    return out
