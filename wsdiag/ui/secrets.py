"""Redact credentials wherever they appear in a report, not only in their own header lines.

A server may reflect the request (an echo endpoint, a debug error page) so the client's
``Authorization`` or ``Cookie`` value comes back in the body; a library's error text may
quote the answer's headers (websocket-client puts ``Set-Cookie`` in its bad-status message).
So the values themselves are collected from every exchange's request head
(``Authorization``, ``Proxy-Authorization``, ``Cookie``) and answer head (``Set-Cookie``), and
every occurrence of them in the report (text or bytes) becomes ``<redacted>`` before output.
``--show-secrets`` turns this off.  Standard library only.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from wsdiag.core.record import field_names, is_record

REQUEST_SECRETS = re.compile(rb"(?im)^(?:proxy-authorization|authorization|cookie)[ \t]*:[ \t]*(.*?)[ \t]*\r?$")
RESPONSE_SECRETS = re.compile(rb"(?im)^set-cookie[ \t]*:[ \t]*(.*?)[ \t]*\r?$")
MIN_PART = 6  # parts of a value (a token after "Bearer", one cookie's value) this long or longer
MARK = "<redacted>"


def _parts(value: str) -> set[str]:
    out = {value}
    scheme, _, cred = value.partition(" ")
    if cred and scheme.isalpha():  # "Bearer TOKEN", "Basic BASE64"
        out.add(cred.strip())
        if scheme.lower() == "basic":
            try:
                out.add(base64.b64decode(cred.strip(), validate=True).decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                pass
    for item in value.split(";"):  # cookies: name=value; name2=value2 (and Set-Cookie attributes)
        _, eq, v = item.strip().partition("=")
        if eq:
            out.add(v.strip().strip('"'))
    return {p for p in out if len(p) >= MIN_PART}


def _exchanges(obj: Any, seen: set, out: list) -> None:
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return
    seen.add(id(obj))
    if hasattr(obj, "request") and hasattr(obj, "response_head") and isinstance(obj.request, bytes):
        out.append(obj)
        return
    if is_record(obj):
        for name in field_names(obj):
            _exchanges(getattr(obj, name, None), seen, out)
    elif isinstance(obj, dict):
        for v in obj.values():
            _exchanges(v, seen, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _exchanges(v, seen, out)


def collect(reports: list) -> list[str]:
    """The secret values in the reports' exchanges, longest first."""
    exchanges: list = []
    seen: set = set()
    for r in reports:
        _exchanges(r, seen, exchanges)
    found: set[str] = set()
    for ex in exchanges:
        for pattern, data in ((REQUEST_SECRETS, ex.request), (RESPONSE_SECRETS, ex.response_head)):
            for m in pattern.finditer(data or b""):
                found |= _parts(m.group(1).decode("latin-1"))
    return sorted(found, key=len, reverse=True)


def scrub_text(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s in text:
            text = text.replace(s, MARK)
        for n in range(len(s) - 1, MIN_PART - 1, -1):  # an excerpt cut inside a secret
            if text.endswith(s[:n]):
                text = text[: len(text) - n] + MARK
                break
    return text


def scrub_bytes(data: bytes, secrets: list[str]) -> bytes:
    for s in secrets:
        for enc in ("utf-8", "latin-1"):
            try:
                b = s.encode(enc)
            except UnicodeEncodeError:
                continue
            if b in data:
                data = data.replace(b, MARK.encode())
    return data


def scrub(obj: Any, secrets: list[str], _seen: set | None = None) -> Any:
    """Replace every secret in ``obj`` (records, dataclasses and containers are changed in place); returns it."""
    if not secrets:
        return obj
    if isinstance(obj, str):
        return scrub_text(obj, secrets)
    if isinstance(obj, (bytes, bytearray)):
        return scrub_bytes(bytes(obj), secrets)
    seen = _seen if _seen is not None else set()
    if id(obj) in seen:
        return obj
    seen.add(id(obj))
    if is_record(obj):
        for name in field_names(obj):
            value = getattr(obj, name, None)
            new = scrub(value, secrets, seen)
            if new is not value:
                try:
                    object.__setattr__(obj, name, new)
                except (AttributeError, TypeError):
                    pass
    elif isinstance(obj, dict):
        for k in list(obj):
            obj[k] = scrub(obj[k], secrets, seen)
    elif isinstance(obj, list):
        obj[:] = [scrub(v, secrets, seen) for v in obj]
    elif isinstance(obj, tuple):
        return type(obj)(*(scrub(v, secrets, seen) for v in obj)) if hasattr(obj, "_fields") else \
            tuple(scrub(v, secrets, seen) for v in obj)
    return obj


def redact_reports(reports: list) -> list:
    """Scrub every report in place of the secrets its own exchanges carried."""
    secrets = collect(reports)
    for r in reports:
        scrub(r, secrets)
    return reports
