"""Probe + trace: the stage path and the cause come from inside the app, not from inference.

``probe --app`` starts the fixture app under gevent-websocket with wsdiag's trace, and the
sample server is traced too; every cause here must be ``certain`` and carry the stage path.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wsdiag.core.findings import Verdict
from wsdiag.flaskapp.appserver import start_app
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import resolve
from wsdiag.proc import start_sample
from wsdiag.net.transport import Settings

pytestmark = pytest.mark.timeout(90)


def traced(url, trace, profiles=("chrome", "firefox-legacy")):
    opts = ProbeOptions(resolve(list(profiles)), Settings(timeout=5, watch=1, use_env_proxy=False), trace=trace)
    return probe([url], opts)[0]


@pytest.fixture(scope="module")
def sample():
    child = start_sample()
    yield child
    child.stop()


@pytest.fixture(scope="module")
def apps():
    started = {}

    def get(spec):
        if spec not in started:
            started[spec] = start_app(spec, cwd=".")
        return started[spec]

    yield get
    for a in started.values():
        a.stop()


def test_sample_variants_from_the_trace(sample):
    """Route: hidden WebsocketMismatch after app before_request; hook: served in before_request; fixed: the view."""
    route = traced(sample.url("route"), sample.trace)
    assert [(c.code, c.confidence) for c in route.causes] == [("WS601", "certain")]
    assert "routing ✗ WebsocketMismatch (400, discarded by gevent-websocket) → view never ran" in route.causes[0].evidence["stage_path"]
    assert all(r.stages.reached == "routing" for r in route.results)

    hook = traced(sample.url("hook"), sample.trace)
    assert [(c.code, c.confidence) for c in hook.causes] == [("WS604", "certain")]
    assert all(r.stages.served_by.startswith("hook:") for r in hook.results)

    fixed = traced(sample.url("fixed"), sample.trace)
    assert fixed.ok and fixed.causes == []
    assert all(r.stages.reached == "view" and r.stages.served_by.startswith("view:") for r in fixed.results)


def test_wrong_token_falls_back_to_black_box(sample):
    """A bad token yields no trace; the probe still diagnoses from outside (likely, not certain)."""
    report = traced(sample.url("route"), (sample.trace_url, "0" * 32))
    assert all(r.stages is None for r in report.results)
    assert (report.causes[0].code, report.causes[0].confidence) == ("WS601", "likely")


@pytest.mark.parametrize("spec,path,code", [
    ("fixtures.trace.missing_route:app", "/nope", "WS602"),
    ("fixtures.trace.view_returns:app", "/ws", "WS603"),
    ("fixtures.trace.view_raises:app", "/ws", "WS607"),
    ("fixtures.trace.routing_errors:app", "/slash", "WS605"),
    ("fixtures.trace.routing_errors:app", "/post-only", "WS609"),
    ("fixtures.trace.routing_errors:app", "/private", "WS606"),
    ("fixtures.trace.blueprint:app", "/api/ws", "WS601"),
])
def test_each_hidden_failure_has_its_own_certain_cause(apps, spec, path, code):
    app = apps(spec)
    report = traced(app.ws_url(path), (app.trace_url, app.token))
    assert {r.verdict for r in report.results} == {Verdict.ABANDONED}
    assert (report.causes[0].code, report.causes[0].confidence) == (code, "certain"), [c.code for c in report.causes]
    assert report.causes[0].evidence["source"] == "trace"


def test_blueprint_hook_does_not_run_on_a_routing_failure(apps):
    app = apps("fixtures.trace.blueprint:app")
    report = traced(app.ws_url("/api/ws"), (app.trace_url, app.token))
    stages = report.results[0].stages
    assert stages.hooks_run == ["app:log_request"]
    assert stages.reached == "routing"


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "wsdiag", *args], capture_output=True, text=True, timeout=timeout)


def test_probe_app_cli_finds_routes_and_prints_the_matrix():
    """`probe --app`: starts the app, finds its WebSocket routes, probes each, stops the app."""
    r = cli("probe", "--app", "fixtures.trace.blueprint:app", "-p", "chrome,minimal")
    assert r.returncode == 1, r.stderr
    assert "Inside the app" in r.stdout and "Routes × clients" in r.stdout
    assert "/api/ws" in r.stdout and "/api/live" in r.stdout
    assert "WS601" in r.stdout


def test_probe_app_json_for_the_fixed_seed():
    r = cli("probe", "--app", "fixtures.trace.seed_fixed:app", "--json", "-p", "chrome")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    res = doc["reports"][0]["results"][0]
    assert res["stage_path"]["reached"] == "view"


@pytest.mark.parametrize("spec,needle", [
    ("fixtures.trace.import_fails:app", "raised"),
    ("fixtures.trace.factory_raises:create_app()", "raised"),
    ("no_such_module_anywhere:app", "No module named"),
])
def test_app_that_cannot_start_is_one_line_and_exit_3(spec, needle):
    r = cli("probe", "--app", spec)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stderr.startswith("wsdiag: could not start the app:") and needle in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_app_that_never_finishes_starting_is_bounded():
    import time

    start = time.monotonic()
    r = cli("probe", "--app", "fixtures.trace.never_ready:app", "--app-timeout", "2")
    assert r.returncode == 3 and "not ready within 2 s" in r.stderr, r.stderr
    assert time.monotonic() - start < 15


@pytest.mark.parametrize("spec,code", [("fixtures.trace.seed_route:app", "WS601"), ("fixtures.trace.seed_hook:app", "WS604")])
def test_probe_app_on_the_seed_variants(spec, code):
    """The report's variants through --app: the traced cause, certain."""
    r = cli("probe", "--app", spec, "--json", "-p", "chrome,firefox-legacy")
    doc = json.loads(r.stdout)
    cause = doc["reports"][0]["causes"][0]
    assert (cause["code"], cause["confidence"]) == (code, "certain")


def test_usage_errors_of_the_trace_options():
    assert cli("probe", "--trace", "http://127.0.0.1:1", "ws://127.0.0.1:1/").returncode == 2
    assert cli("probe", "--path", "/ws", "ws://127.0.0.1:1/").returncode == 2
