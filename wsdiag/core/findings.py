"""Findings, per-request results and the report: the evidence model every layer shares.

Rules this module keeps:

* Pure core: standard library only, plain data.
* A Finding is a code plus structured evidence; wording lives in ``codes``.
* Verdicts are a closed set of strings (stable in the JSON output).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from wsdiag.core import codes as _codes
from wsdiag.core.record import Factory, FrozenRecord, Record


class Verdict(str, Enum):
    """What happened to one profile's upgrade, in the words users search for."""

    SERVICED = "serviced"  # 101, and the server answered on the socket
    SILENT = "silent"  # 101, socket open, no answer within the window
    ABANDONED = "abandoned"  # 101, then closed/ended/reset unserved
    REFUSED = "refused"  # a non-101, non-2xx status
    NOT_UPGRADED = "not-upgraded"  # 2xx: treated as a plain request
    INVALID = "invalid"  # 101 whose handshake a client must reject, or broken frames
    UNREACHABLE = "unreachable"  # no usable answer; see phase

    @property
    def ok(self) -> bool:
        return self is Verdict.SERVICED

    @property
    def label(self) -> str:
        return {
            "serviced": "upgraded and serviced",
            "silent": "upgraded, silent",
            "abandoned": "101 then abandoned",
            "refused": "refused",
            "not-upgraded": "not upgraded",
            "invalid": "invalid handshake",
            "unreachable": "unreachable",
        }[self.value]


