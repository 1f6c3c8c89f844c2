"""Known refusals mapped to causes, calibration, and consistency between a report's findings.

Rules this module keeps:

* Pure core: standard library and wsdiag's core only.
* Every status text and header matched here was read from the real installed servers
  (tests/test_failures.py starts them): gevent-websocket 0.10.1's 402/426/400, gevent
  pywsgi's and gunicorn's 414, Flask 3.1's TRUSTED_HOSTS 400, Werkzeug's 308.
* Black-box causes are at most ``likely``; ``certain`` belongs to the app's own trace
  (``calibrate``). Facts about the transport (nothing listens, DNS) stay certain: there
  was no server answer to interpret.
* A report never recommends a fix that another of its findings contradicts (``consistent``).
* When the evidence does not decide, the cause says so and names the one command that will
  (``evidence["decide_with"]``).
"""

from __future__ import annotations

import re

from wsdiag.core.findings import Control, Finding, ProfileResult, Verdict
from wsdiag.core.fingerprint import GUNICORN, GWS, PYWSGI, WSPROTO, Answer, Identification, identify
from wsdiag.core.handshake import ResponseHead, content_length, parse_response_head

# gunicorn before 24 answers an over-long request line with 400 and this body (24+: 414)
LINE_TOO_LARGE = re.compile(rb"Request Line is too large \((\d+) (?:>|&gt;) (\d+)\)")
NOT_TRUSTED = re.compile(rb"Host (?:&#39;|')(.{0,200}?)(?:&#39;|') is not trusted", re.S)
TAG = re.compile(r"<[^>]+>")

# gevent-websocket 0.10.1's error texts (never sent on Python 3, but their length is declared).
GWS_LENGTHS = {  # Content-Length of each refusal, measured on the real server
    37: "Sec-WebSocket-Version (missing)",
    33: "Sec-WebSocket-Version (unsupported value)",
    41: "Sec-WebSocket-Key (missing or empty)",
    17: "Sec-WebSocket-Key (not 16 bytes once decoded)",
}
LIMITS = {PYWSGI: 8192, GUNICORN: 4094}

# The one command that decides, by what is undecided.
DECIDE_APP = "wsdiag probe --app MODULE:app {url}   (serves the app locally, traced: the cause is then certain)"
DECIDE_TRACE = "WSDIAG_TRACE_TOKEN=... wsdiag probe --trace TRACE_URL {url}   (reads the app's own trace)"
DECIDE_ALL = "wsdiag probe -p all {url}   (adds the HTTP/1.0 and stripped-proxy requests)"
DECIDE_HOLD = "wsdiag probe --hold 65 {url}   (holds an idle session past the usual 60 s timeouts)"


def head_of(raw: bytes) -> ResponseHead | None:
    return parse_response_head(raw) if raw else None


def sent_header(raw_request: bytes, name: str) -> str | None:
    low = name.lower().encode()
    for line in raw_request.split(b"\r\n")[1:]:
        n, sep, v = line.partition(b":")
        if sep and n.strip().lower() == low:
            return v.strip().decode("latin-1")
    return None


def request_line(raw_request: bytes) -> bytes:
    return raw_request.split(b"\r\n", 1)[0]


def answers_of(results: list[ProfileResult], controls: list[Control]) -> list[Answer]:
    """Every answer of the run, reduced for the fingerprint tells."""
    out: list[Answer] = []
    for r in results:
        ex = r.exchange
        ext = sent_header(ex.request, "Sec-WebSocket-Extensions") or ""
        out.append(Answer(r.profile, head_of(ex.response_head), ex.body, r.http_version, True,
                          tuple(t.split(";")[0].strip().lower() for t in ext.split(",") if t.strip())))
    for c in controls:
        ex = c.exchange
        upgrade = (sent_header(ex.request, "Upgrade") or "").lower() == "websocket"
        out.append(Answer(c.name, head_of(ex.response_head), ex.body, "HTTP/1.1", upgrade, (), c.name != "no-such-path"))
    return out


