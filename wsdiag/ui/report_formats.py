"""``wsdiag check`` output formats: JSON, SARIF 2.1.0, JUnit XML, GitHub annotations, rich text.

Rules this module keeps:

* Pure functions from a ``CheckReport`` to text (or rich renderables); nothing here prints,
  reads files or judges: findings, advice and fixes come ready from ``wsdiag.check``.
* JSON (``wsdiag.check/1``) is the stable interface (docs/check.md); SARIF and JUnit follow
  their own standards; human output may change.
* Standard library only, except ``human_renderables``, which imports rich lazily.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from wsdiag import __version__
from wsdiag.core.codes import REGISTRY, Severity
from wsdiag.core.findings import Finding
from wsdiag.check.result import SCHEMA, CheckReport

FORMATS = ("human", "json", "sarif", "junit", "github")
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}
def finding_fix(f: Finding) -> str:
    """The fix for this finding, as true for the installed versions when the check knows them."""
    return f.advice or f.info.fix


def finding_dict(f: Finding) -> dict[str, Any]:
    at, fix = f.location, f.fix
    d: dict[str, Any] = {"code": f.code, "name": f.info.name, "severity": f.severity.value, "subject": f.subject,
                         "summary": f.summary}
    d.update(file=at.file if at else None, line=at.line if at else None, column=at.column if at else None,
             end_line=at.end_line if at else None, end_column=at.end_column if at else None,
             source=at.source if at else None)
    d["fix"] = finding_fix(f)
    d["diff"] = fix.diff if fix else None
    d["fix_blocker"] = fix.blocker if fix else None
    d["evidence"] = dict(f.evidence)
    return d


# -- JSON ------------------------------------------------------------------------------


def to_json(report: CheckReport, fail_on: str = "error") -> str:
    worst = report.worst
    doc = {
        "schema": SCHEMA,
        "wsdiag_version": __version__,
        "mode": report.mode,
        "app": report.app,
        "ok": report.ok,
        "worst_severity": worst.value if worst else None,
        "fail_on": fail_on,
        "exit_status": report.status(fail_on),
        "versions": report.versions,
        "advice": report.advice,
        "files": report.files,
        "skipped": [{"file": f, "reason": why} for f, why in report.skipped],
        "profiles": report.profiles,
        "routes": report.routes,
        "findings": [finding_dict(f) for f in report.findings],
        "fixes": [fx.to_dict() for fx in report.fixes],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str)


# -- SARIF 2.1.0 -----------------------------------------------------------------------


def _artifact(path: str) -> dict[str, Any]:
    if os.path.isabs(path):
        return {"uri": pathlib.Path(path).as_uri()}
    return {"uri": pathlib.PurePath(path).as_posix(), "uriBaseId": "%SRCROOT%"}


def _sarif_rule(code: str) -> dict[str, Any]:
    c = REGISTRY[code]
    help_text = f"{c.fix}\n\n{c.fix_long}".strip()
    return {
        "id": c.code,
        "name": "".join(w.capitalize() for w in c.name.split("-")),
        "shortDescription": {"text": c.what},
        "fullDescription": {"text": c.why},
        "help": {"text": help_text, "markdown": f"{c.fix}\n\n```python\n{c.fix_long.rstrip()}\n```" if c.fix_long else c.fix},
        "defaultConfiguration": {"level": SARIF_LEVEL[c.severity.value]},
        "properties": {"tags": ["websocket", c.layer], "kebab-name": c.name},
    }


def to_sarif(report: CheckReport, root: str | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log (one run). Paths are relative to ``root`` (default: the current directory)."""
    import hashlib  # here, not at the top: the human and JSON outputs do not need it

    codes = sorted({f.code for f in report.findings})
    index = {c: i for i, c in enumerate(codes)}
    results = []
    for f in report.findings:
        at = f.location
        result: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": SARIF_LEVEL[f.severity.value],
            "message": {"text": f"{f.summary}. Fix: {finding_fix(f).splitlines()[0]}"},
            "properties": {"subject": f.subject, "severity": f.severity.value},
        }
        if at is not None and at.file:
            region: dict[str, Any] = {"startLine": max(1, at.line or 1)}
            if at.column:
                region["startColumn"] = max(1, at.column)
            if at.end_line:
                region["endLine"] = max(region["startLine"], at.end_line)
                if at.end_column and (region["endLine"] > region["startLine"] or at.end_column > region.get("startColumn", 1)):
                    region["endColumn"] = at.end_column
            if at.source:
                region["snippet"] = {"text": at.source}
            result["locations"] = [{"physicalLocation": {"artifactLocation": _artifact(at.file), "region": region}}]
            digest = hashlib.sha256(f"{f.code}\0{at.file}\0{at.source.strip()}".encode()).hexdigest()[:32]
            result["partialFingerprints"] = {"wsdiagLocation/v1": digest}
        results.append(result)
    base = pathlib.Path(root or os.getcwd()).resolve().as_uri().rstrip("/") + "/"
    notifications = [{"level": "warning", "message": {"text": f"skipped {f}: {why}"}} for f, why in report.skipped]
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "wsdiag", "version": __version__, "semanticVersion": __version__,
                                "rules": [_sarif_rule(c) for c in codes]}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": base}},
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            "results": results,
            "properties": {"mode": report.mode, "versions": report.versions},
        }],
    }


