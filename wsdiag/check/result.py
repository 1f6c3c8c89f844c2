"""The result of one ``wsdiag check`` run: plain data that every output format renders.

Rules this module keeps:

* Pure core: standard library only.
* Findings are ``wsdiag.core.findings.Finding``; a check finding's location is in its evidence
  (``file``, ``line``, ``column``, ``end_line``, ``end_column``, ``source``).
* The exit decision is here (``status``), so every front end (``wsdiag check``,
  ``flask wsdiag check``) decides it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsdiag.core.codes import Severity
from wsdiag.core.findings import Finding

SCHEMA = "wsdiag.check/1"


@dataclass
class FixResult:
    """One attempted source fix: applied, or refused with the reason."""

    code: str
    file: str
    line: int
    route: str
    applied: bool
    reason: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CheckReport:
    mode: str  # static | app
    findings: list[Finding]
    files: list[str] = field(default_factory=list)  # files scanned
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    routes: list[dict] = field(default_factory=list)  # in-process route results
    versions: dict = field(default_factory=dict)
    advice: list[str] = field(default_factory=list)
    app: str | None = None
    fixes: list[FixResult] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)

    @property
    def worst(self) -> Severity | None:
        sev = [f.severity for f in self.findings]
        return max(sev, key=lambda s: s.rank) if sev else None

    @property
    def ok(self) -> bool:
        return self.worst in (None, Severity.INFO)

    def failing(self, fail_on: str) -> list[Finding]:
        """The findings at or above ``fail_on`` (error | warning | never)."""
        if fail_on == "never":
            return []
        floor = Severity.ERROR if fail_on == "error" else Severity.WARNING
        return [f for f in self.findings if f.severity.rank >= floor.rank]

    def status(self, fail_on: str) -> int:
        """0 when nothing reaches ``fail_on``, else 1 (wsdiag.core.exits.Exit.OK / FINDINGS)."""
        return 1 if self.failing(fail_on) else 0


def sort_key(f: Finding):
    at = f.location
    if at is None:
        return ("~", 0, 0, f.code)
    return (at.file, at.line or 0, at.column or 0, f.code)
