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


def _fail_usage(message: str) -> None:
    raise UsageFailure(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_HELP)
@click.version_option(__version__, "-V", "--version", prog_name="wsdiag")
def main() -> None:
    """Say where a WebSocket upgrade dies, why, and how to fix it.

    Built for Flask + gevent-websocket apps whose socket opens and closes at once.
    """


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
                   no_controls, concurrency):
    from wsdiag.net.probe import ProbeOptions
    from wsdiag.core.profiles import UnknownProfile, resolve
    from wsdiag.net.transport import Settings

    try:
        profiles = resolve(profile)
    except UnknownProfile as exc:
        _fail_usage(str(exc))
    if cacert and not os.access(cacert, os.R_OK):
        _fail_usage(f"--cacert {cacert!r} cannot be read")
    if proxy and "://" not in proxy:
        proxy = "http://" + proxy
    settings = Settings(timeout=timeout, watch=watch, insecure=insecure, cacert=cacert,
                        proxy=proxy, use_env_proxy=not no_proxy)
    protos = tuple(p.strip() for s in subprotocol for p in s.split(",") if p.strip())
    return ProbeOptions(profiles, settings, origin, protos, _parse_headers(header), not no_controls, concurrency)


def _probe_params(f):
    opts = [
        click.option("-p", "--profile", multiple=True, metavar="NAME",
                     help="Client profile (repeatable, comma lists, 'all', 'default'). See `wsdiag profiles`."),
        click.option("-H", "--header", multiple=True, metavar="'NAME: VALUE'",
                     help="Add or replace a request header (empty value removes it)."),
        click.option("--origin", help="Origin header to send (default: the URL's own origin)."),
        click.option("--subprotocol", multiple=True, metavar="NAME", help="Offer a subprotocol (repeatable)."),
        click.option("--timeout", type=click.FloatRange(0.1, 120), default=5.0, show_default=True,
                     help="Seconds per exchange, from connect to complete answer."),
        click.option("--watch", type=click.FloatRange(0, 60), default=1.0, show_default=True,
                     help="Seconds to watch the socket after a 101 (ends early once the outcome is known)."),
        click.option("-k", "--insecure", is_flag=True, help="Do not verify TLS certificates."),
        click.option("--cacert", type=click.Path(dir_okay=False), help="CA bundle to verify TLS with."),
        click.option("--proxy", metavar="URL", help="HTTP proxy for CONNECT (default: HTTPS_PROXY/HTTP_PROXY, NO_PROXY)."),
        click.option("--no-proxy", is_flag=True, help="Ignore proxy environment variables."),
        click.option("--no-controls", is_flag=True, help="Skip the control requests (plain GET, impossible path)."),
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
@click.option("--app-timeout", type=click.FloatRange(1, 600), default=20.0, show_default=True,
              help="With --app: seconds to wait for the app to start listening.")
@click.option("--trace", "trace_url", metavar="URL", help="Trace channel of an app instrumented with wsdiag (see docs/trace.md).")
@click.option("--trace-token", envvar="WSDIAG_TRACE_TOKEN", metavar="TOKEN", help="Token of the trace channel [env WSDIAG_TRACE_TOKEN].")
@_probe_params
def probe(urls, from_file, sample, app_spec, paths, gunicorn, app_timeout, trace_url, trace_token, **kw):
    """Probe URL(s) with several clients' handshakes and diagnose the failures.

    With --app, wsdiag starts your app itself the way production runs it and reads each
    upgrade's path through before_request, routing and the view from the app's own trace.
    """
    from wsdiag.core.handshake import BadURL, parse_target

    if trace_url and not trace_token:
        _fail_usage("--trace needs --trace-token (or WSDIAG_TRACE_TOKEN)")
    if (paths or gunicorn) and not app_spec:
        _fail_usage("--path and --gunicorn go with --app")
    kw.update(trace=(trace_url, trace_token) if trace_url else None, app=app_spec, paths=paths, gunicorn=gunicorn,
              app_timeout=app_timeout)

    urls = list(urls)
    if from_file is not None:
        try:
            urls += [ln.strip() for ln in from_file if ln.strip() and not ln.lstrip().startswith("#")]
        except (OSError, UnicodeDecodeError) as exc:
            _fail_usage(f"cannot read --from-file: {exc}")
    if not urls and not sample and not app_spec:
        _fail_usage("give at least one URL (or --sample, or --app MODULE:APP)")
    for url in urls:
        try:
            parse_target(url)
        except BadURL as exc:
            _fail_usage(str(exc))
    sys.exit(_run_probe(urls, sample=sample, **kw))


@main.command(epilog=EXIT_HELP)
@_probe_params
def demo(**kw):
    """Start the sample server, probe every variant, explain, stop (exits 0 if it ran)."""
    kw["fail_on"] = "never"
    sys.exit(_run_probe([], sample=True, **kw))


def _run_probe(urls, *, sample, as_json, verbose, fail_on, show_secrets, trace=None, app=None, paths=(),
               gunicorn=False, app_timeout=20.0, **kw) -> int:
    from wsdiag.ui import render
    from wsdiag.net.probe import probe as run

    opts = _probe_options(**kw)
    opts.trace = trace
    out = render.Output(sys.stdout, sys.stderr)
    child = None
    try:
        if sample:
            from wsdiag.proc import SampleError, start_sample

            try:
                child = start_sample()
            except SampleError as exc:
                out.error(f"wsdiag: could not start the sample server: {exc}")
                return Exit.COULD_NOT_RUN
            urls = [child.url(v) for v in ("route", "hook", "fixed")] + list(urls)
            opts.trace = child.trace
        elif app:
            from wsdiag.flaskapp.appserver import AppStartError, start_app

            try:
                child = start_app(None if app == "-" else app, path_hint=paths[0] if paths else None, gunicorn=gunicorn,
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
            if not as_json:
                v = child.versions
                out.error(f"wsdiag: started {app} under {child.server or 'gevent-websocket'} "
                          f"(Flask {v.get('flask')}, Werkzeug {v.get('werkzeug')}) on {child.base_url}")
        streaming = not as_json and len(urls) > 1
        reports = run(urls, opts, on_report=(lambda r: out.text_report(r, verbose, show_secrets)) if streaming else None)
    except KeyboardInterrupt:
        out.error("wsdiag: interrupted")
        return 130
    finally:
        if child is not None:
            child.stop()
    if as_json:
        out.json(reports, show_secrets, verbose)
    elif not streaming:
        for r in reports:
            out.text_report(r, verbose, show_secrets)
    if not as_json:
        if app and len(reports) > 1:
            out.route_matrix(reports)
        out.summary(reports)
    return _status(reports, fail_on)


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
def profiles(show, as_json):
    """List the client profiles and where their bytes come from."""
    from wsdiag.ui import render
    from wsdiag.core.profiles import ORDER, PROFILES

    out = render.Output(sys.stdout, sys.stderr)
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


# -- check -----------------------------------------------------------------------------

CHECK_HELP = """Exit statuses: 0 nothing at or above --fail-on; 1 findings at or above --fail-on;
2 usage error (e.g. a PATH that does not exist); 3 wsdiag could not run (the app could not be
imported, or its factory raised). With --fix, the status is that of what is left after fixing."""


@main.command(epilog=CHECK_HELP)
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--app", "app_spec", metavar="MODULE:APP",
              help="Import the app (like `flask --app`: MODULE:APP, MODULE:create_app(), file.py) and route "
                   "its WebSocket rules with the installed Werkzeug. Default with no PATH: $FLASK_APP.")
@click.option("-p", "--profile", multiple=True, metavar="NAME",
              help="Client profiles to route in --app mode (default: the default profiles).")
@click.option("--format", "fmt", type=click.Choice(["human", "json", "sarif", "junit", "github"]), default="human",
              show_default=True, help="Output format (json is the stable wsdiag.check/1 document; github: annotations).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to FILE instead of stdout.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), default="error", show_default=True,
              help="Lowest severity that makes the exit status 1.")
@click.option("--fix", is_flag=True, help="Add websocket=True to the route declarations where that is safe for the "
                                          "installed Werkzeug; say why not elsewhere.")
@click.option("--diff", is_flag=True, help="Print the --fix edits as a unified diff; change no file.")
def check(paths, app_spec, profile, fmt, output, fail_on, fix, diff):
    """Find WebSocket routes that will fail, with file, line and fix (reads source; --app imports the app).

    PATH... are files or directories (default: the current directory, unless --app or $FLASK_APP
    selects an app). The scan never imports the source; --app also routes every candidate rule
    for each client profile with the installed Werkzeug, sending nothing over the network.
    """
    sys.exit(_run_check(list(paths), app_spec, profile, fmt, output, fail_on, fix, diff))


def _run_check(paths, app_spec, profile, fmt, output, fail_on, fix, diff) -> int:
    from wsdiag.ui import render
    from wsdiag.ui import report_formats
    from wsdiag.check.run import CheckError, CheckOptions, CheckUsage, run_check

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
    try:
        result = run_check(opts)
    except CheckUsage as exc:
        _fail_usage(str(exc))
    except CheckError as exc:
        out.error(f"wsdiag: {exc}")
        return Exit.COULD_NOT_RUN
    report = result.report
    stream = None
    try:
        stream = open(output, "w", encoding="utf-8") if output else sys.stdout
    except OSError as exc:
        _fail_usage(f"cannot write --output {output!r}: {exc.strerror or exc}")
    try:
        if diff:
            stream.write("".join(result.diffs[p] for p in sorted(result.diffs)))
            for fx in report.fixes:
                if fx.reason:
                    out.error(f"wsdiag: not fixing {fx.file}:{fx.line} {fx.route}: {fx.reason}")
        elif fmt == "human":
            from rich.console import Console

            console = out.console if not output else Console(file=stream, width=100, no_color=True, highlight=False)
            for renderable in report_formats.human_renderables(report, fail_on):
                console.print(renderable)
        else:
            stream.write(report_formats.render(report, fmt, fail_on))
    finally:
        if output:
            stream.close()
    if output:
        out.error(report_formats.summary_line(report, fail_on) + f" Report written to {output}.")
    for path, why in report.skipped:
        if fmt != "human":
            out.error(f"wsdiag: skipped {path}: {why}")
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
    from wsdiag.flaskapp import VARIANTS
    from wsdiag.flaskapp.server import run_sample_server

    def ready(h, p, trace_url, token):
        shown = f"[{h}]" if ":" in h else h
        names = list(VARIANTS) if variant == "all" else [variant]
        click.echo(f"wsdiag sample listening on http://{shown}:{p}/  (trace channel {trace_url} token {token})")
        for name in names:
            path = f"/{name}/ws" if variant == "all" else "/ws"
            click.echo(f"  {name:6} ws://{shown}:{p}{path}  {VARIANTS[name]}")
            click.echo(f"         browser page: http://{shown}:{p}/chat/{name}")
        click.echo(f"  probe with the app's own view: wsdiag probe --trace {trace_url} --trace-token {token} URL")
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo(f"warning: bound to {host}: reachable from other machines", err=True)
        sys.stdout.flush()

    def browser(ev):
        detail = {k: v for k, v in ev.items() if k in ("code", "wasClean", "data")}
        click.echo(f"browser {ev.get('variant')}/{ev.get('who')}: {ev.get('event')} {detail or ''}".rstrip())
        sys.stdout.flush()

    def live(doc):
        from wsdiag.core.stages import StagePath, render_path

        path = StagePath.from_events(doc.get("events") or [])
        click.echo(f"upgrade {path.path}: {render_path(path)}")
        sys.stdout.flush()

    try:
        run_sample_server(variant, host, port, not no_websocket_handler, ready, on_trace=live, on_event=browser)
    except OSError as exc:
        click.echo(f"wsdiag: cannot serve on {host}:{port}: {exc.strerror or exc}", err=True)
        sys.exit(Exit.COULD_NOT_RUN)


def run(argv: list[str] | None = None) -> None:
    """Console entry point: every error ends with one line on stderr and a documented status."""
    try:
        rv = main.main(args=argv, prog_name="wsdiag", standalone_mode=False)
    except click.UsageError as exc:
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        sys.stderr.write(f"wsdiag: error: {exc.format_message()}{where}\n")
        sys.exit(Exit.USAGE)
    except click.ClickException as exc:
        sys.stderr.write(f"wsdiag: error: {exc.format_message()}\n")
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        sys.stderr.write("wsdiag: interrupted\n")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # an internal bug must still end with one line and a status
        if os.environ.get("WSDIAG_DEBUG"):
            raise
        sys.stderr.write(f"wsdiag: internal error: {type(exc).__name__}: {exc} (set WSDIAG_DEBUG=1 for the traceback)\n")
        sys.exit(Exit.COULD_NOT_RUN)
    sys.exit(rv if isinstance(rv, int) else Exit.OK)
