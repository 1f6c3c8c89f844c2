"""One ``wsdiag check`` run: scan the sources, optionally load and route the app, plan fixes.

An edge: it reads files, imports the app only in app mode (through ``inprocess``) and
writes files only when asked to fix them. It never prints; front ends (``wsdiag check``,
``flask wsdiag check``) render the ``CheckReport`` and choose the exit status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from wsdiag.core.findings import Finding, SuggestedFix
from wsdiag.core.record import replace
from wsdiag.check import advice as _advice
from wsdiag.check import fixwrite as _fixwrite
from wsdiag.check import static as _static
from wsdiag.check.result import CheckReport, FixResult, sort_key

# Codes about a rule's routing: in app mode the installed Werkzeug's verdict replaces the
# static one for the same declaration.
ROUTE_CODES = {"WS501", "WS509", "WS706", "WS701", "WS507", "WS508"}
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
    # streaming static scan (no --app, --fix, --diff): facts per file, the cache, callbacks
    cache_dir: str | None = None  # None: wsdiag.check.cache.default_dir()
    use_cache: bool = True
    on_start: object = None  # called with the (empty) CheckReport when the streaming scan starts
    on_finding: object = None  # called with each Finding as soon as its file is scanned
    on_skip: object = None  # called with (file, why) for each file that cannot be scanned
    cache_stats: dict | None = None  # filled with the cache's hit/miss counts when given
    # named files (pre-commit's changed files) are judged inside their project (wsdiag.check.context)
    project_context: bool = True
    context_info: dict | None = None  # filled with the roots and context files used, when given


@dataclass
class CheckRun:
    report: CheckReport
    diffs: dict = field(default_factory=dict)  # file -> unified diff of the fixes (--diff / --fix)
    context: list | None = None  # the project context's summaries (wsdiag.check.context), static --fix/--diff


def display_path(path: str) -> str:
    """Paths under the current directory are shown relative to it, others as given."""
    absolute = os.path.abspath(path)
    rel = os.path.relpath(absolute)
    return absolute if rel.startswith("..") else rel


def _read(path: str) -> str:
    """Regular files only, size-bounded, decoded by BOM / PEP 263 cookie (``fixwrite``)."""
    return _fixwrite.read_text(path)


def run_check(opts: CheckOptions) -> CheckRun:
    if opts.use_app or opts.app or opts.app_object is not None:
        from wsdiag.flaskapp.inprocess import fewer_collections

        with fewer_collections():  # the app's and its scan's many long-lived objects
            return _run_check(opts)
    return _run_check(opts)


def _run_check(opts: CheckOptions) -> CheckRun:
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
    if app_check is None and not (opts.fix or opts.diff):
        _stream_static(opts, report, werkzeug)
        return CheckRun(report)
    ctx = None
    if app_check is None and opts.project_context:  # --fix/--diff on named files: judged in their project
        from wsdiag.check import context as _context

        ctx = _context.plan(list(opts.paths))
    files = [(display_path(f), explicit and not (ctx is not None and ctx.covers(f)))
             for f, explicit in _static.iter_files(list(opts.paths))]
    routes = None
    if app_check is None:  # static --fix/--diff: the route rules judge with the project's Werkzeug, as streaming does
        routes = _project_routes(report, ctx, opts.paths)
    if app_check is not None:
        files += [(display_path(f), False) for f in app_check.files]
        from wsdiag.check.deploy import deployment_files

        files += [(display_path(f), False) for f in deployment_files(app_check.files)]  # Procfile, gunicorn.conf.py...
    known = {display_path(p): sc for p, sc in app_check.scans.items()} if app_check is not None else {}
    scans = _scan_all(files, report, known)
    context = None
    if ctx is not None:
        context = _context.gather_cached(ctx, set(report.files) | {p for p, _ in report.skipped}, opts.use_cache,
                                         opts.cache_dir, versions, routes)
        if opts.context_info is not None:
            opts.context_info.update(ctx.info)
        findings = _context.findings(scans, context, werkzeug, versions, routes=routes)
    else:
        findings = _static.findings(scans, werkzeug, versions, routes)
    if app_check is not None:
        routed = set()
        for r in app_check.results:
            if r.file and r.line:
                routed.add((display_path(r.file), r.line))
        findings = [f for f in findings if not (f.code in ROUTE_CODES and _file_line(f) in routed)]
        for f in app_check.findings:
            if f.location is not None:
                f.location = replace(f.location, file=display_path(f.location.file))
            findings.append(f)
        report.routes = [_route_dict(r) for r in app_check.results]
        from wsdiag.check import sio as _sio

        findings = _sio.merge_live(findings, app_check.socketio, versions)  # the live SocketIO's facts win
        from wsdiag.flaskapp import health_live

        findings = health_live.merge(findings, app, scans)  # FM-21: the live app routes each health-check path
    report.findings = sorted(findings, key=sort_key)
    # static: each WS501 carries its project's refusal as its blocker (projpins); app mode: the scanned pins'
    refusal = None if routes is not None else _pinned_refusal(scans)
    _attach_diffs(report, scans, refusal)
    run = CheckRun(report, context=context)
    if opts.fix or opts.diff:
        _fixes(run, scans, werkzeug, write=opts.fix, roots=list(opts.paths) or ["."], pinned=refusal, routes=routes)
    return run


def _project_routes(report: CheckReport, ctx, paths: list):
    """The Werkzeug each file's route rules judge with (``projpins.Routes``), and the report's advice
    saying which release it is for and where it comes from."""
    from wsdiag.check import projpins as _projpins

    routes = _projpins.Routes(list(paths), ctx, report.versions)
    route, where = routes.header(list(paths))
    report.advice = _advice.environment_advice(report.versions, route, where)
    return routes


def _file_line(f: Finding) -> tuple:
    return (f.location.file, f.location.line) if f.location is not None else (None, None)


def _hit(index: dict, f: Finding):
    """The scanned route a finding's location names, if any."""
    at = f.location
    return index.get((at.file, at.line, at.column)) if at is not None else None


