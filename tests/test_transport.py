"""The transport on real sockets: TLS (SNI, --cacert, --insecure), IPv6, CONNECT proxies."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from fixtures.proxy import ConnectProxy
from tests.conftest import has_ipv6_loopback, start_fixture_app
from wsdiag.core.findings import Verdict
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import resolve
from wsdiag.net.transport import classify

pytestmark = pytest.mark.timeout(60)


def run(url, profiles=("minimal", "websocket-client"), **settings):
    from wsdiag.net.transport import Settings

    settings.setdefault("use_env_proxy", False)
    settings.setdefault("timeout", 5)
    opts = ProbeOptions(resolve(list(profiles)), Settings(watch=1, **settings))
    return probe([url], opts)[0]


def test_wss_with_the_right_ca_is_serviced(tls_app, tls_material):
    """wss:// to a TLS gevent-websocket server, verified against the test CA (SNI: localhost)."""
    report = run(f"wss://localhost:{tls_app.port}/ws", cacert=tls_material["ca"])
    assert [r.verdict for r in report.results] == [Verdict.SERVICED, Verdict.SERVICED]
    assert all("tls_ms" in r.exchange.timings for r in report.results)


def test_wss_with_an_untrusted_certificate_is_rejected_in_the_tls_phase(tls_app):
    report = run(f"wss://localhost:{tls_app.port}/ws")
    for r in report.results:
        assert (r.verdict, r.phase, r.findings[0].code) == (Verdict.UNREACHABLE, "tls", "WS105")
    assert report.causes[0].code == "WS105"


def test_insecure_skips_verification(tls_app):
    report = run(f"wss://127.0.0.1:{tls_app.port}/ws", insecure=True)
    assert [r.verdict for r in report.results] == [Verdict.SERVICED, Verdict.SERVICED]


def test_plain_ws_to_a_tls_port_is_named(tls_app):
    """ws:// sent to a TLS port: the server's TLS alert or silence is not mistaken for HTTP."""
    report = run(f"ws://127.0.0.1:{tls_app.port}/ws", profiles=("minimal",))
    r = report.results[0]
    assert r.verdict in (Verdict.UNREACHABLE, Verdict.INVALID)
    assert r.findings[0].code in ("WS107", "WS110", "WS111")


def test_wss_to_a_plain_port_fails_in_tls(serve_app):
    report = run(serve_app("fixtures.apps.seed_fixed").url("/ws", scheme="wss"), profiles=("minimal",), insecure=True)
    r = report.results[0]
    assert (r.verdict, r.phase, r.findings[0].code) == (Verdict.UNREACHABLE, "tls", "WS106")


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback():
    served = start_fixture_app("fixtures.apps.seed_fixed", host="::1")
    try:
        report = run(f"ws://[::1]:{served.port}/ws")
        assert [r.verdict for r in report.results] == [Verdict.SERVICED, Verdict.SERVICED]
        assert b"Host: [::1]:" in report.results[0].exchange.request
    finally:
        served.stop()


def test_probe_through_a_connect_proxy(serve_app):
    """--proxy: both raw and websocket-client profiles tunnel through CONNECT."""
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    with ConnectProxy() as proxy:
        report = run(url, proxy=proxy.url)
        assert [r.verdict for r in report.results] == [Verdict.SERVICED, Verdict.SERVICED]
        assert len([s for s in proxy.seen if s.startswith("CONNECT 127.0.0.1:")]) >= 2


def test_proxy_refusing_connect_is_named(serve_app):
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    with ConnectProxy(refuse=403) as proxy:
        report = run(url, proxy=proxy.url)
    for r in report.results:
        assert (r.verdict, r.phase, r.findings[0].code) == (Verdict.UNREACHABLE, "proxy", "WS108")


