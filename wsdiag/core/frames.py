"""The few WebSocket frame operations a probe needs (RFC 6455 section 5).

Rules this module keeps:

* Pure core: standard library only, bytes in, frames and problems out.
* The mask key is a parameter (tests pass fixed keys; the transport passes random ones).
* Decoding never raises: each rule a server breaks becomes a ``FrameProblem`` with the
  finding code it maps to, and decoding stops at the first frame it cannot trust.
* Payloads are capped (``MAX_PAYLOAD``) so a hostile length cannot exhaust memory.
"""

from __future__ import annotations

import struct
from wsdiag.core.record import FrozenRecord

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL = (OP_CLOSE, OP_PING, OP_PONG)
KNOWN = (OP_CONT, OP_TEXT, OP_BINARY) + CONTROL
MAX_PAYLOAD = 1 << 20


class Frame(FrozenRecord):
    __slots__ = ("fin", "rsv", "opcode", "masked", "payload")
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def name(self) -> str:
        return {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}.get(
            self.opcode, f"opcode-{self.opcode:#x}"
        )


class FrameProblem(FrozenRecord):
    __slots__ = ("code", "evidence")
    code: str  # a finding code from codes.py
    evidence: dict


def encode(opcode: int, payload: bytes, mask_key: bytes, fin: bool = True) -> bytes:
    """A client frame: always masked (RFC 6455 section 5.3)."""
    if len(mask_key) != 4:
        raise ValueError("mask key must be 4 bytes")
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return head + mask_key + masked


def close_payload(code: int | None, reason: str = "") -> bytes:
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


def decode(buf: bytes, rsv_allowed: int = 0) -> tuple[list[Frame], bytes, list[FrameProblem]]:
    """Split ``buf`` into complete server frames; return (frames, rest, problems).

    ``rsv_allowed`` is the mask of RSV bits a negotiated extension gives meaning to
    (0b100, RSV1, with permessage-deflate); any other set bit is a problem.

    ``rest`` is an incomplete trailing frame to keep for the next read. After a problem
    that makes the stream untrustworthy, decoding stops and ``rest`` is empty.
    """
    frames: list[Frame] = []
    problems: list[FrameProblem] = []
    pos = 0
    while True:
        if len(buf) - pos < 2:
            return frames, buf[pos:], problems
        if buf[pos:pos + 5] == b"HTTP/":
            # RFC 6455 section 5.2: 'H' (0x48) parses as FIN=0 RSV1=1 opcode=8. Name it.
            line = buf[pos:].split(b"\n", 1)[0].rstrip(b"\r")[:80].decode("latin-1")
            problems.append(FrameProblem("WS409", {"line": line}))
            return frames, b"", problems
        b0, b1 = buf[pos], buf[pos + 1]
        fin, rsv, opcode = bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0x0F
        masked, n = bool(b1 & 0x80), b1 & 0x7F
        p = pos + 2
        if n == 126:
            if len(buf) - p < 2:
                return frames, buf[pos:], problems
            n = struct.unpack("!H", buf[p:p + 2])[0]
            p += 2
        elif n == 127:
            if len(buf) - p < 8:
                return frames, buf[pos:], problems
            n = struct.unpack("!Q", buf[p:p + 8])[0]
            p += 8
        if n > MAX_PAYLOAD:
            problems.append(FrameProblem("WS410", {"length": n, "limit": MAX_PAYLOAD}))
            return frames, b"", problems
        mask = b""
        if masked:
            if len(buf) - p < 4:
                return frames, buf[pos:], problems
            mask = buf[p:p + 4]
            p += 4
        if len(buf) - p < n:
            return frames, buf[pos:], problems
        payload = buf[p:p + n]
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        frame = Frame(fin, rsv, opcode, masked, payload)
        pos = p + n
        bad = _frame_problems(frame, rsv_allowed)
        problems.extend(bad)
        frames.append(frame)
        if any(pr.code in ("WS405", "WS406") for pr in bad):
            return frames, b"", problems


def _frame_problems(frame: Frame, rsv_allowed: int = 0) -> list[FrameProblem]:
    out: list[FrameProblem] = []
    if frame.masked:  # RFC 6455 5.1: a server must not mask
        out.append(FrameProblem("WS405", {"opcode": frame.opcode}))
    if frame.rsv & ~rsv_allowed:  # RFC 6455 5.2: RSV bits only with an extension that defines them
        extra = " (RSV1: a compressed frame, but permessage-deflate was not negotiated)" if frame.rsv == 0b100 else ""
        out.append(FrameProblem("WS406", {"problem": f"reserved bits {frame.rsv:#05b} set{extra}", "opcode": frame.opcode}))
    if frame.opcode not in KNOWN:  # RFC 6455 5.2: reserved opcodes
        out.append(FrameProblem("WS406", {"problem": f"reserved opcode {frame.opcode:#x}", "opcode": frame.opcode}))
    if frame.opcode in CONTROL:
        if not frame.fin:  # RFC 6455 5.5: control frames must not be fragmented
            out.append(FrameProblem("WS406", {"problem": "fragmented control frame", "opcode": frame.opcode}))
        if len(frame.payload) > 125:  # RFC 6455 5.5: control payload <= 125 bytes
            out.append(FrameProblem("WS406", {"problem": f"control frame with {len(frame.payload)}-byte payload", "opcode": frame.opcode}))
    if frame.opcode == OP_CLOSE:
        out.extend(_close_problems(frame.payload))
    return out


frame_problems = _frame_problems  # public: the per-frame rules, for readers built on decode (messages.py)


def parse_close(payload: bytes) -> tuple[int | None, str]:
    """(code, reason) of a close payload; code None when the payload is empty."""
    if len(payload) < 2:
        return None, ""
    code = struct.unpack("!H", payload[:2])[0]
    return code, payload[2:].decode("utf-8", "replace")


def valid_close_code(code: int) -> bool:
    """RFC 6455 section 7.4: codes a peer may put on the wire."""
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) or 3000 <= code <= 4999


def _close_problems(payload: bytes) -> list[FrameProblem]:
    if len(payload) == 1:  # RFC 6455 5.5.1: a body, if present, starts with a 2-byte code
        return [FrameProblem("WS406", {"problem": "close frame with a 1-byte payload", "opcode": OP_CLOSE})]
    if len(payload) < 2:
        return []
    code = struct.unpack("!H", payload[:2])[0]
    out = []
    if not valid_close_code(code):
        out.append(FrameProblem("WS407", {"close_code": code, "reason": payload[2:80].decode("utf-8", "replace")}))
    try:
        payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        out.append(FrameProblem("WS408", {"reason_bytes": payload[2:40].hex()}))
    return out