def to_sarif_text(report: CheckReport) -> str:
    return json.dumps(to_sarif(report), indent=2, ensure_ascii=False)


# -- JUnit XML -------------------------------------------------------------------------


def _classname(path: str | None) -> str:
    if not path:
        return "wsdiag.check"
    stem = os.path.splitext(pathlib.PurePath(path).as_posix())[0].strip("./")
    return "wsdiag.check." + stem.replace("/", ".")


def to_junit(report: CheckReport, fail_on: str = "error") -> str:
    """JUnit XML in the shape pytest writes: testsuites > testsuite > testcase [> failure]."""
    import xml.etree.ElementTree as ET  # here, not at the top: the human and JSON outputs do not need it

    failing = {id(f) for f in report.failing(fail_on)}
    cases: list[ET.Element] = []
    with_findings = set()
    for f in report.findings:
        at, fix = f.location, f.fix
        file = at.file if at is not None else None
        with_findings.add(file)
        where = f"{file}:{at.line}" if at is not None else f.subject
        case = ET.Element("testcase", {"classname": _classname(file),
                                       "name": f"{f.code} {f.info.name} {f.subject} ({where})", "time": "0"})
        if at is not None:
            case.set("file", str(at.file))
            case.set("line", str(at.line or 0))
        body = [f"{where}:{(at.column if at is not None else None) or ''} {f.code} {f.info.name} ({f.severity.value})", f.summary]
        if at is not None and at.source:
            body.append(f"    {at.source}")
        body.append(f"fix: {finding_fix(f)}")
        if fix is not None and fix.diff:
            body.append(fix.diff)
        if id(f) in failing:
            fail = ET.SubElement(case, "failure", {"message": f.summary, "type": f.code})
            fail.text = "\n".join(body)
        else:
            ET.SubElement(case, "system-out").text = "\n".join(body)
        cases.append(case)
    for path in report.files:
        if path not in with_findings:
            cases.append(ET.Element("testcase", {"classname": _classname(path), "name": f"{path}: no WebSocket problems",
                                                 "file": path, "time": "0"}))
    for r in report.routes:
        if all(p.get("outcome") == "view" for p in r.get("profiles", [])) and r.get("profiles"):
            cases.append(ET.Element("testcase", {"classname": _classname(r.get("file")),
                                                 "name": f"route {r['rule']} reaches the view for every client", "time": "0"}))
    n_fail = sum(1 for c in cases if c.find("failure") is not None)
    attrs = {"name": "wsdiag check", "tests": str(len(cases)), "failures": str(n_fail), "errors": "0",
             "skipped": "0", "time": "0"}
    suites = ET.Element("testsuites", attrs)
    suite = ET.SubElement(suites, "testsuite", dict(attrs, hostname="localhost"))
    props = ET.SubElement(suite, "properties")
    for k, v in sorted(report.versions.items()):
        ET.SubElement(props, "property", {"name": k, "value": str(v)})
    suite.extend(cases)
    ET.indent(suites) if hasattr(ET, "indent") else None
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# -- GitHub Actions --------------------------------------------------------------------


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def to_github(report: CheckReport) -> str:
    """GitHub Actions workflow commands: one ``::error file=...,line=...::message`` per finding."""
    lines = [github_line(f) for f in report.findings]
    return "\n".join(lines) + ("\n" if lines else "")


