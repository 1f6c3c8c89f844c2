"""Read one probe's trace from an app's WsdiagTrace channel (loopback HTTP, bearer token).

Standard library only: the probe side of the trace needs no Flask.  The id format is the
core's (``wsdiag.core.stages``); the served side is ``wsdiag.flaskapp.trace``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from wsdiag.core import stages
from wsdiag.core.stages import valid_probe_id

def fetch_trace_document(trace_url: str, token: str, probe_id: str, timeout: float = 1.0,
                         missing_grace: float = 0.25) -> dict[str, Any] | None:
    """Poll the channel for one probe's trace until it is complete (bounded by ``timeout``).

    Returns the last document seen (``complete`` may be false if the app is still running,
    e.g. a view serving the socket), or None: unknown id after ``missing_grace`` seconds,
    wrong token, bad answer or any network error.  Never raises for I/O problems.
    """
    from urllib.parse import urlsplit

    pid = valid_probe_id(probe_id)
    try:
        parts = urlsplit(trace_url)
        host, port = parts.hostname, parts.port or 80
    except ValueError:
        return None
    if pid is None or parts.scheme != "http" or not host:
        return None
    start = time.monotonic()
    deadline = start + max(0.0, timeout)
    grace = start + min(max(0.0, missing_grace), max(0.0, timeout))
    last: dict[str, Any] | None = None
    delay = 0.01
    while True:
        left = deadline - time.monotonic()
        status, doc = _get_trace_once(host, port, f"/trace/{pid}", token, max(0.05, left))
        now = time.monotonic()
        if status == 200 and doc is not None:
            last = doc
            if doc.get("complete"):
                return doc
        elif status == 404:
            if last is None and now >= grace:
                return None
        else:
            return last
        if now + delay >= deadline:
            return last
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def fetch_trace(trace_url: str, token: str, probe_id: str, timeout: float = 1.0) -> list[dict[str, Any]] | None:
    """The events of one probe's trace (see ``fetch_trace_document``), or None."""
    doc = fetch_trace_document(trace_url, token, probe_id, timeout)
    return None if doc is None else list(doc["events"])


MAX_EVENTS = 1000  # events kept from one trace
MAX_TEXT = 2000  # characters kept of one string value
LIST_KEYS = frozenset({"valid_methods", "skipped_blueprint_hooks"})  # the only values that are lists


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 1 << 53 else str(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    return str(value)[:MAX_TEXT] if isinstance(value, str) else json.dumps(value, default=str)[:MAX_TEXT]


def clean_events(events: Any) -> list[dict[str, Any]] | None:
    """The trace's events in the shape the core reads (what a channel sends is data, not trusted).

    Only objects with string keys; every value a JSON scalar (strings cut at MAX_TEXT), lists
    only where the format has lists; at most MAX_EVENTS.  None when the result cannot be
    folded into a stage path (then the probe goes on without the trace).
    """
    if not isinstance(events, list):
        return None
    out: list[dict[str, Any]] = []
    for ev in events[:MAX_EVENTS]:
        if not isinstance(ev, dict):
            continue
        clean: dict[str, Any] = {}
        for k, v in ev.items():
            if not isinstance(k, str):
                continue
            if k in LIST_KEYS and isinstance(v, list):
                clean[k] = [_scalar(x) for x in v[:100]]
            else:
                clean[k] = _scalar(v)
        out.append(clean)
    try:
        stages.render_path(stages.StagePath.from_events(out))
    except Exception:  # a shape the core cannot fold: no trace rather than a crash
        return None
    return out


def _get_trace_once(host: str, port: int, path: str, token: str, timeout: float) -> tuple[int | None, dict | None]:
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    deadline = time.monotonic() + timeout  # one bound for the whole answer, not per read
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        resp = conn.getresponse()
        body = _read_bounded(resp, 4 * 1024 * 1024, deadline)
        if resp.status != 200:
            return resp.status, None
        doc = json.loads(body.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("schema") != stages.SCHEMA or not isinstance(doc.get("events"), list):
            return None, None
        events = clean_events(doc["events"])
        if events is None:
            return None, None
        doc["events"] = events
        doc["complete"] = doc.get("complete") is True
        return 200, doc
    except (OSError, ValueError, http.client.HTTPException):
        return None, None
    finally:
        conn.close()


def _read_bounded(resp, limit: int, deadline: float) -> bytes:
    """Up to ``limit`` bytes of the body, all of it before ``deadline`` (a server dripping a
    byte at a time cannot hold the probe: each read's own timeout is what is left)."""
    chunks, total = [], 0
    while total < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("trace answer not complete before the deadline")
        if resp.fp is not None and getattr(resp.fp, "raw", None) is not None:
            try:
                resp.fp.raw._sock.settimeout(left)
            except (AttributeError, OSError):
                pass
        chunk = resp.read1(min(65536, limit - total)) if hasattr(resp, "read1") else resp.read(min(65536, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
