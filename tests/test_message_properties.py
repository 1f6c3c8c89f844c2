"""Property tests for the inflater and the incremental UTF-8 validator (hypothesis).

Same profiles as tests/test_properties.py (``HYPOTHESIS_PROFILE=nightly`` for a long run).
"""

from __future__ import annotations

import os
import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsdiag.core import deflate as d
from wsdiag.core import frames as fr
from wsdiag.core.messages import Message, MessageReader, utf8_valid_prefix

settings.register_profile("ci", max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=50000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    head += bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n)
    return head + payload


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])] or [b""]


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5), st.integers(9, 15), st.booleans(), st.integers(1, 9))
def test_inflater_round_trips_any_messages(messages, wbits, no_takeover, level):
    """What a sender compresses under an agreement, the inflater restores, message after message."""
    agreement = d.Agreement(server_no_context_takeover=no_takeover, server_max_window_bits=wbits)
    inf = d.Inflater(agreement)
    z = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    for m in messages:
        if no_takeover:
            z = zlib.compressobj(level, zlib.DEFLATED, -wbits)
        out = z.compress(m) + z.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(d.TAIL)
        payload = out[:-4]
        assert inf.inflate_message(split(payload, [len(m) // 3, len(m) // 2])) == m


@given(st.binary(max_size=400), st.integers(8, 15), st.booleans())
def test_inflater_never_raises_but_inflate_error(garbage, wbits, no_takeover):
    inf = d.Inflater(d.Agreement(server_no_context_takeover=no_takeover, server_max_window_bits=wbits), max_output=4096)
    try:
        out = inf.inflate_message([garbage])
    except d.InflateError:
        return
    assert len(out) <= 4096


@given(st.lists(st.binary(max_size=40), max_size=6))
def test_incremental_utf8_agrees_with_whole_message_decoding(chunks):
    """However a text message is fragmented, the verdict is the one for the whole message."""
    chunks = chunks or [b""]
    whole = b"".join(chunks)
    try:
        whole.decode("utf-8")
        valid = True
    except UnicodeDecodeError as exc:
        valid, first_bad = False, exc.start
    at = utf8_valid_prefix(chunks or [b""])
    assert (at is None) == valid
    frames_ = b"".join(frame(fr.OP_TEXT if i == 0 else fr.OP_CONT, c, fin=i == len(chunks) - 1)
                       for i, c in enumerate(chunks or [b""]))
    r = MessageReader()
    items, problems = r.feed(frames_)
    if valid:
        assert problems == [] and [m.data for m in items if isinstance(m, Message)] == [whole]
    else:
        assert [p.code for p in problems] == ["WS428"]
        assert at is not None and at <= max(first_bad, 0) + 4


@given(st.text(max_size=200), st.lists(st.integers(0, 400), max_size=4), st.lists(st.integers(0, 400), max_size=6))
def test_valid_compressed_text_fed_in_any_pieces(text, frag_cuts, byte_cuts):
    """A valid compressed text message, fragmented anyhow and received in any pieces: read exactly."""
    raw = text.encode()
    payload = d.compress_message(raw)
    parts = split(payload, frag_cuts)
    stream = b"".join(frame(fr.OP_TEXT if i == 0 else fr.OP_CONT, p, fin=i == len(parts) - 1, rsv=0b100 if i == 0 else 0)
                      for i, p in enumerate(parts))
    r = MessageReader(d.Agreement())
    got = []
    for piece in split(stream, byte_cuts):
        items, problems = r.feed(piece)
        assert problems == []
        got += [m for m in items if isinstance(m, Message)]
    assert len(got) == 1 and got[0].data == raw[:got[0].data.__len__()] and got[0].length == len(raw)


@given(st.binary(max_size=600), st.booleans())
def test_reader_never_raises_on_any_bytes(data, deflate_on):
    r = MessageReader(d.Agreement() if deflate_on else None)
    items, problems = r.feed(data)
    assert all(p.code.startswith("WS4") for p in problems)
    assert r.bytes_seen == len(data)
