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

SCHEMA = "wsdiag.probe/1"
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
        **({"socketio": report.socketio} if getattr(report, "socketio", None) else {}),  # wsdiag.net.socketio
        **({"browsers": report.browsers} if getattr(report, "browsers", None) else {}),  # wsdiag.net.browser
        **({"bisect": report.bisect} if getattr(report, "bisect", None) else {}),  # wsdiag.net.bisect
    }


def to_json(reports: list[UrlReport], show_secrets: bool = False, verbose: bool = False,
            app_server: dict | None = None) -> str:
    if not show_secrets:
        from wsdiag.ui.secrets import redact_reports

        redact_reports(reports)  # reflected credentials too, not only their header lines
    doc = {
        "schema": SCHEMA,
        "wsdiag_version": __version__,
        "ok": all(r.ok for r in reports),
        **({"app_server": app_server} if app_server else {}),  # probe --app: which server, and why
        "reports": [_redact_obj(report_dict(r, verbose), show_secrets) for r in reports],
    }
    from wsdiag.ui.safe import json_safe

    return json_safe(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


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
            from wsdiag.ui.safe import safe_console_class

            Console = safe_console_class()  # server bytes never reach the terminal raw
            kwargs: dict[str, Any] = {"file": self._stdout, "highlight": False, "soft_wrap": False}
            if self._width:
                kwargs["width"] = self._width
            if self._color is not None:
                kwargs["force_terminal"] = self._color
                kwargs["no_color"] = not self._color
            self._console = Console(**kwargs)
        return self._console

    def error(self, message: str) -> None:
        from wsdiag.ui.safe import terminal_safe

        self._stderr.write(terminal_safe(message.rstrip("\n")) + "\n")
        self._stderr.flush()

    def json(self, reports: list[UrlReport], show_secrets: bool, verbose: bool, app_server: dict | None = None) -> None:
        self._stdout.write(to_json(reports, show_secrets, verbose, app_server) + "\n")
        self._stdout.flush()

    def text_report(self, report: UrlReport, verbose: bool, show_secrets: bool) -> None:
        if not show_secrets:
            from wsdiag.ui.secrets import redact_reports

            redact_reports([report])
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


def _detail(r, times: list[float] | None = None) -> str:
    """One row's detail; ``times`` (ms) of every profile collapsed into the row, if several."""
    ex = r.exchange
    after = ex.after
    if r.verdict is Verdict.UNREACHABLE:
        return f"{r.phase or '?'}: {ex.error_detail or ex.error_kind or 'no answer'}"
    if r.status is not None and r.status != 101:
        head = _head_of(ex)
        return f"{r.status} {head.reason if head else ''}".strip() + " (answer below)"
    if after is not None:
        t = after.first_event_ms
        when = _ms_range(times) if times and len(times) > 1 else (f"{t:.1f} ms" if t is not None else "?")
        if after.outcome in ("pong", "data"):
            return f"{after.outcome} after {when}"
        if after.outcome == "close":
            close = next((e for e in after.events if e.get("event") == "close"), {})
            code = close.get("close_code")
            return f"close frame after {when}, " + ("no code (browsers: 1005)" if code is None else f"code {code}")
        if after.outcome in ("eof", "reset"):
            return f"{after.outcome} after {when}, no close frame (browsers: 1006)"
        if after.outcome == "silent":
            return f"no answer in {after.window_ms} ms"
        return "invalid frames"
    if ex.library_error:
        return ex.library_error[:80]
    head = r.findings[0].summary if r.findings else ""
    return head[:80]


def _head_of(ex):
    from wsdiag.core.handshake import parse_response_head

    return parse_response_head(ex.response_head) if ex.response_head else None


def _ms_range(times: list[float]) -> str:
    lo, hi = min(times), max(times)
    return f"{lo:.1f} ms" if round(lo, 1) == round(hi, 1) else f"{lo:.1f}-{hi:.1f} ms"


def _row_key(r) -> tuple:
    ex, after = r.exchange, r.exchange.after
    close = None
    if after is not None:
        close = next((e.get("close_code") for e in after.events if e.get("event") == "close"), None)
    codes_ = tuple(sorted({f.code for f in r.findings if f.severity.value != "info"}))
    refused = r.status is not None and r.status != 101
    return (r.verdict, r.status, r.counts, after.outcome if after else None, close, ex.error_kind,
            ex.library_error if after is None and not refused else None, codes_)


def collapse_rows(results) -> list[tuple[list, str]]:
    """Profiles with the same outcome share one row: (results, detail)."""
    groups: dict[tuple, list] = {}
    for r in results:
        groups.setdefault(_row_key(r), []).append(r)
    rows = []
    for members in groups.values():
        times = [m.exchange.after.first_event_ms for m in members
                 if m.exchange.after is not None and m.exchange.after.first_event_ms is not None]
        rows.append((members, _detail(members[0], times)))
    return rows


MATTERING_HEADERS = ("Server", "Location", "Sec-WebSocket-Version", "WWW-Authenticate", "Retry-After",
                     "Content-Type", "Content-Length", "Via", "Connection")


def refusal_answers(report: UrlReport, verbose: bool = False) -> list[tuple[list[str], str, str]]:
    """Each distinct non-101 answer once: (who got it, status line and headers, body excerpt).

    The controls' answers are shown when upgraded profiles failed and none was refused (they
    are then the evidence for a hidden cause), or with -v.
    """
    from wsdiag.core.handshake import content_length, parse_response_head
    from wsdiag.core.refusals import body_text

    seen: dict[tuple, tuple[list[str], str, str]] = {}
    sources = [(r.profile, r.exchange) for r in report.results if r.counts and r.status not in (None, 101)]
    hidden = any(r.counts and r.status == 101 and not r.verdict.ok for r in report.results)
    if verbose or (not sources and hidden):
        for c in report.controls:
            if c.status not in (None, 101):
                sources.append((c.name, c.exchange))
    for who, ex in sources:
        head = parse_response_head(ex.response_head) if ex.response_head else None
        if head is None:
            continue
        parts = []
        for name in MATTERING_HEADERS:
            value = head.get(name)
            if value is None:
                continue
            if name == "Content-Length":
                want = content_length(head)
                if want and len(ex.body) < want:
                    value += f" ({len(ex.body)} received)"
            parts.append(f"{name}: {value}")
        line = f"{head.status} {head.reason}" + (f"  [{'; '.join(parts)}]" if parts else "")
        body = body_text(ex.body)
        key = (line.replace(ex.url, ""), body)
        if key not in seen:
            seen[key] = ([], line, body)
        seen[key][0].append(who)
    return list(seen.values())


def _names(members) -> str:
    names = [m.profile if m.counts else f"{m.profile} (proxy sim.)" for m in members]
    if len(names) <= 3:
        return ", ".join(names)
    return f"{len(names)} profiles ({', '.join(names)})"


def headline(report: UrlReport) -> str:
    """'5 profiles: refused (400)' / '3 profiles: upgraded and serviced; 2 profiles: ...'."""
    counts: dict[str, int] = {}
    for r in report.results:
        if r.counts:
            label = r.verdict.label + (f" ({r.status})" if r.verdict in (Verdict.REFUSED, Verdict.NOT_UPGRADED) and r.status else "")
            counts[label] = counts.get(label, 0) + 1
    return "; ".join(f"{n} profile{'s' if n != 1 else ''}: {label}" for label, n in counts.items())


def report_renderables(report: UrlReport, verbose: bool = False, show_secrets: bool = False) -> list:
    """The rich renderables of one URL's report, in print order.

    First lines: the verdict, the leading cause and its fix (a five-second read); then the
    server stack, the collapsed profile rows, the refusal evidence and the other causes.
    ``-v`` adds the why, the long fixes and the raw bytes; it repeats nothing.
    """
    from rich.markup import escape
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    out: list = []
    state = "[bold green]OK[/]" if report.ok else "[bold red]PROBLEMS[/]"
    url = report.url if len(report.url) <= 100 or verbose else report.url[:97] + "..."
    out.append(Text.from_markup(f"\n[bold]{escape(url)}[/]  {state}  [dim]{escape(headline(report))}[/]"))
    lead = report.causes[0] if report.causes else None
    if lead is not None:
        out.extend(_finding_block(lead, numbered=False, verbose=verbose, lead=True))
    stack = next((f for f in report.facts if f.code in ("WS720", "WS721")), None)
    if stack is not None:
        text = ("server: " + stack.evidence.get("stack", "?")) if stack.code == "WS720" else "server: cannot tell from these answers"
        why = stack.evidence.get("reasons") if stack.code == "WS720" else stack.evidence.get("decide_with")
        out.append(Padding(Text.from_markup(f"{escape(text)} [dim]({'from ' if stack.code == 'WS720' else 'to tell: '}{escape(str(why or ''))})[/]"), (0, 0, 0, 2)))
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
    table.add_column("profiles", no_wrap=False)
    table.add_column("verdict", no_wrap=True)
    table.add_column("detail")
    for members, detail in collapse_rows(report.results):
        r = members[0]
        mark, style = MARK[r.verdict]
        label = r.verdict.label
        if r.verdict in (Verdict.REFUSED, Verdict.NOT_UPGRADED) and r.status is not None:
            label += f" ({r.status})"
        table.add_row(escape(_names(members)), f"[{style}]{mark} {label}[/]", escape(detail))
    out.append(table)
    for who, line, body in refusal_answers(report, verbose):
        out.append(Padding(Text.from_markup(f"[bold]answer[/] {escape(line)} [dim]({escape(_short_list(who))})[/]"), (0, 0, 0, 2)))
        out.append(Padding(Text(f"body: {body!r}" if body else "body: (empty)", style="dim"), (0, 0, 0, 4)))
    traced: dict[str, list[str]] = {}
    for r in report.results:
        if r.stages is not None:
            from wsdiag.core.stages import render_path

            traced.setdefault(render_path(r.stages), []).append(r.profile)
    if traced:
        out.append(Text.from_markup("[bold]Inside the app[/] (from the trace)"))
        for path_text, names in traced.items():
            out.append(Padding(Text.from_markup(f"[dim]{escape(_short_list(names))}:[/] {escape(path_text)}"), (0, 0, 0, 2)))
    if getattr(report, "socketio", None):  # Socket.IO mode: its own section (wsdiag.ui.socketio)
        from wsdiag.ui.socketio import socketio_renderables

        out.extend(socketio_renderables(report.socketio))
    if report.controls:
        parts = []
        for c in report.controls:
            what = c.verdict.label if c.verdict and c.status == 101 else (str(c.status) if c.status else c.exchange.error_kind or "no answer")
            parts.append(f"{c.name} → {what}")
        out.append(Text("controls: " + "; ".join(parts), style="dim"))
    if len(report.causes) > 1:
        out.append(Text.from_markup("[bold]Other possible causes[/]"))
        for f in report.causes[1:]:
            out.extend(_finding_block(f, numbered=True, verbose=verbose))
    others = _dedupe([f for r in report.results for f in r.findings if r.counts] + report.facts)
    shown = {f.code for f in report.causes} | {"WS720", "WS721", "WS705", "WS201"}  # said above already
    others = [f for f in others if f.code not in shown]
    if others:
        out.append(Text.from_markup("[bold]Findings[/]"))
        for f in others:
            sev = f.severity.value
            subjects = _short_list(str(f.evidence.get("_subjects") or f.subject).split(", "))
            out.append(Padding(Text.from_markup(
                f"[{SEVERITY_STYLE[sev]}]{f.code}[/] {escape(f.info.name)} [dim]({escape(subjects)})[/]: {escape(f.summary)}"),
                (0, 0, 0, 2)))
    if report.causes and not verbose:
        codes_ = " ".join(dict.fromkeys(f.code for f in report.causes))
        out.append(Text(f"more: wsdiag explain {codes_}   (-v: why, code fixes, raw bytes)", style="dim"))
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


def _short_list(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{len(names)}: {', '.join(names)}"


def _finding_block(f: Finding, numbered: bool, verbose: bool = False, lead: bool = False) -> list:
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    sev = f.severity.value
    head = f"{f.rank}. " if numbered and f.rank else ("→ " if lead else "")
    block = [
        Padding(Text.from_markup(f"{head}[{SEVERITY_STYLE[sev]}]{f.code} {escape(f.info.name)}[/] [dim]({sev}, {f.confidence})[/]"), (0, 0, 0, 2)),
        Padding(Text(f.summary), (0, 0, 0, 4)),
    ]
    for key in ("window", "note"):
        if f.evidence.get(key):
            block.append(Padding(Text(str(f.evidence[key]), style="italic"), (0, 0, 0, 4)))
    block.append(Padding(Text(f"fix: {f.info.fix}", style="bold" if lead else ""), (0, 0, 0, 4)))
    decide = f.evidence.get("decide_with")
    if decide:
        rivals = f.evidence.get("undecided")
        what = f"not decided (vs {', '.join(rivals)})" if rivals else "not decided from outside"
        block.append(Padding(Text(f"{what}; to decide: {decide}", style="yellow"), (0, 0, 0, 4)))
    if verbose:
        block.append(Padding(Text(f"why: {f.info.why}", style="dim"), (0, 0, 0, 4)))
        if f.info.fix_long:
            block.append(Padding(_fix_renderable(f.info.fix_long), (0, 0, 0, 2)))
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
