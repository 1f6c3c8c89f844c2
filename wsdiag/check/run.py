"""One ``wsdiag check`` run: scan the sources, optionally load and route the app, plan fixes.

An edge: it reads files, imports the app only in app mode (through ``inprocess``) and
writes files only when asked to fix them. It never prints; front ends (``wsdiag check``,
``flask wsdiag check``) render the ``CheckReport`` and choose the exit status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from wsdiag.core.findings import Finding
from wsdiag.check import advice as _advice
from wsdiag.check import static as _static
from wsdiag.check.result import CheckReport, FixResult, sort_key

# Codes about a rule's routing: in app mode the installed Werkzeug's verdict replaces the
# static one for the same declaration.
ROUTE_CODES = {"WS501", "WS509", "WS706", "WS701", "WS507"}
FIXABLE = {"WS501", "WS601"}


class CheckError(Exception):
    """wsdiag could not do the check (the app did not load); exit status 3, one line."""


class CheckUsage(Exception):
    """Bad input (a path that does not exist); exit status 2, one line."""


@dataclass
class CheckOptions:
    paths: list = field(default_factory=list)
    app: str | None = None  # MODULE:APP, MODULE:factory(), path.py; None with use_app -> FLASK_APP
    app_object: object = None  # an already loaded app (flask wsdiag check)
    use_app: bool = False
    profiles: list | None = None  # wsdiag.core.profiles.Profile objects for app mode
    fix: bool = False
    diff: bool = False
    versions: dict | None = None  # injected by tests; default: what is installed


@dataclass
class CheckRun:
    report: CheckReport
    diffs: dict = field(default_factory=dict)  # file -> unified diff of the fixes (--diff / --fix)


def display_path(path: str) -> str:
    """Paths under the current directory are shown relative to it, others as given."""
    absolute = os.path.abspath(path)
    rel = os.path.relpath(absolute)
    return absolute if rel.startswith("..") else rel


def _read(path: str) -> str:
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def run_check(opts: CheckOptions) -> CheckRun:
    versions = opts.versions if opts.versions is not None else _advice.installed_versions()
    werkzeug = versions.get("werkzeug")
    for p in opts.paths:
        if not os.path.exists(p):
            raise CheckUsage(f"no such file or directory: {p}")
    report = CheckReport("app" if (opts.use_app or opts.app or opts.app_object is not None) else "static", [],
                         versions=versions, advice=_advice.environment_advice(versions))
    app_check = None
    if report.mode == "app":
        from wsdiag.flaskapp import inprocess

        app = opts.app_object
        if app is None:
            try:
                app = inprocess.load_app(opts.app)
            except inprocess.LoadError as exc:
                raise CheckError(str(exc)) from None
        app_check = inprocess.check_app(app, opts.profiles, werkzeug, display=display_path)
        report.app = opts.app or (os.environ.get("FLASK_APP") if opts.app_object is None else None) or app_check.import_name
        report.profiles = [p.profile for p in (app_check.results[0].profiles if app_check.results else [])]
    files = [(display_path(f), explicit) for f, explicit in _static.iter_files(list(opts.paths))]
    if app_check is not None:
        files += [(display_path(f), False) for f in app_check.files]
    known = {display_path(p): sc for p, sc in app_check.scans.items()} if app_check is not None else {}
    scans = _scan_all(files, report, known)
    findings = _static.findings(scans, werkzeug)
    if app_check is not None:
        routed = set()
        for r in app_check.results:
            if r.file and r.line:
                routed.add((display_path(r.file), r.line))
        findings = [f for f in findings if not (f.code in ROUTE_CODES and (f.evidence.get("file"), f.evidence.get("line")) in routed)]
        for f in app_check.findings:
            if f.evidence.get("file"):
                f.evidence["file"] = display_path(f.evidence["file"])
            findings.append(f)
        report.routes = [_route_dict(r) for r in app_check.results]
    report.findings = sorted(findings, key=sort_key)
    _attach_diffs(report, scans)
    run = CheckRun(report)
    if opts.fix or opts.diff:
        _fixes(run, scans, werkzeug, write=opts.fix)
    return run


def _route_index(scans) -> dict:
    return {(s.file, r.loc.line, r.loc.col + 1): (s, r) for s in scans for r in s.routes}


def _attach_diffs(report: CheckReport, scans) -> None:
    """In-process findings about a declaration get the same diff the static scan shows."""
    index = _route_index(scans)
    for f in report.findings:
        e = f.evidence
        if f.code in FIXABLE and "diff" not in e and e.get("fix_blocker") is None:
            hit = index.get((e.get("file"), e.get("line"), e.get("column")))
            if hit and hit[1].edit is not None:
                scan, route = hit
                e["diff"] = _static.edit_diff(scan, route.edit)


def _scan_all(files, report: CheckReport, known: dict | None = None) -> list:
    """Scan each file once; ``known`` holds scans the in-process pass already made."""
    scans, seen = [], set()
    for path, explicit in files:
        if path in seen:
            continue
        seen.add(path)
        reuse = (known or {}).get(path)
        if reuse is not None and reuse.file == path and reuse.error is None and path.endswith(".py"):
            reuse.explicit = reuse.explicit or explicit
            scans.append(reuse)
            report.files.append(path)
            continue
        try:
            text = _read(path)
        except (OSError, UnicodeDecodeError) as exc:
            report.skipped.append((path, f"cannot read: {exc}"))
            continue
        scan = _static.scan_file(path, text, explicit)
        if scan.error:
            report.skipped.append((path, scan.error))
            continue
        scans.append(scan)
        report.files.append(path)
    return scans


def _route_dict(r) -> dict:
    d = r.to_dict()
    if d.get("file"):
        d["file"] = display_path(d["file"])
    return d


def _fixes(run: CheckRun, scans, werkzeug: str | None, write: bool) -> None:
    """Plan (and with ``write``, apply) websocket=True for every fixable finding that is safe."""
    report = run.report
    rel = _advice.release(werkzeug)
    index = _route_index(scans)
    edits: dict[str, list] = {}
    fixed: list[Finding] = []
    for f in report.findings:
        if f.code not in FIXABLE:
            continue
        e = f.evidence
        hit = index.get((e.get("file"), e.get("line"), e.get("column")))
        route = e.get("route", "?")
        if hit is None:
            reason = "no source location for this rule"
        else:
            reason = e.get("fix_blocker") or _static.fix_blocker(hit[1], rel)
            if reason is None and hit[1].edit is None:
                reason = hit[1].blocker or "no edit expresses this fix"
        if reason:
            report.fixes.append(FixResult(f.code, e.get("file", "?"), e.get("line") or 0, route, False, reason))
            continue
        scan, r = hit
        if r.edit not in edits.setdefault(scan.file, []):
            edits[scan.file].append(r.edit)
        report.fixes.append(FixResult(f.code, scan.file, r.loc.line, route, write))
        fixed.append(f)
    texts = {s.file: s.text for s in scans}
    changed = []
    for path, file_edits in edits.items():
        after = _static.apply_edits(texts[path], file_edits)
        run.diffs[path] = _static.unified_diff(path, texts[path], after, context=3)
        if write:
            if _read(path) != texts[path]:
                for fx in report.fixes:
                    if fx.file == path and fx.applied:
                        fx.applied, fx.reason = False, "the file changed while wsdiag was checking it"
                continue
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(after)
            changed.append(path)
    if not write or not changed:
        return
    applied = {(fx.file, fx.line) for fx in report.fixes if fx.applied}
    if report.mode == "static":
        rescanned = [_static.scan_file(s.file, _read(s.file), s.explicit) if s.file in changed else s for s in scans]
        report.findings = sorted(_static.findings(rescanned, werkzeug), key=sort_key)
    else:
        report.findings = [f for f in report.findings
                           if not (f.code in FIXABLE and (f.evidence.get("file"), f.evidence.get("line")) in applied)]