def _route_index(scans) -> dict:
    return {(s.file, r.loc.line, r.loc.col + 1): (s, r) for s in scans for r in s.routes}


def _attach_diffs(report: CheckReport, scans, refusal: str | None = None) -> None:
    """In-process findings about a declaration get the same diff the static scan shows, unless the
    project's pins make websocket=True wrong (``refusal``: then that reason, and no diff)."""
    index = _route_index(scans)
    for f in report.findings:
        fix = f.fix or SuggestedFix()
        if f.code in FIXABLE and refusal and fix.blocker is None:
            f.fix = replace(fix, diff=None, blocker=refusal)
        elif f.code in FIXABLE and fix.diff is None and fix.blocker is None:
            hit = _hit(index, f)
            if hit and hit[1].edit is not None:
                scan, route = hit
                f.fix = replace(fix, diff=_static.edit_diff(scan, route.edit))


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


def _pinned_refusal(scans) -> str | None:
    """``model.Project.pinned_fix_refusal`` for the scanned files (wsdiag.check.pins)."""
    from wsdiag.check import model as _model
    from wsdiag.check import rules as _rules

    return _model.Project([_rules.summary(s) for s in scans]).pinned_fix_refusal()


def _fixes(run: CheckRun, scans, werkzeug: str | None, write: bool, roots: list | None = None,
           pinned: str | None = None, routes=None) -> None:
    """Plan (and with ``write``, apply) websocket=True for every fixable finding that is safe.
    ``routes`` (``projpins.Routes``): the Werkzeug each file is judged with, from the project's pins
    (None: the installed ``werkzeug``); ``pinned``: why the scanned pins make websocket=True wrong
    (app mode; ``model.Project.pinned_fix_refusal``)."""
    report = run.report
    installed = _advice.release(werkzeug)
    index = _route_index(scans)
    edits: dict[str, list] = {}
    fixed: list[Finding] = []
    for f in report.findings:
        if f.code not in FIXABLE:
            continue
        hit = _hit(index, f)
        route = f.evidence.get("route", "?")
        reason: str | None
        if hit is None:
            reason = "no source location for this rule"
        else:
            rel = routes.for_file(hit[0].file) if routes is not None else installed
            reason = (f.fix.blocker if f.fix is not None else None) or _static.fix_blocker(hit[1], rel) or pinned
            if reason is None and hit[1].edit is None:
                reason = hit[1].blocker or "no edit expresses this fix"
        if reason:
            file, line = _file_line(f)
            report.fixes.append(FixResult(f.code, file or "?", line or 0, route, False, reason))
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
            why = _fixwrite.write_fixed(path, texts[path], after, roots)
            if why is not None:  # a per-file refusal; the run goes on
                for fx in report.fixes:
                    if fx.file == path and fx.applied:
                        fx.applied, fx.reason = False, why
                continue
            changed.append(path)
    if not write or not changed:
        return
    applied = {(fx.file, fx.line) for fx in report.fixes if fx.applied}
    if report.mode == "static":
        rescanned = [_static.scan_file(s.file, _read(s.file), s.explicit) if s.file in changed else s for s in scans]
        if run.context is not None:
            from wsdiag.check import context as _context

            report.findings = sorted(_context.findings(rescanned, run.context, werkzeug, report.versions, routes=routes),
                                     key=sort_key)
        else:
            report.findings = sorted(_static.findings(rescanned, werkzeug, report.versions, routes), key=sort_key)
    else:
        report.findings = [f for f in report.findings
                           if not (f.code in FIXABLE and _file_line(f) in applied)]


