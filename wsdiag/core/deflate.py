"""permessage-deflate (RFC 7692) as a client negotiates and reads it.

Rules this module keeps:

* Pure core: standard library only (``zlib``), no sockets, no printing.
* ``negotiate`` reads what the client offered (its ``Sec-WebSocket-Extensions`` values) and
  what the server answered, and returns the agreed parameters plus every defect of the
  answer, each as its own ``Problem`` (a finding code from codes.py and its evidence).  A
  client must fail the connection on any of them (RFC 7692 section 5 and 7.1).
* ``Inflater`` decompresses one message at a time with the negotiated window; its output
  is bounded (``max_output``) so a decompression bomb cannot exhaust memory.

An extension the client never offered at all is the handshake check's business (WS307);
this module judges permessage-deflate answers to an offer.
"""

from __future__ import annotations

import zlib
from wsdiag.core.record import Factory, FrozenRecord, Record

NAME = "permessage-deflate"
TAIL = b"\x00\x00\xff\xff"  # RFC 7692 section 7.2.2: appended before inflating a message
RESPONSE_PARAMS = ("server_no_context_takeover", "client_no_context_takeover",
                   "server_max_window_bits", "client_max_window_bits")
MAX_OUTPUT = 1 << 20  # bytes of one inflated message kept


class Problem(FrozenRecord):
    __slots__ = ("code", "evidence")
    code: str
    evidence: dict


class Element(FrozenRecord):
    """One extension element of a header: its name and (param, value or None) pairs."""

    __slots__ = ("name", "params", "text")
    name: str
    params: tuple[tuple[str, str | None], ...]
    text: str

    def values(self, param: str) -> list[str | None]:
        return [v for p, v in self.params if p == param]


def parse_extensions(values: list[str] | tuple[str, ...]) -> list[Element]:
    """Split Sec-WebSocket-Extensions header values into elements (RFC 6455 section 9.1).

    Lenient: a quoted value is unquoted; names are lower-cased; never raises.
    """
    out: list[Element] = []
    for value in values:
        for item in _split(value, ","):
            parts = [p.strip() for p in _split(item, ";")]
            if not parts or not parts[0]:
                continue
            params: list[tuple[str, str | None]] = []
            for p in parts[1:]:
                if not p:
                    continue
                name, eq, val = p.partition("=")
                v: str | None = val.strip() if eq else None
                if v is not None and len(v) >= 2 and v[0] == v[-1] == '"':
                    v = v[1:-1].replace('\\"', '"')
                params.append((name.strip().lower(), v))
            out.append(Element(parts[0].lower(), tuple(params), item.strip()[:200]))
    return out


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes."""
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


class Agreement(FrozenRecord):
    """The permessage-deflate parameters in force (RFC 7692 section 7.1)."""

    __slots__ = ("server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits",
                 "client_max_window_bits", "response")
    _defaults = {"server_no_context_takeover": False, "client_no_context_takeover": False,
                 "server_max_window_bits": 15, "client_max_window_bits": 15, "response": ""}
    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int
    client_max_window_bits: int
    response: str

    def to_dict(self) -> dict:
        return {
            "response": self.response,
            "server_no_context_takeover": self.server_no_context_takeover,
            "client_no_context_takeover": self.client_no_context_takeover,
            "server_max_window_bits": self.server_max_window_bits,
            "client_max_window_bits": self.client_max_window_bits,
        }


class Negotiation(Record):
    """What the handshake settled: ``agreement`` None when deflate is not in force."""

    __slots__ = ("offered", "agreement", "problems")
    _defaults = {"offered": False, "agreement": None, "problems": Factory(list)}
    offered: bool
    agreement: Agreement | None
    problems: list[Problem]

    @property
    def active(self) -> bool:
        return self.agreement is not None


def _window_bits(value: str | None) -> int | None:
    """8..15, decimal, no leading zero (RFC 7692 sections 7.1.2.1 and 7.1.2.2); else None."""
    if value is None or not value.isdigit() or not value.isascii() or (len(value) > 1 and value[0] == "0"):
        return None
    n = int(value)
    return n if 8 <= n <= 15 else None


def negotiate(offer_values: list[str] | tuple[str, ...], response_values: list[str] | tuple[str, ...]) -> Negotiation:
    """Validate the server's answer to a permessage-deflate offer; every defect is a Problem.

    With a defect the agreement is still returned when it can be read (so that compressed
    frames can be inflated as evidence), but a client fails the connection.
    """
    offers = [e for e in parse_extensions(offer_values) if e.name == NAME]
    answers = [e for e in parse_extensions(response_values) if e.name == NAME]
    neg = Negotiation(offered=bool(offers))
    if not offers or not answers:
        return neg  # not offered (WS307's business if answered) or declined: nothing in force
    if len(answers) > 1:
        neg.problems.append(Problem("WS424", {"count": len(answers), "response": ", ".join(a.text for a in answers)}))
    answer = answers[0]
    params: dict[str, str | None] = {}
    seen: set[str] = set()
    for name, value in answer.params:
        if name not in RESPONSE_PARAMS:
            neg.problems.append(Problem("WS420", {"param": name, "response": answer.text}))
            continue
        if name in seen:
            neg.problems.append(Problem("WS422", {"param": name, "response": answer.text}))
            continue
        seen.add(name)
        params[name] = value
    for name in ("server_no_context_takeover", "client_no_context_takeover"):
        if name in params and params[name] is not None:
            neg.problems.append(Problem("WS421", {"param": name, "value": params[name], "rule": "takes no value",
                                                  "response": answer.text}))
    bits: dict[str, int] = {}
    for name in ("server_max_window_bits", "client_max_window_bits"):
        if name in params:
            n = _window_bits(params[name])
            if n is None:
                neg.problems.append(Problem("WS421", {"param": name, "value": params[name],
                                                      "rule": "needs a value from 8 to 15", "response": answer.text}))
            else:
                bits[name] = n
    # RFC 7692 section 7.1.2.2: client_max_window_bits only if the client offered it.
    if "client_max_window_bits" in params and not any(o.values("client_max_window_bits") for o in offers):
        neg.problems.append(Problem("WS423", {"response": answer.text, "offer": ", ".join(o.text for o in offers)}))
    # The answer must fit one of the offers (section 5): limits the client asked for stay.
    if not any(_fits(o, params, bits) for o in offers):
        neg.problems.append(Problem("WS425", {"response": answer.text, "offer": ", ".join(o.text for o in offers)}))
    neg.agreement = Agreement(
        server_no_context_takeover="server_no_context_takeover" in params,
        client_no_context_takeover="client_no_context_takeover" in params,
        server_max_window_bits=bits.get("server_max_window_bits", 15),
        client_max_window_bits=bits.get("client_max_window_bits", 15),
        response=answer.text,
    )
    return neg


def _fits(offer: Element, params: dict, bits: dict) -> bool:
    """Does the answer honour this offer's own requests (server-side limits)?"""
    if offer.values("server_no_context_takeover") and "server_no_context_takeover" not in params:
        return False
    asked = offer.values("server_max_window_bits")
    if asked:
        limit = _window_bits(asked[0])
        if limit is not None and bits.get("server_max_window_bits", 15) > limit:
            return False
    asked_client = offer.values("client_max_window_bits")
    if asked_client and asked_client[0] is not None:
        limit = _window_bits(asked_client[0])
        if limit is not None and bits.get("client_max_window_bits", 15) > limit:
            return False
    return True


