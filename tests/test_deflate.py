"""permessage-deflate (RFC 7692) and browser-grade frame checks against real servers.

Scripted loopback servers (fixtures/hostile/frames_and_closing.py) break one rule each; the
probe with the profile that shows it must name exactly that defect.  Pure unit tests cover
the offer/answer validator and the inflater; real flask-sock/wsproto servers (which accept
permessage-deflate and compress their replies) must come out serviced with no error.
"""

from __future__ import annotations

import time
import zlib

import pytest

from fixtures.hostile.frames_and_closing import CASES, deflate
from fixtures.hostile.servers import ScriptedServer
from wsdiag.core import deflate as d
from wsdiag.core.profiles import PROFILES
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.net.transport import Settings

TIMEOUT, WATCH = 2.0, 0.8
BOUND = TIMEOUT + WATCH + 0.5
DEFLATE_CASES = sorted(n for n in CASES if n.startswith(("pmd-", "rsv1-", "text-", "continuation", "interleaved", "ping-")))


def run_case(name: str):
    scenario, profile = CASES[name]
    settings = Settings(timeout=TIMEOUT, watch=WATCH, use_env_proxy=False)
    with ScriptedServer(scenario, max_hold=5) as srv:
        start = time.monotonic()
        (report,) = probe([srv.url()], ProbeOptions([PROFILES[profile]], settings, controls=False))
        elapsed = time.monotonic() - start
        assert srv.errors == []
    (result,) = report.results
    return scenario, result, elapsed


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", DEFLATE_CASES)
def test_scripted_server_defect_is_named(name):
    scenario, result, elapsed = run_case(name)
    codes = {f.code for f in result.findings}
    significant = {f.code for f in result.findings if f.severity.value != "info"}
    assert result.verdict.value == scenario.expected_verdict, (name, result.verdict, codes)
    assert scenario.expected_codes <= codes, (name, codes)
    if scenario.exact:
        assert significant == set(scenario.expected_codes), (name, significant)
    assert elapsed < BOUND, (name, elapsed)


def test_good_deflate_server_inflates_every_reply():
    """The compressed echo is read (inflated) and the agreement is in the JSON."""
    _, result, _ = run_case("pmd-good")
    after = result.exchange.after
    assert after.extensions["permessage-deflate"]["client_max_window_bits"] == 15
    data = [e for e in after.events if e["event"] == "data"]
    assert data and data[0]["compressed"] and data[0]["excerpt"] == "wsdiag-probe"
    assert result.to_dict()["after_upgrade"]["extensions"]


def test_ping_storm_is_bounded_and_summarised():
    """A ping storm ends at the frame cap: few events kept, the rest counted (issue 15)."""
    _, result, elapsed = run_case("ping-storm")
    after = result.exchange.after
    assert after.stream["capped"] and after.stream["frames"] >= 5000
    assert len(after.events) <= 70
    assert elapsed < BOUND


# -- the offer/answer validator, unit by unit ---------------------------------------------

CHROME_OFFER = ["permessage-deflate; client_max_window_bits"]
FIREFOX_OFFER = ["permessage-deflate"]


@pytest.mark.parametrize("answer,offer,codes", [
    ("permessage-deflate; client_max_window_bits=15", CHROME_OFFER, []),
    ("permessage-deflate", FIREFOX_OFFER, []),
    ("permessage-deflate; server_max_window_bits=8", FIREFOX_OFFER, []),
    ('permessage-deflate; server_max_window_bits="10"', FIREFOX_OFFER, []),
    ("permessage-deflate; x=1", FIREFOX_OFFER, ["WS420"]),
    ("permessage-deflate; server_max_window_bits=7", FIREFOX_OFFER, ["WS421"]),
    ("permessage-deflate; server_max_window_bits=0x9", FIREFOX_OFFER, ["WS421"]),
    ("permessage-deflate; client_no_context_takeover=1", FIREFOX_OFFER, ["WS421"]),
    ("permessage-deflate; client_max_window_bits", CHROME_OFFER, ["WS421"]),
    ("permessage-deflate; client_max_window_bits=9; client_max_window_bits=9", CHROME_OFFER, ["WS422"]),
    ("permessage-deflate; client_max_window_bits=9", FIREFOX_OFFER, ["WS423"]),
    ("permessage-deflate, permessage-deflate", FIREFOX_OFFER, ["WS424"]),
    ("permessage-deflate", ["permessage-deflate; server_no_context_takeover"], ["WS425"]),
    ("permessage-deflate; server_max_window_bits=12", ["permessage-deflate; server_max_window_bits=10"], ["WS425"]),
    ("permessage-deflate; server_max_window_bits=10", ["permessage-deflate; server_max_window_bits=10"], []),
    ("permessage-deflate; x=1; server_max_window_bits=99; x=1", FIREFOX_OFFER, ["WS420", "WS420", "WS421"]),
])
def test_answer_validation(answer, offer, codes):
    neg = d.negotiate(offer, [answer])
    assert sorted(p.code for p in neg.problems) == sorted(codes)
    assert neg.active


def test_declined_or_unoffered_is_not_in_force():
    assert not d.negotiate(FIREFOX_OFFER, []).active  # declined: plain frames
    assert not d.negotiate([], ["permessage-deflate"]).active  # unoffered: WS307's business
    assert not d.negotiate(["x-webkit-deflate-frame"], ["x-webkit-deflate-frame"]).active


def test_agreement_parameters():
    a = d.negotiate(CHROME_OFFER, ["permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
                                   "client_max_window_bits=12"]).agreement
    assert (a.server_no_context_takeover, a.server_max_window_bits, a.client_max_window_bits) == (True, 10, 12)


def test_inflater_context_takeover_and_reset():
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    text = b"hello hello hello, a message that repeats itself " * 3
    first, second = deflate(text, z), deflate(text, z)
    takeover = d.Inflater(d.Agreement())
    assert takeover.inflate_message([first]) == text
    assert takeover.inflate_message([second]) == text
    fresh = d.Inflater(d.Agreement(server_no_context_takeover=True))
    assert fresh.inflate_message([first]) == text
    with pytest.raises(d.InflateError):  # the second refers into a window that was reset
        fresh.inflate_message([second])


def test_inflater_output_is_bounded():
    bomb = deflate(b"\0" * (8 << 20))
    inf = d.Inflater(d.Agreement(), max_output=1 << 16)
    out = inf.inflate_message([bomb])
    assert len(out) == 1 << 16 and inf.messages == 1
    assert inf.inflate_message([deflate(b"next")]) == b"next"  # a fresh context after truncation
