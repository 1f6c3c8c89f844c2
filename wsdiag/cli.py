"""The ``wsdiag`` command line: parse options, call the layers, render, choose the exit status.

Only this module imports everything, and nothing imports it.  Flask, gevent and rich are
imported inside the commands that need them, so ``wsdiag --help`` stays fast.
"""

from __future__ import annotations

import os
import sys

import click

from wsdiag import __version__
from wsdiag.core.exits import HELP as EXIT_HELP_TEXT
from wsdiag.core.exits import Exit


EXIT_HELP = EXIT_HELP_TEXT


class UsageFailure(click.UsageError):
    exit_code = Exit.USAGE


class FiniteFloat(click.FloatRange):
    """click.FloatRange that also refuses nan (every comparison with nan is false, so a plain
    range lets it through to the code that waits)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if rv != rv or rv in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


MAX_URL_LINE = 8192  # characters in one --from-file line
MAX_URLS = 100_000  # URLs from --from-file (a report is kept per URL; --format jsonl streams)


def _url_lines(fh) -> list[str]:
    """The URLs of a --from-file file, bounded in line length and count (it may be /dev/zero)."""
    urls: list[str] = []
    for number in range(1, 10 * MAX_URLS):
        line = fh.readline(MAX_URL_LINE + 1)
        if not line:
            return urls
        if len(line) > MAX_URL_LINE and not line.endswith("\n"):
            _fail_usage(f"--from-file line {number} is longer than {MAX_URL_LINE} characters")
        text = line.strip()
        if text and not text.startswith("#"):
            urls.append(text)
            if len(urls) > MAX_URLS:
                _fail_usage(f"--from-file holds more than {MAX_URLS} URLs (use --format jsonl, or split the file)")
    _fail_usage(f"--from-file has more than {10 * MAX_URLS} lines")
    return urls


def _fail_usage(message: str) -> None:
    raise UsageFailure(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_HELP)
@click.version_option(__version__, "-V", "--version", prog_name="wsdiag")
def main() -> None:
    """Say where a WebSocket upgrade dies, why, and how to fix it.

    Built for Flask + gevent-websocket apps whose socket opens and closes at once.
    """
    _load_refreshed_profiles()


def _profiles_file() -> str:
    """Where `profiles --refresh` writes browser profiles and every run reads them."""
    if os.environ.get("WSDIAG_PROFILES"):
        return os.environ["WSDIAG_PROFILES"]
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "wsdiag", "profiles.json")


def _load_refreshed_profiles() -> None:
    path = _profiles_file()
    if not os.path.isfile(path):
        return
    import json

    from wsdiag.core.profiledata import ProfileDataError, install

    try:
        with open(path, encoding="utf-8") as f:
            install(json.load(f))
    except (OSError, ValueError, ProfileDataError) as exc:
        sys.stderr.write(f"wsdiag: warning: ignoring profiles file {path}: {exc}\n")


# -- probe -----------------------------------------------------------------------------


def _parse_headers(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for raw in values:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip() or any(c in name for c in " \t\r\n") or "\n" in value or "\r" in value:
            _fail_usage(f"bad --header {raw!r}: use 'Name: value' (an empty value removes the header)")
        out.append((name.strip(), value.strip()))
    return tuple(out)


def _probe_options(profile, header, origin, subprotocol, timeout, watch, insecure, cacert, proxy, no_proxy,
                   no_controls, concurrency, hold=0.0):
    from wsdiag.net.probe import ProbeOptions
    from wsdiag.core.profiles import UnknownProfile, resolve
    from wsdiag.net.transport import Settings

    try:
        profiles = resolve(profile)
    except UnknownProfile as exc:
        _fail_usage(str(exc))
    if cacert:  # a CA file wsdiag cannot use is the user's to fix, not the server's fault
        import ssl

        try:
            ssl.create_default_context(cafile=cacert)
        except (OSError, ssl.SSLError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            _fail_usage(f"--cacert {cacert!r} cannot be read as a CA bundle: {why}")
    if proxy and "://" not in proxy:
        proxy = "http://" + proxy
    settings = Settings(timeout=timeout, watch=watch, insecure=insecure, cacert=cacert,
                        proxy=proxy, use_env_proxy=not no_proxy)
    protos = tuple(p.strip() for s in subprotocol for p in s.split(",") if p.strip())
    opts = ProbeOptions(profiles, settings, origin, protos, _parse_headers(header), not no_controls, concurrency)
    opts.hold = hold or 0.0
    return opts


def _probe_params(f):
    opts = [
        click.option("-p", "--profile", multiple=True, metavar="NAME",
                     help="Client profile (repeatable, comma lists, 'all', 'default'). See `wsdiag profiles`."),
        click.option("-H", "--header", multiple=True, metavar="'NAME: VALUE'",
                     help="Add or replace a request header (empty value removes it)."),
        click.option("--origin", help="Origin header to send (default: the URL's own origin)."),
        click.option("--subprotocol", multiple=True, metavar="NAME", help="Offer a subprotocol (repeatable)."),
        click.option("--timeout", type=FiniteFloat(0.1, 120), default=5.0, show_default=True,
                     help="Seconds per exchange, from connect to complete answer."),
        click.option("--watch", type=FiniteFloat(0, 60), default=1.0, show_default=True,
                     help="Seconds to watch the socket after a 101 (ends early once the outcome is known)."),
        click.option("-k", "--insecure", is_flag=True, help="Do not verify TLS certificates."),
        click.option("--cacert", type=click.Path(dir_okay=False), help="CA bundle to verify TLS with."),
        click.option("--proxy", metavar="URL", help="HTTP proxy for CONNECT (default: HTTPS_PROXY/HTTP_PROXY, NO_PROXY)."),
        click.option("--no-proxy", is_flag=True, help="Ignore proxy environment variables."),
        click.option("--no-controls", is_flag=True, help="Skip the control requests (plain GET, impossible path)."),
        click.option("--hold", type=FiniteFloat(0, 3600), default=0, metavar="SECONDS",
                     help="Hold an idle (and a pinging) session this long and report who ends it (off by default)."),
        click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True,
                     help="Exchanges in flight at once."),
        click.option("--json", "as_json", is_flag=True, help="Print the versioned JSON report (docs/json.md)."),
        click.option("-v", "--verbose", is_flag=True, help="Show raw request/response heads and frames."),
        click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), default="error", show_default=True,
                     help="Lowest severity that makes the exit status 1."),
        click.option("--show-secrets", is_flag=True, help="Do not redact Authorization/Cookie values in output."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@main.command(epilog=EXIT_HELP)
@click.argument("urls", nargs=-1, metavar="URL...")
@click.option("--from-file", type=click.File("r"), help="Read URLs from a file (one per line, # comments).")
@click.option("--sample", is_flag=True, help="Start the built-in sample server and probe its three variants.")
@click.option("--app", "app_spec", metavar="MODULE:APP",
              help="Start this Flask app (MODULE:APP, MODULE:create_app(), or FLASK_APP with '-') under "
                   "gevent-websocket, instrumented, and probe its WebSocket routes.")
@click.option("--path", "paths", multiple=True, metavar="PATH", help="With --app: probe this path (repeatable) instead of the routes found.")
@click.option("--gunicorn", is_flag=True, help="With --app: serve under gunicorn's GeventWebSocketWorker.")
@click.option("--server", "app_server", metavar="SERVER",
              help="With --app: serve with gevent-websocket | gevent | dev | gunicorn:WORKER (gunicorn:gthread/N) "
                   "instead of the app's own server call or deployment config (the default).")
@click.option("--app-timeout", type=FiniteFloat(1, 600), default=20.0, show_default=True,
              help="With --app: seconds to wait for the app to start listening.")
@click.option("--trace", "trace_url", metavar="URL", help="Trace channel of an app instrumented with wsdiag (see docs/trace.md).")
@click.option("--trace-token", envvar="WSDIAG_TRACE_TOKEN", metavar="TOKEN", help="Token of the trace channel [env WSDIAG_TRACE_TOKEN].")
@click.option("--browser", "browsers", multiple=True, type=click.Choice(["chromium", "firefox", "all"]),
              help="Also open each URL in this installed browser, headless (repeatable); a row next to the profiles.")
@click.option("--page", "browser_page", metavar="URL", help="With --browser: open this page (it opens the socket itself).")
@click.option("--save", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write a repro bundle (wsdiag.bundle/1: exact bytes, timings, trace, versions, verdicts; secrets redacted).")
@click.option("--har", type=click.Path(dir_okay=False), metavar="FILE", help="Export the exchanges as HAR 1.2 (Chrome's WebSocket form).")
@click.option("--no-bisect", is_flag=True, help="Do not bisect automatically when profiles split (see `wsdiag bisect`).")
@click.option("--format", "fmt", type=click.Choice(["human", "json", "jsonl"]), default=None,
              help="Output: human (default), json (= --json, one document), jsonl (one record per URL as it "
                   "completes, then a summary record; memory bounded whatever the URL count).")
@click.option("--per-host", type=click.IntRange(1, 256), metavar="N", help="With jsonl: at most N URLs of one host:port in flight.")
@click.option("--rate", type=FiniteFloat(0.01, 100000), metavar="N", help="With jsonl: start at most N URLs per second.")
@click.option("--resume", type=click.Path(dir_okay=False), metavar="FILE",
              help="With jsonl: skip the URLs FILE (an earlier jsonl output) records, and append the new records to it.")
@click.option("--socketio", "socketio", is_flag=False, flag_value="", default=None, metavar="[PATH]",
              help="Socket.IO mode for every URL (automatic for /socket.io/ paths and EIO= queries); PATH "
                   "replaces the Engine.IO path (default: the URL's, or /socket.io/).")
@click.option("--eio", type=click.Choice(["3", "4"]), default=None, help="Socket.IO mode: Engine.IO revision to speak "
              "(default: the URL's EIO=, else 4).")
@click.option("--namespace", metavar="NS", default="/", show_default=True, help="Socket.IO mode: namespace to connect.")
@click.option("--auth", "sio_auth", metavar="JSON", help="Socket.IO mode: the auth payload of the connect (JSON).")
@click.option("--sessions", "sio_sessions", type=click.IntRange(0, 64), default=6, show_default=True,
              help="Socket.IO mode: concurrent polling sessions for the several-processes check (0 skips it).")
@_probe_params
def probe(urls, from_file, sample, app_spec, paths, gunicorn, app_server, app_timeout, trace_url, trace_token, fmt,
          per_host, rate, resume, **kw):
    """Probe URL(s) with several clients' handshakes and diagnose the failures.

    With --app, wsdiag starts your app itself the way production runs it and reads each
    upgrade's path through before_request, routing and the view from the app's own trace.
    """
    from wsdiag.core.handshake import BadURL, parse_target

    if trace_url and not trace_token:
        _fail_usage("--trace needs --trace-token (or WSDIAG_TRACE_TOKEN)")
    if (paths or gunicorn or app_server) and not app_spec:
        _fail_usage("--path, --gunicorn and --server go with --app")
    if app_server and not (app_server in ("gevent-websocket", "gevent", "dev")
                           or (app_server.startswith("gunicorn:") and len(app_server) > len("gunicorn:"))):
        _fail_usage(f"--server must be gevent-websocket, gevent, dev or gunicorn:WORKER (got {app_server!r})")
    if sample and app_spec:
        _fail_usage("--sample and --app cannot be combined: choose one")
    kw.update(trace=(trace_url, trace_token) if trace_url else None, app=app_spec, paths=paths, gunicorn=gunicorn,
              app_timeout=app_timeout, app_server=app_server)
    sio, sio_url = _socketio_options(kw)
    if sio_url:  # `--socketio ws://...`: click took the URL as the optional PATH
        urls = (sio_url, *urls)

    if fmt == "json":
        kw["as_json"] = True
    if (per_host or rate or resume) and fmt != "jsonl":
        _fail_usage("--per-host, --rate and --resume go with --format jsonl")
    if fmt == "jsonl":  # wsdiag.net.fleet: streams, memory bounded
        if sample or app_spec or trace_url or kw.get("as_json") or sio[1] or kw.get("browsers") or kw.get("save") or kw.get("har"):
            _fail_usage("--format jsonl goes with URLs and --from-file (not --sample, --app, --trace, --json, "
                        "--socketio, --browser, --save or --har)")
        from wsdiag.fleet_command import run_fleet_command

        accepted = _probe_options.__code__.co_varnames[:_probe_options.__code__.co_argcount]
        sys.exit(run_fleet_command(urls, from_file, per_host=per_host, rate=rate, resume=resume,
                                   options=lambda **o: _probe_options(**{k: v for k, v in o.items() if k in accepted}),
                                   **kw))
    urls = list(urls)
    if from_file is not None:
        try:
            urls += _url_lines(from_file)
        except (OSError, UnicodeDecodeError) as exc:
            _fail_usage(f"cannot read --from-file: {exc}")
    if not urls and not sample and not app_spec:
        _fail_usage("give at least one URL (or --sample, or --app MODULE:APP)")
    for url in urls:
        try:
            parse_target(url)
        except BadURL as exc:
            _fail_usage(str(exc))
    sys.exit(_run_probe(urls, sample=sample, socketio=sio, **kw))


def _socketio_options(kw: dict):
    """Pop the Socket.IO options from ``kw``: ((SioOptions, forced), a URL click took as PATH or None)."""
    forced, eio, namespace, auth, sessions = (kw.pop(k) for k in ("socketio", "eio", "namespace", "sio_auth",
                                                                   "sio_sessions"))
    if forced is None and eio is None and namespace == "/" and auth is None and sessions == 6:
        return (None, False), None  # no Socket.IO option: the defaults apply (and nothing is imported)
    from wsdiag.core.engineio import SioOptions, parse_auth

    try:
        auth_value = parse_auth(auth)
    except ValueError as exc:
        _fail_usage(str(exc))
    path, url = forced or None, None
    if path is not None and "://" in path:
        path, url = None, path
    if path is not None and not path.startswith("/"):
        _fail_usage(f"--socketio PATH must start with '/' (got {path!r})")
    opts = SioOptions(eio=int(eio or 4), eio_forced=eio is not None, namespace=namespace, auth=auth_value,
                      path=path, sessions=sessions)
    return (opts, forced is not None), url


@main.command(epilog=EXIT_HELP)
@_probe_params
def demo(**kw):
    """Start the sample server, probe every variant, explain, stop (exits 0 if it ran)."""
    kw["fail_on"] = "never"
    sys.exit(_run_probe([], sample=True, **kw))


def _run_probe(urls, *, sample, as_json, verbose, fail_on, show_secrets, trace=None, app=None, paths=(),
               gunicorn=False, app_timeout=20.0, app_server=None, socketio=None, browsers=(), browser_page=None, save=None, har=None,
               no_bisect=False, **kw) -> int:
    from wsdiag.ui import render
    from wsdiag.net.probe import probe as run

    if browser_page and not browsers:
        _fail_usage("--page goes with --browser")
    if browser_page and not browser_page.startswith(("http://", "https://")):
        _fail_usage(f"--page {browser_page!r} is not an http:// or https:// URL")
    opts = _probe_options(**kw)
    opts.trace = trace
    if socketio is not None:
        opts.socketio, opts.socketio_forced = socketio
    out = render.Output(sys.stdout, sys.stderr)
    child = None
    served: dict | None = None  # probe --app: the server it was started under, and why
    try:
        if sample:
            from wsdiag.flaskapp.needs import missing_gevent
            from wsdiag.proc import SampleError, start_sample

            if missing_gevent("the sample server"):
                out.error(f"wsdiag: {missing_gevent('the sample server')}")
                return Exit.COULD_NOT_RUN
            try:
                child = start_sample()
            except SampleError as exc:
                out.error(f"wsdiag: could not start the sample server: {exc}")
                return Exit.COULD_NOT_RUN
            urls = [child.url(v) for v in ("route", "hook", "fixed")] + list(urls)
            opts.trace = child.trace
        elif app:
            from wsdiag.check.deploy import choose_server, needs_gevent
            from wsdiag.flaskapp.needs import missing_gevent
            from wsdiag.flaskapp.appserver import GUNICORN_WORKER, AppStartError, start_app

            # the way the app is deployed (its own server call or deployment config), unless told;
            # never monkey-patched by wsdiag: only the app's own patching counts
            if app_server:
                server, why = app_server, "--server"
            elif gunicorn:
                server, why = f"gunicorn:{GUNICORN_WORKER}", "--gunicorn"
            else:
                server, why = choose_server(None if app == "-" else app)
            if needs_gevent(server) and missing_gevent(f"probe --app with server {server}"):
                out.error(f"wsdiag: {missing_gevent(f'probe --app with server {server}')}")
                return Exit.COULD_NOT_RUN
            try:
                child = start_app(None if app == "-" else app, path_hint=paths[0] if paths else None,
                                  server=server, monkey_patch=False,
                                  timeout=app_timeout)
            except AppStartError as exc:
                out.error(f"wsdiag: could not start the app: {exc}")
                return Exit.COULD_NOT_RUN
            found = list(paths) or [r["example_path"] for r in child.routes]
            if not found:
                out.error(f"wsdiag: no WebSocket route found in {app!r} (no websocket=True rule, no view reading "
                          "wsgi.websocket): give --path")
                return Exit.USAGE
            urls = [child.ws_url(p) for p in dict.fromkeys(found)] + list(urls)
            opts.trace = (child.trace_url, child.token)
            v = child.versions  # which server and why, on stderr in every format (stdout stays the report)
            out.error(f"wsdiag: started {app} under {child.server or server} ({why}) "
                      f"(Flask {v.get('flask')}, Werkzeug {v.get('werkzeug')}) on {child.base_url}")
            served = {"app": app, "server": child.server or server, "why": why,
                          "flask": v.get("flask"), "werkzeug": v.get("werkzeug")}
        streaming = not as_json and len(urls) > 1 and not browsers
        if browsers:
            _add_browser_profiles(opts, browsers)
        reports = run(urls, opts, on_report=(lambda r: out.text_report(r, verbose, show_secrets)) if streaming else None)
        if not no_bisect:
            from wsdiag.net.bisect import auto_bisect

            for r in reports:
                auto_bisect(r, opts.settings, origin=opts.origin, extra_headers=opts.extra_headers)
        if browsers:
            _run_browsers(reports, browsers, browser_page, opts.settings, out)
    except KeyboardInterrupt:
        out.error("wsdiag: interrupted")
        return 130
    finally:
        if child is not None:
            child.stop()
    if as_json:
        out.json(reports, show_secrets, verbose, served)
    elif not streaming:
        for r in reports:
            out.text_report(r, verbose, show_secrets)
    if not as_json:
        if app and len(reports) > 1:
            out.route_matrix(reports)
        out.summary(reports)
    if browsers and not as_json:
        from wsdiag.ui.extras import browser_rows_text

        for r in reports:
            browser_rows_text(r.url, getattr(r, "browsers", []), sys.stdout)
    if save or har:
        _save_bundle(reports, save, har, opts.trace, out)
    return _status(reports, fail_on)


def _add_browser_profiles(opts, browsers) -> None:
    """Probe the profile of every browser asked for, so each browser has a verdict beside it."""
    from wsdiag.core.browsercheck import PROFILE_OF
    from wsdiag.core.profiles import PROFILES

    names = [PROFILE_OF[b] for b in _browser_names(browsers)]
    have = {p.name for p in opts.profiles}
    opts.profiles = list(opts.profiles) + [PROFILES[n] for n in names if n not in have]


def _browser_names(browsers) -> list[str]:
    return list(dict.fromkeys(n for b in browsers for n in (("chromium", "firefox") if b == "all" else (b,))))


def _run_browsers(reports, browsers, page, settings, out) -> None:
    from wsdiag.core.browsercheck import attach
    from wsdiag.net.browser import run_browser

    for r in reports:
        runs = []
        for name in _browser_names(browsers):
            run = run_browser(name, r.url, page=page, timeout=max(30.0, settings.timeout * 4), watch=settings.watch)
            if run.error:
                out.error(f"wsdiag: {name}: {run.error}")
            runs.append(run.to_dict())
        attach(r, runs)


def _save_bundle(reports, save, har, trace, out) -> None:
    from wsdiag.ui import bundle_io

    doc = bundle_io.build(reports, trace_token=trace[1] if trace else None)
    try:
        if save:
            bundle_io.write_json(save, doc)
        if har:
            bundle_io.write_har(har, doc)
    except OSError as exc:
        out.error(f"wsdiag: cannot write {exc.filename or save or har}: {exc.strerror or exc}")


def _status(reports, fail_on: str) -> int:
    from wsdiag.core.codes import Severity

    if fail_on == "never":
        return Exit.OK
    floor = Severity.ERROR if fail_on == "error" else Severity.WARNING
    for r in reports:
        worst = r.worst
        if worst is not None and worst.rank >= floor.rank:
            return Exit.FINDINGS
    return Exit.OK


# -- profiles, explain -----------------------------------------------------------------


@main.command()
@click.option("--show", metavar="NAME", help="Print the exact request bytes a profile sends.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.option("--refresh", is_flag=True, help="Re-capture the browser profiles from the installed browsers "
              "(headless, loopback only) and write them to the profiles file, which later runs read.")
@click.option("--output", "refresh_output", type=click.Path(dir_okay=False), metavar="FILE",
              help="With --refresh: the file to write (default: $WSDIAG_PROFILES, else ~/.config/wsdiag/profiles.json).")
def profiles(show, as_json, refresh, refresh_output):
    """List the client profiles and where their bytes come from."""
    from wsdiag.ui import render
    from wsdiag.core.profiles import ORDER, PROFILES

    out = render.Output(sys.stdout, sys.stderr)
    if refresh:
        from wsdiag.net.refresh import refresh_profiles

        try:
            path, notes = refresh_profiles(refresh_output or _profiles_file())
        except OSError as exc:
            out.error(f"wsdiag: cannot write the profiles file: {exc.strerror or exc}")
            sys.exit(Exit.COULD_NOT_RUN)
        for note in notes:
            out.error(f"wsdiag: {note}")
        if path is None:
            sys.exit(Exit.COULD_NOT_RUN)
        out.error(f"wsdiag: wrote {path}")
        import json

        from wsdiag.core.profiledata import install

        with open(path, encoding="utf-8") as f:
            install(json.load(f))
    if show:
        if show not in PROFILES:
            _fail_usage(f"unknown profile {show!r} (choose from: {', '.join(ORDER)})")
        out.profile_request(PROFILES[show])
        return
    out.profiles([PROFILES[n] for n in ORDER], as_json)


@main.command()
@click.argument("code", required=False)
@click.option("--list", "list_", is_flag=True, help="List every code.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def explain(code, list_, as_json):
    """Explain a finding code (e.g. WS601 or route-not-websocket)."""
    from wsdiag.ui import render
    from wsdiag.core.codes import REGISTRY, lookup

    out = render.Output(sys.stdout, sys.stderr)
    if list_ or not code:
        out.code_list(list(REGISTRY.values()), as_json)
        return
    found = lookup(code)
    if found is None:
        _fail_usage(f"unknown code {code!r}; `wsdiag explain --list` shows them all")
    out.explain(found, as_json)


# -- bisect, replay (issue 13) -----------------------------------------------------------


def _bisect_side(value: str):
    """A profile name, or a file holding raw request bytes (e.g. what a proxy forwarded)."""
    from wsdiag.core.bisect import parse_request_head
    from wsdiag.core.profiles import PROFILES
    from wsdiag.net.bisect import candidate_for

    if value in PROFILES:
        return candidate_for(PROFILES[value])
    if os.path.isfile(value):
        try:
            with open(value, "rb") as f:
                return parse_request_head(f.read())
        except OSError as exc:
            _fail_usage(f"cannot read {value!r}: {exc.strerror or exc}")
    _fail_usage(f"unknown profile {value!r} (a profile name from `wsdiag profiles`, or a file of request bytes)")


@main.command("bisect", epilog="Exit statuses: 0 a minimal difference was found; 1 none (no split, or "
                               "inconclusive); 2 usage error; 3 wsdiag could not run.")
@click.argument("url")
@click.option("--good", required=True, metavar="PROFILE", help="A profile (or request file) that works.")
@click.option("--bad", required=True, metavar="PROFILE", help="A profile (or request file) that fails.")
@click.option("--origin", help="Origin header to send (default: the URL's own origin).")
@click.option("--timeout", type=FiniteFloat(0.1, 120), default=5.0, show_default=True, help="Seconds per exchange.")
@click.option("--watch", type=FiniteFloat(0, 60), default=1.0, show_default=True, help="Seconds to watch each socket after a 101.")
@click.option("--max-exchanges", type=click.IntRange(2, 500), default=64, show_default=True, help="Bound on requests sent.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def bisect_cmd(url, good, bad, origin, timeout, watch, max_exchanges, as_json):
    """Change the failing request one header at a time toward the working one; name the minimal difference."""
    import json

    from wsdiag.core.handshake import BadURL, parse_target
    from wsdiag.net.bisect import findings_of, run_bisect
    from wsdiag.net.transport import Settings
    from wsdiag.ui.extras import bisect_text

    try:
        parse_target(url)
    except BadURL as exc:
        _fail_usage(str(exc))
    g, b = _bisect_side(good), _bisect_side(bad)
    settings = Settings(timeout=timeout, watch=watch, use_env_proxy=True)
    result = run_bisect(url, g, b, settings, origin=origin, max_exchanges=max_exchanges)
    if as_json:
        doc = {"schema": "wsdiag.bisect/1", "url": url, "good": good, "bad": bad, **result.to_dict(),
               "findings": [f.to_dict() for f in findings_of(result, good, bad)]}
        click.echo(json.dumps(doc, indent=2))
    else:
        bisect_text(result, url, good, bad, sys.stdout)
    sys.exit(Exit.OK if result.status == "found" else Exit.FINDINGS)


@main.command("replay", epilog=EXIT_HELP)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--against", metavar="URL", help="Resend the saved request bytes to URL and show what changed.")
@click.option("--timeout", type=FiniteFloat(0.1, 120), default=5.0, show_default=True, help="With --against: seconds per exchange.")
@click.option("--watch", type=FiniteFloat(0, 60), default=1.0, show_default=True, help="With --against: seconds to watch after a 101.")
@click.option("--har", type=click.Path(dir_okay=False), metavar="FILE", help="Export the bundle's exchanges as HAR 1.2.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report (as `probe --json`).")
@click.option("-v", "--verbose", is_flag=True, help="Show raw request/response heads and frames.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), default="error", show_default=True,
              help="Lowest severity that makes the exit status 1.")
def replay(file, against, timeout, watch, har, as_json, verbose, fail_on):
    """Render the report saved in a repro bundle (probe --save) offline, or resend its bytes (--against)."""
    from wsdiag.core.bundle import BundleError, reports_from
    from wsdiag.ui import bundle_io, render

    out = render.Output(sys.stdout, sys.stderr)
    try:
        doc = bundle_io.load(file)
        reports = reports_from(doc)
    except BundleError as exc:
        _fail_usage(str(exc))
    if against:
        from wsdiag.core.handshake import BadURL, parse_target
        from wsdiag.net.replay import replay_against
        from wsdiag.net.transport import Settings

        try:
            parse_target(against)
        except BadURL as exc:
            _fail_usage(str(exc))
        reports = replay_against(doc, reports, against, Settings(timeout=timeout, watch=watch, use_env_proxy=False))
    if har:
        try:
            bundle_io.write_har(har, doc)
        except OSError as exc:
            _fail_usage(f"cannot write --har {har!r}: {exc.strerror or exc}")
    if as_json:
        out.json(reports, False, verbose)
    else:
        for r in reports:
            out.text_report(r, verbose, False)
        out.summary(reports)
        from wsdiag.ui.extras import browser_rows_text

        for r in reports:
            browser_rows_text(r.url, getattr(r, "browsers", None) or [], sys.stdout)
    sys.exit(_status(reports, fail_on))


# -- check -----------------------------------------------------------------------------

CHECK_HELP = """Exit statuses: 0 nothing at or above --fail-on; 1 findings at or above --fail-on;
2 usage error (e.g. a PATH that does not exist, or a file you named that cannot be read); 3 wsdiag could not run (the app could not be
imported, or its factory raised). With --fix, the status is that of what is left after fixing."""


@main.command(epilog=CHECK_HELP)
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--app", "app_spec", metavar="MODULE:APP",
              help="Import the app (like `flask --app`: MODULE:APP, MODULE:create_app(), file.py) and route "
                   "its WebSocket rules with the installed Werkzeug. Default with no PATH: $FLASK_APP.")
@click.option("-p", "--profile", multiple=True, metavar="NAME",
              help="Client profiles to route in --app mode (default: the default profiles).")
@click.option("--format", "fmt", type=click.Choice(["human", "json", "jsonl", "sarif", "junit", "github"]), default="human",
              show_default=True, help="Output format (json is the stable wsdiag.check/1 document; jsonl: one record "
                                      "per finding as it is found; github: annotations).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to FILE instead of stdout.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), default="error", show_default=True,
              help="Lowest severity that makes the exit status 1.")
@click.option("--fix", is_flag=True, help="Add websocket=True to the route declarations where that is safe for the "
                                          "installed Werkzeug; say why not elsewhere.")
@click.option("--diff", is_flag=True, help="Print the --fix edits as a unified diff; change no file.")
@click.option("--no-cache", is_flag=True, help="Scan every file; neither read nor write the cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False), envvar="WSDIAG_CACHE_DIR",
              help="Where the cache of per-file results lives [default: .wsdiag_cache; env WSDIAG_CACHE_DIR].")
@click.option("--no-project-context", is_flag=True,
              help="Judge the files named alone: do not read their project (root: the nearest .git, pyproject.toml, "
                   "setup.cfg or setup.py) for deployment files, pins and other modules.")
def check(paths, app_spec, profile, fmt, output, fail_on, fix, diff, no_cache, cache_dir, no_project_context):
    """Find WebSocket routes that will fail, with file, line and fix (reads source; --app imports the app).

    PATH... are files or directories (default: the current directory, unless --app or $FLASK_APP
    selects an app). The scan never imports the source; --app also routes every candidate rule
    for each client profile with the installed Werkzeug, sending nothing over the network.
    """
    sys.exit(_run_check(list(paths), app_spec, profile, fmt, output, fail_on, fix, diff, no_cache, cache_dir,
                        no_project_context))


_FREEZE_AT_EXIT: list = []


def _freeze_at_exit() -> None:
    """At exit, freeze what is alive, so that the interpreter's last full collection does not walk it
    (~0.1 s of CPU after `check --app` on benchmarks/gen_app.py's 1,000-route app: its rules, its syntax
    tree, the report). atexit runs this after the handlers registered later (the user's app's own) and
    before those registered earlier (logging's flush); registered once per process."""
    if not _FREEZE_AT_EXIT:
        import atexit
        import gc

        _FREEZE_AT_EXIT.append(atexit.register(gc.freeze))


def _run_check(paths, app_spec, profile, fmt, output, fail_on, fix, diff, no_cache=False, cache_dir=None,
               no_project_context=False) -> int:
    from wsdiag.ui import render
    from wsdiag.ui import report_formats
    from wsdiag.check.run import CheckError, CheckOptions, CheckUsage, run_check

    _freeze_at_exit()
    ctx = click.get_current_context()
    info = ctx.obj if type(ctx.obj).__name__ == "ScriptInfo" and hasattr(ctx.obj, "load_app") else None
    opts = CheckOptions(paths=paths, app=app_spec, fix=fix and not diff, diff=diff)
    if info is not None and not app_spec:  # `flask wsdiag check`: the app Flask's CLI was given
        try:
            opts.app_object = info.load_app()
        except Exception as exc:
            sys.stderr.write(f"wsdiag: could not load the app: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}\n")
            return Exit.COULD_NOT_RUN
    elif not paths and not app_spec:
        if os.environ.get("FLASK_APP"):
            opts.use_app = True
        else:
            opts.paths = ["."]
    if profile:
        from wsdiag.core.profiles import UnknownProfile, resolve

        try:
            opts.profiles = [p for p in resolve(profile) if p.upgrade]
        except UnknownProfile as exc:
            _fail_usage(str(exc))
    out = render.Output(sys.stdout, sys.stderr)
    opts.use_cache, opts.cache_dir = not no_cache, cache_dir
    opts.project_context, opts.context_info = not no_project_context, {}
    stream = None

    def open_output():
        nonlocal stream
        if stream is None:
            try:
                stream = open(output, "w", encoding="utf-8") if output else sys.stdout
            except OSError as exc:
                _fail_usage(f"cannot write --output {output!r}: {exc.strerror or exc}")
        return stream

    streamer = None
    if not diff and fmt in ("human", "github", "jsonl"):  # a static scan writes each finding as found
        from wsdiag.ui.stream import CheckStream

        streamer = CheckStream(fmt, open_output, lambda s: out.console if not output else None)
        opts.on_start, opts.on_finding = streamer.start, streamer.finding
        if fmt != "human":
            opts.on_skip = lambda path, why: out.error(f"wsdiag: skipped {path}: {why}")
    try:
        result = run_check(opts)
    except CheckUsage as exc:
        _fail_usage(str(exc))
    except CheckError as exc:
        out.error(f"wsdiag: {exc}")
        return Exit.COULD_NOT_RUN
    finally:
        if streamer is not None and streamer.started and output and sys.exc_info()[0] is not None and stream is not None:
            stream.close()
    report = result.report
    if fmt == "human" and not diff and opts.context_info:  # machine formats and --diff stay as they are
        from wsdiag.check.context import note

        out.error(note(opts.context_info))
    streamed = streamer is not None and streamer.started
    open_output()
    try:
        if streamed:
            streamer.finish(report, fail_on)
        elif diff:
            stream.write("".join(result.diffs[p] for p in sorted(result.diffs)))
            for fx in report.fixes:
                if fx.reason:
                    out.error(f"wsdiag: not fixing {fx.file}:{fx.line} {fx.route}: {fx.reason}")
        elif fmt == "human":
            from rich.console import Console, Group

            console = out.console if not output else Console(file=stream, width=100, no_color=True, highlight=False)
            # one print of the whole report: the same lines as one print per renderable, ~20% less CPU
            console.print(Group(*report_formats.human_renderables(report, fail_on)))
        elif fmt == "jsonl":
            from wsdiag.ui.stream import check_jsonl

            stream.write(check_jsonl(report, fail_on))
        else:
            stream.write(report_formats.render(report, fmt, fail_on))
    finally:
        if output:
            stream.close()
    if output:
        out.error(report_formats.summary_line(report, fail_on) + f" Report written to {output}.")
    for path, why in report.skipped:
        if fmt != "human" and not streamed:
            out.error(f"wsdiag: skipped {path}: {why}")
    from wsdiag.check.run import display_path

    named = {display_path(p) for p in paths if not os.path.isdir(p)}
    unread = [(p, why) for p, why in report.skipped if p in named and why.startswith("cannot read")]
    if unread:  # a file the user named and wsdiag could not read is not a clean result
        out.error(f"wsdiag: error: cannot check {unread[0][0]}: {unread[0][1]}")
        return Exit.USAGE
    return Exit(report.status(fail_on))


# -- serve-sample ----------------------------------------------------------------------


@main.command("serve-sample")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless you ask).")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True, help="Port (0: any free port).")
@click.option("--variant", type=click.Choice(["all", "route", "hook", "fixed"]), default="all", show_default=True,
              help="Which variant to serve; 'all' mounts each at /<variant>/ws.")
