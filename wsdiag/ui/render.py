"""Presentation: reports to rich text, plain text or JSON. Nothing else prints.

Rules this module keeps:

* It imports the core and (lazily) rich; it never judges: verdicts and causes come ready.
* One stdout and one stderr stream per run, injected (tests pin width and colour).
* JSON is the stable interface: ``SCHEMA`` is bumped on any incompatible change
  (docs/json.md documents it). Human output may change between releases.
* Secrets (Authorization, Cookie, Proxy-Authorization values) are redacted unless asked.
"""

from __future__ import annotations

import json
import re
from typing import IO, Any

from wsdiag import __version__
from wsdiag.core.codes import Code, format_summary
from wsdiag.core.findings import Finding, UrlReport, Verdict

SCHEMA = "wsdiag.net.probe/1"
SECRET_HEADERS = re.compile(r"(?im)^((?:proxy-)?authorization|cookie|set-cookie)(:[ \t]*)(.*?)(\r?)$")

MARK = {
    Verdict.SERVICED: ("✓", "green"),
    Verdict.SILENT: ("?", "yellow"),
    Verdict.ABANDONED: ("✗", "red"),
    Verdict.REFUSED: ("✗", "red"),
    Verdict.NOT_UPGRADED: ("✗", "red"),
    Verdict.INVALID: ("✗", "red"),
    Verdict.UNREACHABLE: ("✗", "red"),
}
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def redact(text: str, show_secrets: bool) -> str:
    if show_secrets:
        return text
    return SECRET_HEADERS.sub(lambda m: f"{m.group(1)}{m.group(2)}<redacted>{m.group(4)}", text)


def _redact_obj(value: Any, show_secrets: bool) -> Any:
    if show_secrets:
        return value
    if isinstance(value, str):
        return redact(value, False)
    if isinstance(value, dict):
        return {k: _redact_obj(v, False) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_obj(v, False) for v in value]
    return value


# -- JSON ------------------------------------------------------------------------------


def report_dict(report: UrlReport, verbose: bool = False) -> dict[str, Any]:
    worst = report.worst
    return {
        "url": report.url,
        "ok": report.ok,
        "worst_severity": worst.value if worst else None,
        "results": [r.to_dict(verbose) for r in report.results],
        "controls": [
            {
                "name": c.name,
                "description": c.description,
                "status": c.status,
                "verdict": c.verdict.value if c.verdict else None,
                "server": c.server,
                "body_excerpt": c.body_excerpt,
                "url": c.exchange.url,
                "error": c.exchange.error_kind,
            }
            for c in report.controls
        ],
        "causes": [dict(f.to_dict(), rank=f.rank) for f in report.causes],
        "facts": [f.to_dict() for f in report.facts],
    }


def to_json(reports: list[UrlReport], show_secrets: bool = False, verbose: bool = False) -> str:
    doc = {
        "schema": SCHEMA,
        "wsdiag_version": __version__,
        "ok": all(r.ok for r in reports),
        "reports": [_redact_obj(report_dict(r, verbose), show_secrets) for r in reports],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str)


# -- terminal --------------------------------------------------------------------------


