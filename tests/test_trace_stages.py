"""StagePath, render_path and hidden_outcome_message on scripted trace events (pure core)."""

from __future__ import annotations

import re

import pytest

from wsdiag.core import stages
from wsdiag.core.stages import StagePath, hidden_outcome_message, render_path

pytestmark = pytest.mark.timeout(10)


def req(path="/ws", websocket=True):
    return {"stage": "request", "t_ms": 0.0, "method": "GET", "path": path, "probe_id": "ab",
            "websocket": websocket, "socket_class": "geventwebsocket.websocket.WebSocket" if websocket else None}


def hook(name, outcome="none", scope="app", blueprint=None, exception=None, socket_closed=False, ms=0.01):
    ident = {"hook": name, "name": name, "module": "m", "scope": scope, "blueprint": blueprint}
    return [{"stage": "hook_enter", "t_ms": 0.1, **ident},
            {"stage": "hook_exit", "t_ms": 0.2, "outcome": outcome, "exception": exception,
             "ms": ms, "socket_closed": socket_closed, **ident}]


def routing(ok=True, rule="/ws", exception=None, code=None, dispatched=True, **extra):
    ev = {"stage": "routing", "t_ms": 0.3, "ok": ok, "rule": rule if ok else None, "endpoint": "ws" if ok else None,
          "exception": exception, "code": code, "dispatched": dispatched, "detected_websocket": True}
    ev.update(extra)
    return ev


def view(outcome="returned", exception=None, ms=0.4, socket_closed=False):
    return [{"stage": "view_enter", "t_ms": 0.5, "endpoint": "ws", "view": "ws", "name": "ws", "module": "m"},
            {"stage": "view_exit", "t_ms": 0.9, "endpoint": "ws", "view": "ws", "name": "ws", "outcome": outcome,
             "exception": exception, "ms": ms, "socket_closed": socket_closed}]


def end(status, websocket=True):
    return {"stage": "end", "t_ms": 1.0, "status": status, "status_line": f"{status} X", "discarded": websocket,
            "socket_closed": False, "exception": None, "ms": 1.0}


def test_seed_route_path():
    """A plain rule upgraded: app hook ran, routing raised WebsocketMismatch, the view never ran."""
    events = [req(), *hook("check_auth"),
              routing(ok=False, exception="WebsocketMismatch", code=400, other_rule="/ws", other_endpoint="ws"), end(400)]
    p = StagePath.from_events(events)
    assert p.reached == stages.REACHED_ROUTING
    assert (p.routing_exception, p.hidden_status, p.hooks_run, p.view_ran, p.socket_served) == (
        "WebsocketMismatch", 400, ["app:check_auth"], False, False)
    assert render_path(p) == ("before_request(app:check_auth) ✓ → routing ✗ WebsocketMismatch "
                              "(400, discarded by gevent-websocket) → view never ran")


def test_hook_served_path():
    """A hook that answers after the socket closed served it: the workaround."""
    events = [req(), *hook("serve_socket", outcome="response", socket_closed=True, ms=12.0),
              routing(ok=False, exception="WebsocketMismatch", code=400, dispatched=False), end(200)]
    p = StagePath.from_events(events)
    assert p.reached == stages.REACHED_BEFORE_REQUEST
    assert p.served_by == "hook:app:serve_socket"
    assert render_path(p).startswith("before_request(app:serve_socket) served the socket (workaround) → routing ✗ "
                                     "WebsocketMismatch (not raised")
    assert hidden_outcome_message(p) is None


def test_view_returned_at_once_path():
    """A view that returned with the socket open: rendered with its time, and warned about."""
    p = StagePath.from_events([req(), routing(), *view(ms=0.4), end(200)])
    assert render_path(p) == "before_request ✓ → routing ✓ /ws → view ws returned after 0.4 ms"
    assert p.reached == stages.REACHED_VIEW and not p.socket_served
    msg = hidden_outcome_message(p)
    assert msg and "returned after 0.4 ms with the socket still open" in msg


def test_view_served_is_quiet():
    """A view that served the socket until the peer closed: no warning."""
    p = StagePath.from_events([req(), routing(), *view(ms=1500.0, socket_closed=True), end(200)])
    assert p.served_by == "view:ws"
    assert "served the socket for 1500.0 ms" in render_path(p)
    assert hidden_outcome_message(p) is None