class InflateError(ValueError):
    """A compressed message that does not inflate with the negotiated parameters."""


class Inflater:
    """Inflate server messages (RFC 7692 section 7.2.2) under an Agreement.

    ``feed`` each frame payload of a compressed message (returns what it inflates to), then
    ``finish`` at its last frame (inflates the 00 00 ff ff tail).  The context is reset after
    each message when the server promised server_no_context_takeover; otherwise the window
    carries over.  Output per message is bounded by ``max_output``; past it the rest of the
    message is not inflated (``truncated``).
    """

    def __init__(self, agreement: Agreement, max_output: int = MAX_OUTPUT):
        self.agreement = agreement
        self.max_output = max_output
        self.messages = 0
        self.truncated = False
        self._size = 0
        self._z = self._new()

    def _new(self):
        # zlib cannot deflate with a 256-byte window (it uses 512 when asked for 8), so servers
        # that agreed to 8 send 9-bit streams: inflating with 9 avoids blaming them for zlib.
        return zlib.decompressobj(-max(self.agreement.server_max_window_bits, 9))

    def feed(self, data: bytes) -> bytes:
        if self.truncated:
            return b""
        room = self.max_output - self._size
        if room <= 0:  # zlib reads a max_length of 0 as "no limit"
            self.truncated = True
            return b""
        try:
            out = self._z.decompress(data, room)
        except zlib.error as exc:
            raise InflateError(str(exc)) from None
        if self._z.unconsumed_tail:
            self.truncated = True
        self._size += len(out)
        return out

    def finish(self) -> bytes:
        """End the message; return the last inflated bytes."""
        try:
            return self.feed(TAIL)
        finally:
            self.messages += 1
            self._size = 0
            if self.truncated or self.agreement.server_no_context_takeover or self._z.eof:
                # a new context: promised by the server, or the old one is unusable / ended (BFINAL)
                self._z = self._new()
                self.truncated = False

    def inflate_message(self, payloads: list[bytes]) -> bytes:
        """A whole message at once (tests, property checks)."""
        out = b"".join(self.feed(p) for p in payloads)
        return out + self.finish()


def compress_message(data: bytes, window_bits: int = 15, level: int = 6) -> bytes:
    """Deflate one message as a sender does (tests, scripted servers): strip the 00 00 ff ff."""
    z = zlib.compressobj(level, zlib.DEFLATED, -max(window_bits, 9))
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(TAIL) else out


__all__ = ["Agreement", "Element", "Inflater", "InflateError", "Negotiation", "Problem", "compress_message",
           "negotiate", "parse_extensions"]
