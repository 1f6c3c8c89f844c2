"""Advice that is true for the installed Flask / Werkzeug / gevent-websocket releases.

Rules this module keeps:

* Pure core: standard library only. Versions come in as strings (``importlib.metadata``
  reads them in ``installed_versions``, which never imports the packages themselves).
* Every statement about a Werkzeug release comes from ``wsdiag.core.versions`` (itself checked by
  the version matrix, tests/matrix/FACTS.md), never from memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wsdiag.core.versions import detection_for

FIXED_DETECTION = (2, 0, 2)  # first Werkzeug release that detects every real client's Connection header


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """``"2.0.1"`` -> ``(2, 0, 1)``; ``"3.1.0rc1"`` -> ``(3, 1, 0)``; junk -> None."""
    if not text:
        return None
    parts = []
    for piece in text.split(".")[:3]:
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
    return tuple(parts) or None


def installed_versions() -> dict[str, str | None]:
    """Installed Flask, Werkzeug and gevent-websocket versions (None when missing), without importing them."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("flask", "werkzeug", "gevent-websocket", "gevent",
                 "python-engineio", "simple-websocket", "eventlet"):  # the Socket.IO driver (check.sio)
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


@dataclass(frozen=True)
class Release:
    """The Werkzeug release the advice is about (None: unknown) and what it does with upgrades."""

    version: tuple[int, ...] | None
    text: str | None
    # set when the project's pins decide (``wsdiag.check.projpins``): where the release comes from
    # (``requirements.txt:2``; None: installed here) and why --fix must not add websocket=True
    # (``model.Project.pinned_fix_refusal``, the one wording)
    source: str | None = None
    refusal: str | None = None

    @property
    def named(self) -> str:
        """``the installed Werkzeug 3.1.9``, or ``Werkzeug 2.0.1 (requirements.txt:2)`` when pinned."""
        return f"Werkzeug {self.text} ({self.source})" if self.source else f"the installed Werkzeug {self.text}"

    @property
    def rule(self) -> str | None:
        """``never`` (1.0.x), ``exact`` (2.0.0/2.0.1), ``token`` (>= 2.0.2) or None (unknown)."""
        if self.version is None:
            return None
        d = detection_for(self.version)
        if d is None:
            return "never" if self.version < (2,) else "token"
        return d.rule

    @property
    def websocket_true_safe(self) -> bool:
        """Is ``websocket=True`` alone the right fix on this release?"""
        return self.version is not None and self.version >= FIXED_DETECTION


def release(werkzeug: "str | Release | None") -> Release:
    """The release for a version string (the installed one); a ``Release`` (the project's) as is."""
    if isinstance(werkzeug, Release):
        return werkzeug
    return Release(parse_version(werkzeug), werkzeug)


def plain_rule_consequence(rel: Release) -> str:
    """What a socket view on a rule without websocket=True suffers on this release."""
    if rel.rule == "token":
        return f"every client's upgrade gets a hidden 400 (WebsocketMismatch) on {rel.named}"
    if rel.rule == "exact":
        return (f"on {rel.named}, clients sending exactly 'Connection: Upgrade' "
                "(Chrome, current Firefox, websocket-client) get a hidden 400 (WebsocketMismatch)")
    return "on Werkzeug >= 2.0.2 every upgrade gets a hidden 400 (WebsocketMismatch)"


def plain_rule_advice(rel: Release) -> str:
    if rel.rule == "token":
        return "Add websocket=True to the rule (`wsdiag check --fix` does it)."
    if rel.rule == "exact":
        return (f"Upgrade Werkzeug to >= 2.0.2 and add websocket=True. Staying on {rel.text}, register "
                "both rules for the view (a websocket=True rule and a plain one): websocket=True alone "
                "would fail clients sending 'Connection: keep-alive, Upgrade'.")
    if rel.rule == "never":
        return (f"On {rel.named} this rule works; do NOT add websocket=True (such "
                "rules never match there). Register both rules to survive an upgrade to >= 2.0.2.")
    return "Add websocket=True (Werkzeug >= 2.0.2); on older releases register both rules for the view."


