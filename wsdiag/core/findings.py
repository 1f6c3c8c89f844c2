"""Findings, per-request results and the report: the evidence model every layer shares.

Rules this module keeps:

* Pure core: standard library only, plain data.
* A Finding is a code plus structured evidence; wording lives in ``codes``.
* Verdicts are a closed set of strings (stable in the JSON output).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from wsdiag.core import codes as _codes


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


@dataclass(frozen=True)
class Location:
    """Where in the source a finding is: 1-based line and column (characters), the line as written."""

    file: str
    line: int
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None
    source: str = ""

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


@dataclass(frozen=True)
class SuggestedFix:
    """The fix offered for one finding: a unified diff that applies, or why none is offered."""

    diff: str | None = None
    blocker: str | None = None  # why ``--fix`` will not make the edit
    advice: str | None = None  # the fix in words, true for the installed releases

    def to_dict(self) -> dict[str, Any]:
        """The wire keys (``diff``, ``fix_blocker``, ``advice``), each only when set."""
        d = {"diff": self.diff, "fix_blocker": self.blocker, "advice": self.advice}
        return {k: v for k, v in d.items() if v is not None}


@dataclass
class Finding:
    """One defect (or fact) with its evidence; ``subject`` says what it is about.

    ``location`` (static findings: where in the source) and ``fix`` (the diff, the reason
    ``--fix`` refuses, the advice in words) are typed fields; ``evidence`` holds the rest.
    On the wire (``to_dict``, the check cache) they are the evidence keys ``file``/``line``/
    ``column``/``end_line``/``end_column``/``source`` and ``diff``/``fix_blocker``/``advice``
    as before; ``from_wire`` is the one place that reads them back.
    """

    code: str
    evidence: dict[str, Any] = field(default_factory=dict)
    subject: str = ""  # profile name, "url", or a control request name
    confidence: str = "certain"  # certain | likely | possible
    rank: int = 0  # order among causes, 1 = leading
    location: Location | None = None
    fix: SuggestedFix | None = None

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


@dataclass
class AfterUpgrade:
    """What happened on the socket after the 101, with millisecond timings."""

    outcome: str  # pong | data | close | eof | reset | silent | invalid
    events: list[dict[str, Any]] = field(default_factory=list)
    window_ms: int = 0
    first_event_ms: float | None = None
    received: bytes = b""
    extensions: dict[str, Any] | None = None  # negotiated extensions in force (permessage-deflate)
    closing: dict[str, Any] | None = None  # the closing handshake after a served check (net/session.py)
    stream: dict[str, Any] | None = None  # frames/bytes read, events dropped past the cap


@dataclass
class Exchange:
    """One request and its answer as seen on the wire; the transport fills it."""

    name: str  # profile name or control name
    url: str
    request: bytes = b""
    response_head: bytes = b""
    body: bytes = b""
    error_phase: str | None = None  # dns | connect | tls | proxy | send | response
    error_kind: str | None = None  # key into transport's error table
    error_detail: str = ""
    received_before_error: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    after: AfterUpgrade | None = None
    driver: str = "raw"
    library_error: str | None = None  # websocket-client's exception text, if any
    probe_id: str | None = None  # the X-Wsdiag-Probe id sent, when tracing
    trace: list[dict[str, Any]] | None = None  # the app's trace events (wsdiag.trace/1), if fetched
    interim: list[bytes] = field(default_factory=list)  # 1xx interim heads (100, 103) before the answer


@dataclass
class ProfileResult:
    """One profile's verdict with its own findings."""

    profile: str
    verdict: Verdict
    status: int | None
    findings: list[Finding]
    exchange: Exchange
    phase: str | None = None
    counts: bool = True  # False for proxy simulations: evidence, not a verdict on the server
    connection: str = ""  # the Connection header this profile sent
    http_version: str = "HTTP/1.1"
    stages: Any = None  # wsdiag.core.stages.StagePath when the app was traced

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


@dataclass
class Control:
    """A control request (plain GET, path that cannot exist) and what it answered."""

    name: str
    description: str
    exchange: Exchange
    status: int | None
    verdict: Verdict | None = None
    body_excerpt: str = ""
    server: str | None = None


@dataclass
class UrlReport:
    """Everything wsdiag concluded about one URL."""

    url: str
    results: list[ProfileResult]
    controls: list[Control]
    causes: list[Finding]
    facts: list[Finding] = field(default_factory=list)
    # issue 13: browser runs beside the profiles (wsdiag.net.browser) and the automatic
    # bisection when profiles split (wsdiag.net.bisect); empty/None when not asked for
    browsers: list[dict[str, Any]] = field(default_factory=list)
    bisect: dict[str, Any] | None = None

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
