"""Repro bundles (schema ``wsdiag.bundle/1``): one JSON document with everything a maintainer
needs to see a run again, secrets removed.

Pure core: standard library only; it turns reports into plain data and back, and never
reads or writes files (the CLI does).

What a bundle holds, per URL: every exchange's exact bytes (request, response head, body,
bytes received after the 101) as latin-1 text (lossless for any byte), its timings, the
events seen after the upgrade, the app's trace if one was fetched, the profile that sent
it, and the verdicts and findings as rendered at save time.  ``versions`` records what ran.

Redaction: the values of Authorization, Proxy-Authorization, Cookie and Set-Cookie headers
are replaced with ``<redacted>`` in the bytes themselves (so a replay renders the same
report), and the trace token, when known, is removed wherever it appears.

``reports_from`` rebuilds the reports with the same core judgement as the live run, so
``wsdiag replay FILE`` renders the identical report offline.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from wsdiag.core.diagnose import build_report
from wsdiag.core.findings import AfterUpgrade, Exchange, Finding, UrlReport
from wsdiag.core.handshake import Request
from wsdiag.core.profiles import PROFILES, Profile
from wsdiag.core.record import field_names

SCHEMA = "wsdiag.bundle/1"
REDACTED = "<redacted>"
_SECRET = re.compile(rb"(?im)^((?:proxy-)?authorization|cookie|set-cookie)([ \t]*:[ \t]*)([^\r\n]*)")


class BundleError(ValueError):
    """A file that is not a readable wsdiag.bundle/1 document (message is one line)."""


def redact_bytes(raw: bytes) -> bytes:
    return _SECRET.sub(lambda m: m.group(1) + m.group(2) + REDACTED.encode(), raw)


def _b(raw: bytes) -> str:
    return raw.decode("latin-1")


def _unb(text: str | None) -> bytes:
    return (text or "").encode("latin-1")


def _enc(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": bytes(value).decode("latin-1")}
    if isinstance(value, dict):
        return {k: _enc(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_enc(v) for v in value]
    return value


def _dec(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return str(value["$bytes"]).encode("latin-1")
        return {k: _dec(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dec(v) for v in value]
    return value


def exchange_dict(ex: Exchange) -> dict[str, Any]:
    """Every field of the Exchange (and its AfterUpgrade), bytes as latin-1 text, secrets redacted."""
    d: dict[str, Any] = {}
    for name in field_names(ex):
        value = getattr(ex, name)
        if name in ("request", "response_head"):
            value = redact_bytes(value)
        if name == "after" and value is not None:
            value = {g: _enc(getattr(value, g)) for g in field_names(value)}
        else:
            value = _enc(value)
        d[name] = value
    return d


def exchange_from(d: dict[str, Any]) -> Exchange:
    names = set(field_names(Exchange))
    kw = {k: _dec(v) for k, v in d.items() if k in names and k != "after"}
    a = d.get("after")
    if a is not None:
        after_names = set(field_names(AfterUpgrade))
        kw["after"] = AfterUpgrade(**{k: _dec(v) for k, v in a.items() if k in after_names})
    return Exchange(**kw)


def ex_text(d: dict[str, Any], key: str) -> str:
    """A saved exchange's byte field as text (for HAR and display)."""
    v = d.get(key)
    if isinstance(v, dict) and "$bytes" in v:
        return v["$bytes"]
    return v if isinstance(v, str) else ""


def profile_dict(p: Profile) -> dict[str, Any]:
    return {"name": p.name, "description": p.description, "source": p.source,
            "headers": [list(h) for h in p.headers], "http_version": p.http_version, "driver": p.driver,
            "upgrade": p.upgrade, "expect_service": p.expect_service, "tags": list(p.tags)}


def profile_from(d: dict[str, Any]) -> Profile:
    return Profile(d["name"], d.get("description", ""), d.get("source", ""),
                   tuple((str(n), str(v)) for n, v in d.get("headers") or ()), d.get("http_version", "HTTP/1.1"),
                   d.get("driver", "raw"), bool(d.get("upgrade", True)), bool(d.get("expect_service", True)),
                   tuple(d.get("tags") or ()))


