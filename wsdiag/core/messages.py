"""Server frames to messages, validated as a browser validates them (RFC 6455 + RFC 7692).

Rules this module keeps:

* Pure core: standard library only; bytes in, items and problems out; never raises.
* ``MessageReader.feed`` takes whatever arrived on the socket and returns the control
  frames and complete data messages it now holds, plus every rule the server broke, each a
  ``FrameProblem`` with its finding code.  A browser fails the connection at the first of
  them: after a problem the reader is ``failed`` and reads nothing more.
* What it checks beyond ``frames.decode`` (masking, reserved bits and opcodes, control frame
  size and fragmentation, close payloads): a continuation frame with no message begun and
  a new data frame inside a fragmented message (1002), RSV1 only on the first frame of a
  data message and only with permessage-deflate in force, compressed messages that do not
  inflate, and text messages that are not UTF-8, checked incrementally as fragments arrive
  (1007), as browsers do.
* Bounded: payload kept per message is capped (``keep``); a decompression bomb stops at
  the inflater's bound.
"""

from __future__ import annotations

import codecs

from wsdiag.core import frames as fr
from wsdiag.core.deflate import Agreement, Inflater, InflateError
from wsdiag.core.record import Factory, Record

RSV1 = 0b100
KEEP = 4096  # bytes of each message kept as evidence


class Message(Record):
    """A complete data message (text or binary), inflated if it was compressed."""

    __slots__ = ("opcode", "data", "length", "frames", "compressed")
    opcode: int
    data: bytes  # the first ``keep`` bytes
    length: int  # full (inflated) length
    frames: int
    compressed: bool

    @property
    def name(self) -> str:
        return "text" if self.opcode == fr.OP_TEXT else "binary"


class MessageReader(Record):
    """Incremental, stateful reader of one server-to-client stream after the 101."""

    __slots__ = ("deflate", "keep", "failed", "frames_seen", "bytes_seen", "_buf", "_op", "_compressed", "_parts",
                 "_kept", "_length", "_nframes", "_utf8", "_inflater")
    _defaults = {"deflate": None, "keep": KEEP, "failed": False, "frames_seen": 0, "bytes_seen": 0, "_buf": b"",
                 "_op": None, "_compressed": False, "_parts": Factory(list), "_kept": 0, "_length": 0,
                 "_nframes": 0, "_utf8": None, "_inflater": None}
    deflate: Agreement | None
    keep: int
    failed: bool
    frames_seen: int
    bytes_seen: int
    _buf: bytes
    _op: int | None  # opcode of the fragmented message in progress
    _compressed: bool
    _parts: list
    _kept: int
    _length: int
    _nframes: int
    _utf8: object
    _inflater: Inflater | None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.deflate is not None:
            self._inflater = Inflater(self.deflate)

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet a complete frame (or unread after a failure)."""
        return self._buf

    def feed(self, data: bytes) -> tuple[list, list[fr.FrameProblem]]:
        """Add received bytes; return (items, problems): items are control Frames and Messages."""
        out = self.feed_ordered(data)
        return ([x for x in out if not isinstance(x, fr.FrameProblem)],
                [x for x in out if isinstance(x, fr.FrameProblem)])

    def feed_ordered(self, data: bytes) -> list:
        """Add received bytes; return control Frames, Messages and FrameProblems in wire order.

        The order is the server's, not the socket's chunking: a pong followed by a broken
        frame is served-then-broken however the bytes arrive.
        """
        if self.failed:
            return []
        self.bytes_seen += len(data)
        allowed = RSV1 if self.deflate else 0
        frames, self._buf, problems = fr.decode(self._buf + data, rsv_allowed=allowed)
        out: list = []
        for f in frames:
            self.frames_seen += 1
            bad = fr.frame_problems(f, allowed) or self._check(f, out)
            if bad:
                out.extend(bad)
                self.failed = True
                return out
            if f.opcode in fr.CONTROL:
                out.append(f)
        stream = [p for p in problems if p.code in ("WS409", "WS410")]  # about bytes after the last frame
        if stream:
            out.extend(stream)
            self.failed = True
        return out

    def _check(self, f: fr.Frame, items: list) -> list[fr.FrameProblem]:
        if f.rsv & RSV1 and self.deflate is not None and (f.opcode in fr.CONTROL or f.opcode == fr.OP_CONT):
            # RFC 7692 section 6.1: only the first frame of a data message carries RSV1.
            return [fr.FrameProblem("WS426", {"opcode": f.opcode, "frame": f.name})]
        if f.opcode in fr.CONTROL or f.opcode not in fr.KNOWN or f.masked or f.rsv & ~(RSV1 if self.deflate else 0):
            return []  # decode judged these
        if f.opcode == fr.OP_CONT:
            if self._op is None:  # RFC 6455 section 5.4
                return [fr.FrameProblem("WS429", {"length": len(f.payload)})]
        else:
            if self._op is not None:  # RFC 6455 section 5.4: no interleaving of data messages
                return [fr.FrameProblem("WS430", {"opcode": f.opcode, "frame": f.name,
                                                  "open_message": "text" if self._op == fr.OP_TEXT else "binary"})]
            self._op, self._compressed = f.opcode, bool(f.rsv & RSV1)
            self._parts, self._kept, self._length, self._nframes = [], 0, 0, 0
            self._utf8 = codecs.getincrementaldecoder("utf-8")("strict") if f.opcode == fr.OP_TEXT else None
        self._nframes += 1
        payload = f.payload
        if self._compressed and self._inflater is not None:
            try:
                payload = self._inflater.feed(payload)
                if f.fin:
                    payload += self._inflater.finish()
            except InflateError as exc:
                self._reset()
                return [fr.FrameProblem("WS427", {"detail": str(exc)[:120],
                                                  "window_bits": self.deflate.server_max_window_bits if self.deflate else None})]
        bad = self._take(payload, f.fin)
        if bad:
            return bad
        if f.fin:
            data = b"".join(self._parts)
            items.append(Message(self._op, data, self._length, self._nframes, self._compressed))
            self._reset()
        return []

    def _take(self, payload: bytes, final: bool) -> list[fr.FrameProblem]:
        self._length += len(payload)
        room = self.keep - self._kept
        if room > 0:
            self._parts.append(payload[:room])
            self._kept += min(room, len(payload))
        if self._utf8 is not None:
            pending = len(self._utf8.getstate()[0])  # type: ignore[attr-defined]
            try:
                self._utf8.decode(payload, final)  # type: ignore[attr-defined]
            except UnicodeDecodeError as exc:
                at = self._length - len(payload) - pending + exc.start
                where = max(exc.start - pending, 0)
                self._reset()
                return [fr.FrameProblem("WS428", {"offset": at, "bytes": payload[max(where - 8, 0):where + 8].hex(),
                                                  "detail": exc.reason})]
        return []

    def _reset(self) -> None:
        self._op, self._compressed, self._parts, self._utf8 = None, False, [], None
        self._kept = self._length = self._nframes = 0


def utf8_valid_prefix(chunks: list[bytes]) -> int | None:
    """Feed ``chunks`` to the incremental validator; the byte offset of the first error, or None.

    A helper for tests and callers that validate text outside a stream.
    """
    dec = codecs.getincrementaldecoder("utf-8")("strict")
    seen = 0
    for i, chunk in enumerate(chunks):
        pending = len(dec.getstate()[0])
        try:
            dec.decode(chunk, i == len(chunks) - 1)
        except UnicodeDecodeError as exc:
            return seen - pending + exc.start
        seen += len(chunk)
    return None


__all__ = ["Message", "MessageReader", "utf8_valid_prefix"]
