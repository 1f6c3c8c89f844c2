"""Calibration (issue 10 item 5): no cause is ``certain`` without the app's trace, whatever the
server answers; and a report never recommends a fix another of its findings contradicts.

Hypothesis drives scripted exchanges (statuses, headers, bodies, post-upgrade outcomes) and raw
bytes through the full diagnosis, controls included.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_properties import REQ, events, heads, outcomes  # also loads the hypothesis profile
from wsdiag.core.diagnose import build_report
from wsdiag.core.findings import AfterUpgrade, Exchange
from wsdiag.core.handshake import build_request, parse_target
from wsdiag.core.holding import HoldResult, hold_findings
from wsdiag.core.profiles import PROFILES

# Full reports are slower than single judgements: fewer examples in the default (ci) run.
FEWER = settings(max_examples=400) if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else settings()
STATUS = st.sampled_from([101, 200, 301, 308, 400, 401, 402, 403, 404, 405, 414, 426, 429, 500, 502])
HEADER = st.sampled_from([
    ("Server", "Werkzeug/3.1.9 Python/3.11.7"), ("Server", "gunicorn"), ("Server", "nginx/1.22.1"),
    ("Sec-WebSocket-Version", "13, 8, 7"), ("Location", "ws://h/ws/"), ("Location", "/ws/"),
    ("Content-Length", "41"), ("Content-Length", "0"), ("Content-length", "0"), ("Upgrade", "websocket"),
    ("Connection", "Upgrade"), ("Sec-WebSocket-Extensions", "permessage-deflate"), ("Date", "x"),
])
BODY = st.one_of(st.binary(max_size=120), st.sampled_from([
    b"", b"<!doctype html>\n<html lang=en>\n<title>400 Bad Request</title>\n<p>The browser (or proxy) sent a request "
    b"that this server could not understand.</p>", b"<p>Host &#39;h&#39; is not trusted.</p>", b"Origin not allowed",
    b"<center>nginx</center>", b"Request Line is too large (8192 &gt; 4094)", b"Internal Server Error"]))


@st.composite
def answer(draw):
    status = draw(STATUS)
    hdrs = draw(st.lists(HEADER, max_size=5))
    head = f"HTTP/1.1 {status} {draw(st.sampled_from(['OK', 'Bad Request', 'X']))}\r\n".encode()
    head += b"".join(f"{n}: {v}\r\n".encode() for n, v in hdrs) + b"\r\n"
    after = None
    if status == 101:
        outcome = draw(outcomes)
        after = AfterUpgrade(outcome, draw(events), 1000, draw(st.one_of(st.none(), st.floats(0, 5000))))
    return head, draw(BODY), after


def _exchange(name, url, head, body, after, request=REQ.raw):
    return Exchange(name, url, request, head, body, after=after)


def _assert_calibrated(report):
    for f in report.causes:
        if f.confidence == "certain":
            # Only the transport's own failure with no answer at all may be certain.
            assert f.code.startswith("WS1") and not f.evidence.get("received"), (f.code, f.evidence)
            assert f.evidence.get("phase") in ("dns", "connect", "tls", "proxy"), (f.code, f.evidence)
    codes = {f.code for f in report.causes}
    stack = next((f for f in report.facts if f.code == "WS720"), None)
    layers = stack.evidence.get("layers", {}) if stack else {}
    if layers.get("websocket") == "gevent-websocket" and "WS220" in codes:
        assert "WS702" not in codes  # never "add WebSocketHandler" to gevent-websocket's own refusal
    if any(r.status == 101 for r in report.results if r.counts):
        assert "WS702" not in codes  # never "the server cannot upgrade" when it upgraded


@FEWER
@given(st.lists(answer(), min_size=1, max_size=4), answer(), answer(), st.one_of(st.none(), answer()))
def test_no_cause_is_certain_without_a_trace_scripted(answers, get, bogus, slash):
    names = ["chrome", "firefox", "minimal", "http10"]
    runs = []
    for name, (head, body, after) in zip(names, answers):
        req = build_request(PROFILES[name], parse_target("ws://h/ws"), "dGhlIHNhbXBsZSBub25jZQ==")
        runs.append((PROFILES[name], req, _exchange(name, "ws://h/ws", head, body, after, req.raw)))
    extra = []
    if slash is not None:
        extra.append(("slash-variant", "x", REQ, _exchange("slash-variant", "ws://h/ws/", *slash)))
    report = build_report("ws://h/ws", "/ws", runs, _exchange("plain-get", "ws://h/ws", get[0], get[1], None, b"GET /ws HTTP/1.1\r\n\r\n"),
                          (REQ, _exchange("no-such-path", "ws://h/x", *bogus)), extra)
    _assert_calibrated(report)


@FEWER
@given(st.lists(heads, min_size=1, max_size=3), heads, st.binary(max_size=200),
       st.one_of(st.none(), st.sampled_from(["connection-refused", "no-response", "closed-before-response", "reset-before-response"])))
def test_no_cause_is_certain_without_a_trace_raw_bytes(answers, get_head, get_body, error):
    runs = [(PROFILES["chrome"], REQ, Exchange("chrome", "ws://h/ws", REQ.raw, a, error_kind=error,
                                                 error_phase="response" if error else None, received_before_error=len(a)))
            for a in answers]
    report = build_report("ws://h/ws", "/ws", runs, Exchange("plain-get", "ws://h/ws", b"", get_head, get_body),
                          (REQ, Exchange("no-such-path", "ws://h/x", b"", answers[0])))
    _assert_calibrated(report)


@given(st.sampled_from(["survived", "eof", "reset", "close", "http", "error", "not-upgraded"]),
       st.one_of(st.none(), st.floats(0, 200)), st.sampled_from(["survived", "eof", "error"]), st.one_of(st.none(), st.just("nginx")))
def test_hold_findings_are_never_certain(ended, after_s, pinged_end, proxy):
    idle = HoldResult("ws://h/ws", 10, ended, after_s)
    pinged = HoldResult("ws://h/ws", 10, pinged_end, None if pinged_end == "survived" else 3.0, ping_every=2.5)
    for f in hold_findings(idle, pinged, proxy):
        assert f.confidence == "likely" and f.summary


def test_a_traced_cause_may_be_certain():
    """The calibration does not flatten the trace: a traced probe keeps its certain cause (see test_probe_traced)."""
    from wsdiag.core.findings import Finding
    from wsdiag.core.refusals import calibrate

    traced = Finding("WS601", {"source": "trace"}, "url", "certain")
    guessed = Finding("WS601", {}, "url", "certain")
    calibrate([traced, guessed])
    assert (traced.confidence, guessed.confidence) == ("certain", "likely")