def test_environment_proxy_is_used_but_not_for_loopback(serve_app, monkeypatch):
    """HTTP_PROXY applies to other hosts; loopback targets bypass it (as NO_PROXY would)."""
    from wsdiag.core.handshake import parse_target
    from wsdiag.net.transport import Settings, proxy_for

    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "internal.test")
    s = Settings()
    assert proxy_for(parse_target("ws://app.example.test/ws"), s) == "http://127.0.0.1:3128"
    assert proxy_for(parse_target("ws://127.0.0.1:5000/ws"), s) is None
    assert proxy_for(parse_target("ws://internal.test/ws"), s) is None
    assert proxy_for(parse_target("ws://app.example.test/ws"), Settings(use_env_proxy=False)) is None


@pytest.mark.parametrize("exc,phase,kind", [
    (socket.gaierror(-2, "Name or service not known"), "dns", "name-not-resolved"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connect", "connection-refused"),
    (socket.timeout("timed out"), "connect", "connect-timeout"),
    (socket.timeout("timed out"), "response", "no-response"),
    (OSError(errno.ENETUNREACH, "unreachable"), "connect", "network-unreachable"),
    (ssl.SSLCertVerificationError("bad cert"), "tls", "tls-certificate-rejected"),
    (ssl.SSLError("wrong version"), "tls", "tls-handshake-failed"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "response", "reset-before-response"),
])
def test_error_table(exc, phase, kind):
    """Exceptions are classified once, by type, errno and phase."""
    assert classify(exc, phase) == kind


def test_one_table_for_both_client_paths():
    """websocket-client's own exceptions are sorted by the same table as the raw profiles'."""
    import websocket

    from wsdiag.net.libclient import HeadTooLarge
    from wsdiag.net.transport import library_row

    assert classify(websocket.WebSocketTimeoutException("timed out"), "response") == "no-response"
    assert classify(websocket.WebSocketConnectionClosedException("closed"), "response") == "closed-before-response"
    assert classify(HeadTooLarge("too big"), "response") == "response-head-too-large"
    # the library's verdicts on an answer are evidence, not transport failures
    assert library_row(websocket.WebSocketBadStatusException("Handshake status %d %s", 400, "Bad")) == ("", False)
    assert library_row(websocket.WebSocketProtocolException("rsv is not implemented, yet")) == ("", False)
    assert library_row(ValueError("x")) is None


def test_dns_failure_is_unreachable_in_the_dns_phase(monkeypatch):
    """A name the resolver does not know: WS101 in the dns phase (resolver stubbed: no traffic leaves)."""
    def no_such_name(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    report = run("ws://no-such-host.test/ws", profiles=("minimal",))
    r = report.results[0]
    assert (r.verdict, r.phase, [f.code for f in r.findings]) == (Verdict.UNREACHABLE, "dns", ["WS101"])
    assert report.causes[0].code == "WS101" and report.causes[0].evidence["host"] == "no-such-host.test"


def test_connect_timeout_on_a_full_accept_queue():
    """A loopback listener whose accept queue is full drops SYNs: WS103 in the connect phase, bounded."""
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue (never accepted)
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(c)
        time.sleep(0.2)
        start = time.monotonic()
        report = run(f"ws://127.0.0.1:{port}/ws", profiles=("minimal",), timeout=1.0)
        elapsed = time.monotonic() - start
    finally:
        for c in fillers:
            c.close()
        srv.close()
    r = report.results[0]
    assert (r.verdict, r.phase, [f.code for f in r.findings]) == (Verdict.UNREACHABLE, "connect", ["WS103"])
    assert elapsed < 1.0 + 0.5


@pytest.mark.parametrize("kind,code", [("connect-timeout", "WS103"), ("network-unreachable", "WS104"),
                                       ("name-not-resolved", "WS101"), ("proxy-refused", "WS108")])
def test_transport_error_kinds_become_their_codes(kind, code):
    """Every transport error kind reaches the report as its finding code, verdict unreachable."""
    from wsdiag.core.diagnose import judge
    from wsdiag.core.findings import Exchange

    j = judge(None, Exchange("minimal", "ws://h:1/ws", error_kind=kind, error_phase="connect", error_detail="x"))
    assert (j.verdict, [f.code for f in j.findings]) == (Verdict.UNREACHABLE, [code])