def test_view_raised_path():
    """A view that raised: hidden 500 named with the exception type."""
    p = StagePath.from_events([req(), routing(), *view(outcome="raised", exception="KeyError"), end(500)])
    assert (p.view_outcome, p.view_exception, p.hidden_status) == ("raised", "KeyError", 500)
    assert "view ws raised KeyError" in render_path(p)
    assert "Flask answered 500 (the view ws raised KeyError)" in hidden_outcome_message(p)


@pytest.mark.parametrize(
    "exception, code, extra, needle",
    [
        ("WebsocketMismatch", 400, {"other_rule": "/ws", "other_endpoint": "ws"}, "Fix: @app.route('/ws', websocket=True)"),
        ("NotFound", 404, {}, "NotFound: no rule matches /ws"),
        ("MethodNotAllowed", 405, {"valid_methods": ["POST"]}, "allows POST only"),
        ("RequestRedirect", 308, {"new_url": "ws://h/ws/"}, "RequestRedirect to ws://h/ws/"),
    ],
)
def test_hidden_routing_warnings(exception, code, extra, needle):
    """Each hidden routing failure gets its own warning, with the status and the fix."""
    p = StagePath.from_events([req(), routing(ok=False, exception=exception, code=code, **extra), end(code)])
    msg = hidden_outcome_message(p)
    assert msg.startswith(f"wsdiag: GET /ws upgraded by gevent-websocket, but Flask answered {code} (")
    assert "the client saw 101 then close. Fix: " in msg and needle in msg


def test_old_werkzeug_mismatch_names_the_release_window():
    """A websocket=True rule Werkzeug did not route as ws: the fix is Werkzeug, not the rule."""
    p = StagePath.from_events([req(), routing(ok=False, exception="WebsocketMismatch", code=400,
                                              detected_websocket=False, other_rule="/ws"), end(400)])
    assert "did not route this upgrade as a WebSocket" in hidden_outcome_message(p)


def test_blueprint_hooks_skipped_are_named():
    """The blueprint hooks that did not run because routing failed appear in the path."""
    p = StagePath.from_events([req("/api/ws"), *hook("log_request"),
                               routing(ok=False, exception="WebsocketMismatch", code=400, other_rule="/api/ws",
                                       other_endpoint="api.ws", skipped_blueprint_hooks=["api:require_token"]),
                               end(400)])
    assert p.skipped_blueprint_hooks == ["api:require_token"]
    assert render_path(p).endswith("view never ran; skipped: blueprint before_request api:require_token")
    assert "blueprint 'api'" in hidden_outcome_message(p)


def test_hook_answered_without_serving():
    """A hook that returned 401 while the socket was open: a hidden rejection."""
    p = StagePath.from_events([req(), *hook("require_token", outcome="response", socket_closed=False),
                               routing(dispatched=False), end(401)])
    assert render_path(p).startswith("before_request(app:require_token) answered (401, discarded by gevent-websocket)")
    assert "Flask answered 401 (before_request hook app:require_token returned a response" in hidden_outcome_message(p)


def test_plain_request_is_not_warned_about():
    """Without wsgi.websocket the client saw the status itself: nothing hidden."""
    p = StagePath.from_events([req(websocket=False), routing(ok=False, exception="WebsocketMismatch", code=400), end(400, False)])
    assert hidden_outcome_message(p) is None
    assert "(400, sent to the client)" in render_path(p)


def test_incomplete_trace():
    """A trace without its end event: the view is still running; no verdict yet."""
    p = StagePath.from_events([req(), routing(), view()[0]])
    assert not p.complete and p.view_outcome == "running"
    assert render_path(p) == "before_request ✓ → routing ✓ /ws → view ws running (socket open)"
    assert hidden_outcome_message(p) is None


@pytest.mark.parametrize("junk", [None, [], [1, "x", None], [{"stage": "nonsense"}], [{"stage": "hook_exit"}]])
def test_junk_events_do_not_raise(junk):
    """Arbitrary event lists fold without raising (the channel is input)."""
    p = StagePath.from_events(junk)
    assert isinstance(render_path(p), str)
    assert isinstance(p.to_dict(), dict)


def test_to_dict_is_json_ready():
    """to_dict carries the derived facts and the rendered line."""
    import json

    p = StagePath.from_events([req(), routing(), *view(), end(200)])
    d = json.loads(json.dumps(p.to_dict()))
    assert d["reached"] == "view" and d["rendered"] == render_path(p)
    assert re.search(r"view ws returned after \d+\.\d ms", d["rendered"])
