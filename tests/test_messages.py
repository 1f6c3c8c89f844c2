"""The browser-grade message validator (wsdiag/core/messages.py), unit by unit.

Each rule a browser enforces on server frames, with the finding it maps to: UTF-8 of text
messages checked incrementally (1007), fragmentation rules (1002), RSV1 with and without
permessage-deflate, control-frame and close-payload rules, bounded evidence.
"""

from __future__ import annotations

import struct

import pytest

from fixtures.hostile.frames_and_closing import deflate
from wsdiag.core import frames as fr
from wsdiag.core.deflate import Agreement
from wsdiag.core.messages import KEEP, Message, MessageReader, utf8_valid_prefix


def frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> bytes:
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, n])
    elif n < 1 << 16:
        head = bytes([b0, 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, 127]) + struct.pack("!Q", n)
    return head + payload


def read(data: bytes, deflate_on: bool = False, step: int = 0):
    r = MessageReader(Agreement() if deflate_on else None)
    items, problems = [], []
    chunks = [data[i:i + step] for i in range(0, len(data), step)] if step else [data]
    for c in chunks:
        i, p = r.feed(c)
        items += i
        problems += p
    return r, items, [p.code for p in problems]


@pytest.mark.parametrize("data,code", [
    (frame(fr.OP_TEXT, b"\xff"), "WS428"),
    (frame(fr.OP_TEXT, b"ok \xed\xa0\x80"), "WS428"),  # a UTF-16 surrogate: not UTF-8
    (frame(fr.OP_TEXT, b"caf\xc3", fin=False) + frame(fr.OP_CONT, b"("), "WS428"),
    (frame(fr.OP_TEXT, b"caf\xc3"), "WS428"),  # a sequence cut at the end of the message
    (frame(fr.OP_CONT, b"x"), "WS429"),
    (frame(fr.OP_TEXT, b"a", fin=False) + frame(fr.OP_TEXT, b"b"), "WS430"),
    (frame(fr.OP_BINARY, b"a", fin=False) + frame(fr.OP_TEXT, b"b"), "WS430"),
    (frame(fr.OP_TEXT, b"x", rsv=0b100), "WS406"),  # RSV1 with nothing negotiated
    (frame(fr.OP_TEXT, b"x", rsv=0b010), "WS406"),
    (frame(fr.OP_PING, b"x", fin=False), "WS406"),
    (frame(fr.OP_PING, b"x" * 126), "WS406"),
    (frame(fr.OP_CLOSE, b"\x03"), "WS406"),
    (frame(fr.OP_CLOSE, struct.pack("!H", 999)), "WS407"),
    (frame(fr.OP_CLOSE, struct.pack("!H", 1005)), "WS407"),
    (frame(fr.OP_CLOSE, struct.pack("!H", 1000) + b"\xff"), "WS408"),
])
def test_browser_rules(data, code):
    r, items, codes = read(data)
    assert codes and codes[0] == code, codes
    assert r.failed
    assert r.feed(frame(fr.OP_TEXT, b"later")) == ([], [])  # a failed connection reads nothing more


@pytest.mark.parametrize("data,code", [
    (frame(fr.OP_PING, b"x", rsv=0b100), "WS426"),
    (frame(fr.OP_TEXT, deflate(b"ab")[:1], fin=False, rsv=0b100) + frame(fr.OP_CONT, deflate(b"ab")[1:], rsv=0b100), "WS426"),
    (frame(fr.OP_TEXT, b"\xff\xff\xff", rsv=0b100), "WS427"),
    (frame(fr.OP_TEXT, deflate(b"\xff"), rsv=0b100), "WS428"),
    (frame(fr.OP_TEXT, b"x", rsv=0b110), "WS406"),  # RSV2 is never negotiated
])
def test_rules_with_deflate(data, code):
    _, _, codes = read(data, deflate_on=True)
    assert codes and codes[0] == code, codes


def test_valid_stream_byte_by_byte():
    """Fragmented, compressed, interleaved with control frames, fed one byte at a time."""
    text = "héllo wörld ✓".encode()
    packed = deflate(text)
    data = (frame(fr.OP_TEXT, text[:2], fin=False) + frame(fr.OP_PING, b"p") + frame(fr.OP_CONT, text[2:])
            + frame(fr.OP_TEXT, packed[:3], fin=False, rsv=0b100) + frame(fr.OP_CONT, packed[3:])
            + frame(fr.OP_BINARY, b"\xff\x00") + frame(fr.OP_CLOSE, struct.pack("!H", 1000) + b"bye"))
    r, items, codes = read(data, deflate_on=True, step=1)
    assert codes == []
    msgs = [i for i in items if isinstance(i, Message)]
    assert [(m.name, m.data, m.compressed, m.frames) for m in msgs] == [
        ("text", text, False, 2), ("text", text, True, 2), ("binary", b"\xff\x00", False, 1)]
    assert [i.opcode for i in items if not isinstance(i, Message)] == [fr.OP_PING, fr.OP_CLOSE]
    assert r.frames_seen == 7 and r.bytes_seen == len(data)


def test_evidence_is_bounded_but_validation_is_not():
    """A long message keeps KEEP bytes, still reports its full length, still checks all of it."""
    big = b"a" * (KEEP * 3)
    _, items, codes = read(frame(fr.OP_TEXT, big))
    assert codes == [] and items[0].length == len(big) and len(items[0].data) == KEEP
    _, _, codes = read(frame(fr.OP_TEXT, big + b"\xff"))
    assert codes == ["WS428"]


def test_invalid_utf8_offset_across_fragments():
    r, _, _ = read(frame(fr.OP_TEXT, b"abc\xe2\x82", fin=False) + frame(fr.OP_CONT, b"\x41"))
    assert utf8_valid_prefix([b"abc\xe2\x82", b"\x41"]) == 3
    assert utf8_valid_prefix([b"abc\xe2\x82", b"\xac"]) is None


def test_close_codes_browsers_accept():
    for code in (1000, 1001, 1011, 1014, 3000, 4999):
        _, _, codes = read(frame(fr.OP_CLOSE, struct.pack("!H", code) + "é".encode()))
        assert codes == [], code
    _, _, codes = read(frame(fr.OP_CLOSE, b""))  # no code at all: allowed (1005 to the app)
    assert codes == []
