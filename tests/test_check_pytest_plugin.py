"""The pytest plugin users add to their own suites: assert_websocket_route and the websocket_route fixture."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from wsdiag.pytest_plugin import assert_websocket_route

pytest_plugins = ["pytester"]
MODERN = tuple(int(x) for x in version("werkzeug").split(".")[:3]) >= (2, 0, 2)


@pytest.mark.skipif(not MODERN, reason="expectations for Werkzeug >= 2.0.2")
def test_passing_route_returns_each_clients_endpoint():
    from fixtures.check import seed_fixed

    assert assert_websocket_route(seed_fixed.app, "/ws") == {
        n: "ws" for n in ("chrome", "firefox", "firefox-legacy", "websocket-client", "minimal")}


@pytest.mark.skipif(not MODERN, reason="expectations for Werkzeug >= 2.0.2")
def test_broken_route_fails_naming_clients_and_fix():
    from fixtures.check import seed_route

    with pytest.raises(AssertionError) as err:
        assert_websocket_route(seed_route.app, "/ws")
    msg = str(err.value)
    assert "does not reach a view for 5 of 5 clients" in msg
    assert "firefox-legacy (Connection: keep-alive, Upgrade): WebsocketMismatch (400)" in msg
    assert "fix: Add websocket=True" in msg


def test_redirect_host_and_endpoint_checks():
    from fixtures.check import factory_app, hosts_app

    app = factory_app.create_app()
    with pytest.raises(AssertionError, match="RequestRedirect"):
        assert_websocket_route(app, "/api/chat/rooms/live")
    assert set(assert_websocket_route(app, "/api/chat/rooms/live/", profiles=["chrome"]).values()) == {"chat.rooms.live"}
    with pytest.raises(AssertionError, match="instead"):
        assert_websocket_route(app, "/feed", profiles=["chrome"], endpoint="echo")
    assert assert_websocket_route(hosts_app.app, "/ok", host="api.example.test", profiles=["minimal"])
    with pytest.raises(AssertionError, match="NotFound"):
        assert_websocket_route(hosts_app.app, "/ok", host="elsewhere.test", profiles=["minimal"])


def test_fixture_in_a_users_test_suite(pytester):
    """A user's suite gets the `websocket_route` fixture from the plugin."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent
    pytester.makepyfile(test_user=f"""
        import sys
        sys.path.insert(0, {str(root)!r})
        from fixtures.check import seed_fixed, seed_route

        def test_good(websocket_route):
            websocket_route(seed_fixed.app, "/ws")

        def test_bad(websocket_route):
            websocket_route(seed_route.app, "/ws")
    """)

    installed = any(ep.value == "wsdiag.pytest_plugin" for ep in _group("pytest11"))
    # installed: the pytest11 entry point loads the plugin by itself; otherwise name it with -p
    args = ["-p", "no:cacheprovider"] + ([] if installed else ["-p", "wsdiag.pytest_plugin"])
    result = pytester.runpytest_subprocess(*args)
    if MODERN:
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*does not reach a view for 5 of 5 clients*"])


def _group(name: str):
    """Entry points of one group, on Python 3.9 (dict API) and 3.10+ (select)."""
    from importlib.metadata import entry_points

    eps = entry_points()
    return eps.select(group=name) if hasattr(eps, "select") else eps.get(name, [])
