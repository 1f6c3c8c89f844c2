"""Real browsers against wsdiag's browser profiles: does ``PROFILES['chrome'|'firefox']``
still send what headless Chromium and Firefox ESR send?

Each browser is launched for real (no mocks) on a page served by
``fixtures/capture/capture_server.py``; the page opens ``ws://127.0.0.1:PORT/capture`` and
the server records the opening-handshake request byte for byte.  The capture must match:

* the wsdiag profile: request-line version, header names in the same order and casing,
  and the same values, except Host, Origin and Sec-WebSocket-Key (checked separately
  against the server's address and RFC 6455) and the digits in User-Agent;
* the reference capture in ``shared/captures/`` in the same sense (skipped when shared/ is
  not there; ``WSDIAG_CAPTURES_DIR`` points elsewhere).

On a mismatch the message shows the capture and the expectation side by side, plus the
exact captured bytes and a ready-to-paste ``headers=`` tuple for ``wsdiag/core/profiles.py``.

A missing browser binary skips with the reason, unless ``WSDIAG_REQUIRE_BROWSERS=1`` (for
CI that installs them), which turns the skip into a failure.  The default addopts deselect
the ``browser`` marker; run with ``python -m pytest tests/browsers -m browser``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.capture.browsers import BROWSERS, Browser, Session, capture
from fixtures.capture.capture_server import ECHO_TEXT, CapturedHandshake, CaptureServer, accept_for
from wsdiag.core.profiles import PROFILES, Profile

ROOT = Path(__file__).resolve().parents[2]

CAPTURES_DIR = Path(os.environ.get("WSDIAG_CAPTURES_DIR") or ROOT.parent / "shared" / "captures")
REQUIRE_BROWSERS = os.environ.get("WSDIAG_REQUIRE_BROWSERS") == "1"
CAPTURE_TIMEOUT = 60.0  # seconds for one browser run (observed: about 1-3 s)
TEST_TIMEOUT = 150  # pytest-timeout bound per test, above CAPTURE_TIMEOUT plus cleanup

# Headers whose value depends on the run, not on the browser: compared as placeholders.
PLACEHOLDERS = {"host": "{host}", "origin": "{origin}", "sec-websocket-key": "{key}"}


# -- comparison helpers -------------------------------------------------------------------

def normalise(request_line: str, headers) -> list[str]:
    """Lines to compare: Host/Origin/Key become placeholders, User-Agent digits become N."""
    lines = [request_line]
    for name, value in headers:
        low = name.lower()
        if low in PLACEHOLDERS:
            value = PLACEHOLDERS[low]
        elif low == "user-agent":
            value = re.sub(r"\d+", "N", value)
        lines.append(f"{name}: {value}")
    return lines


def profile_lines(profile: Profile) -> list[str]:
    return normalise(f"GET /capture {profile.http_version}", profile.headers)


def captured_lines(hs: CapturedHandshake) -> list[str]:
    return normalise(hs.request_line, hs.headers)


def side_by_side(left_title: str, left: list[str], right_title: str, right: list[str]) -> str:
    """Two columns, one row per line position; '!=' marks rows that differ."""
    width = max([len(left_title)] + [len(line) for line in left])
    rows = [f"   {left_title:<{width}}  |  {right_title}",
            "   " + "-" * (width + 5 + len(right_title))]
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else "<missing>"
        b = right[i] if i < len(right) else "<missing>"
        rows.append(f"{'!=' if a != b else '  '} {a:<{width}}  |  {b}")
    return "\n".join(rows)


def as_profile_tuple(hs: CapturedHandshake) -> str:
    """The capture as a ``headers=`` tuple for wsdiag/core/profiles.py."""
    out = ["("]
    for name, value in hs.headers:
        value = PLACEHOLDERS.get(name.lower(), value)
        out.append(f"    ({name!r}, {value!r}),")
    out.append(")")
    return "\n".join(out)


def mismatch_report(what: str, hs: CapturedHandshake, expected_title: str,
                    expected: list[str]) -> str:
    return (
        f"{what}\n"
        f"{side_by_side('captured (normalised)', captured_lines(hs), expected_title, expected)}\n\n"
        f"captured bytes:\n{hs.raw!r}\n\n"
        f"as a profile (request line {hs.request_line!r}):\n{as_profile_tuple(hs)}"
    )


# -- one real browser run per browser, shared by the tests of this module ------------------

@dataclass
class Run:
    session: Session
    host_header: str
    origin: str


_runs: dict[str, Run | BaseException] = {}


def _require(browser: Browser) -> None:
    reason = browser.missing()
    if reason:
        if REQUIRE_BROWSERS:
            pytest.fail(f"WSDIAG_REQUIRE_BROWSERS=1 but {reason}")
        pytest.skip(reason)


def run_of(name: str) -> Run:
    """Capture once per browser and module; a failed capture fails every test that needs it."""
    browser = BROWSERS[name]
    _require(browser)
    if name not in _runs:
        try:
            with CaptureServer() as server:
                session = capture(browser, server, timeout=CAPTURE_TIMEOUT)
                _runs[name] = Run(session, server.host_header, server.origin)
        except Exception as exc:  # remembered, re-raised below for each test
            _runs[name] = exc
    run = _runs[name]
    if isinstance(run, BaseException):
        raise run
    return run


BROWSER_NAMES = sorted(BROWSERS)


# -- the tests -------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.timeout(TEST_TIMEOUT)
@pytest.mark.parametrize("name", BROWSER_NAMES)
def test_handshake_matches_profile(name):
    run = run_of(name)
    browser, hs = BROWSERS[name], run.session.handshake
    profile = PROFILES[browser.profile]
    version = browser.version()

    # Byte-level form: CRLF everywhere, nothing but the head.
    assert hs.raw.endswith(b"\r\n\r\n") and hs.raw.count(b"\n") == hs.raw.count(b"\r\n"), hs.raw

    # Run-dependent values: what this page on this server must produce.
    assert hs.request_line == f"GET /capture {hs.http_version}"
    assert hs.header("Host") == run.host_header, hs.raw
    assert hs.header("Origin") == run.origin, hs.raw
    key = hs.header("Sec-WebSocket-Key") or ""
    try:
        assert len(base64.b64decode(key, validate=True)) == 16, key
    except binascii.Error:
        pytest.fail(f"Sec-WebSocket-Key is not base64: {key!r}")

    expected = profile_lines(profile)
    got = captured_lines(hs)
    assert got == expected, mismatch_report(
        f"{version}: real handshake differs from wsdiag profile {profile.name!r} "
        f"(update wsdiag/core/profiles.py if the browser changed)",
        hs, f"PROFILES[{profile.name!r}]", expected)


def _reference_file(browser: Browser) -> Path:
    if not CAPTURES_DIR.is_dir():
        pytest.skip(f"no reference captures: {CAPTURES_DIR} missing (shared/ not present)")
    files = list(CAPTURES_DIR.glob(browser.reference_glob))
    if not files:
        pytest.skip(f"no {browser.reference_glob} in {CAPTURES_DIR}")

    def version_key(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.name))

    return max(files, key=version_key)  # the newest release captured


@pytest.mark.browser
@pytest.mark.timeout(TEST_TIMEOUT)
@pytest.mark.parametrize("name", BROWSER_NAMES)
def test_handshake_matches_reference_capture(name):
    browser = BROWSERS[name]
    _require(browser)
    ref_path = _reference_file(browser)
    ref = CapturedHandshake(ref_path.read_bytes(), ("reference", 0), 0.0)
    run = run_of(name)
    hs = run.session.handshake
    expected = captured_lines(ref)
    assert captured_lines(hs) == expected, mismatch_report(
        f"{browser.version()}: real handshake differs from reference {ref_path}",
        hs, ref_path.name, expected)


@pytest.mark.browser
@pytest.mark.timeout(TEST_TIMEOUT)
@pytest.mark.parametrize("name", BROWSER_NAMES)
def test_page_observes_clean_session(name):
    """The capture server's 101 is accepted by the real browser: open, echo, clean 1000.

    Later tests compare browser observations with wsdiag verdicts; this is their baseline."""
    run = run_of(name)
    reports = {r.event: r for r in run.session.reports}
    events = [r.event for r in run.session.reports]
    assert events == ["load", "open", "message", "close"], [r.params for r in run.session.reports]
    assert reports["message"].get("data") == ECHO_TEXT
    assert reports["close"].get("code") == "1000"
    assert reports["close"].get("wasClean") == "true"
    assert reports["open"].get("extensions") == ""  # the server accepted none


def _wrong_accept(hs: CapturedHandshake) -> bytes:
    """A 101 whose Sec-WebSocket-Accept belongs to another key."""
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_for('AAAAAAAAAAAAAAAAAAAAAA==')}\r\n\r\n").encode()


@pytest.mark.browser
@pytest.mark.timeout(TEST_TIMEOUT)
@pytest.mark.parametrize("name", BROWSER_NAMES)
def test_page_observes_wrong_accept_as_failure(name):
    """Negative control: a 101 with a wrong Sec-WebSocket-Accept never opens; the page sees
    error + close 1006.  Shows the page's reports really follow the server's answer."""
    browser = BROWSERS[name]
    _require(browser)
    with CaptureServer(respond=_wrong_accept) as server:
        session = capture(browser, server, timeout=CAPTURE_TIMEOUT)
    events = [r.event for r in session.reports]
    close = next(r for r in session.reports if r.event == "close")
    assert "open" not in events and "error" in events, [r.params for r in session.reports]
    assert close.get("code") == "1006" and close.get("wasClean") == "false", close.params


# -- the comparison itself must be able to fail (no browser needed) ------------------------

@pytest.mark.browser
@pytest.mark.timeout(30)
def test_accept_for_rfc6455_example():
    assert accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def _fake_capture(profile: Profile, mutate=None) -> CapturedHandshake:
    headers = [(k, v.format(host="127.0.0.1:1", origin="http://127.0.0.1:1",
                            key="dGhlIHNhbXBsZSBub25jZQ==")) for k, v in profile.headers]
    if mutate:
        headers = mutate(headers)
    text = f"GET /capture {profile.http_version}\r\n"
    text += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return CapturedHandshake(text.encode("latin-1"), ("test", 0), 0.0)


@pytest.mark.browser
@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile_name", ["chrome", "firefox"])
def test_comparison_catches_order_case_and_value_changes(profile_name):
    profile = PROFILES[profile_name]
    expected = profile_lines(profile)
    # The profile rendered as a browser would send it compares equal, even with other
    # version digits in User-Agent ...
    same = _fake_capture(profile, lambda h: [(k, re.sub(r"\d+", "999", v) if k == "User-Agent"
                                              else v) for k, v in h])
    assert captured_lines(same) == expected
    # ... but a swapped order, a changed casing or value, or an extra header does not.
    mutations = {
        "order": lambda h: [h[1], h[0]] + h[2:],
        "casing": lambda h: [(k.lower(), v) if k == "Upgrade" else (k, v) for k, v in h],
        "value": lambda h: [(k, "keep-alive, Upgrade") if k == "Connection" else (k, v)
                            for k, v in h],
        "extra": lambda h: h + [("X-Extra", "1")],
        "ua-text": lambda h: [(k, v.replace("Linux", "Windows")) if k == "User-Agent" else (k, v)
                              for k, v in h],
    }
    for what, mutate in mutations.items():
        hs = _fake_capture(profile, mutate)
        assert captured_lines(hs) != expected, what
        message = mismatch_report("x", hs, "profile", expected)
        assert "!=" in message and repr(hs.raw) in message, what