def github_line(f: Finding) -> str:
    """One finding as a GitHub Actions workflow command (no trailing newline)."""
    at = f.location
    props = []
    if at is not None:
        props.append(f"file={_gh_prop(pathlib.PurePath(at.file).as_posix())}")
        if at.line:
            props.append(f"line={at.line}")
        if at.end_line:
            props.append(f"endLine={at.end_line}")
        if at.column:
            props.append(f"col={at.column}")
        if at.end_column and at.end_line == at.line:
            props.append(f"endColumn={at.end_column}")
    props.append(f"title={_gh_prop(f'{f.code} {f.info.name}')}")
    message = f"{f.summary}\nfix: {finding_fix(f)}"
    return f"::{GITHUB_LEVEL[f.severity.value]} {','.join(props)}::{_gh_data(message)}"


# -- human (rich) ----------------------------------------------------------------------

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
OUTCOME = {"view": ("✓", "green", "view"), "hook": ("~", "yellow", "before_request"),
           "other-view": ("?", "yellow", "other view")}


def summary_line(report: CheckReport, fail_on: str) -> str:
    counts = {s: sum(1 for f in report.findings if f.severity is s) for s in Severity}
    parts = [f"{n} {s.value}{'s' if n != 1 else ''}" for s, n in counts.items() if n]
    what = f"{len(report.files)} file{'s' if len(report.files) != 1 else ''}"
    if report.mode == "app":
        what += f", {len(report.routes)} WebSocket route{'s' if len(report.routes) != 1 else ''} routed in-process"
    if not parts:
        return f"No WebSocket problems found ({what})."
    failing = len(report.failing(fail_on))
    return f"{', '.join(parts)} ({what}); {failing} at or above --fail-on {fail_on}."


def human_renderables(report: CheckReport, fail_on: str = "error") -> list:
    """Rich renderables: versions and advice, each finding with its source line and fix diff, routes, fixes."""
    out: list = human_head(report)
    for f in report.findings:
        out.extend(human_finding(f))
    out.extend(human_tail(report, fail_on))
    return out


def human_head(report: CheckReport) -> list:
    """The title line (versions) and the environment advice: what a streaming run prints first."""
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    out: list = []
    v = report.versions
    head = ", ".join(f"{name} {v.get(key) or 'not installed'}" for name, key in
                     (("Flask", "flask"), ("Werkzeug", "werkzeug"), ("gevent-websocket", "gevent-websocket")))
    title = f"wsdiag check: app {report.app}" if report.mode == "app" else "wsdiag check: static scan"
    out.append(Text.from_markup(f"[bold]{escape(title)}[/]  [dim]({escape(head)})[/]"))
    for line in report.advice:
        out.append(Padding(Text(line, style="dim"), (0, 0, 0, 2)))
    return out


class _Code:
    """A rich renderable: ``text`` as a ``Syntax`` block, lexed as ``lexer`` only on a console that shows
    colour. Without colour the block is the same ``Syntax`` lexed as plain text, which renders the same
    characters: lexing Python costs ~40 ms the first time (pygments compiles its rules), for nothing."""

    def __init__(self, text: str, lexer: str):
        self.text, self.lexer = text, lexer

    def _syntax(self, console):
        from rich.syntax import Syntax

        lexer = self.lexer if console.color_system is not None else "text"
        return Syntax(self.text, lexer, theme="ansi_dark", background_color="default")

    def __rich_console__(self, console, options):
        yield self._syntax(console)

    def __rich_measure__(self, console, options):
        return self._syntax(console).__rich_measure__(console, options)