def request_from(raw: bytes, upgrade: bool) -> Request:
    """The Request facts, recovered from the bytes that were sent."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    first = lines[0].split()
    headers = []
    for ln in lines[1:]:
        if not ln:
            break
        n, _, v = ln.partition(":")
        headers.append((n.strip(), v.strip()))
    get: dict[str, str] = {}
    for n, v in headers:
        get.setdefault(n.lower(), v)
    return Request(
        raw=raw, key=get.get("sec-websocket-key"),
        offered_protocols=tuple(t.strip() for t in get.get("sec-websocket-protocol", "").split(",") if t.strip()),
        offered_extensions=tuple(t.split(";")[0].strip().lower()
                                 for t in get.get("sec-websocket-extensions", "").split(",") if t.strip()),
        headers=tuple(headers), http_version=first[2] if len(first) >= 3 else "HTTP/1.1", upgrade=upgrade,
    )


def _resource(url: str) -> str:
    rest = url.split("://", 1)[-1]
    i = rest.find("/")
    return rest[i:] if i >= 0 else "/"


def make_bundle(reports: list[UrlReport], *, created: str, versions: dict[str, Any], argv: list[str],
                rendered: list[dict[str, Any]], trace_token: str | None = None,
                extra: dict[str, Any] | None = None, profiles: dict[str, Profile] | None = None) -> dict[str, Any]:
    """The bundle document for ``reports`` (``rendered``: the report dicts as shown at save time)."""
    known = dict(PROFILES)
    known.update(profiles or {})
    urls = []
    for rep in reports:
        runs = []
        for r in rep.results:
            prof = known.get(r.profile) or Profile(r.profile, "", "saved", http_version=r.http_version)
            runs.append({"profile": profile_dict(prof), "exchange": exchange_dict(r.exchange)})
        controls = [{"name": c.name, "description": c.description, "exchange": exchange_dict(c.exchange)}
                    for c in rep.controls]
        entry: dict[str, Any] = {"url": rep.url, "path": _resource(rep.url), "runs": runs, "controls": controls}
        if rep.bisect:
            entry["bisect"] = rep.bisect
        if rep.browsers:
            entry["browsers"] = _redact_runs(rep.browsers)
        urls.append(entry)
    doc = {
        "schema": SCHEMA,
        "created": created,
        "versions": versions,
        "argv": list(argv),
        "redacted": ["Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"]
                    + (["trace token"] if trace_token else []),
        "urls": urls,
        "reports": rendered,
    }
    if extra:
        doc.update(extra)
    if trace_token:
        doc = _scrub(doc, trace_token)
    return doc


def _redact_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Browser runs with secret header values removed from their recorded heads."""
    out = []
    for run in runs:
        run = dict(run)
        hs = dict(run.get("handshake") or {})
        for key in ("request", "response"):
            if isinstance(hs.get(key), str):
                hs[key] = redact_bytes(hs[key].encode("latin-1", "replace")).decode("latin-1")
        if hs.get("request_headers"):
            hs["request_headers"] = [[n, REDACTED if n.lower() in _SECRET_NAMES else v]
                                     for n, v in hs["request_headers"]]
        run["handshake"] = hs
        out.append(run)
    return out


_SECRET_NAMES = {"authorization", "proxy-authorization", "cookie", "set-cookie"}


def _scrub(value: Any, token: str) -> Any:
    if isinstance(value, str):
        return value.replace(token, REDACTED)
    if isinstance(value, dict):
        return {k: _scrub(v, token) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, token) for v in value]
    return value


def reports_from(doc: Any) -> list[UrlReport]:
    """Rebuild the reports from a bundle with the live run's own judgement."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise BundleError(f"not a {SCHEMA} document (schema: {got!r})")
    try:
        out = []
        for u in doc["urls"]:
            runs = []
            for run in u["runs"]:
                prof = profile_from(run["profile"])
                ex = exchange_from(run["exchange"])
                req = request_from(ex.request, prof.upgrade) if ex.request else None
                runs.append((prof, req, ex))
            plain = bogus = None
            extra = []
            for c in u.get("controls") or []:
                cex = exchange_from(c["exchange"])
                if c["name"] == "plain-get":
                    plain = cex
                elif c["name"] == "no-such-path":
                    bogus = (request_from(cex.request, True), cex)
                else:
                    extra.append((c["name"], c.get("description", ""),
                                  request_from(cex.request, True) if cex.request else None, cex))
            report = build_report(u["url"], u["path"], runs, plain, bogus, extra)
            if u.get("bisect"):  # the live run's bisection: its exchanges are in its steps
                report.bisect = u["bisect"]
                report.facts.extend(Finding(f["code"], f.get("evidence") or {}, f.get("subject", ""),
                                            f.get("confidence", "certain")) for f in u["bisect"].get("findings") or [])
            if u.get("browsers"):
                from wsdiag.core.browsercheck import attach

                attach(report, u["browsers"])
            out.append(report)
        return out
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BundleError(f"damaged {SCHEMA} document: {type(exc).__name__}: {exc}") from None


def request_bytes(doc: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    """(url, exchange name, request bytes) of every saved exchange, for ``replay --against``."""
    out = []
    for u in doc.get("urls") or []:
        for run in u.get("runs") or []:
            out.append((u["url"], run["exchange"]["name"], ex_text(run["exchange"], "request").encode("latin-1")))
    return out


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
