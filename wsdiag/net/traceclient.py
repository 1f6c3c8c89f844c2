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


def _get_trace_once(host: str, port: int, path: str, token: str, timeout: float) -> tuple[int | None, dict | None]:
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        resp = conn.getresponse()
        body = resp.read(4 * 1024 * 1024)
        if resp.status != 200:
            return resp.status, None
        doc = json.loads(body.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("schema") != stages.SCHEMA or not isinstance(doc.get("events"), list):
            return None, None
        return 200, doc
    except (OSError, ValueError, http.client.HTTPException):
        return None, None
    finally:
        conn.close()