def identification(results: list[ProfileResult], controls: list[Control]) -> Identification:
    return identify(answers_of(results, controls))


def server_facts(ident: Identification, url: str = "URL", answered: bool = True) -> list[Finding]:
    """WS720 naming the stack, or WS721 saying it cannot tell (none when nothing answered)."""
    if ident.known:
        return [Finding("WS720", {"stack": ident.stack, "reasons": ident.reasons,
                                  "layers": {la.role: la.name for la in ident.layers}}, "url", "likely")]
    if not answered:
        return []
    return [Finding("WS721", {"hint": ": no Server header, no refusal text that names the software",
                              "decide_with": DECIDE_ALL.format(url=url)}, "url", "likely")]


def body_text(body: bytes, n: int = 160) -> str:
    """A readable excerpt of a refusal body: tags stripped, entities decoded, one line."""
    import html

    text = html.unescape(TAG.sub(" ", body[:2048].decode("utf-8", "replace")))
    text = re.sub(r"\s+", " ", text).strip()
    for noise in ("403 Forbidden Forbidden", "401 Unauthorized Unauthorized", "400 Bad Request Bad Request"):
        text = text.replace(noise, "").strip()
    return text[:n]


def refusal_causes(refused: list[ProfileResult], ident: Identification, location: Control | None, path: str,
                   slash: Control | None = None) -> list[Finding]:
    """Causes that the refusals themselves name (status, reason, headers, body)."""
    out: dict[str, Finding] = {}

    def add(code: str, r: ProfileResult, **ev) -> None:
        f = out.get(code)
        if f is None:
            f = out[code] = Finding(code, {"path": path, "profiles": [], **ev}, "url", "likely")
        elif code == "WS222" and ev["origin"] not in f.evidence["origin"].split(", "):
            f.evidence["origin"] += ", " + ev["origin"]  # every Origin refused, as sent
        f.evidence["profiles"].append(r.profile)

    gws = ident.is_(role="websocket", name=GWS, strong=False)
    for r in refused:
        ex = r.exchange
        h = head_of(ex.response_head)
        if h is None or r.status is None:
            continue
        status, body = r.status, ex.body
        versions = (h.get("Sec-WebSocket-Version") or "").replace(" ", "")
        declared = content_length(h)
        x3 = bool(declared) and not body
        if status in (400, 426) and (versions == "13,8,7" or (status == 400 and x3 and gws)):
            which = GWS_LENGTHS.get(declared or -1) or (
                "Sec-WebSocket-Version" if status == 426 or versions else "Sec-WebSocket-Key")
            sent_v, sent_k = sent_header(ex.request, "Sec-WebSocket-Version"), sent_header(ex.request, "Sec-WebSocket-Key")
            header = which.split(" ")[0]
            sent = sent_v if header == "Sec-WebSocket-Version" else sent_k
            who = ("the client sent none" if sent is None else f"the client sent {sent!r}, so an intermediary changed or dropped it")
            add("WS220", r, server_said=f"{status} {h.reason}", header=f"{which}; {who}", sent=sent, declared_length=declared,
                by=BY_GWS)
        elif status == 500 and gws and not _is_base64_key(sent_header(ex.request, "Sec-WebSocket-Key")):
            add("WS220", r, server_said=f"{status} {h.reason}",
                header=f"Sec-WebSocket-Key (not base64: gevent-websocket 0.10.1 raises binascii.Error); "
                       f"the client sent {sent_header(ex.request, 'Sec-WebSocket-Key')!r}",
                sent=sent_header(ex.request, "Sec-WebSocket-Key"), declared_length=declared, by=BY_GWS)
        elif status == 500 and not gws and _missing_sec_header(ex.request):
            missing = _missing_sec_header(ex.request)
            add("WS220", r, server_said=f"{status} {h.reason}", by=" to a handshake without " + missing,
                header=f"{missing} (missing); the client sent none (simple-websocket/wsproto raise "
                       "'Missing header' and Flask answers 500)", sent=None, declared_length=declared)
        elif status == 402 and h.reason.lower() == "bad request":
            if r.http_version == "HTTP/1.0":
                add("WS204", r, status=status, reason=h.reason, request_version="HTTP/1.0")
            else:
                server = h.get("Server")
                add("WS704", r, statuses=[402], server=server, server_hint=f" (Server: {server})" if server else "")
        elif status == 400 and (too_large := LINE_TOO_LARGE.search(body)):  # gunicorn < 24: 400, with the sizes
            add("WS221", r, status=status, reason=h.reason, length=len(request_line(ex.request)),
                limit=int(too_large.group(2)))
        elif status == 414:
            limit = next((LIMITS[la.name] for la in ident.layers if la.name in LIMITS), "?")
            add("WS221", r, status=status, reason=h.reason, length=len(request_line(ex.request)), limit=limit)
        elif status in (401, 403) and (b"origin" in body.lower() or "origin" in h.reason.lower()):
            add("WS222", r, status=status, origin=sent_header(ex.request, "Origin") or "none sent", text=body_text(body))
        elif status == 400 and NOT_TRUSTED.search(body):
            m = NOT_TRUSTED.search(body)
            add("WS223", r, text=body_text(body), host=_unescape(m.group(1)) if m else "?")
        elif status == 404:
            works = slash.exchange.url if slash is not None and slash.verdict is Verdict.SERVICED else None
            add("WS226", r, variant=f" ({works} is upgraded and served: use it)" if works else "", working_url=works)
        elif 300 <= status < 400 and h.get("Location"):
            loc = h.get("Location") or ""
            if ex.url.startswith("wss://") and loc.lower().startswith(("ws://", "http://")):
                add("WS227", r, location=loc, status=status)
            add("WS224", r, status=status, location=h.get("Location"), target=_target_text(location, h.get("Location")),
                target_verdict=location.verdict.value if location and location.verdict else None)
    return list(out.values())


