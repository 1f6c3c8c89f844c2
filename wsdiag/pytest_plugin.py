"""pytest plugin (entry point ``pytest11``): assert that an app's WebSocket routes are routable.

In your own test suite::

    from wsdiag.pytest_plugin import assert_websocket_route

    def test_chat_socket_reaches_its_view(app):
        assert_websocket_route(app, "/chat/ws")

or ask for the ``websocket_route`` fixture, which is the same function. Each client profile's
upgrade request (Chrome, Firefox, older Firefox's ``keep-alive, Upgrade``, websocket-client,
RFC minimum) is routed by the *installed* Werkzeug through Flask's own URL adapter: nothing is
served, no hook or view runs, no network. The assertion fails, naming each client that does
not reach a view, what it meets instead (the status gevent-websocket would hide behind its
101) and the fix, true for the installed Werkzeug.

Importing this module is cheap: Flask is only touched when the helper runs.
"""

from __future__ import annotations

import pytest

DEFAULT_PROFILES = ("chrome", "firefox", "firefox-legacy", "websocket-client", "minimal")


def assert_websocket_route(app, path: str, *, host: str = "localhost", profiles=None, endpoint: str | None = None) -> dict:
    """Fail unless every client's upgrade to ``path`` (on ``host``) reaches a view (``endpoint``, if given).

    Returns ``{profile: endpoint}`` for the clients that were routed.
    """
    __tracebackhide__ = True
    from wsdiag.check import advice
    from wsdiag.flaskapp import inprocess
    from wsdiag.core.profiles import resolve

    chosen = [p for p in resolve(list(profiles or DEFAULT_PROFILES)) if p.upgrade]
    results = {p.name: inprocess.route_upgrade(app, path, host, p) for p in chosen}
    bad = {n: r for n, r in results.items() if r.routing != "match" or (endpoint and r.endpoint != endpoint)}
    if not bad:
        return {n: r.endpoint for n, r in results.items()}
    versions = advice.installed_versions()
    rel = advice.release(versions.get("werkzeug"))
    lines = [f"WebSocket upgrade to {host}{path} does not reach {endpoint or 'a view'} for {len(bad)} of "
             f"{len(results)} clients (Werkzeug {versions.get('werkzeug')}):"]
    for name, r in bad.items():
        if r.routing == "match":
            what = f"reaches endpoint {r.endpoint!r} instead"
        else:
            what = f"{r.routing} ({r.status}), hidden behind gevent-websocket's 101"
            if r.location:
                what += f", redirect to {r.location}"
        lines.append(f"  {name} (Connection: {r.connection}): {what}")
    hooks = app.before_request_funcs.get(None, [])
    if hooks:
        lines.append("  app-level before_request hooks still run for them: "
                     + ", ".join(getattr(h, "__qualname__", repr(h)) + "()" for h in hooks))
    kinds = {r.routing for r in bad.values()}
    if "WebsocketMismatch" in kinds:
        lines.append("fix: " + (advice.plain_rule_advice(rel) if not _is_websocket_rule(app, path, host)
                                else advice.websocket_rule_advice(rel)))
    elif "RequestRedirect" in kinds:
        lines.append("fix: connect to the canonical path, or declare the rule with strict_slashes=False.")
    elif "NotFound" in kinds:
        lines.append("fix: no rule matches this path and host: check the path, blueprint url_prefix, host/subdomain.")
    lines.append("(`wsdiag check --app MODULE:APP` reports every WebSocket route of the app)")
    raise AssertionError("\n".join(lines))


def _is_websocket_rule(app, path: str, host: str) -> bool:
    """A plain GET meets WebsocketMismatch exactly when the rule is declared websocket=True."""
    from wsdiag.flaskapp.inprocess import route_upgrade

    return route_upgrade(app, path, host, None).routing == "WebsocketMismatch"


@pytest.fixture
def websocket_route():
    """The ``assert_websocket_route(app, path, ...)`` helper, as a fixture."""
    return assert_websocket_route