def human_finding(f: Finding) -> list:
    """One finding: location, summary, source line with a caret, fix and diff."""
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    out: list = []
    e, at, fx = f.evidence, f.location, f.fix
    sev = f.severity.value
    where = f"{at.file}:{at.line}:{at.column}" if at is not None else f"({f.subject})"
    out.append(Text.from_markup(f"\n[bold]{escape(where)}[/] [{SEVERITY_STYLE[sev]}]{f.code} {escape(f.info.name)}[/] [dim]({sev})[/]"))
    out.append(Padding(Text(f.summary), (0, 0, 0, 2)))
    if at is not None and at.line:
        num = str(at.line)
        src = at.source.expandtabs(4)
        caret_from = max(0, (at.column or 1) - 1)
        caret_to = (at.end_column or 0) - 1 if at.end_line in (None, at.line) else len(src)
        width = max(1, min(len(src), caret_to) - caret_from) if caret_to > caret_from else 1
        out.append(Padding(Text(f"{num} │ {src}"), (0, 0, 0, 4)))
        out.append(Padding(Text(" " * len(num) + " │ " + " " * caret_from + "^" * width, style="bold red"), (0, 0, 0, 4)))
    clients = e.get("clients")
    if clients:
        out.append(Padding(Text("clients: " + ", ".join(f"{k} → {val}" for k, val in clients.items()), style="dim"), (0, 0, 0, 2)))
    if e.get("hooks_run"):
        out.append(Padding(Text("before_request hooks that still run: " + ", ".join(f"{h}()" for h in e["hooks_run"]), style="dim"), (0, 0, 0, 2)))
    pinned = [str(e[k]) for k in ("werkzeug", "gevent_websocket", "versions_from")
              if isinstance(e.get(k), str) and " (" in e[k] and not e[k].endswith("(installed)")]
    if pinned:  # the release a project rule judged with came from the project's pins (wsdiag.check.pins)
        out.append(Padding(Text("judged with the project's pins: " + "; ".join(pinned), style="dim"), (0, 0, 0, 2)))
    fix = finding_fix(f)
    first, _, rest = fix.partition("\n")
    out.append(Padding(Text(f"fix: {first}"), (0, 0, 0, 2)))
    if rest.strip():
        out.append(Padding(_Code(rest.rstrip("\n"), "python"), (0, 0, 0, 4)))
    if fx is not None and fx.diff:
        out.append(Padding(_Code(fx.diff.rstrip("\n"), "diff"), (0, 0, 0, 4)))
    if fx is not None and fx.blocker and f.code in ("WS501", "WS601"):
        out.append(Padding(Text(f"--fix will not change this: {fx.blocker}", style="italic"), (0, 0, 0, 2)))
    return out


def human_tail(report: CheckReport, fail_on: str = "error") -> list:
    """Routes, fixes, skipped files and the summary line: what comes after the findings."""
    from rich.markup import escape
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    out: list = []
    if report.routes:
        names = report.profiles or [p["profile"] for p in report.routes[0]["profiles"]]
        out.append(Text.from_markup("\n[bold]WebSocket routes[/], routed by the installed Werkzeug "
                                    "[dim](✓ reaches the view, ~ served by a before_request hook, ✗ hidden status)[/]"))
        table = Table(box=None, padding=(0, 1), header_style="bold", show_edge=False)
        table.add_column("rule", overflow="fold")
        for n in names:
            table.add_column(n, no_wrap=True)
        for r in report.routes:  # cells are Text with styled spans: the markup they replace, not parsed per cell
            cells = []
            for p in r["profiles"]:
                if p["outcome"] == "hidden":
                    cells.append(Text.assemble((f"✗ {p['status']}", "red")))
                else:
                    mark, style, label = OUTCOME.get(p["outcome"], ("?", "yellow", p["outcome"]))
                    cells.append(Text.assemble((mark, style)))
            rule = Text(r["rule"])
            if r["websocket"]:
                rule.append(" ")
                rule.append("websocket=True", "dim")
            rule.append("\n")
            rule.append(f"{r['view']}()", "dim")
            table.add_row(rule, *cells)
        out.append(table)
    if report.fixes:
        out.append(Text.from_markup("\n[bold]Fixes[/]"))
        for fx in report.fixes:
            state = "[green]applied[/]" if fx.applied else ("[yellow]refused[/]" if fx.reason else "[cyan]would apply[/]")
            reason = f": {escape(fx.reason)}" if fx.reason else ""
            out.append(Padding(Text.from_markup(f"{state} {escape(fx.file)}:{fx.line} {escape(fx.route)} websocket=True{reason}"), (0, 0, 0, 2)))
    for path, why in report.skipped:
        out.append(Text(f"skipped {path}: {why}", style="yellow"))
    out.append(Text.from_markup(f"\n[bold]{escape(summary_line(report, fail_on))}[/]"))
    return out


def render(report: CheckReport, fmt: str, fail_on: str = "error") -> str:
    """Text for the machine formats (human output goes through ``human_renderables``)."""
    if fmt == "json":
        return to_json(report, fail_on) + "\n"
    if fmt == "sarif":
        return to_sarif_text(report) + "\n"
    if fmt == "junit":
        return to_junit(report, fail_on)
    if fmt == "github":
        return to_github(report)
    raise ValueError(f"unknown format {fmt!r}")
