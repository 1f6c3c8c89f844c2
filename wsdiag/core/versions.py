"""What each Werkzeug release does with an upgrade request: data, checked by real installs.

Rules this module keeps:

* Pure core: standard library only.
* Every row here is asserted against the real release by the version-matrix tests
  (``tests/matrix``); a row no test checks does not belong here.
"""

from __future__ import annotations

from wsdiag.core.record import FrozenRecord


class Detection(FrozenRecord):
    """How a range of Werkzeug releases decides that a request is a WebSocket request."""

    __slots__ = ("releases", "low", "high", "rule")
    releases: str  # human range, e.g. ">= 2.0.2"
    low: tuple[int, ...]  # first release (inclusive)
    high: tuple[int, ...] | None  # first release NOT in the range
    rule: str  # never | exact | token

    def detects(self, connection: str, upgrade: str = "websocket") -> bool:
        if upgrade.strip().lower() != "websocket":
            return False
        if self.rule == "never":
            return False
        if self.rule == "exact":
            return connection.strip().lower() == "upgrade"
        return any(t.strip() == "upgrade" for t in connection.lower().split(","))


# Ordered by release. Verified for each listed release by tests/matrix (see FACTS.md there).
DETECTION = (
    Detection("1.0.x", (1, 0), (2, 0), "never"),
    Detection("2.0.0 - 2.0.1", (2, 0, 0), (2, 0, 2), "exact"),
    Detection(">= 2.0.2", (2, 0, 2), None, "token"),
)


def detection_for(version: tuple[int, ...]) -> Detection | None:
    for d in DETECTION:
        if version >= d.low and (d.high is None or version < d.high):
            return d
    return None


class Window(FrozenRecord):
    __slots__ = ("text", "releases")
    text: str
    releases: str


def connection_window(failing: list[str], working: list[str], route_is_websocket: bool) -> Window:
    """Name the Werkzeug releases under which exactly ``failing`` Connection values fail.

    A route without ``websocket=True`` fails for the clients a release detects as
    WebSocket; a route with it fails for the clients it does not detect.
    """
    matches = []
    for d in DETECTION:
        if d.rule == "never":
            continue
        detected_fail = [d.detects(c) for c in failing]
        detected_work = [d.detects(c) for c in working]
        if route_is_websocket:
            ok = not any(detected_fail) and all(detected_work)
        else:
            ok = all(detected_fail) and not any(detected_work)
        if ok:
            matches.append(d)
    if not matches:
        return Window("no known Werkzeug release splits clients this way", "unknown")
    releases = ", ".join(d.releases for d in matches)
    shape = "a websocket=True route" if route_is_websocket else "a route without websocket=True"
    return Window(
        f"Werkzeug {releases} routes only Connection: {_fmt(working if route_is_websocket else failing)} "
        f"as WebSocket, so {shape} fails for clients sending Connection: {_fmt(failing)}",
        releases,
    )


def _fmt(values: list[str]) -> str:
    return " / ".join(repr(v) for v in values)
