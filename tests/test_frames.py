"""Client frame encoding and lenient, bounded server frame decoding."""

from __future__ import annotations

import struct

import pytest

from wsdiag.core import frames as fr

MASK = b"\x01\x02\x03\x04"


def server(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, mask: bytes | None = None) -> bytes:
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    ln = bytes([n]) if n < 126 else (bytes([126]) + struct.pack("!H", n) if n < 65536 else bytes([127]) + struct.pack("!Q", n))
    if mask:
        ln = bytes([ln[0] | 0x80]) + ln[1:]
        payload = mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([b0]) + ln + payload


def test_rfc6455_masked_hello_example():
    """RFC 6455 section 5.7: masked 'Hello' with key 37 fa 21 3d."""
    assert fr.encode(fr.OP_TEXT, b"Hello", bytes.fromhex("37fa213d")) == bytes.fromhex("818537fa213d7f9f4d5158")


@pytest.mark.parametrize("n", [0, 125, 126, 65535, 65536])
def test_encode_lengths_roundtrip_through_decode(n):
    """7-bit, 16-bit and 64-bit lengths decode back (a masked frame is flagged WS405)."""
    payload = bytes(range(256)) * (n // 256) + bytes(n % 256)
    frames, rest, problems = fr.decode(fr.encode(fr.OP_BINARY, payload, MASK))
    assert rest == b"" and frames[0].payload == payload
    assert [p.code for p in problems] == ["WS405"]


def test_partial_frames_wait_for_more_bytes():
    data = server(fr.OP_TEXT, b"hello world")
    for cut in range(len(data)):
        frames, rest, problems = fr.decode(data[:cut])
        assert frames == [] and rest == data[:cut] and problems == []


def test_several_frames_and_close_parsing():
    data = server(fr.OP_PONG, b"x") + server(fr.OP_CLOSE, struct.pack("!H", 1000) + b"bye")
    frames, rest, problems = fr.decode(data)
    assert [f.name for f in frames] == ["pong", "close"] and problems == [] and rest == b""
    assert fr.parse_close(frames[1].payload) == (1000, "bye")
    assert fr.parse_close(b"") == (None, "")


@pytest.mark.parametrize("data,code", [
    (server(fr.OP_TEXT, b"x", mask=MASK), "WS405"),
    (server(fr.OP_TEXT, b"x", rsv=4), "WS406"),
    (server(0x3, b"x"), "WS406"),
    (server(fr.OP_PING, b"x", fin=False), "WS406"),
    (server(fr.OP_PING, b"x" * 126), "WS406"),
    (server(fr.OP_CLOSE, b"\x03"), "WS406"),
    (server(fr.OP_CLOSE, struct.pack("!H", 1005)), "WS407"),
    (server(fr.OP_CLOSE, struct.pack("!H", 28783) + b"licy"), "WS407"),
    (server(fr.OP_CLOSE, struct.pack("!H", 1000) + b"\xff\xfe"), "WS408"),
    (bytes([0x82, 127]) + struct.pack("!Q", 1 << 62), "WS410"),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "WS409"),
])
def test_each_broken_rule_is_named(data, code):
    """Every RFC 6455 framing rule a server breaks maps to its finding code."""
    _, _, problems = fr.decode(data)
    assert code in [p.code for p in problems]


def test_valid_close_codes():
    assert fr.valid_close_code(1000) and fr.valid_close_code(4001)
    assert not fr.valid_close_code(1005) and not fr.valid_close_code(1006) and not fr.valid_close_code(999)