@click.option("--no-websocket-handler", is_flag=True, help="Serve without gevent-websocket's handler (no upgrades).")
def serve_sample(host, port, variant, no_websocket_handler):
    """Serve the report's three Flask + gevent-websocket variants (Ctrl-C stops)."""
    from wsdiag.flaskapp.needs import missing_gevent

    if missing_gevent("serve-sample"):
        click.echo(f"wsdiag: {missing_gevent('serve-sample')}", err=True)
        sys.exit(Exit.COULD_NOT_RUN)
    from wsdiag.flaskapp import VARIANTS
    from wsdiag.flaskapp.server import run_sample_server

    def ready(h, p, trace_url, token):
        shown = f"[{h}]" if ":" in h else h
        names = list(VARIANTS) if variant == "all" else [variant]
        from wsdiag.proc import READY_FD_ENV, signal_ready

        # the token never goes on a command line (ps shows those to every local user)
        token_file = "(the parent wsdiag's)" if os.environ.get(READY_FD_ENV) else _private_token_file(token)
        click.echo(f"wsdiag sample listening on http://{shown}:{p}/  (trace channel {trace_url}, token in {token_file})")
        for name in names:
            path = f"/{name}/ws" if variant == "all" else "/ws"
            click.echo(f"  {name:6} ws://{shown}:{p}{path}  {VARIANTS[name]}")
            click.echo(f"         browser page: http://{shown}:{p}/chat/{name}")
        click.echo(f"  probe with the app's own view: WSDIAG_TRACE_TOKEN=\"$(cat {token_file})\" wsdiag probe --trace {trace_url} URL")
        signal_ready({"host": h, "port": p, "trace_url": trace_url, "token": token})  # wsdiag's own parent, if any
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo(f"warning: bound to {host}: reachable from other machines", err=True)
        sys.stdout.flush()

    def browser(ev):
        detail = {k: v for k, v in ev.items() if k in ("code", "wasClean", "data")}
        click.echo(_safe(f"browser {ev.get('variant')}/{ev.get('who')}: {ev.get('event')} {detail or ''}".rstrip()))
        sys.stdout.flush()

    def live(doc):
        from wsdiag.core.stages import StagePath, render_path

        path = StagePath.from_events(doc.get("events") or [])
        click.echo(_safe(f"upgrade {path.path}: {render_path(path)}"))
        sys.stdout.flush()

    try:
        run_sample_server(variant, host, port, not no_websocket_handler, ready, on_trace=live, on_event=browser)
    except OSError as exc:
        click.echo(f"wsdiag: cannot serve on {host}:{port}: {exc.strerror or exc}", err=True)
        sys.exit(Exit.COULD_NOT_RUN)


