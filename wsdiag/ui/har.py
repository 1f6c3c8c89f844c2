"""HAR 1.2 export of a repro bundle, with WebSocket messages as Chrome's DevTools writes them.

Every exchange of the bundle becomes one entry (request line and headers as sent, response
status and headers as received, timings).  Upgraded exchanges carry ``_resourceType:
"websocket"`` and ``_webSocketMessages``: ``{"type": "send"|"receive", "time": <epoch
seconds>, "opcode": <int>, "data": <text>}``, the custom fields Chrome's DevTools writes and
reads.  Browser runs in the bundle (``browsers``) add entries with the frames the browser
itself recorded.

Time: exchanges carry millisecond offsets, not wall-clock starts; every entry starts at
the bundle's ``created`` time plus its own offsets.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from wsdiag import __version__

OPCODES = {"ping": 9, "pong": 10, "text": 1, "binary": 2, "close": 8, "continuation": 0}


def _parse_head(text: str) -> tuple[str, list[dict[str, str]]]:
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    headers = []
    for ln in lines[1:]:
        if not ln:
            break
        n, _, v = ln.partition(":")
        headers.append({"name": n.strip(), "value": v.strip()})
    return lines[0] if lines else "", headers


def _epoch(created: str) -> float:
    try:
        return _dt.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _messages(after: dict[str, Any] | None, t0: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not after:
        return out
    for ev in after.get("events") or []:
        t = t0 + float(ev.get("t_ms") or 0) / 1000.0
        kind = ev.get("event")
        if kind == "sent":
            label = ev.get("frame", "text")
            data = {"ping": "wsdiag-ping", "text": "wsdiag-probe"}.get(label, "")
            out.append({"type": "send", "time": t, "opcode": OPCODES.get(label, 1), "data": data})
        elif kind in ("data", "pong", "close", "ping"):
            data = ev.get("excerpt", "") if kind == "data" else (
                f"{ev.get('close_code')} {ev.get('reason', '')}".strip() if kind == "close" else "")
            out.append({"type": "receive", "time": t, "opcode": int(ev.get("opcode", OPCODES.get(kind, 1))),
                        "data": data})
    return out


def _text(ex: dict[str, Any], key: str) -> str:
    v = ex.get(key)
    if isinstance(v, dict) and "$bytes" in v:
        return str(v["$bytes"])
    return v if isinstance(v, str) else ""


def _entry(ex: dict[str, Any], t0: float, comment: str) -> dict[str, Any]:
    request_text = _text(ex, "request")
    req_line, req_headers = _parse_head(request_text)
    parts = req_line.split()
    method = parts[0] if parts else "GET"
    http_version = parts[2] if len(parts) >= 3 else "HTTP/1.1"
    head = _text(ex, "response_head")
    status_line, resp_headers = _parse_head(head)
    sp = status_line.split(" ", 2)
    status = int(sp[1]) if len(sp) >= 2 and sp[1].isdigit() else 0
    timings = ex.get("timings") or {}
    connect = float(timings.get("connect_ms", -1))
    head_ms = float(timings.get("head_ms", timings.get("total_ms", 0)) or 0)
    first = float(timings.get("first_byte_ms", head_ms) or head_ms)
    wait = max(first - max(connect, 0), 0.0)
    receive = max(head_ms - first, 0.0)
    body = _text(ex, "body")
    mime = next((h["value"] for h in resp_headers if h["name"].lower() == "content-type"), "")
    entry: dict[str, Any] = {
        "startedDateTime": _iso(t0),
        "time": round(max(connect, 0) + wait + receive, 3),
        "request": {
            "method": method, "url": ex.get("url", ""), "httpVersion": http_version,
            "cookies": [], "headers": req_headers, "queryString": [],
            "headersSize": len(request_text.encode("latin-1")), "bodySize": 0,
        },
        "response": {
            "status": status, "statusText": sp[2] if len(sp) >= 3 else "",
            "httpVersion": sp[0] if sp and sp[0].startswith("HTTP/") else "",
            "cookies": [], "headers": resp_headers,
            "content": {"size": len(body), "mimeType": mime or "x-unknown", "text": body},
            "redirectURL": next((h["value"] for h in resp_headers if h["name"].lower() == "location"), ""),
            "headersSize": len(head.encode("latin-1")) if head else -1, "bodySize": len(body),
        },
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": round(connect, 3) if connect >= 0 else -1,
                    "ssl": -1, "send": 0, "wait": round(wait, 3), "receive": round(receive, 3)},
        "comment": comment,
    }
    if ex.get("error_kind"):
        entry["response"]["_error"] = ex["error_kind"]
    if status == 101:
        entry["_resourceType"] = "websocket"
        entry["_webSocketMessages"] = _messages(ex.get("after"), t0 + head_ms / 1000.0)
    return entry


def _browser_entry(run: dict[str, Any], t0: float) -> dict[str, Any] | None:
    hs = run.get("handshake") or {}
    if not hs.get("request"):
        return None
    ex = {"url": run.get("url", ""), "request": hs.get("request", ""),
          "response_head": hs.get("response", ""), "timings": {}}
    entry = _entry(ex, t0, f"browser {run.get('name')} ({run.get('version', '')})")
    entry["_resourceType"] = "websocket"
    entry["_webSocketMessages"] = [
        {"type": f.get("direction", "receive"), "time": t0 + float(f.get("t_ms") or 0) / 1000.0,
         "opcode": int(f.get("opcode") or 1), "data": str(f.get("data") or "")}
        for f in run.get("frames") or []
    ]
    return entry


def to_har(bundle: dict[str, Any]) -> dict[str, Any]:
    """A HAR 1.2 ``{"log": ...}`` document for the bundle's exchanges."""
    t0 = _epoch(bundle.get("created", ""))
    entries = []
    for u in bundle.get("urls") or []:
        for run in u.get("runs") or []:
            entries.append(_entry(run["exchange"], t0, f"profile {run['profile']['name']}"))
        for c in u.get("controls") or []:
            entries.append(_entry(c["exchange"], t0, f"control {c['name']}"))
        for b in u.get("browsers") or []:
            e = _browser_entry(b, t0)
            if e is not None:
                entries.append(e)
    return {"log": {"version": "1.2", "creator": {"name": "wsdiag", "version": __version__},
                    "pages": [], "entries": entries,
                    "comment": f"exported from {bundle.get('schema')} created {bundle.get('created')}"}}
