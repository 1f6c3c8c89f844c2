"""The command line as users and CI run it: real subprocesses, exit statuses, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import wsdiag

pytestmark = pytest.mark.timeout(60)


def wsdiag_cmd(*args, timeout=40):
    return subprocess.run([sys.executable, "-m", "wsdiag", *args], capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "100", "PYTHONPATH": ""})


def test_version_and_help_list_exit_statuses():
    assert wsdiag_cmd("--version").stdout.strip().endswith(wsdiag.__version__)
    out = wsdiag_cmd("--help").stdout
    for word in ("probe", "serve-sample", "profiles", "explain", "demo", "Exit statuses"):
        assert word in out


def test_probe_broken_route_exits_1_and_names_the_hidden_mismatch(serve_app):
    """Against a route without websocket=True: exit 1, WS601 leads, with the websocket=True fix."""
    r = wsdiag_cmd("probe", serve_app("fixtures.apps.seed_route").url("/ws"))
    assert r.returncode == 1, r.stderr
    assert "WS601" in r.stdout and "websocket=True" in r.stdout
    assert r.stdout.index("WS601") < r.stdout.index("Findings")


def test_probe_fixed_route_exits_0(serve_app):
    r = wsdiag_cmd("probe", serve_app("fixtures.apps.seed_fixed").url("/ws"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout


def test_probe_json_is_valid_and_versioned(serve_app):
    """--json prints one document with the schema id, verdicts and ranked causes."""
    url = serve_app("fixtures.apps.seed_route").url("/ws")
    r = wsdiag_cmd("probe", "--json", "-p", "chrome,firefox-legacy", url, serve_app("fixtures.apps.seed_fixed").url("/ws"))
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["schema"] == "wsdiag.probe/1" and doc["ok"] is False
    broken, fixed = doc["reports"]
    assert [x["verdict"] for x in broken["results"]] == ["abandoned", "abandoned"]
    assert broken["causes"][0]["code"] == "WS601" and broken["causes"][0]["rank"] == 1
    assert fixed["ok"] is True and [x["verdict"] for x in fixed["results"]] == ["serviced", "serviced"]


def test_fail_on_warning_and_never(serve_app):
    """The workaround is a warning: exit 0 by default, 1 with --fail-on warning."""
    url = serve_app("fixtures.apps.seed_hook").url("/ws")
    assert wsdiag_cmd("probe", "-p", "minimal", url).returncode == 0
    assert wsdiag_cmd("probe", "-p", "minimal", "--fail-on", "warning", url).returncode == 1
    assert wsdiag_cmd("probe", "-p", "minimal", "--fail-on", "never", serve_app("fixtures.apps.seed_route").url("/ws")).returncode == 0


@pytest.mark.parametrize("args,needle", [
    (["probe", "localhost:5000/ws"], "has no scheme"),
    (["probe", "ftp://h/ws"], "scheme 'ftp'"),
    (["probe", "ws://h:99999/"], "not a valid URL"),
    (["probe"], "at least one URL"),
    (["probe", "-p", "netscape", "ws://127.0.0.1:1/"], "unknown profile"),
    (["probe", "-H", "no colon here", "ws://127.0.0.1:1/"], "bad --header"),
    (["probe", "--cacert", "/nonexistent/ca.pem", "wss://127.0.0.1:1/"], "cannot be read"),
    (["probe", "--from-file", "/nonexistent/urls.txt"], "No such file"),
    (["probe", "--timeout", "0", "ws://127.0.0.1:1/"], "--timeout"),
    (["explain", "WS999"], "unknown code"),
    (["profiles", "--show", "netscape"], "unknown profile"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, needle):
    """Usage errors: exit 2, the reason on stderr, no traceback."""
    r = wsdiag_cmd(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert needle in r.stderr
    assert r.stderr.startswith("wsdiag: error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr + r.stdout


def test_unreachable_target_is_a_finding_not_a_crash():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = wsdiag_cmd("probe", "-p", "minimal", "--json", f"ws://127.0.0.1:{port}/ws")
    assert r.returncode == 1
    res = json.loads(r.stdout)["reports"][0]["results"][0]
    assert (res["verdict"], res["phase"], res["findings"][0]["code"]) == ("unreachable", "connect", "WS102")


def test_from_file_reads_urls_and_comments(tmp_path, serve_app):
    f = tmp_path / "urls.txt"
    f.write_text(f"# fleet\n{serve_app('fixtures.apps.seed_fixed').url('/ws')}\n\n")
    r = wsdiag_cmd("probe", "--json", "-p", "minimal", "--from-file", str(f))
    assert r.returncode == 0 and len(json.loads(r.stdout)["reports"]) == 1


def test_secrets_are_redacted_unless_asked(serve_app):
    url = serve_app("fixtures.apps.seed_fixed").url("/ws")
    args = ["probe", "--json", "-v", "-p", "minimal", "-H", "Authorization: Bearer s3cr3t", "-H", "Cookie: session=abc", url]
    hidden = wsdiag_cmd(*args).stdout
    assert "s3cr3t" not in hidden and "session=abc" not in hidden and "<redacted>" in hidden
    shown = wsdiag_cmd(*args, "--show-secrets").stdout
    assert "s3cr3t" in shown and "session=abc" in shown


def test_verbose_shows_raw_heads_and_frames(serve_app):
    r = wsdiag_cmd("probe", "-v", "-p", "chrome", serve_app("fixtures.apps.seed_route").url("/ws"))
    assert "GET /ws HTTP/1.1" in r.stdout and "HTTP/1.1 101 Switching Protocols" in r.stdout
    assert '"event": "close"' in r.stdout


def test_explain_and_list():
    r = wsdiag_cmd("explain", "route-not-websocket")
    assert r.returncode == 0 and "WS601" in r.stdout and "WebsocketMismatch" in r.stdout
    listing = json.loads(wsdiag_cmd("explain", "--list", "--json").stdout)
    assert {c["code"] for c in listing} >= {"WS601", "WS702", "WS101"}


def test_profiles_lists_sources_and_shows_bytes():
    listing = json.loads(wsdiag_cmd("profiles", "--json").stdout)
    names = [p["name"] for p in listing]
    assert names[:2] == ["chrome", "firefox"] and "websocket-client" in names and "http10" in names
    assert all(p["source"] for p in listing)
    shown = wsdiag_cmd("profiles", "--show", "firefox-legacy").stdout
    assert "Connection: keep-alive, Upgrade" in shown


def test_demo_runs_the_sample_and_explains():
    """`wsdiag demo`: starts the sample, probes its three variants, exits 0, stops the server."""
    r = wsdiag_cmd("demo", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    route, hook, fixed = doc["reports"]
    assert route["causes"][0]["code"] == "WS601"
    assert [c["code"] for c in hook["causes"]] == ["WS604"]
    assert fixed["ok"] is True


def test_probe_sample_gives_the_real_exit_status():
    assert wsdiag_cmd("probe", "--sample", "-p", "minimal").returncode == 1


def test_cli_import_does_not_load_heavy_packages():
    """`wsdiag --help` must not import Flask, gevent, rich or websocket-client."""
    code = ("import sys; from click.testing import CliRunner; from wsdiag.cli import main; "
            "CliRunner().invoke(main, ['--help']); "
            "print(sorted(m for m in ('flask','gevent','rich','websocket','werkzeug') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30).stdout.strip()
    assert out == "[]"


def test_every_float_option_refuses_nan_and_inf():
    """Every float option of every command refuses nan/inf with a usage error (exit 2)."""
    import click

    from wsdiag.cli import FiniteFloat, main

    floats = []
    for name, cmd in main.commands.items():
        for p in cmd.params:
            if isinstance(p.type, click.types.FloatParamType):
                floats.append((name, p.name))
                assert isinstance(p.type, FiniteFloat), f"{name} --{p.name} accepts nan: use FiniteFloat"
                for bad in ("nan", "inf", "-inf"):
                    with pytest.raises(click.BadParameter):
                        p.type.convert(bad, p, None)
    assert len(floats) >= 6  # probe's timeout/watch/hold/app-timeout/rate, bisect's, replay's
