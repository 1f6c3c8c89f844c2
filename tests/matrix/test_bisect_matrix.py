"""Bisection in each Werkzeug environment: on 2.0.0/2.0.1 it names the Connection header.

Run by nox with the other matrix tests (``nox -s matrix``); the real gevent-websocket server
runs the fixture apps under the environment's Werkzeug.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest

from wsdiag.core.profiles import PROFILES
from wsdiag.net.bisect import candidate_for, run_bisect
from wsdiag.net.transport import Settings

pytestmark = [pytest.mark.matrix, pytest.mark.timeout(120)]

WERKZEUG = tuple(int(p) for p in version("werkzeug").split(".")[:3])
SETTINGS = Settings(timeout=5, watch=1.0, use_env_proxy=False)


@pytest.mark.parametrize("app,good,bad,failing", [
    ("seed_route", "firefox-legacy", "chrome", "Upgrade"),
    ("seed_fixed", "chrome", "firefox-legacy", "keep-alive, Upgrade"),
])
def test_bisect_names_the_connection_header(serve_app, app, good, bad, failing):
    url = serve_app(f"fixtures.apps.{app}").url("/ws")
    result = run_bisect(url, candidate_for(PROFILES[good]), candidate_for(PROFILES[bad]), SETTINGS)
    if (2, 0) <= WERKZEUG < (2, 0, 2):
        assert result.status == "found", result.to_dict()
        (minimal,) = result.minimal
        assert [(c.kind, c.name, c.old) for c in minimal] == [("value", "Connection", failing)]
        assert result.only_when == {0: True}
        assert result.sentences()[0].startswith(f"fails only when Connection is exactly {failing!r}")
        assert "Werkzeug 2.0.0 - 2.0.1" in result.hints()[0]
        # bounded: both ends, each difference once, one reverse check
        assert result.exchanges <= 2 + len(result.changes) + 1
    else:
        # no Connection split on this release: both work or both fail
        assert result.status == "no-split", result.to_dict()


def test_probe_bisects_automatically_on_the_split(serve_app):
    """The default profiles of a probe split on 2.0.0/2.0.1; the automatic bisection names
    the Connection header; elsewhere nothing splits and nothing is added."""
    from wsdiag.core.profiles import resolve
    from wsdiag.net.bisect import auto_bisect
    from wsdiag.net.probe import ProbeOptions, probe

    url = serve_app("fixtures.apps.seed_route").url("/ws")
    (report,) = probe([url], ProbeOptions(resolve(["default"]), SETTINGS))
    found = auto_bisect(report, SETTINGS)
    if (2, 0) <= WERKZEUG < (2, 0, 2):
        assert [f.code for f in found] == ["WS850"]
        assert "fails only when Connection is exactly 'Upgrade'" in found[0].summary
        assert report.bisect["exchanges"] <= 24
    else:
        assert found == [] and not getattr(report, "bisect", None)