BY_GWS = " from gevent-websocket itself (its WebSocket handler is present)"


def _missing_sec_header(raw_request: bytes) -> str:
    for name in ("Sec-WebSocket-Version", "Sec-WebSocket-Key"):
        if sent_header(raw_request, name) is None:
            return name
    return ""


def _is_base64_key(key: str | None) -> bool:
    import base64
    import binascii

    if key is None:
        return True  # a missing key is the 400 case, not this one
    try:
        base64.b64decode(key.encode("latin-1"), validate=True)
        return True
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False


def _target_text(location: Control | None, loc: str | None) -> str:
    if location is None:
        return "was not probed (another host, or controls off)"
    if location.verdict is Verdict.SERVICED:
        return f"({location.exchange.url}) is upgraded and served: use it"
    what = location.verdict.label if location.verdict else "no answer"
    status = f" {location.status}" if location.status else ""
    return f"({location.exchange.url}) fails too: {what}{status}"


def hidden_causes(abandoned: list[ProfileResult], get: Control | None, slash: Control | None, base: dict) -> list[Finding]:
    """Causes for a 101-then-close that the control requests name more precisely."""
    ev = {**base, "profiles": [r.profile for r in abandoned]}
    out: list[Finding] = []
    if slash is not None and slash.verdict is Verdict.SERVICED:
        if slash.exchange.url.split("?")[0].endswith("/"):
            # '/ws' for a rule '/ws/': Werkzeug's strict_slashes redirect, hidden behind the 101.
            out.append(Finding("WS605", {**ev, "status": "308 (hidden)", "location": slash.exchange.url,
                                         "variant_serviced": True}, "url", "likely"))
        else:
            # '/ws/' for a rule '/ws': Werkzeug does not redirect that way; it is a hidden 404.
            out.append(Finding("WS602", {**ev, "working_url": slash.exchange.url,
                                         "note": f"{slash.exchange.url} is upgraded and served: use it"}, "url", "likely"))
    if get is not None and get.status == 400 and NOT_TRUSTED.search(get.exchange.body):
        m = NOT_TRUSTED.search(get.exchange.body)
        out.append(Finding("WS223", {**ev, "text": body_text(get.exchange.body), "host": _unescape(m.group(1)) if m else "?",
                                     "hidden": True}, "url", "likely"))
    if get is not None and get.status in (401, 403) and b"origin" in get.exchange.body.lower():
        out.append(Finding("WS222", {**ev, "status": get.status, "origin": sent_header(get.exchange.request, "Origin") or "none sent",
                                     "text": body_text(get.exchange.body), "hidden": True}, "url", "likely"))
    return out


