"""The human report: a five-second read (verdict, leading cause, fix first), rows collapsed,
refusal evidence shown, long explanations only with -v. Rendered from scripted evidence."""

from __future__ import annotations

import io

from wsdiag.core.diagnose import build_report
from wsdiag.core.findings import AfterUpgrade, Exchange
from wsdiag.core.profiles import PROFILES
from wsdiag.ui.render import Output


def render_text(report, verbose: bool = False, width: int = 200) -> str:
    buf = io.StringIO()
    Output(buf, io.StringIO(), width=width, color=False).text_report(report, verbose=verbose, show_secrets=False)
    return buf.getvalue()


def refused(name, head=b"HTTP/1.1 400 BAD REQUEST\r\nServer: Werkzeug/3.1.9 Python/3.11.7\r\nContent-Length: 44\r\n\r\n",
            body=b"<p>Host &#39;h:1&#39; is not trusted.</p>"):
    return Exchange(name, "ws://h:1/ws", request=b"GET /ws HTTP/1.1\r\nHost: h:1\r\n\r\n", response_head=head, body=body)


def test_first_lines_are_verdict_leading_cause_and_fix():
    runs = [(PROFILES[n], None, refused(n)) for n in ("chrome", "firefox", "firefox-legacy", "minimal")]
    text = render_text(build_report("ws://h:1/ws", "/ws", runs, None, None))
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert "PROBLEMS" in lines[0] and "4 profiles: refused (400)" in lines[0]
    assert "WS223" in lines[1] and "likely" in lines[1]
    assert any(ln.strip().startswith("fix:") for ln in lines[2:5])
    assert "is not trusted" in text  # the body excerpt, in the default report


def test_identical_rows_collapse_and_verbose_adds_without_repeating():
    unreachable = [(PROFILES[n], None, Exchange(n, "ws://h:1/ws", error_phase="connect", error_kind="connection-refused",
                                                error_detail="refused")) for n in ("chrome", "firefox", "firefox-legacy", "minimal", "http10")]
    report = build_report("ws://h:1/ws", "/ws", unreachable, None, None)
    text = render_text(report)
    assert "4 profiles: unreachable" in text
    assert text.count("connect: refused") == 2  # the four counted profiles share a row; http10 (a proxy sim.) has its own
    verbose = render_text(report, verbose=True)
    assert "why:" in verbose and "why:" not in text
    assert verbose.count("WS102 connection-refused") == text.count("WS102 connection-refused")


def test_serviced_rows_collapse_with_a_time_range():
    def ok(n, t):
        return Exchange(n, "ws://h:1/ws", response_head=b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                        after=AfterUpgrade("pong", [{"event": "pong"}], 1000, t))

    runs = [(PROFILES["minimal"], None, ok("minimal", 1.0)), (PROFILES["chrome"], None, ok("chrome", 2.5))]
    text = render_text(build_report("ws://h:1/ws", "/ws", runs, None, None))
    assert "2 profiles: upgraded and serviced" in text
    assert "pong after 1.0-2.5 ms" in text
