"""Diagnosis on scripted evidence (no sockets): verdicts per exchange, causes across them."""

from __future__ import annotations

from wsdiag.core.diagnose import build_report, judge
from wsdiag.core.findings import AfterUpgrade, Exchange, Verdict
from wsdiag.core.handshake import accept_for, build_request, parse_target
from wsdiag.core.profiles import PROFILES

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
TARGET = parse_target("ws://h/ws")
OK101 = f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_for(KEY)}\r\n\r\n".encode()
WZ400 = (b"HTTP/1.1 400 BAD REQUEST\r\nContent-Type: text/html\r\n\r\n",
         b"<p>The browser (or proxy) sent a request that this server could not understand.</p>")


def req(name="chrome"):
    return build_request(PROFILES[name], TARGET, KEY)


def ex(head=OK101, body=b"", outcome=None, t=1.0, close_code=None, name="chrome"):
    after = None
    if outcome:
        events = [{"event": outcome, "t_ms": t}]
        if outcome == "close":
            events[0]["close_code"] = close_code
        after = AfterUpgrade(outcome, events, 1000, t)
    return Exchange(name, TARGET.url, req(name).raw, head, body, after=after)


def get(status_line=b"HTTP/1.1 200 OK\r\n\r\n", body=b"hello"):
    return Exchange("plain-get", TARGET.url, b"", status_line, body)


def report(runs, plain=None, bogus=None):
    return build_report(TARGET.url, "/ws", [(PROFILES[n], req(n), e) for n, e in runs], plain, bogus)


def test_judge_outcomes_after_101():
    """pong/data -> serviced; close/eof/reset -> abandoned with 401/402/403; silence -> silent."""
    cases = {"pong": (Verdict.SERVICED, []), "data": (Verdict.SERVICED, []),
             "close": (Verdict.ABANDONED, ["WS401", "WS411"]), "eof": (Verdict.ABANDONED, ["WS402"]),
             "reset": (Verdict.ABANDONED, ["WS403"]), "silent": (Verdict.SILENT, ["WS404"])}
    for outcome, (verdict, codes) in cases.items():
        j = judge(req(), ex(outcome=outcome))
        assert (j.verdict, [f.code for f in j.findings]) == (verdict, codes), outcome


def test_judge_statuses():
    """Each status class maps to its verdict and code."""
    table = {
        b"HTTP/1.1 200 OK\r\n\r\n": (Verdict.NOT_UPGRADED, "WS202"),
        b"HTTP/1.1 308 PERMANENT REDIRECT\r\nLocation: ws://h/ws/\r\n\r\n": (Verdict.REFUSED, "WS203"),
        b"HTTP/1.1 403 FORBIDDEN\r\n\r\n": (Verdict.REFUSED, "WS206"),
        b"HTTP/1.1 402 Bad Request\r\n\r\n": (Verdict.REFUSED, "WS204"),
        b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13, 8, 7\r\n\r\n": (Verdict.REFUSED, "WS205"),
        b"HTTP/1.1 429 Too Many\r\nRetry-After: 30\r\n\r\n": (Verdict.REFUSED, "WS207"),
        b"HTTP/1.1 502 Bad Gateway\r\n\r\n": (Verdict.REFUSED, "WS208"),
        b"HTTP/1.1 404 NOT FOUND\r\n\r\n": (Verdict.REFUSED, "WS201"),
        b"garbage\r\n\r\n": (Verdict.INVALID, "WS209"),
    }
    for head, (verdict, code) in table.items():
        j = judge(req(), ex(head=head))
        assert j.verdict is verdict and code in [f.code for f in j.findings], head


def test_declared_body_missing_is_noted():
    j = judge(req(), ex(head=b"HTTP/1.1 402 Bad Request\r\nContent-Length: 20\r\n\r\n", body=b""))
    assert "WS210" in [f.code for f in j.findings]


def test_connection_split_names_the_release_window():
    """Upgrade-sending clients abandoned, keep-alive, Upgrade clients served, GET 200: WS701."""
    r = report([("chrome", ex(outcome="close")), ("firefox-legacy", ex(outcome="pong", name="firefox-legacy"))], get())
    lead = r.causes[0]
    assert lead.code == "WS701"
    assert lead.evidence["failing_connection"] == ["Upgrade"]
    assert lead.evidence["working_connection"] == ["keep-alive, Upgrade"]
    assert lead.evidence["werkzeug"] == "2.0.0 - 2.0.1"
    assert "WS601" in [f.code for f in r.causes]


def test_abandoned_with_werkzeug_400_on_get_means_the_app_ends_the_socket():
    r = report([("chrome", ex(outcome="close"))], get(*WZ400))
    assert [(f.code, f.confidence) for f in r.causes] == [("WS603", "likely"), ("WS706", "possible")]


def test_abandoned_with_404_redirect_auth_500_on_get():
    """The plain GET's status names the hidden failure."""
    for line, code in [(b"HTTP/1.1 404 NOT FOUND\r\n\r\n", "WS602"), (b"HTTP/1.1 308 X\r\nLocation: /ws/\r\n\r\n", "WS605"),
                       (b"HTTP/1.1 401 X\r\n\r\n", "WS606"), (b"HTTP/1.1 500 X\r\n\r\n", "WS607"), (b"HTTP/1.1 405 X\r\n\r\n", "WS608")]:
        r = report([("chrome", ex(outcome="close"))], get(line, b""))
        assert r.causes[0].code == code, line


def test_same_answer_as_plain_get_means_a_proxy_strips_the_upgrade():
    r = report([("chrome", ex(*WZ400))], get(*WZ400))
    assert [f.code for f in r.causes] == ["WS703", "WS702"]


def test_402_to_http11_clients_means_an_http10_hop():
    r = report([("chrome", ex(b"HTTP/1.1 402 Bad Request\r\n\r\n"))], get())
    assert [f.code for f in r.causes] == ["WS704"]


def test_visible_mismatch_on_a_server_without_websocket_support():
    """No 101, upgrade gets Werkzeug's 400 while GET gets 200: WS702 and WS601."""
    r = report([("chrome", ex(*WZ400))], get())
    assert [f.code for f in r.causes] == ["WS702", "WS601"]


def test_all_serviced_and_ok():
    r = report([("chrome", ex(outcome="pong")), ("firefox", ex(outcome="data", name="firefox"))], get(*WZ400))
    assert r.ok and r.causes == []
