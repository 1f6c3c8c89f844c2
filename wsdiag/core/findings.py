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


@dataclass(frozen=True)
class SuggestedFix:
    """The fix offered for one finding: a unified diff that applies, or why none is offered."""

    diff: str | None = None
    blocker: str | None = None  # why ``--fix`` will not make the edit
    advice: str | None = None  # the fix in words, true for the installed releases


@dataclass
class Finding:
    """One defect (or fact) with its evidence; ``subject`` says what it is about.

    ``location`` and ``suggested_fix`` are the typed views of the evidence keys every static
    finding carries (``file``/``line``/``column``/``end_line``/``end_column``/``source`` and
    ``diff``/``fix_blocker``/``advice``): read them instead of the dict keys.
    """

    code: str
    evidence: dict[str, Any] = field(default_factory=dict)
    subject: str = ""  # profile name, "url", or a control request name
    confidence: str = "certain"  # certain | likely | possible
    rank: int = 0  # order among causes, 1 = leading

    @property
    def info(self) -> _codes.Code:
        return _codes.REGISTRY[self.code]

    @property
    def severity(self) -> _codes.Severity:
        return self.info.severity

    @property
    def summary(self) -> str:
        return _codes.format_summary(self.info, self.evidence)

    @property
    def location(self) -> Location | None:
        e = self.evidence
        if not e.get("file"):
            return None

        def num(key: str) -> int | None:
            v = e.get(key)
            return int(v) if isinstance(v, int) or (isinstance(v, str) and v.isdigit()) else None

        return Location(str(e["file"]), num("line") or 0, num("column") or 1, num("end_line"), num("end_column"),
                        str(e.get("source") or ""))

    @property
    def suggested_fix(self) -> SuggestedFix | None:
        e = self.evidence
        if not any(e.get(k) for k in ("diff", "fix_blocker", "advice")):
            return None
        return SuggestedFix(e.get("diff") or None, e.get("fix_blocker") or None, e.get("advice") or None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.info.name,
            "severity": self.severity.value,
            "subject": self.subject,
            "confidence": self.confidence,
            "summary": self.summary,
            "evidence": self.evidence,
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
