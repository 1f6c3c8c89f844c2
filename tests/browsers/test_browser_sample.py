"""Real browsers against serve-sample: what each browser did equals wsdiag's verdict for its profile.

Headless Chromium and Firefox ESR open each variant's chat page (two sockets; one speaks,
the other must hear it). The page's own events say whether the browser's socket was served
(a message arrived) or abandoned (closed without one). wsdiag then probes the same URL with
that browser's profile, traced, and must agree.
"""

from __future__ import annotations

import os
import time

import pytest

from fixtures.capture.browsers import BROWSERS, launched
from wsdiag.core.findings import Verdict
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import PROFILES
from wsdiag.proc import start_sample
from wsdiag.net.transport import Settings

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def sample():
    child = start_sample()
    yield child
    child.stop()


def browser_outcome(sample, browser, variant: str, timeout: float = 30.0) -> str:
    """'served' if bob heard alice, 'abandoned' if both sockets closed unheard; bounded."""
    events: list = []
    before = len(sample.browser_events())
    with launched(browser, sample.page_url(variant)):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = [e for e in sample.browser_events()[before:] if e.get("variant") == variant]
            if any(e["event"] == "message" and e.get("who") == "bob" for e in events):
                return "served"
            # Both sockets closed unheard. (Firefox may skip onopen when the close frame
            # follows the 101 at once; Chromium fires open then close.)
            if len([e for e in events if e["event"] == "close"]) == 2:
                return "abandoned"
            time.sleep(0.1)
    raise AssertionError(f"{browser.name} on {variant}: no outcome within {timeout}s: {events}")


@pytest.mark.parametrize("name", ["chromium", "firefox"])
@pytest.mark.parametrize("variant", ["route", "hook", "fixed"])
def test_browser_and_wsdiag_agree(sample, name, variant):
    browser = BROWSERS[name]
    reason = browser.missing()
    if reason:
        if os.environ.get("WSDIAG_REQUIRE_BROWSERS"):
            pytest.fail(reason)
        pytest.skip(reason)
    seen = browser_outcome(sample, browser, variant)
    opts = ProbeOptions([PROFILES[browser.profile]], Settings(timeout=5, watch=1, use_env_proxy=False),
                        trace=sample.trace, controls=False)
    (report,) = probe([sample.url(variant)], opts)
    verdict = report.results[0].verdict
    assert verdict in (Verdict.SERVICED, Verdict.ABANDONED)
    assert (verdict is Verdict.SERVICED) == (seen == "served"), (name, variant, seen, verdict)
    # and the browser's own close code for the abandoned socket is the 1005 wsdiag predicts
    if seen == "abandoned":
        closes = [e for e in sample.browser_events() if e.get("variant") == variant and e["event"] == "close"]
        assert closes[-1]["code"] == 1005
