"""What a held, idle session tells: who ended it, when, and whether pings kept it alive.

Pure core (standard library only). ``net/hold.py`` fills ``HoldResult``; ``hold_findings``
turns it into at most one finding (FAILURES.md FM-08, FM-12):

* EOF or reset with no close frame: something cut the TCP connection. At a round number of
  seconds (within 0.3 s) that is an idle-timeout setting; behind a proxy it is the proxy's.
* A close frame: the WebSocket endpoint (the app or its library) ended it.
* HTTP bytes in the stream: a worker was killed and answered 500 into the upgraded socket.
* Still open at the end: no idle timeout shorter than the hold.
A black-box hold is evidence, not proof: every finding is at most ``likely``.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsdiag.core.findings import Finding


@dataclass
class HoldResult:
    url: str
    seconds: float  # how long wsdiag held (the budget)
    ended: str  # survived | eof | reset | close | http | not-upgraded | error
    after_s: float | None = None  # seconds from the 101 to the end
    close_code: int | None = None
    line: str = ""  # first line of HTTP bytes seen in the stream, or the error
    ping_every: float | None = None  # seconds between pings (None: idle, no pings)
    pongs: int = 0


def _round(seconds: float) -> bool:
    return abs(seconds - round(seconds)) <= 0.3 and round(seconds) >= 1


def hold_findings(idle: HoldResult, pinged: HoldResult | None = None, proxy: str | None = None) -> list[Finding]:
    """The finding an idle hold (and optionally a pinged one beside it) supports."""
    pings = ""
    if pinged is not None and pinged.ping_every:
        if pinged.ended == "survived":
            pings = f"; with a ping every {pinged.ping_every:g}s a session stayed open for {pinged.seconds:g}s: pings keep it alive"
        elif pinged.after_s is not None:
            pings = f"; with a ping every {pinged.ping_every:g}s it still ended after {pinged.after_s:.1f}s: pings do not help"
    ev = {"url": idle.url, "seconds": None if idle.after_s is None else round(idle.after_s, 1), "pings": pings,
          "ended": idle.ended, "hold_s": idle.seconds, "pings_keep_alive": pinged.ended == "survived" if pinged else None}
    if idle.ended == "survived":
        return [Finding("WS723", {**ev, "seconds": idle.seconds}, "url", "likely")]
    if idle.ended in ("eof", "reset") and idle.after_s is not None:
        if _round(idle.after_s):
            by = f"an idle timeout of about {round(idle.after_s)}s" + (f", most likely {proxy}'s" if proxy else " in a proxy, load balancer or the server")
        else:
            by = "the peer or an intermediary, not at a round number of seconds"
        return [Finding("WS722", {**ev, "by": by, "proxy": proxy}, "url", "likely")]
    if idle.ended == "close" and idle.after_s is not None:
        code_text = f" (code {idle.close_code})" if idle.close_code is not None else " (no code)"
        return [Finding("WS724", {**ev, "code_text": code_text, "close_code": idle.close_code}, "url", "likely")]
    if idle.ended == "http":
        return [Finding("WS725", {**ev, "line": idle.line}, "url", "likely")]
    return []


__all__ = ["HoldResult", "hold_findings"]
