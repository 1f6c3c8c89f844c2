"""wsdiag against a catalogue of scripted misbehaving servers: right code, right verdict, bounded.

Each scenario in fixtures/hostile/servers.py is a loopback server with one thing broken (or
none, for the baselines). A single-profile probe must name the expected codes and verdict
(exactly, where the scenario says so), finish within its time bound, and never raise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from fixtures.hostile.servers import SCENARIOS, ScriptedServer, has_ipv6_loopback
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import PROFILES
from wsdiag.net.transport import Settings

TIMEOUT, WATCH = 2.0, 0.8
BOUND = TIMEOUT + WATCH + 0.5  # seconds: per exchange budget plus the post-upgrade window
NAMES = sorted(SCENARIOS)


def _skip_unavailable(scenario):
    if scenario.family == "ipv6" and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback")


def _probe(srv, profile: str):
    scenario = srv.scenario
    subprotocols = ("chat",) if "offer-subprotocol" in scenario.requires else ()
    settings = Settings(timeout=TIMEOUT, watch=WATCH, cacert=srv.cacert, use_env_proxy=False)
    opts = ProbeOptions([PROFILES[profile]], settings, subprotocols=subprotocols, controls=False)
    start = time.monotonic()
    (report,) = probe([srv.url()], opts)
    return report, time.monotonic() - start


def _run(name: str, profile: str):
    scenario = SCENARIOS[name]
    _skip_unavailable(scenario)
    with ScriptedServer(scenario, max_hold=5) as srv:
        report, elapsed = _probe(srv, profile)
        assert srv.errors == []
    (result,) = report.results
    assert elapsed < BOUND, (name, elapsed)
    return scenario, result


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", NAMES)
def test_raw_profile_names_the_defect(name):
    """The minimal profile (wsdiag's own sockets): expected verdict and codes, within the bound."""
    scenario, result = _run(name, "minimal")
    codes = {f.code for f in result.findings}
    significant = {f.code for f in result.findings if f.severity.value != "info"}
    assert result.verdict.value == scenario.expected_verdict, (name, result.verdict, codes)
    assert scenario.expected_codes <= codes, (name, codes)
    if scenario.exact:
        assert significant == set(scenario.expected_codes), (name, significant)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", NAMES)
def test_websocket_client_profile_is_bounded_and_never_raises(name):
    """The library-driven profile gets a verdict within the same bound for every scenario."""
    scenario, result = _run(name, "websocket-client")
    assert result.verdict.value  # a verdict, whatever the bytes
    if scenario.expected_verdict in ("unreachable", "refused", "not-upgraded"):
        assert result.verdict.value == scenario.expected_verdict, (name, result.verdict, result.exchange.library_error)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["good", "no-answer", "garbage-status-line", "status-502", "up-close-empty", "hs-wrong-accept"])
def test_cli_json_stays_valid_with_the_documented_status(name):
    """Through the real CLI: valid JSON, exit 0 for the good server and 1 for each defect, no traceback."""
    with ScriptedServer(SCENARIOS[name], max_hold=5) as srv:
        r = subprocess.run([sys.executable, "-m", "wsdiag", "probe", "--json", "-p", "minimal", "--timeout", str(TIMEOUT),
                            "--watch", str(WATCH), "--no-controls", "--no-proxy", srv.url()],
                           capture_output=True, text=True, timeout=30)
    doc = json.loads(r.stdout)
    assert r.returncode == (0 if name == "good" else 1), r.stderr
    assert doc["reports"][0]["results"][0]["verdict"] == SCENARIOS[name].expected_verdict
    assert "Traceback" not in r.stderr