# -- the streaming static scan ---------------------------------------------------------
#
# Files are read, scanned and reported one at a time; what is kept is each file's compact
# facts (its findings, whether it uses WebSockets), never its text or syntax tree. The one
# cross-file rule: a server start (WS504) or gunicorn worker (WS505) in a file not named
# explicitly counts only if some file of the project uses WebSockets, so those findings wait
# (as compact findings) until such a file is seen, or the end.

DEPLOY_CODES = ("WS504", "WS505")
# A Python file without these words (case-insensitive) yields no fact any rule uses: a route or
# hook finding needs "wsgi.websocket", websocket=True, flask_sockets or a Sockets receiver
# (``Sockets(app)``, ``sockets.route``); the other stacks are named by their imports
# (flask_sock, simple_websocket, socketio, uwsgi); a server start needs run_simple, WSGIServer
# or an app's .run() (an app by name or by a Flask()/create_app()/make_app() assignment);
# monkey patching needs patch_all; a gunicorn fact needs worker_class or "gunicorn" in the file
# name. Such a file is only parsed; one that does not parse goes through the full scan. The
# rules evolve: tests/test_scale.py checks that the findings over real trees (fixtures, tests,
# the installed Flask/gevent/socketio packages) are the same with and without this filter.
_WORDS = ("websocket", "flask_sock", "socketio", "uwsgi", "run_simple", "wsgiserver", "worker_class", "patch_all",
          "register_blueprint")  # a blueprint's url_prefix decides the path a health check hits (WS525)
_TRIGGERS = None


def _triggers():
    global _TRIGGERS
    if _TRIGGERS is None:
        import re

        _TRIGGERS = (re.compile(r"(?i)\bsockets\s*[.(]"), re.compile(r"\.\s*run\b"),
                     re.compile(r"(?i)\bapp\b|application|flask|create_app|make_app|current_app"))
    return _TRIGGERS


def _relevant(text: str) -> bool:
    """Plain substring tests first (a case-insensitive regex alternation is ~10x slower)."""
    low = text.lower()
    if any(w in low for w in _WORDS):
        return True
    sockets, run, app = _triggers()
    if "sockets" in low and sockets.search(text):
        return True
    return "run" in text and run.search(text) is not None and app.search(text) is not None


def skippable(path: str, text: str) -> bool:
    """The word prefilter: a Python file that names nothing any rule looks at (no WebSocket stack,
    server or app start; not a gunicorn config; not setup.py, which carries pins) has no facts
    unless it fails to parse. The one test, for the file loop and the project context."""
    name = os.path.basename(path)
    return (path.endswith((".py", ".pyw")) and "gunicorn" not in name.lower() and name != "setup.py"
            and not _relevant(text))


def _pack(f: Finding) -> list:
    return [f.code, f.wire_evidence(), f.subject, f.confidence]


def _unpack(item: list) -> Finding:
    return Finding.from_wire(item[0], item[1], subject=item[2], confidence=item[3])


PREFILTER = True  # tests turn it off to prove it changes no finding


def file_facts(path: str, text: str, explicit: bool, versions: dict, prefilter: bool | None = None,
               route: _advice.Release | None = None) -> list:
    """One file's compact facts: [error, uses_websocket, local findings, deployment findings].
    ``route``: the Werkzeug the route rules judge with (``projpins``; None: the installed one)."""
    if prefilter is None:
        prefilter = PREFILTER
    if prefilter and skippable(path, text):
        import ast

        try:
            ast.parse(text, filename=path)
            return [None, False, [], []]
        except (SyntaxError, ValueError):
            pass  # the full scan says what a file that does not parse means
    scan = _static.scan_file(path, text, explicit)
    if scan.error:
        return [scan.error, False, [], []]
    werkzeug = route if route is not None else versions.get("werkzeug")
    from wsdiag.check import rules as _rules

    # per-file findings now; servers and workers are judged against the project's stacks at
    # the end (wsdiag.check.rules.project_findings over each file's compact summary, fact 5)
    local = [_pack(f) for f in _rules.file_findings(scan, werkzeug)]
    deploy: list = []
    summary = _rules.summary(scan)
    facts = [None, bool(scan.uses_websocket), local, deploy, summary]
    if local or deploy or summary:  # the same JSON types whether the facts come from the cache or not
        import json

        facts = json.loads(json.dumps(facts, default=str))
    return facts


