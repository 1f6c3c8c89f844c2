"""Streaming output: the records of ``probe --format jsonl`` (run by ``wsdiag.fleet_command``) and ``check``'s streaming formats.

Rules this module keeps: records are written (and flushed) as they are produced and then
dropped; nothing here judges (verdicts, causes and findings come ready); a progress line goes
to stderr only when stderr is a terminal.
"""

from __future__ import annotations

import json
from typing import Any


FLEET_SCHEMA = "wsdiag.probe.jsonl/1"
CHECK_JSONL_SCHEMA = "wsdiag.check.jsonl/1"


# -- probe --format jsonl ----------------------------------------------------------------


# -- check: human, github and jsonl stream ----------------------------------------------


def check_jsonl_start(report) -> dict:
    from wsdiag import __version__

    return {"type": "start", "schema": CHECK_JSONL_SCHEMA, "wsdiag_version": __version__, "mode": report.mode,
            "app": report.app, "versions": report.versions, "advice": report.advice}


def check_jsonl_finding(f) -> dict:
    from wsdiag.ui.report_formats import finding_dict

    return {"type": "finding", **finding_dict(f)}


def check_jsonl_end(report, fail_on: str) -> dict:
    worst = report.worst
    return {"type": "summary", "ok": report.ok, "worst_severity": worst.value if worst else None, "fail_on": fail_on,
            "exit_status": report.status(fail_on), "files": len(report.files), "findings": len(report.findings),
            "skipped": [{"file": f, "reason": why} for f, why in report.skipped], "profiles": report.profiles,
            "routes": report.routes, "fixes": [fx.to_dict() for fx in report.fixes]}


def check_jsonl(report, fail_on: str) -> str:
    """The whole report as JSON Lines (for runs that do not stream, e.g. --app)."""
    recs = [check_jsonl_start(report)] + [check_jsonl_finding(f) for f in report.findings]
    recs.append(check_jsonl_end(report, fail_on))
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in recs)


class CheckStream:
    """Callbacks for ``wsdiag.check.run``'s streaming scan: each finding is written as its file
    is scanned. ``started`` stays False when the run did not stream (app mode, --fix, --diff)."""

    def __init__(self, fmt: str, open_stream, console_for=None):
        """``open_stream()`` returns the output stream (opened on first use); ``console_for(stream)``
        the rich console to print human output with (None: a plain 100-column one on the stream)."""
        self.fmt, self._open, self._console_for = fmt, open_stream, console_for
        self.stream: Any = None
        self.console: Any = None
        self.started = False

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, report) -> None:
        self.started = True
        self.stream = self._open()
        if self.fmt == "human":
            self.console = self._console_for(self.stream) if self._console_for else None
            if self.console is None:
                from rich.console import Console

                self.console = Console(file=self.stream, width=100, no_color=True, highlight=False)
        if self.fmt == "human":
            from wsdiag.ui.report_formats import human_head

            for r in human_head(report):
                self.console.print(r)
        elif self.fmt == "jsonl":
            self._line(json.dumps(check_jsonl_start(report), ensure_ascii=False, default=str))

    def finding(self, f) -> None:
        if self.fmt == "human":
            from wsdiag.ui.report_formats import human_finding

            for r in human_finding(f):
                self.console.print(r)
            self.console.file.flush()
        elif self.fmt == "github":
            from wsdiag.ui.report_formats import github_line

            self._line(github_line(f))
        elif self.fmt == "jsonl":
            self._line(json.dumps(check_jsonl_finding(f), ensure_ascii=False, default=str))

    def finish(self, report, fail_on: str) -> None:
        if self.fmt == "human":
            from wsdiag.ui.report_formats import human_tail

            for r in human_tail(report, fail_on):
                self.console.print(r)
        elif self.fmt == "jsonl":
            self._line(json.dumps(check_jsonl_end(report, fail_on), ensure_ascii=False, default=str))