class Location(FrozenRecord):
    """Where in the source a finding is: 1-based line and column (characters), the line as written."""

    __slots__ = ("file", "line", "column", "end_line", "end_column", "source")
    _defaults = {"column": 1, "end_line": None, "end_column": None, "source": ""}
    file: str
    line: int
    column: int
    end_line: int | None
    end_column: int | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The wire keys (JSON output, cache): ``end_line``/``end_column`` only when known."""
        d: dict[str, Any] = {"file": self.file, "line": self.line, "column": self.column}
        if self.end_line is not None:
            d["end_line"] = self.end_line
        if self.end_column is not None:
            d["end_column"] = self.end_column
        d["source"] = self.source
        return d


LOCATION_KEYS = ("file", "line", "column", "end_line", "end_column", "source")
FIX_KEYS = ("diff", "fix_blocker", "advice")


class SuggestedFix(FrozenRecord):
    """The fix offered for one finding: a unified diff that applies, or why none is offered."""

    __slots__ = ("diff", "blocker", "advice")
    _defaults = {"diff": None, "blocker": None, "advice": None}
    diff: str | None
    blocker: str | None  # why ``--fix`` will not make the edit
    advice: str | None  # the fix in words, true for the installed releases

    def to_dict(self) -> dict[str, Any]:
        """The wire keys (``diff``, ``fix_blocker``, ``advice``), each only when set."""
        d = {"diff": self.diff, "fix_blocker": self.blocker, "advice": self.advice}
        return {k: v for k, v in d.items() if v is not None}


class Finding(Record):
    """One defect (or fact) with its evidence; ``subject`` says what it is about.

    ``location`` (static findings: where in the source) and ``fix`` (the diff, the reason
    ``--fix`` refuses, the advice in words) are typed fields; ``evidence`` holds the rest.
    On the wire (``to_dict``, the check cache) they are the evidence keys ``file``/``line``/
    ``column``/``end_line``/``end_column``/``source`` and ``diff``/``fix_blocker``/``advice``
    as before; ``from_wire`` is the one place that reads them back.
    """

    __slots__ = ("code", "evidence", "subject", "confidence", "rank", "location", "fix")
    _defaults = {
        "evidence": Factory(dict), "subject": "", "confidence": "certain", "rank": 0, "location": None,
        "fix": None,
    }
    code: str
    evidence: dict[str, Any]
    subject: str  # profile name, "url", or a control request name
    confidence: str  # certain | likely | possible
    rank: int  # order among causes, 1 = leading
    location: Location | None
    fix: SuggestedFix | None

    @property
    def info(self) -> _codes.Code:
        return _codes.REGISTRY[self.code]

    @property
    def severity(self) -> _codes.Severity:
        return self.info.severity

    @property
    def summary(self) -> str:
        return _codes.format_summary(self.info, self.wire_evidence())

    @property
    def advice(self) -> str | None:
        """The fix in words for this finding (its own advice, else None)."""
        return self.fix.advice if self.fix is not None else None

    def wire_evidence(self) -> dict[str, Any]:
        """The evidence as serialised: location keys, then the evidence, then the fix keys."""
        if self.location is None and self.fix is None:
            return self.evidence
        out = self.location.to_dict() if self.location is not None else {}
        out.update(self.evidence)
        if self.fix is not None:
            out.update(self.fix.to_dict())
        return out

    @classmethod
    def from_wire(cls, code: str, evidence: dict[str, Any], subject: str = "", confidence: str = "certain",
                  rank: int = 0) -> Finding:
        """The inverse of ``wire_evidence``: lift the location and fix keys into typed fields."""
        ev = dict(evidence)
        loc = fix = None
        if ev.get("file"):
            where = {k: ev.pop(k) for k in LOCATION_KEYS if k in ev}
            loc = Location(str(where["file"]), int(where.get("line") or 0), int(where.get("column") or 1),
                           where.get("end_line"), where.get("end_column"), str(where.get("source") or ""))
        parts = {k: ev.pop(k) for k in FIX_KEYS if k in ev}
        if any(v is not None for v in parts.values()):
            fix = SuggestedFix(parts.get("diff"), parts.get("fix_blocker"), parts.get("advice"))
        return cls(code, ev, subject, confidence, rank, loc, fix)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.info.name,
            "severity": self.severity.value,
            "subject": self.subject,
            "confidence": self.confidence,
            "summary": self.summary,
            "evidence": self.wire_evidence(),
            "fix": self.info.fix,
        }


class AfterUpgrade(Record):
    """What happened on the socket after the 101, with millisecond timings."""

    __slots__ = (
        "outcome", "events", "window_ms", "first_event_ms", "received", "extensions", "closing", "stream",
    )
    _defaults = {
        "events": Factory(list), "window_ms": 0, "first_event_ms": None, "received": b"", "extensions": None,
        "closing": None, "stream": None,
    }
    outcome: str  # pong | data | close | eof | reset | silent | invalid
    events: list[dict[str, Any]]
    window_ms: int
    first_event_ms: float | None
    received: bytes
    extensions: dict[str, Any] | None  # negotiated extensions in force (permessage-deflate)
    closing: dict[str, Any] | None  # the closing handshake after a served check (net/session.py)
    stream: dict[str, Any] | None  # frames/bytes read, events dropped past the cap


class Exchange(Record):
    """One request and its answer as seen on the wire; the transport fills it."""

    __slots__ = (
        "name", "url", "request", "response_head", "body", "error_phase", "error_kind", "error_detail",
        "received_before_error", "timings", "after", "driver", "library_error", "probe_id", "trace",
        "interim",
    )
    _defaults = {
        "request": b"", "response_head": b"", "body": b"", "error_phase": None, "error_kind": None,
        "error_detail": "", "received_before_error": 0, "timings": Factory(dict), "after": None,
        "driver": "raw", "library_error": None, "probe_id": None, "trace": None, "interim": Factory(list),
    }
    name: str  # profile name or control name
    url: str
    request: bytes
    response_head: bytes
    body: bytes
    error_phase: str | None  # dns | connect | tls | proxy | send | response
    error_kind: str | None  # key into transport's error table
    error_detail: str
    received_before_error: int
    timings: dict[str, float]
    after: AfterUpgrade | None
    driver: str
    library_error: str | None  # websocket-client's exception text, if any
    probe_id: str | None  # the X-Wsdiag-Probe id sent, when tracing
    trace: list[dict[str, Any]] | None  # the app's trace events (wsdiag.trace/1), if fetched
    interim: list[bytes]  # 1xx interim heads (100, 103) before the answer


class ProfileResult(Record):
    """One profile's verdict with its own findings."""

    __slots__ = (
        "profile", "verdict", "status", "findings", "exchange", "phase", "counts", "connection",
        "http_version", "stages",
    )
    _defaults = {"phase": None, "counts": True, "connection": "", "http_version": "HTTP/1.1", "stages": None}
    profile: str
    verdict: Verdict
    status: int | None
    findings: list[Finding]
    exchange: Exchange
    phase: str | None
    counts: bool  # False for proxy simulations: evidence, not a verdict on the server
    connection: str  # the Connection header this profile sent
    http_version: str
    stages: Any  # wsdiag.core.stages.StagePath when the app was traced

    def to_dict(self, verbose: bool = False) -> dict[str, Any]:
        ex = self.exchange
        d: dict[str, Any] = {
            "profile": self.profile,
            "verdict": self.verdict.value,
            "status": self.status,
            "phase": self.phase,
            "counts": self.counts,
            "connection": self.connection,
            "driver": ex.driver,
            "timings_ms": {k: round(v, 2) for k, v in ex.timings.items()},
            "after_upgrade": None,
            "findings": [f.to_dict() for f in self.findings],
        }
        if ex.after is not None:
            d["after_upgrade"] = {
                "outcome": ex.after.outcome,
                "window_ms": ex.after.window_ms,
                "first_event_ms": None if ex.after.first_event_ms is None else round(ex.after.first_event_ms, 2),
                "events": ex.after.events,
            }
            for key in ("extensions", "closing", "stream"):
                if getattr(ex.after, key) is not None:
                    d["after_upgrade"][key] = getattr(ex.after, key)
        if ex.library_error:
            d["library_error"] = ex.library_error
        if ex.interim:
            d["interim_answers"] = [h.decode("latin-1").split("\r\n", 1)[0] for h in ex.interim]
        if self.stages is not None:
            d["stage_path"] = self.stages.to_dict()
        if verbose:
            d["request"] = ex.request.decode("latin-1")
            d["response_head"] = ex.response_head.decode("latin-1")
        return d