def _stream_static(opts: CheckOptions, report: CheckReport, werkzeug: str | None) -> None:
    cache = None
    if opts.use_cache:
        from wsdiag.check.cache import Cache, default_dir

        cache = Cache(opts.cache_dir or default_dir(), report.versions)
    ctx = None
    if opts.project_context:
        from wsdiag.check import context as _context

        ctx = _context.plan(list(opts.paths))
    # the project's Werkzeug, before the loop reaches its pin file: the route rules judge with it
    routes = _project_routes(report, ctx, opts.paths)
    if callable(opts.on_start):
        opts.on_start(report)
    emit = opts.on_finding if callable(opts.on_finding) else None
    skip = opts.on_skip if callable(opts.on_skip) else None
    waiting: list[Finding] = []  # deployment findings waiting for a file that uses WebSockets
    summaries: list = []  # compact per-file facts for the project rules (wsdiag.check.rules)
    findings: list[Finding] = []

    def found(f: Finding) -> None:
        findings.append(f)
        if emit is not None:
            emit(f)

    import gc

    # Parsing makes millions of short-lived AST nodes, freed by reference counting; with the
    # default thresholds the cycle collector runs every 700 of them and walks everything
    # imported (~15% of a big scan). Freeze what exists and collect less often; restored below.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], 50_000), thresholds[1], max(thresholds[2], 100))
    try:
        _stream_files(opts, report, cache, found, skip, waiting, summaries, ctx, routes)
        if ctx is not None:  # the rest of the project: summaries only, never reported on their own
            run_files = set(report.files) | {p for p, _ in report.skipped}
            summaries += ctx.gather(run_files, cache, report.versions, routes)
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()

    from wsdiag.check import rules as _rules

    project = _rules.project_findings(summaries, werkzeug, report.versions)
    if ctx is not None:
        project = _context.concerns(project, summaries, run_files, report.versions)
        if opts.context_info is not None:
            opts.context_info.update(ctx.info)
    for f in sorted(project, key=sort_key):
        found(f)
    if cache is not None:
        cache.save()
        if opts.cache_stats is not None:
            opts.cache_stats.update(cache.stats)
    report.findings = sorted(findings, key=sort_key)


def _stream_files(opts: CheckOptions, report: CheckReport, cache, found, skip, waiting: list, summaries: list,
                  ctx=None, routes=None) -> None:
    """The file loop: read, look up or compute the file's compact facts, report, forget."""
    from wsdiag.check import projpins as _projpins

    project_ws = False
    seen: set = set()
    for raw, explicit in _static.iter_files(list(opts.paths)):
        explicit = explicit and not (ctx is not None and ctx.covers(raw))  # judged as `check ROOT` judges it
        path = display_path(raw)
        if path in seen:
            continue
        seen.add(path)
        try:
            data = _fixwrite.read_bytes(raw)  # regular files only, size-bounded
        except OSError as exc:
            report.skipped.append((path, f"cannot read: {exc}"))
            if skip is not None:
                skip(path, report.skipped[-1][1])
            continue
        key = facts = None
        route = routes.for_file(raw) if routes is not None else None  # the project's Werkzeug (projpins)
        if cache is not None:
            key = cache.key(path, data, explicit, _projpins.salt(route) if route is not None else "")
            facts = cache.get(key)
        if facts is None:
            try:
                text = _fixwrite.decode_source(raw, data)  # BOM, PEP 263 coding cookie
            except OSError as exc:
                facts = [f"cannot read: {exc}", False, [], []]
            else:
                facts = file_facts(path, text, explicit, report.versions, route=route)
            if cache is not None:
                cache.put(key, facts)
        del data
        error, uses_ws, local, deploy = facts[:4]
        if len(facts) > 4 and facts[4]:
            summaries.append(facts[4])
        if error:
            report.skipped.append((path, error))
            if skip is not None:
                skip(path, error)
            continue
        report.files.append(path)
        if uses_ws and not project_ws:
            project_ws = True
            for f in waiting:
                found(f)
            waiting.clear()
        now = [_unpack(it) for it in local]
        if project_ws or explicit:
            now += [_unpack(it) for it in deploy]
        else:
            waiting += [_unpack(it) for it in deploy]
        for f in sorted(now, key=sort_key):
            found(f)