def _unescape(raw: bytes) -> str:
    import html

    return html.unescape(raw.decode("utf-8", "replace"))


def stall_cause(counted: list[ProfileResult], controls: list[Control]) -> list[Finding]:
    """Some handshakes answered, the rest and every control got no response: a blocked server (FM-14)."""
    answered = [r for r in counted if r.status is not None]
    silent = [r for r in counted if r.status is None and r.exchange.error_kind == "no-response"]
    if not answered or not silent or len(answered) + len(silent) != len(counted):
        return []
    if any(c.status is not None for c in controls):
        return []  # the server still answers other requests: not a stall of the whole server
    timeout = round(silent[0].exchange.timings.get("total_ms", 0) / 1000.0, 1)
    ev = {"served": ", ".join(r.profile for r in answered), "stalled": ", ".join(r.profile for r in silent),
          "timeout_s": timeout, "controls_unanswered": [c.name for c in controls]}
    return [Finding("WS726", ev, "url", "likely")]


def calibrate(causes: list[Finding]) -> None:
    """No black-box cause is certain unless there was no server answer at all to interpret."""
    for f in causes:
        if f.confidence != "certain" or f.evidence.get("source") == "trace":
            continue
        if f.code.startswith("WS1") and not f.evidence.get("received") and f.evidence.get("phase") in ("dns", "connect", "tls", "proxy"):
            continue
        f.confidence = "likely"


CONTRADICTED_BY_GWS = {"WS702"}  # "add WebSocketHandler" while gevent-websocket itself answered
CONTRADICTED_BY_UPGRADE = {"WS702"}  # "the server cannot upgrade" while it upgraded something


def consistent(causes: list[Finding], ident: Identification, any_101: bool) -> list[Finding]:
    """Drop causes whose fix contradicts another finding of the same report."""
    gws = ident.is_("websocket", GWS, strong=True)
    wsproto = ident.is_("websocket", WSPROTO, strong=True)
    out = []
    for f in causes:
        if f.code in CONTRADICTED_BY_GWS and (gws or wsproto):
            continue
        if f.code in CONTRADICTED_BY_UPGRADE and any_101:
            continue
        out.append(f)
    return out


def mark_undecided(causes: list[Finding], url: str) -> None:
    """Name the one command that decides, on every cause the black box could not settle."""
    if not causes or any(f.evidence.get("source") == "trace" for f in causes):
        return
    lead = causes[0]
    rival = [f for f in causes[1:] if f.confidence in ("likely", "possible") and f.code.startswith(("WS6", "WS70"))]
    hidden_app = lead.code.startswith("WS6") or lead.code == "WS706"  # inferred from outside, inside the app
    server_or_proxy = lead.code in ("WS702", "WS703")  # decided by serving the app without the proxy
    if lead.code == "WS608" or (hidden_app and lead.confidence != "certain") or (server_or_proxy and rival):
        lead.evidence.setdefault("decide_with", DECIDE_APP.format(url=url))
        if rival:
            lead.evidence.setdefault("undecided", [f.code for f in rival])


__all__ = ["refusal_causes", "hidden_causes", "calibrate", "consistent", "mark_undecided", "identification",
           "server_facts", "answers_of", "DECIDE_APP", "DECIDE_ALL", "DECIDE_HOLD", "DECIDE_TRACE"]
