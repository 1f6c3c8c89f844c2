"""How a served session is paced after its answers (wsdiag.net.session), against real servers.

* While waiting for the second answer (pong or echo), wsdiag acknowledges what it read at once
  (TCP_QUICKACK, Linux): servers that write the pong and the echo as two small segments without
  TCP_NODELAY (gevent pywsgi, gevent-websocket) otherwise hold the second one by Nagle's
  algorithm until wsdiag's delayed ACK, ~40 ms per session (benchmarks/RESULTS.md).
* Before closing, a served session stays idle briefly (``IDLE_BEFORE_CLOSE``) when the probe has
  later exchanges to the same server, so that a server which breaks as soon as it has to wait for
  a client's next frame (FM-14, WS726) breaks then, rather than escaping by a race with wsdiag's
  close; a probe of one exchange (a fleet scan with ``-p minimal --no-controls``) does not idle.

No timing is asserted (no timed unit tests): what is checked is what wsdiag did and recorded.
"""

from __future__ import annotations

import socket

import pytest

import wsdiag.net.session as session
from fixtures.hostile.servers import ScriptedServer
from wsdiag.core.profiles import resolve
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.net.transport import Settings


@pytest.fixture()
def idles(monkeypatch):
    """The ``idle`` each served session was given, and the socket options set while settling."""
    seen: dict = {"idle": [], "quickack": []}
    real_watch, real_ack = session.watch_session, session._Session.ack_now

    def watch(*args, **kwargs):
        seen["idle"].append(args[6] if len(args) > 6 else kwargs.get("idle", 0.0))
        return real_watch(*args, **kwargs)

    def ack_now(self):
        real_ack(self)
        if session.QUICKACK:
            seen["quickack"].append(self.sock.getsockopt(socket.IPPROTO_TCP, session.QUICKACK))

    monkeypatch.setattr(session, "watch_session", watch)
    monkeypatch.setattr(session._Session, "ack_now", ack_now)
    return seen


def _probe(url: str, profiles: list[str], controls: bool):
    opts = ProbeOptions(resolve(profiles), Settings(timeout=2, watch=0.8, use_env_proxy=False), controls=controls)
    return probe([url], opts)[0]


@pytest.mark.parametrize("profiles,controls,idle", [
    (["minimal"], False, 0.0),  # one exchange: nothing later could show a stall
    (["minimal", "chrome"], False, session.IDLE_BEFORE_CLOSE),
    (["minimal"], True, session.IDLE_BEFORE_CLOSE),  # the control requests follow
])
def test_served_sessions_idle_only_when_later_exchanges_follow(idles, profiles, controls, idle):
    with ScriptedServer("good", max_hold=5) as srv:
        report = _probe(srv.url(), profiles, controls)
    served = [r for r in report.results if r.exchange.after is not None and r.exchange.after.outcome in ("pong", "data")]
    assert len(served) == len(profiles)
    assert idles["idle"] and set(idles["idle"]) == {idle}
    for r in served:  # the idle changes no evidence: both answers, the close echoed, then EOF
        closing = r.exchange.after.closing
        assert closing["echoed"] and closing["echo_code"] == 1000 and closing["then"] == "eof"
        events = [e["event"] for e in r.exchange.after.events]
        assert "pong" in events and "data" in events
        assert not r.findings


def test_settling_acknowledges_at_once(idles):
    """gevent-websocket (no TCP_NODELAY): wsdiag waits for the echo after the pong with quick ACKs armed."""
    from tests.test_failures import start_stack

    s = start_stack("gws", "fixtures.failures.gws_echo")
    try:
        report = _probe(s.url(), ["minimal"], False)
    finally:
        s.stop()
    (r,) = report.results
    events = [e["event"] for e in r.exchange.after.events]
    assert r.exchange.after.outcome == "pong" and "data" in events  # the echo came while settling
    # (when the pong and the echo come in one read there is nothing to wait for: no ack_now call)
    assert all(v == 1 for v in idles["quickack"])  # the socket left delayed-ACK (pingpong) mode
