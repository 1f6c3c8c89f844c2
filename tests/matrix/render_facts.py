#!/usr/bin/env python3
"""Render tests/matrix/facts/*.json as Markdown tables (stdlib only).

    python3 tests/matrix/render_facts.py > /tmp/tables.md

Cell legend: ``<client saw> <hidden Flask status>[ <routing exc>] <hooks> <det>``
  client saw: ``101+echo`` (view served the socket), ``101+close`` (bare
  close frame then EOF, no echo), or ``HTTP nnn``.
  hidden Flask status: the status line the Flask app passed to
  start_response (discarded by gevent-websocket after a 101).
  routing exc: WSM=WebsocketMismatch, RR=RequestRedirect, NF=NotFound.
  hooks: A=app before_request, B=blueprint before_request, V=view.
  det: ``ws``/``http`` = MapAdapter.websocket as bound by Werkzeug.
"""
import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ABBR = {"WebsocketMismatch": "WSM", "RequestRedirect": "RR", "NotFound": "NF"}
HOOK = {"app_before_request": "A", "bp_before_request": "B", "view": "V"}


def cell(o):
    s = o["server"]
    if o["kind"] == "ws":
        if o.get("status") == 101:
            saw = "101+echo" if o.get("echo") else "101+" + (o.get("first_event") or "?")
        else:
            saw = "HTTP %s" % o.get("status")
    else:
        saw = "HTTP %s" % o.get("status")
    st = (s.get("app_status") or "-").split()[0]
    rexc = s.get("routing_exception")
    if rexc:
        st += " " + ABBR.get(rexc, rexc)
    hooks = "".join(HOOK[h] for h in s.get("hooks", [])) or "-"
    det = "ws" if s.get("werkzeug_detected_websocket") else "http"
    if o["kind"] == "plain":
        return "%s %s %s" % (saw, ABBR.get(rexc, rexc) if rexc else "-", hooks)
    return "%s %s %s %s" % (saw, st, hooks, det)


def main():
    out = []
    for f in sorted(glob.glob(os.path.join(HERE, "facts", "*.json"))):
        d = json.load(open(f))
        v = d["versions"]
        obs = d["observations"]
        cvs = []
        paths = []
        for o in obs:
            if o["kind"] == "ws" and o["connection"] not in cvs:
                cvs.append(o["connection"])
            if o["path"] not in paths:
                paths.append(o["path"])
        out.append("### Flask %s + Werkzeug %s (`facts/%s`)" % (v["flask"], v["werkzeug"], os.path.basename(f)))
        out.append("")
        if d.get("route_setup_errors"):
            out.append("Route registration errors: `%s`" % d["route_setup_errors"])
            out.append("")
        out.append("| path | " + " | ".join("`%s`" % c for c in cvs) + " | plain GET |")
        out.append("|---" * (len(cvs) + 2) + "|")
        for p in paths:
            row = []
            for c in cvs:
                m = [o for o in obs if o["kind"] == "ws" and o["path"] == p and o["connection"] == c]
                row.append(cell(m[0]) if m else "n/a")
            m = [o for o in obs if o["kind"] == "plain" and o["path"] == p]
            row.append(cell(m[0]) if m else "n/a")
            out.append("| `%s` | " % p + " | ".join(row) + " |")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
