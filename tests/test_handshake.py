"""Building requests, parsing answers leniently, and every RFC 6455 section 4.1 check."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsdiag.core.handshake import (
    BadURL,
    Target,
    accept_for,
    build_plain_get,
    build_request,
    check_head_form,
    check_upgrade,
    find_head_end,
    parse_response_head,
    parse_target,
    sibling_resource,
)
from wsdiag.core.profiles import PROFILES, resolve, UnknownProfile

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def test_rfc6455_sample_key_gives_sample_accept():
    """RFC 6455 section 1.3: the sample nonce's accept value."""
    assert accept_for(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("profile,capture", [("chrome", "chromium-156.request.http"), ("firefox", "firefox-esr-153.request.http")])
def test_browser_profiles_reproduce_the_captures_byte_for_byte(profile, capture):
    """With the capture's host, origin and key, the profile renders the captured bytes."""
    raw = (CAPTURES / capture).read_bytes()
    key = next(line.split(b": ", 1)[1] for line in raw.split(b"\r\n") if line.startswith(b"Sec-WebSocket-Key"))
    target = Target("ws", "127.0.0.1", 5077, "/capture")
    req = build_request(PROFILES[profile], target, key.decode())
    assert req.raw == raw


def test_firefox_legacy_differs_from_firefox_only_in_connection_and_version_details():
    """firefox-legacy sends Connection: keep-alive, Upgrade; the header order is Firefox's."""
    legacy, current = PROFILES["firefox-legacy"], PROFILES["firefox"]
    assert legacy.connection == "keep-alive, Upgrade"
    assert [n for n, _ in legacy.headers] == [n for n, _ in current.headers]


def test_header_overrides_replace_in_place_add_and_remove():
    """-H replaces a header where it stands, appends a new one, and an empty value drops it."""
    t = parse_target("ws://example.test:8080/ws?room=1")
    req = build_request(
        PROFILES["minimal"], t, KEY,
        extra_headers=(("connection", "keep-alive, Upgrade"), ("X-Trace", "1"), ("Sec-WebSocket-Version", "")),
        origin="https://app.example.test", subprotocols=("chat", "superchat"),
    )
    text = req.raw.decode()
    assert text.startswith("GET /ws?room=1 HTTP/1.1\r\nHost: example.test:8080\r\nUpgrade: websocket\r\nconnection: keep-alive, Upgrade\r\n")
    assert "Sec-WebSocket-Version" not in text
    assert text.endswith("X-Trace: 1\r\n\r\n")
    assert req.offered_protocols == ("chat", "superchat")
    assert "Origin: https://app.example.test\r\n" in text


def test_plain_get_has_no_upgrade_headers():
    """The control GET never carries Upgrade/Connection: upgrade or a key."""
    raw = build_plain_get(parse_target("ws://h/ws"), extra_headers=(("Upgrade", "websocket"), ("Cookie", "a=1")))
    assert b"Upgrade" not in raw and b"Sec-WebSocket" not in raw and b"Cookie: a=1" in raw


@pytest.mark.parametrize("url,expected", [
    ("ws://127.0.0.1:5000/ws", ("ws", "127.0.0.1", 5000, "/ws")),
    ("wss://example.test/ws?x=1", ("wss", "example.test", 443, "/ws?x=1")),
    ("http://[::1]:8080", ("ws", "::1", 8080, "/")),
    ("https://h.test", ("wss", "h.test", 443, "/")),
])
def test_parse_target(url, expected):
    """ws/wss/http/https URLs, IPv6 literals and default ports."""
    t = parse_target(url)
    assert (t.scheme, t.host, t.port, t.resource) == expected


@pytest.mark.parametrize("url", ["", "localhost:5000/ws", "ftp://h/ws", "ws://", "ws://h:99999/", "ws://h:0/", "ws://h/a b", "ws://[::1/ws", "ws://a..b/ws"])
def test_parse_target_rejects_bad_urls_with_one_line(url):
    """Bad URLs raise BadURL with a one-line message."""
    with pytest.raises(BadURL) as info:
        parse_target(url)
    assert "\n" not in str(info.value)


def test_host_header_and_origin_for_ipv6_and_default_ports():
    assert parse_target("ws://[::1]:80/ws").host_header == "[::1]"
    assert parse_target("wss://h.test:8443/").origin == "https://h.test:8443"


def test_sibling_resource_stays_under_the_same_prefix():
    assert sibling_resource("/api/v1/ws?x=1", "other") == "/api/v1/other"
    assert sibling_resource("/ws", "other") == "/other"


def test_profile_resolution():
    """--profile takes names, comma lists, all and default; unknown names are refused."""
    assert [p.name for p in resolve(["chrome,firefox", "chrome"])] == ["chrome", "firefox"]
    assert len(resolve(["all"])) == len(PROFILES)
    with pytest.raises(UnknownProfile):
        resolve(["netscape"])


# -- answers ---------------------------------------------------------------------------

GOOD = (
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    f"Sec-WebSocket-Accept: {accept_for(KEY)}\r\n\r\n"
)


def _request(**kw):
    return build_request(PROFILES["minimal"], parse_target("ws://h/ws"), KEY, **kw)


def _codes(answer: str, **kw):
    head = parse_response_head(answer.encode())
    return sorted(f.code for f in check_head_form(head) + check_upgrade(_request(**kw), head))


def test_good_101_has_no_findings():
    assert _codes(GOOD) == []


@pytest.mark.parametrize("mutate,code", [
    (lambda a: a.replace("Upgrade: websocket\r\n", ""), "WS301"),
    (lambda a: a.replace("Upgrade: websocket", "Upgrade: h2c"), "WS301"),
    (lambda a: a.replace("Connection: Upgrade\r\n", ""), "WS302"),
    (lambda a: a.replace("Connection: Upgrade", "Connection: keep-alive"), "WS302"),
    (lambda a: a.replace(f"Sec-WebSocket-Accept: {accept_for(KEY)}\r\n", ""), "WS303"),
    (lambda a: a.replace(accept_for(KEY), accept_for("AAAAAAAAAAAAAAAAAAAAAA==")), "WS304"),
    (lambda a: a.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n"), "WS306"),
    (lambda a: a.replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: x-unknown\r\n\r\n"), "WS307"),
    (lambda a: a.replace("HTTP/1.1 101", "HTTP/1.0 101"), "WS308"),
    (lambda a: a.replace("\r\n\r\n", f"\r\nSec-WebSocket-Accept: {accept_for(KEY)}\r\n\r\n"), "WS309"),
    (lambda a: a.replace("\r\n", "\n"), "WS310"),
    (lambda a: a.replace("\r\n\r\n", "\r\nthis line has no colon\r\n\r\n"), "WS311"),
])
def test_one_broken_thing_gives_exactly_one_finding(mutate, code):
    """Start from a good 101, break one thing, expect exactly that finding."""
    assert _codes(mutate(GOOD)) == [code]


def test_subprotocol_offered_but_not_selected():
    assert _codes(GOOD, subprotocols=("graphql-ws",)) == ["WS305"]


def test_subprotocol_offered_and_selected():
    assert _codes(GOOD.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n"), subprotocols=("x", "chat")) == []


def test_case_insensitive_values_are_accepted():
    """RFC 6455 compares Upgrade and Connection tokens case-insensitively."""
    answer = GOOD.replace("Upgrade: websocket", "upgrade: WebSocket").replace("Connection: Upgrade", "CONNECTION: keep-alive, upgrade")
    assert _codes(answer) == []


def test_lenient_parsing_of_odd_heads():
    """HTTP/1.0, folded headers, bare LF and junk lines parse; non-HTTP does not."""
    head = parse_response_head(b"HTTP/1.0 400 Bad\nX-A: 1\n  continued\nnonsense\n\n")
    assert head.status == 400 and head.version == "HTTP/1.0" and head.bare_lf
    assert head.get("x-a") == "1 continued" and head.bad_lines == ["nonsense"]
    assert parse_response_head(b"SSH-2.0-OpenSSH\r\n\r\n") is None
    assert parse_response_head(b"HTTP/1.1 200\r\n\r\n").reason == ""


def test_find_head_end():
    assert find_head_end(b"HTTP/1.1 101 X\r\nA: b\r\n\r\nrest") == 24
    assert find_head_end(b"HTTP/1.1 101 X\nA: b\n\nrest") == 21
    assert find_head_end(b"HTTP/1.1 101 X\r\nA: b\r\n") is None
