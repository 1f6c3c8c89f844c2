"""wsdiag check --app: every candidate rule routed per client profile by the installed Werkzeug."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from wsdiag.flaskapp import inprocess
from wsdiag.check.run import CheckError, CheckOptions, run_check
from wsdiag.core.versions import detection_for

WERKZEUG = version("werkzeug")
MODERN = detection_for(tuple(int(x) for x in WERKZEUG.split(".")[:3])).rule == "token"
pytestmark = pytest.mark.skipif(not MODERN, reason="these expectations are for Werkzeug >= 2.0.2 (see test_check_versions)")


def check(spec: str, **kw):
    return run_check(CheckOptions(app=spec, **kw)).report


def by_code(report):
    return {(f.code, f.evidence.get("rule")) for f in report.findings}


def route(report, rule):
    return next(r for r in report.routes if r["rule"] == rule)


def test_seed_route_hidden_400_for_every_client():
    """Variant 1: each default profile meets WebsocketMismatch; the app-level hooks (none) and the view never run."""
    report = check("fixtures.check.seed_route:app")
    (f,) = report.findings
    assert f.code == "WS601" and f.location.file == "fixtures/check/seed_route.py" and f.location.line == 21
    r = route(report, "/ws")
    assert [(p["profile"], p["routing"], p["status"], p["outcome"], p["detected"]) for p in r["profiles"]] == [
        (n, "WebsocketMismatch", 400, "hidden", True)
        for n in ("chrome", "firefox", "firefox-legacy", "websocket-client", "minimal")]
    assert r["plain_get"] == "match ws"  # a browser visit still reaches the view
    assert "+@app.route('/ws', websocket=True)" in f.fix.diff


def test_seed_hook_is_the_workaround_and_seed_fixed_passes():
    hook = check("fixtures.check.seed_hook")
    assert [f.code for f in hook.findings] == ["WS502"] and hook.routes == []
    fixed = check("fixtures/check/seed_fixed.py")
    assert fixed.findings == [] and fixed.status("warning") == 0
    assert {p["outcome"] for p in route(fixed, "/ws")["profiles"]} == {"view"}


def test_factory_nested_blueprints_methodview_and_strict_slashes():
    """create_app(): nested blueprint prefixes, a MethodView via add_url_rule, a websocket=True rule ending in '/'."""
    report = check("fixtures.check.factory_app:create_app()")
    assert {r["rule"] for r in report.routes} == {"/api/chat/rooms/<int:room>/ws", "/api/chat/rooms/live/", "/echo", "/feed"}
    assert by_code(report) == {
        ("WS601", "/api/chat/rooms/<int:room>/ws"), ("WS508", "/api/chat/rooms/<int:room>/ws"),
        ("WS601", "/echo"), ("WS507", "/api/chat/rooms/live/"),
    }
    room = route(report, "/api/chat/rooms/<int:room>/ws")
    assert room["url"] == "/api/chat/rooms/1/ws" and room["blueprint"] == "chat.rooms"
    p = room["profiles"][0]
    assert p["hooks_run"] == ["create_app.<locals>.log_upgrades"] and p["hooks_skipped"] == ["chat_auth"]
    ws508 = next(f for f in report.findings if f.code == "WS508")
    assert ws508.evidence["blueprint"] == "chat.rooms" and ws508.evidence["hooks"] == "chat_auth()"
    slash = next(f for f in report.findings if f.code == "WS507")
    assert slash.evidence["hidden"] == "308 redirect" and slash.evidence["alt_path"] == "'/api/chat/rooms/live'"
    echo = next(f for f in report.findings if f.code == "WS601" and f.evidence["rule"] == "/echo")
    assert echo.location.line == 71 and echo.evidence["view"] == "EchoView()"
    assert {q["outcome"] for q in route(report, "/feed")["profiles"]} == {"view"}


def test_host_matching_routes_with_the_rules_host():
    report = check("fixtures.check.hosts_app:app")
    assert route(report, "/ws")["host"] == "ws.example.test" and route(report, "/ok")["host"] == "api.example.test"
    assert {p["outcome"] for p in route(report, "/ok")["profiles"]} == {"view"}
    assert ("WS601", "/ws") in by_code(report)


def test_subdomain_matching_routes_with_server_name():
    report = check("fixtures.check.hosts_app:sub_app")
    assert route(report, "/ws")["host"] == "chat.example.test"
    assert route(report, "/live")["host"] == "x.example.test"  # <tenant> filled with a sample value
    assert {p["outcome"] for p in route(report, "/ws")["profiles"]} == {"view"}
    assert ("WS601", "/live") in by_code(report)


def test_hook_serving_sockets_reaches_only_before_request():
    """With an app-level socket hook every client is served by the hook, and the route is still broken underneath."""
    report = check("fixtures.check.hook_and_route")
    r = route(report, "/ws")
    assert {(p["routing"], p["outcome"]) for p in r["profiles"]} == {("WebsocketMismatch", "hook")}
    assert sorted(f.code for f in report.findings) == ["WS502", "WS601"]


def test_post_only_socket_route_is_a_hidden_405_and_custom_converters_are_reported():
    page = check("fixtures.check.page_app")
    hidden405 = next(f for f in page.findings if f.code in ("WS609", "WS606"))
    assert hidden405.evidence["rule"] == "/post/ws" and hidden405.evidence["status"].startswith("405")
    conv = check("fixtures.check.converters_app")
    (f,) = conv.findings
    assert f.code == "WS510" and "hex" in f.evidence["detail"]


def test_profiles_option_limits_the_clients():
    from wsdiag.core.profiles import resolve

    report = check("fixtures.check.seed_route:app", profiles=resolve(["chrome", "stripped"]))
    assert [p["profile"] for p in route(report, "/ws")["profiles"]] == ["chrome"]  # stripped sends no upgrade


def test_flask_app_environment_variable_selects_the_app(monkeypatch):
    monkeypatch.setenv("FLASK_APP", "fixtures.check.seed_route")
    report = run_check(CheckOptions(use_app=True)).report
    assert report.app == "fixtures.check.seed_route" and [f.code for f in report.findings] == ["WS601"]


@pytest.mark.parametrize("spec,needle", [
    ("fixtures.check.factory_error:create_app()", "RuntimeError: DATABASE_URL is not set"),
    ("fixtures.check.methods_app", "ValueError: WebSocket rules can only use 'GET', 'HEAD', and 'OPTIONS' methods."),
    ("fixtures.check.flask_sockets_app", "No module named 'flask_sockets'"),
    # the one loader (wsdiag.flaskapp.appserver.load_app, shared with probe --app) words these
    ("fixtures.check.no_such_module:app", "could not import 'fixtures.check.no_such_module'"),
    ("fixtures.check.seed_route:nope", "'fixtures.check.seed_route' has no attribute 'nope'"),
])
def test_load_failures_are_one_line(spec, needle):
    with pytest.raises(CheckError) as err:
        check(spec)
    msg = str(err.value)
    assert needle in msg and "\n" not in msg and msg.startswith(f"could not load the app {spec!r}")


def test_nothing_is_dispatched(monkeypatch):
    """Routing only: no view or hook runs while checking (they would raise here)."""
    from fixtures.check import hook_and_route

    calls = []
    monkeypatch.setattr(hook_and_route.app, "dispatch_request", lambda *a: calls.append(a))
    monkeypatch.setattr(hook_and_route, "serve", lambda sock: calls.append(sock))
    inprocess.check_app(hook_and_route.app, werkzeug=WERKZEUG)
    assert calls == []


def test_check_routes_each_profile_as_route_upgrade_does():
    """check_app builds each URL's environ once and adds each profile's header variables (inprocess._Router):
    the environ equals EnvironBuilder's with the profile's headers, and the routing equals route_upgrade's."""
    from werkzeug.test import EnvironBuilder

    from fixtures.check import factory_app, hosts_app
    from wsdiag.core.profiles import PROFILES

    def comparable(env):
        return {k: v for k, v in env.items() if k != "wsgi.input"}  # a fresh empty stream per environ

    profiles = [p for p in PROFILES.values() if p.upgrade]
    checked = 0
    for app in (factory_app.create_app(), hosts_app.app, hosts_app.sub_app):
        router = inprocess._Router(app)
        for r in inprocess.check_app(app, profiles, WERKZEUG).results:
            plain = router.environ(r.url, r.host)
            for p in [None] + profiles:
                built = EnvironBuilder(path=r.url, base_url=f"http://{r.host}/", method="GET",
                                       headers=inprocess._profile_headers(p, r.host)).get_environ()
                assert comparable(router.environ(r.url, r.host, p, plain)) == comparable(built)
            for p, got in zip(profiles, r.profiles):
                want = inprocess.route_upgrade(app, r.url, r.host, p)
                assert (got.profile, got.detected, got.routing, got.status, got.endpoint, got.location) == (
                    want.profile, want.detected, want.routing, want.status, want.endpoint, want.location)
                checked += 1
    assert checked >= 5 * len(profiles)


