"""Browser profiles as data: what ``wsdiag profiles --refresh`` writes and later runs read.

Pure core: standard library only, no I/O.  The document (schema ``wsdiag.profiles/1``) holds,
per browser profile, the request-line version and the header lines in wire order, with the
run-dependent values (Host, Origin, Sec-WebSocket-Key) turned back into the ``{host}``,
``{origin}`` and ``{key}`` placeholders, and a source naming the browser version and date.
``install`` replaces the built-in profiles of the same name with them.
"""

from __future__ import annotations

from typing import Any

from wsdiag.core.bisect import parse_request_head
from wsdiag.core.profiles import PROFILES, Profile
from wsdiag.core.record import replace

SCHEMA = "wsdiag.profiles/1"
PLACEHOLDER = {"host": "{host}", "origin": "{origin}", "sec-websocket-key": "{key}"}


class ProfileDataError(ValueError):
    """A profiles file that cannot be used (one-line message)."""


def entry_from_capture(profile: str, raw: bytes, version: str, created: str) -> dict[str, Any]:
    cand = parse_request_head(raw)
    headers = [[n, PLACEHOLDER.get(n.lower(), v)] for n, v in cand.headers]
    return {"name": profile, "http_version": cand.http_version, "headers": headers,
            "source": f"captured from {version} by `wsdiag profiles --refresh` on {created[:10]}",
            "browser_version": version, "captured": created}


def document(entries: list[dict[str, Any]], created: str) -> dict[str, Any]:
    return {"schema": SCHEMA, "created": created, "profiles": entries}


def profiles_from(doc: Any) -> dict[str, Profile]:
    """Profiles from a document, each based on the built-in one of the same name."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ProfileDataError(f"not a {SCHEMA} document")
    out: dict[str, Profile] = {}
    for e in doc.get("profiles") or []:
        try:
            name = e["name"]
            base = PROFILES.get(name) or Profile(name, name, "")
            headers = tuple((str(n), str(v)) for n, v in e["headers"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileDataError(f"damaged {SCHEMA} entry: {exc}") from None
        out[name] = replace(base, headers=headers, http_version=e.get("http_version", "HTTP/1.1"),
                                        source=e.get("source", base.source))
    return out


def install(doc: Any) -> list[str]:
    """Replace the built-in profiles with the document's; returns the names replaced."""
    found = profiles_from(doc)
    PROFILES.update(found)
    return list(found)