def _private_token_file(token: str) -> str:
    """Write the trace token to a file only this user can read (removed at exit); its path."""
    import atexit
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="wsdiag-sample-")
    path = os.path.join(directory, "trace-token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    atexit.register(shutil.rmtree, directory, True)
    return path


def _safe(text: str) -> str:
    from wsdiag.ui.safe import terminal_safe

    return terminal_safe(text, newlines=False)


def _stop_children_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C (finally blocks stop every child) instead of ending at once."""
    import signal

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, terminate)
    except (ValueError, OSError):  # not the main thread
        pass


def run(argv: list[str] | None = None) -> None:
    """Console entry point: every error ends with one line on stderr and a documented status."""
    _stop_children_on_sigterm()
    try:
        rv = main.main(args=argv, prog_name="wsdiag", standalone_mode=False)
    except click.UsageError as exc:
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        sys.stderr.write(_safe(f"wsdiag: error: {exc.format_message()}{where}") + "\n")
        sys.exit(Exit.USAGE)
    except click.ClickException as exc:
        sys.stderr.write(_safe(f"wsdiag: error: {exc.format_message()}") + "\n")
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        sys.stderr.write("wsdiag: interrupted\n")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # an internal bug must still end with one line and a status
        if os.environ.get("WSDIAG_DEBUG"):
            raise
        sys.stderr.write(_safe(f"wsdiag: internal error: {type(exc).__name__}: {exc} (set WSDIAG_DEBUG=1 for the traceback)") + "\n")
        sys.exit(Exit.COULD_NOT_RUN)
    sys.exit(rv if isinstance(rv, int) else Exit.OK)