def test_app_mode_restores_the_collector_thresholds():
    """check --app collects less often while it runs (inprocess.fewer_collections), and restores the thresholds
    after, also when the app does not load."""
    import gc

    before = gc.get_threshold()
    seen = []
    real = inprocess.check_app

    def spy(*a, **kw):
        seen.append(gc.get_threshold())
        return real(*a, **kw)

    try:
        inprocess.check_app = spy
        check("fixtures.check.seed_route:app")
        with pytest.raises(CheckError):
            check("fixtures.check.no_such_module:app")
    finally:
        inprocess.check_app = real
    assert seen and seen[0][0] >= 200_000 and gc.get_threshold() == before
    assert gc.get_freeze_count() == 0  # nothing is left out of the collector's reach


def test_check_command_freezes_at_exit_once(monkeypatch):
    """`wsdiag check` registers one atexit gc.freeze per process (cli._freeze_at_exit), however often it runs."""
    import atexit
    import gc

    from click.testing import CliRunner

    from wsdiag import cli

    registered = []
    monkeypatch.setattr(cli, "_FREEZE_AT_EXIT", [])
    monkeypatch.setattr(atexit, "register", lambda fn, *a, **kw: registered.append(fn) or fn)
    for _ in range(2):
        result = CliRunner().invoke(cli.main, ["check", "--app", "fixtures.check.seed_route:app", "--format", "json"])
        assert result.exit_code == 1 and '"WS601"' in result.output
    assert registered == [gc.freeze]


