"""Property tests: whatever bytes a server sends, wsdiag diagnoses without raising.

Thousands of examples by default (the ``ci`` profile); ``HYPOTHESIS_PROFILE=nightly``
runs fifty thousand per test, for a longer, nightly-style search.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsdiag.core import frames as fr
from wsdiag.core.diagnose import build_report, judge
from wsdiag.core.findings import AfterUpgrade, Exchange, Verdict
from wsdiag.core.handshake import build_request, parse_response_head, parse_target
from wsdiag.core.profiles import PROFILES

settings.register_profile("ci", max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=50000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REQ = build_request(PROFILES["chrome"], parse_target("ws://h/ws"), "dGhlIHNhbXBsZSBub25jZQ==", subprotocols=("a",))
heads = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda s, rest: b"HTTP/1.1 " + s.encode() + b" X\r\n" + rest, st.sampled_from(["101", "200", "400", "302", "999"]), st.binary(max_size=300)),
)
outcomes = st.sampled_from(["pong", "data", "close", "eof", "reset", "silent", "invalid", "weird"])
events = st.lists(st.dictionaries(st.sampled_from(["event", "code", "close_code", "t_ms", "detail"]),
                                  st.one_of(st.text(max_size=10), st.integers(), st.none()), max_size=4), max_size=4)


@given(st.binary(max_size=2000))
def test_parse_head_and_decode_frames_never_raise(data):
    parse_response_head(data)
    frames, rest, problems = fr.decode(data)
    assert len(rest) <= len(data)


@given(heads, st.binary(max_size=300), st.one_of(st.none(), outcomes), events, st.one_of(st.none(), st.sampled_from(["connection-refused", "no-response", "bogus-kind"])))
def test_judge_always_gives_a_verdict(head, body, outcome, evs, error):
    """Arbitrary answer bytes, bodies, post-upgrade events and errors: a verdict, no exception."""
    after = AfterUpgrade(outcome=outcome, events=evs, first_event_ms=1.0) if outcome else None
    ex = Exchange("chrome", "ws://h/ws", REQ.raw, head, body, error_kind=error, error_phase="response" if error else None, after=after)
    j = judge(REQ, ex, "chrome")
    assert isinstance(j.verdict, Verdict)
    for f in j.findings:
        assert f.summary  # renders


@given(st.lists(heads, min_size=1, max_size=3), heads, st.binary(max_size=200))
def test_cross_profile_inference_never_raises(answers, get_head, get_body):
    runs = [(PROFILES["chrome"], REQ, Exchange("chrome", "ws://h/ws", REQ.raw, a)) for a in answers]
    report = build_report("ws://h/ws", "/ws", runs, Exchange("plain-get", "ws://h/ws", b"", get_head, get_body), (REQ, Exchange("x", "ws://h/x", b"", answers[0])))
    assert report.worst is not None or report.ok


frame_bytes = st.builds(
    lambda b0, b1, ext, payload: bytes([b0, b1]) + ext + payload,
    st.integers(0, 255), st.integers(0, 255), st.binary(max_size=8), st.binary(max_size=200),
)


@given(st.lists(frame_bytes, max_size=6))
def test_frame_decoder_on_frame_shaped_bytes(chunks):
    """Bytes shaped like frame headers (the hard part of the decoder): no exception, bounded rest."""
    data = b"".join(chunks)
    frames, rest, problems = fr.decode(data)
    assert sum(len(f.payload) for f in frames) <= len(data)
    assert all(p.code.startswith("WS4") for p in problems)
