"""Repro bundles (wsdiag.bundle/1), `wsdiag replay` and the HAR 1.2 export, on real servers.

* A bundle saved by `probe --save` from every failure-mode fixture (the Flask fixture apps
  under gevent-websocket, the app without WebSocketHandler, and every scripted hostile
  server) replays offline to the identical report, text and JSON.
* Authorization/Cookie values and the trace token never reach the file.
* `replay --against URL` resends the saved bytes and names what changed (WS859).
* The HAR export validates against a HAR 1.2 JSON Schema written here from the spec
  (http://www.softwareishard.com/blog/har-12-spec/), plus Chrome's `_webSocketMessages` form.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from fixtures.hostile.servers import SCENARIOS, ScriptedServer
from wsdiag.core.bundle import SCHEMA, BundleError, reports_from
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import resolve
from wsdiag.net.transport import Settings
from wsdiag.ui import bundle_io
from wsdiag.ui.har import to_har
from wsdiag.ui.render import to_json

pytestmark = pytest.mark.timeout(120)

APPS = ["seed_route", "seed_hook", "seed_fixed", "seed_dual", "view_returns"]
PLAIN = [n for n in sorted(SCENARIOS) if not SCENARIOS[n].name.startswith("tls")
         and "tls" not in n and not getattr(SCENARIOS[n], "tls", False)]


def wsdiag(*args, timeout=90):
    return subprocess.run([sys.executable, "-m", "wsdiag", *args], capture_output=True, text=True, timeout=timeout)


def _roundtrip(tmp_path, url, *extra):
    bundle = tmp_path / "b.json"
    live = wsdiag("probe", url, "--json", "--no-proxy", "--save", str(bundle), *extra)
    assert live.returncode in (0, 1), live.stderr
    offline = wsdiag("replay", str(bundle), "--json")
    assert offline.returncode == live.returncode, offline.stderr
    assert json.loads(offline.stdout) == json.loads(live.stdout)
    doc = json.loads(bundle.read_text())
    assert doc["schema"] == SCHEMA and doc["versions"]["wsdiag"]
    return doc


@pytest.mark.parametrize("app", APPS)
def test_fixture_app_bundle_replays_identically(tmp_path, serve_app, app):
    doc = _roundtrip(tmp_path, serve_app(f"fixtures.apps.{app}").url("/ws"))
    jsonschema.validate(to_har(doc), HAR_SCHEMA)


def test_no_handler_bundle_replays_identically(tmp_path, serve_app):
    _roundtrip(tmp_path, serve_app("fixtures.apps.seed_fixed", websocket=False).url("/ws"))


@pytest.mark.parametrize("name", PLAIN)
def test_hostile_bundle_replays_identically(tmp_path, name):
    """In-process (the CLI path is covered above): save, write, read, rebuild, compare."""
    with ScriptedServer(SCENARIOS[name], max_hold=5) as srv:
        if not srv.url().startswith("ws://"):
            pytest.skip("TLS scenario")
        opts = ProbeOptions(resolve(["default"]), Settings(timeout=3, watch=0.5, use_env_proxy=False))
        reports = probe([srv.url()], opts)
    path = tmp_path / "b.json"
    bundle_io.write_json(str(path), bundle_io.build(reports))
    doc = bundle_io.load(str(path))
    assert to_json(reports_from(doc), verbose=True) == to_json(reports, verbose=True)
    jsonschema.validate(to_har(doc), HAR_SCHEMA)


def test_text_report_replays_identically(tmp_path, serve_app):
    url = serve_app("fixtures.apps.seed_route").url("/ws")
    bundle = tmp_path / "b.json"
    live = wsdiag("probe", url, "--no-proxy", "--save", str(bundle))
    offline = wsdiag("replay", str(bundle))
    assert live.stdout and offline.stdout == live.stdout
    assert offline.returncode == live.returncode == 1


def test_secrets_and_trace_token_are_redacted(tmp_path):
    from wsdiag.proc import start_sample

    child = start_sample()
    try:
        opts = ProbeOptions(resolve(["chrome"]), Settings(timeout=5, watch=0.5, use_env_proxy=False),
                            extra_headers=(("Authorization", "Bearer TOPSECRET1"), ("Cookie", "sid=TOPSECRET2")),
                            trace=child.trace)
        reports = probe([child.url("fixed")], opts)
    finally:
        child.stop()
    # the token would leak if any recorded text carried it: put it where a server might echo it
    reports[0].results[0].exchange.error_detail = f"echo {child.token}"
    doc = bundle_io.build(reports, trace_token=child.token)
    text = json.dumps(doc)
    assert "TOPSECRET" not in text and child.token not in text
    assert "Authorization: <redacted>" in doc["urls"][0]["runs"][0]["exchange"]["request"]["$bytes"]
    assert "trace token" in doc["redacted"]
    # still replays (and the trace fetched live is in the bundle)
    (again,) = reports_from(doc)
    assert again.results[0].verdict == reports[0].results[0].verdict
    assert doc["urls"][0]["runs"][0]["exchange"]["trace"]


def test_replay_against_shows_what_changed(tmp_path, serve_app):
    """Saved from the broken app, resent to the fixed one: the socket now works (WS859)."""
    before = serve_app("fixtures.apps.seed_route").url("/ws")
    after = serve_app("fixtures.apps.seed_fixed").url("/ws")
    bundle = tmp_path / "b.json"
    wsdiag("probe", before, "--no-proxy", "--save", str(bundle))
    out = wsdiag("replay", str(bundle), "--against", after, "--json")
    doc = json.loads(out.stdout)
    changed = [f for f in doc["reports"][0]["facts"] if f["code"] == "WS859"]
    assert changed, doc["reports"][0]["facts"]
    assert any(f["evidence"]["after"].endswith("serviced") for f in changed)
    assert out.returncode == 0
    # and against the same server nothing changed
    same = json.loads(wsdiag("replay", str(bundle), "--against", before, "--json").stdout)
    assert not [f for f in same["reports"][0]["facts"] if f["code"] == "WS859"]


def test_replay_bad_input_is_one_line(tmp_path):
    missing = wsdiag("replay", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    other = tmp_path / "x.json"
    other.write_text('{"schema": "something/1"}')
    out = wsdiag("replay", str(other))
    assert out.returncode == 2 and "wsdiag.bundle/1" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(BundleError):
        reports_from({"schema": SCHEMA, "urls": [{"url": "ws://x/"}]})


def test_har_export_file(tmp_path, serve_app):
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    har = tmp_path / "x.har"
    out = wsdiag("probe", url, "--no-proxy", "--har", str(har))
    assert out.returncode == 0, out.stderr
    doc = json.loads(har.read_text())
    jsonschema.validate(doc, HAR_SCHEMA)
    ws = [e for e in doc["log"]["entries"] if e.get("_resourceType") == "websocket"]
    assert ws and all(e["response"]["status"] == 101 for e in ws)
    msgs = ws[0]["_webSocketMessages"]
    assert {m["type"] for m in msgs} == {"send", "receive"}
    assert any(m["opcode"] == 10 for m in msgs)  # the pong that served the socket


def test_har_schema_rejects_broken_documents():
    """The schema can fail: a missing required field or a bad message type is caught."""
    good = {"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": []}}
    jsonschema.validate(good, HAR_SCHEMA)
    for broken in ({"log": {"version": "1.2", "entries": []}},
                   {"log": {**good["log"], "entries": [{"startedDateTime": "x"}]}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, HAR_SCHEMA)


# -- HAR 1.2 (from the spec), with Chrome DevTools' custom WebSocket fields: tests/har12.schema.json

HAR_SCHEMA = json.loads((Path(__file__).with_name("har12.schema.json")).read_text())
