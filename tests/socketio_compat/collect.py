"""Facts for docs/socketio-compatibility.md, measured in the current environment (one nox env).

    nox -s socketio_compat          # every environment, then:
    python tests/socketio_compat/render.py

Serves fixtures/socketio under socketio.run() in threading and gevent mode with the installed
Flask-SocketIO / python-socketio / python-engineio, probes it with wsdiag speaking EIO 3 and EIO 4,
and connects the installed python-socketio client to it as the independent reference.  Writes
one JSON file (WSDIAG_SIO_COMPAT_OUT); exits 1 if wsdiag and the reference client disagree.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from fixtures.socketio import start  # noqa: E402
from wsdiag.net.socketio import SioOptions, socketio_report  # noqa: E402
from wsdiag.net.transport import Settings  # noqa: E402


def reference(server) -> str | None:
    import socketio

    client = socketio.Client(reconnection=False)
    try:
        try:
            client.connect(server.url(scheme="http"), transports=["polling", "websocket"], wait_timeout=3)
        except TypeError:  # python-socketio 4.x: no wait_timeout
            client.connect(server.url(scheme="http"), transports=["polling", "websocket"])
    except Exception as exc:  # the reference's own failure, recorded as text
        return f"{type(exc).__name__}: {exc}"
    finally:
        try:
            client.disconnect()
        except Exception:
            pass
    return None


def measure(server, eio: int) -> dict:
    r = socketio_report(server.url(), Settings(timeout=4), SioOptions(eio=eio, eio_forced=True, sessions=0))
    sio = r.socketio
    ws, pol = sio["websocket"], sio["polling"]
    con = pol["connect"] or ws["connect"]
    rev = None
    if con and con["packet"] == "40":
        rev = 5 if isinstance(con["data"], dict) and "sid" in con["data"] else 4
    return {
        "accepted": pol["open"] is not None or ws["open"] is not None,
        "refusal": ws["engineio_message"] or pol["engineio_message"],
        "upgrades": (pol["open"] or ws["open"] or {}).get("upgrades"),
        "websocket_connected": ws["reached"] == "connected",
        "polling_reached": pol["reached"],
        "socketio_revision": rev,
        "causes": [c.code + " " + c.info.name for c in r.causes],
    }


def main() -> int:
    out = {"env": os.environ.get("WSDIAG_SIO_COMPAT_ENV", "local"),
           "versions": {d: version(d) for d in ("flask-socketio", "python-socketio", "python-engineio", "flask",
                                                "werkzeug", "simple-websocket" if _has("simple-websocket") else "flask")},
           "modes": {}}
    disagree = []
    for mode, args in (("threading", ()), ("gevent", ("--async", "gevent"))):
        server = start("run", *args)
        try:
            facts = {f"eio{e}": measure(server, e) for e in (3, 4)}
            facts["reference_client"] = reference(server)
            native = "eio3" if version("python-engineio").startswith("3.") else "eio4"
            wsdiag_ok = facts[native]["polling_reached"] in ("connected", "upgraded") or facts[native]["websocket_connected"]
            if wsdiag_ok != (facts["reference_client"] is None):
                disagree.append((mode, facts))
            out["modes"][mode] = facts
        finally:
            server.stop()
    path = Path(os.environ.get("WSDIAG_SIO_COMPAT_OUT", ROOT / ".nox" / "socketio-results" / f"{out['env']}.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(json.dumps(out, indent=1))
    if disagree:
        print(f"wsdiag and python-socketio disagree: {disagree}", file=sys.stderr)
        return 1
    return 0


def _has(dist: str) -> bool:
    try:
        version(dist)
        return True
    except Exception:
        return False


if __name__ == "__main__":
    sys.exit(main())