def websocket_rule_advice(rel: Release) -> str:
    """What to do about a websocket=True rule on this release."""
    if rel.rule == "never":
        return (f"Werkzeug {rel.text} never matches websocket=True rules under gevent: upgrade to Werkzeug >= 2.0.2 "
                f"(Flask >= 2.0.3) and keep websocket=True, or drop it while on {rel.text} (registering both "
                "rules works on every release).")
    if rel.rule == "exact":
        return (f"Werkzeug {rel.text} detects only 'Connection: Upgrade', so clients sending 'keep-alive, Upgrade' "
                "miss this rule: upgrade to Werkzeug >= 2.0.2, or register a plain rule for the same view beside it.")
    return "Nothing to change on this release."


def fix_refusal(rel: Release) -> str | None:
    """Why adding websocket=True is not safe on this release, or None when it is."""
    if rel.refusal:
        return rel.refusal  # the project's pins hold a release where it breaks (the pins' own wording)
    if rel.version is None:
        return "cannot tell which Werkzeug the app runs on (Werkzeug is not installed here)"
    if rel.rule == "never":
        return (f"Werkzeug {rel.text} is installed: websocket=True rules never match there under gevent "
                "(WS706); upgrade Werkzeug to >= 2.0.2 first, or register both rules")
    if rel.rule == "exact":
        return (f"Werkzeug {rel.text} is installed: it detects only 'Connection: Upgrade', so websocket=True "
                "would break clients sending 'keep-alive, Upgrade'; upgrade to >= 2.0.2, or register both rules")
    return None


def environment_advice(versions: dict[str, str | None], route: Release | None = None, where: str | None = None) -> list[str]:
    """Report-level lines: what the installed releases mean for WebSocket routes. ``route``: the
    Werkzeug the route advice is for when the project's pins decide it (``wsdiag.check.projpins``),
    ``where`` where it comes from (``installed, allowed by pyproject.toml:4``)."""
    out: list[str] = []
    flask, werkzeug, gws = versions.get("flask"), versions.get("werkzeug"), versions.get("gevent-websocket")
    rel = release(werkzeug)
    label = f"Werkzeug {werkzeug}" + (f" ({where})" if where and where != "installed" else "")
    if route is not None and route.source:
        out.append(f"Route advice is for Werkzeug {route.text}, from the project's pins ({route.source}); "
                   f"installed here: {versions.get('werkzeug') or 'no Werkzeug'}.")
        rel, werkzeug, label = route, route.text, f"Werkzeug {route.text}"
    if werkzeug is None:
        out.append("Werkzeug is not installed here: advice below assumes Werkzeug >= 2.0.2.")
    elif rel.rule == "never":
        out.append(f"{label} never detects WebSocket requests under gevent: websocket=True rules "
                   "never match (hidden 400), and plain rules serve every client. Do not use websocket=True "
                   "on this release; upgrade to Werkzeug >= 2.0.2 (Flask >= 2.0.3) and then declare it.")
    elif rel.rule == "exact":
        out.append(f"{label} detects only 'Connection: Upgrade' as WebSocket: plain rules fail "
                   "Chrome and current Firefox, websocket=True rules fail clients sending 'keep-alive, "
                   "Upgrade'. Upgrade to Werkzeug >= 2.0.2, or register both rules for each socket view.")
    else:
        out.append(f"{label} detects every real client's upgrade: declare each WebSocket route "
                   "with websocket=True (plain rules get a hidden 400 for every client).")
    if route is not None and route.refusal and not route.source:
        out.append(f"--fix will not add websocket=True: {route.refusal}.")
    if gws is None:
        out.append("gevent-websocket is not installed here: nothing in this environment sets "
                   "environ['wsgi.websocket'].")
    else:
        out.append(f"gevent-websocket {gws} sends 101 before the app runs and discards the app's status: "
                   "every routing failure is hidden behind the 101 (close code 1005, nothing logged).")
    if flask is not None and (parse_version(flask) or (0,)) < (2,) and rel.rule not in (None, "never"):
        out.append(f"Flask {flask} with Werkzeug {werkzeug} is not a supported pair; install matching releases.")
    return out