class Output:
    """The run's two streams; rich consoles are made on first use."""

    def __init__(self, stdout: IO[str], stderr: IO[str], width: int | None = None, color: bool | None = None):
        self._stdout, self._stderr = stdout, stderr
        self._width, self._color = width, color
        self._console = None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            kwargs: dict[str, Any] = {"file": self._stdout, "highlight": False, "soft_wrap": False}
            if self._width:
                kwargs["width"] = self._width
            if self._color is not None:
                kwargs["force_terminal"] = self._color
                kwargs["no_color"] = not self._color
            self._console = Console(**kwargs)
        return self._console

    def error(self, message: str) -> None:
        self._stderr.write(message.rstrip("\n") + "\n")
        self._stderr.flush()

    def json(self, reports: list[UrlReport], show_secrets: bool, verbose: bool) -> None:
        self._stdout.write(to_json(reports, show_secrets, verbose) + "\n")
        self._stdout.flush()

    def text_report(self, report: UrlReport, verbose: bool, show_secrets: bool) -> None:
        for renderable in report_renderables(report, verbose, show_secrets):
            self.console.print(renderable)

    def route_matrix(self, reports: list[UrlReport]) -> None:
        """Routes x clients: the verdict, and how far the upgrade got inside the app."""
        from rich.table import Table

        names = [r.profile for r in reports[0].results] if reports else []
        table = Table(title="Routes × clients", header_style="bold")
        table.add_column("route")
        for n in names:
            table.add_column(n)
        for rep in reports:
            cells = []
            for r in rep.results:
                mark, style = MARK[r.verdict]
                where = f" ({r.stages.reached})" if r.stages is not None else ""
                cells.append(f"[{style}]{mark}{where}[/]")
            table.add_row(_path_of(rep.url), *cells)
        self.console.print(table)

    def summary(self, reports: list[UrlReport]) -> None:
        bad = [r for r in reports if not r.ok]
        if len(reports) > 1:
            self.console.print(f"[bold]{len(reports)} URLs:[/] {len(reports) - len(bad)} ok, {len(bad)} with problems")

    def profiles(self, profiles, as_json: bool) -> None:
        if as_json:
            rows = [
                {"name": p.name, "description": p.description, "source": p.source, "driver": p.driver,
                 "http_version": p.http_version, "default": p.name in _default_names(),
                 "counts": p.expect_service, "headers": [list(h) for h in p.headers]}
                for p in profiles
            ]
            self._stdout.write(json.dumps(rows, indent=2) + "\n")
            return
        from rich.table import Table

        table = Table(title="Client profiles", show_lines=False)
        table.add_column("name", style="bold")
        table.add_column("Connection")
        table.add_column("sends")
        table.add_column("source")
        for p in profiles:
            name = p.name + (" *" if p.name in _default_names() else "")
            table.add_row(name, p.connection or "(none)", f"{p.http_version}, {p.description}", p.source)
        self.console.print(table)
        self.console.print("* default profiles. `wsdiag profiles --show NAME` prints a profile's exact bytes.")

    def profile_request(self, profile) -> None:
        from wsdiag.core.handshake import Target, build_request

        req = build_request(profile, Target("ws", "127.0.0.1", 5000, "/ws"), "dGhlIHNhbXBsZSBub25jZQ==")
        note = "(header lines are generated by the library at run time)\n" if profile.driver != "raw" else ""
        self._stdout.write(note + req.raw.decode("latin-1").replace("\r\n", "\n"))

    def code_list(self, codes_: list[Code], as_json: bool) -> None:
        if as_json:
            self._stdout.write(json.dumps([_code_dict(c) for c in codes_], indent=2) + "\n")
            return
        from rich.table import Table

        table = Table(title="Finding codes")
        for col in ("code", "name", "severity", "layer"):
            table.add_column(col)
        for c in codes_:
            table.add_row(c.code, c.name, f"[{SEVERITY_STYLE[c.severity.value]}]{c.severity.value}[/]", c.layer)
        self.console.print(table)

    def explain(self, code: Code, as_json: bool) -> None:
        if as_json:
            self._stdout.write(json.dumps(_code_dict(code), indent=2) + "\n")
            return
        from rich.markup import escape

        c = self.console
        c.print(f"[bold]{code.code} {code.name}[/] ([{SEVERITY_STYLE[code.severity.value]}]{code.severity.value}[/], {code.layer})")
        c.print(f"\n[bold]What[/]\n{escape(code.what)}\n\n[bold]Why[/]\n{escape(code.why)}\n\n[bold]Fix[/]\n{escape(code.fix)}")
        if code.fix_long:
            c.print()
            c.print(_fix_renderable(code.fix_long))


def _path_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


def _default_names():
    from wsdiag.core.profiles import DEFAULT

    return DEFAULT


def _code_dict(c: Code) -> dict[str, Any]:
    return {"code": c.code, "name": c.name, "severity": c.severity.value, "layer": c.layer, "summary": c.summary,
            "what": c.what, "why": c.why, "fix": c.fix, "fix_long": c.fix_long, "retired": c.retired}


def _fix_renderable(text: str):
    from rich.syntax import Syntax

    lexer = "nginx" if "proxy_pass" in text else ("python" if ("def " in text or "import" in text or "@app" in text) else "text")
    if lexer == "text":
        from rich.text import Text

        return Text(text)
    return Syntax(text.rstrip("\n"), lexer, theme="ansi_dark", background_color="default", padding=(0, 2))


def _detail(r) -> str:
    ex = r.exchange
    after = ex.after
    if r.verdict is Verdict.UNREACHABLE:
        return f"{r.phase or '?'}: {ex.error_detail or ex.error_kind or 'no answer'}"
    if after is not None:
        t = after.first_event_ms
        if after.outcome in ("pong", "data"):
            return f"{after.outcome} after {t:.1f} ms"
        if after.outcome == "close":
            close = next((e for e in after.events if e.get("event") == "close"), {})
            code = close.get("close_code")
            return f"close frame after {t:.1f} ms, " + ("no code (browsers: 1005)" if code is None else f"code {code}")
        if after.outcome in ("eof", "reset"):
            return f"{after.outcome} after {t:.1f} ms, no close frame (browsers: 1006)"
        if after.outcome == "silent":
            return f"no answer in {after.window_ms} ms"
        return "invalid frames"
    if ex.library_error:
        return ex.library_error[:80]
    head = r.findings[0].summary if r.findings else ""
    return head[:80]