class Control(Record):
    """A control request (plain GET, path that cannot exist) and what it answered."""

    __slots__ = ("name", "description", "exchange", "status", "verdict", "body_excerpt", "server")
    _defaults = {"verdict": None, "body_excerpt": "", "server": None}
    name: str
    description: str
    exchange: Exchange
    status: int | None
    verdict: Verdict | None
    body_excerpt: str
    server: str | None


class UrlReport(Record):
    """Everything wsdiag concluded about one URL."""

    __slots__ = ("url", "results", "controls", "causes", "facts", "browsers", "bisect", "socketio")
    _defaults = {"facts": Factory(list), "browsers": Factory(list), "bisect": None, "socketio": None}
    url: str
    results: list[ProfileResult]
    controls: list[Control]
    causes: list[Finding]
    facts: list[Finding]
    # issue 13: browser runs beside the profiles (wsdiag.net.browser) and the automatic
    # bisection when profiles split (wsdiag.net.bisect); empty/None when not asked for
    browsers: list[dict[str, Any]]
    bisect: dict[str, Any] | None
    socketio: dict[str, Any] | None  # Socket.IO mode's result (wsdiag.net.socketio), else None

    @property
    def all_findings(self) -> list[Finding]:
        out = list(self.causes) + list(self.facts)
        for r in self.results:
            out.extend(r.findings)
        return out

    @property
    def worst(self) -> _codes.Severity | None:
        """The worst severity among causes, facts and the findings of counted profiles."""
        found = [f.severity for f in self.causes + self.facts]
        found += [f.severity for r in self.results if r.counts for f in r.findings]
        if any(not r.verdict.ok for r in self.results if r.counts) and not found:
            return _codes.Severity.ERROR
        return max(found, key=lambda s: s.rank) if found else None

    @property
    def ok(self) -> bool:
        counted = [r for r in self.results if r.counts]
        return all(r.verdict.ok for r in counted) and self.worst in (None, _codes.Severity.INFO)