def _write_package(root, files: dict) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


CROSS_MODULE = {
    "xchat/__init__.py": "from flask import Flask\n\napp = Flask(__name__)\n\nfrom xchat import views  # noqa: E402,F401\n",
    "xchat/sockets.py": (
        "import json\n\nfrom flask import request\n\n\n"
        "def serve():\n"
        "    ws = request.environ[\"wsgi.websocket\"]\n"
        "    while True:\n"
        "        msg = ws.receive()\n"
        "        if msg is None:\n"
        "            break\n"
        "        ws.send(msg)\n"
        "    return \"\"\n\n\n"
        "def page():\n"
        "    return json.dumps({\"ok\": True})\n"),
    "xchat/views.py": (
        "import json\n\nfrom xchat import app, sockets\nfrom xchat.sockets import page, serve\n\n\n"
        "@app.route(\"/ws\")\ndef ws():\n    return serve()\n\n\n"
        "@app.route(\"/ws2\")\ndef ws2():\n    return sockets.serve()\n\n\n"
        "@app.route(\"/\")\ndef index():\n    return page()\n\n\n"
        "@app.route(\"/api\")\ndef api():\n    return json.dumps([1])\n"),
}


def test_views_reading_the_socket_through_a_helper_of_another_module(tmp_path):
    """A view that serves the socket through a helper imported from another module of the app (by name
    or as module.attr) is a WebSocket route to check --app and to probe --app's discovery (the one
    answer); views calling helpers that do not read it, or library functions (json.dumps), are not."""
    import json as _json
    import subprocess
    import sys

    _write_package(tmp_path, CROSS_MODULE)
    out = subprocess.run([sys.executable, "-m", "wsdiag", "check", "--app", "xchat:app", "--format", "json", "--no-cache"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    report = _json.loads(out.stdout)
    assert sorted(r["rule"] for r in report["routes"]) == ["/ws", "/ws2"]
    assert sorted((f["code"], f["file"], f["line"]) for f in report["findings"]) == [
        ("WS601", "xchat/views.py", 7), ("WS601", "xchat/views.py", 12)]
    found = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, '.'); from xchat import app; "
         "from wsdiag.flaskapp.appserver import discover; "
         "routes, _ = discover([('', app)]); print(sorted(r['rule'] for r in routes))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == "['/ws', '/ws2']", found.stderr