def report_renderables(report: UrlReport, verbose: bool = False, show_secrets: bool = False) -> list:
    """The rich renderables of one URL's report, in print order."""
    from rich.markup import escape
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    out: list = []
    state = "[bold green]OK[/]" if report.ok else "[bold red]PROBLEMS[/]"
    out.append(Text.from_markup(f"\n[bold]{escape(report.url)}[/]  {state}"))
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
    table.add_column("profile", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("detail")
    for r in report.results:
        mark, style = MARK[r.verdict]
        label = r.verdict.label
        if r.verdict in (Verdict.REFUSED, Verdict.NOT_UPGRADED) and r.status is not None:
            label += f" ({r.status})"
        name = f"{r.profile}\n[dim]{escape(r.connection or 'no Connection')}[/]"
        if not r.counts:
            name = f"{r.profile} [dim](proxy sim.)[/]\n[dim]{escape(r.connection or 'no Connection')}[/]"
        table.add_row(name, f"[{style}]{mark} {label}[/]", escape(_detail(r)))
    out.append(table)
    traced: dict[str, list[str]] = {}
    for r in report.results:
        if r.stages is not None:
            from wsdiag.core.stages import render_path

            traced.setdefault(render_path(r.stages), []).append(r.profile)
    if traced:
        out.append(Text.from_markup("[bold]Inside the app[/] (from the trace)"))
        for path_text, names in traced.items():
            out.append(Padding(Text.from_markup(f"[dim]{escape(', '.join(names))}:[/] {escape(path_text)}"), (0, 0, 0, 2)))
    if report.controls:
        parts = []
        for c in report.controls:
            what = c.verdict.label if c.verdict and c.status == 101 else (str(c.status) if c.status else c.exchange.error_kind or "no answer")
            parts.append(f"{c.name} → {what}")
        out.append(Text("controls: " + "; ".join(parts), style="dim"))
    if report.causes:
        out.append(Text.from_markup("[bold]Why[/] (most likely first)"))
        for f in report.causes:
            out.extend(_finding_block(f, numbered=True))
    others = _dedupe([f for r in report.results for f in r.findings if r.counts] + report.facts)
    shown = {f.code for f in report.causes}
    others = [f for f in others if f.code not in shown]
    if others:
        out.append(Text.from_markup("[bold]Findings[/]"))
        for f in others:
            sev = f.severity.value
            subjects = f.evidence.get("_subjects") or f.subject
            out.append(Padding(Text.from_markup(
                f"[{SEVERITY_STYLE[sev]}]{f.code}[/] {escape(f.info.name)} [dim]({escape(str(subjects))})[/]: {escape(f.summary)}"),
                (0, 0, 0, 2)))
    if verbose:
        for r in report.results:
            out.append(Text(f"--- {r.profile}: request", style="bold dim"))
            out.append(Text(redact(r.exchange.request.decode("latin-1"), show_secrets).replace("\r\n", "\n").rstrip()))
            out.append(Text(f"--- {r.profile}: response", style="bold dim"))
            out.append(Text(redact(r.exchange.response_head.decode("latin-1"), show_secrets).replace("\r\n", "\n").rstrip() or "(nothing)"))
            if r.exchange.after is not None:
                for ev in r.exchange.after.events:
                    out.append(Text("    " + json.dumps(ev, default=str), style="dim"))
    return out


def _finding_block(f: Finding, numbered: bool) -> list:
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    sev = f.severity.value
    head = f"{f.rank}. " if numbered and f.rank else ""
    block = [
        Padding(Text.from_markup(f"{head}[{SEVERITY_STYLE[sev]}]{f.code} {escape(f.info.name)}[/] [dim]({sev}, {f.confidence})[/]"), (0, 0, 0, 2)),
        Padding(Text(f.summary), (0, 0, 0, 5)),
    ]
    window = f.evidence.get("window")
    if window:
        block.append(Padding(Text(window, style="italic"), (0, 0, 0, 5)))
    block.append(Padding(Text(f"why: {f.info.why}", style="dim"), (0, 0, 0, 5)))
    block.append(Padding(Text(f"fix: {f.info.fix}"), (0, 0, 0, 5)))
    if f.info.fix_long:
        block.append(Padding(_fix_renderable(f.info.fix_long), (0, 0, 0, 3)))
    return block


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One line per code, naming every subject it was seen for."""
    by_code: dict[str, Finding] = {}
    subjects: dict[str, list[str]] = {}
    for f in findings:
        if f.code not in by_code:
            by_code[f.code] = Finding(f.code, dict(f.evidence), f.subject, f.confidence)
            subjects[f.code] = []
        if f.subject and f.subject not in subjects[f.code]:
            subjects[f.code].append(f.subject)
    for code, f in by_code.items():
        f.evidence["_subjects"] = ", ".join(subjects[code]) or f.subject
    return list(by_code.values())


__all__ = ["Output", "to_json", "report_dict", "report_renderables", "redact", "SCHEMA", "format_summary"]
