"""The finding-code registry: complete, unique, stable in form, and used consistently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wsdiag.core import codes
from wsdiag.net import transport

SRC = Path(__file__).resolve().parent.parent / "wsdiag"


def test_codes_are_unique_well_formed_and_grouped_by_layer():
    """Every code is WSnnn, unique, kebab-case named, in a known layer, fully explained."""
    seen_names = set()
    for key, c in codes.REGISTRY.items():
        assert key == c.code and re.fullmatch(r"WS[1-8]\d\d", c.code)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", c.name), c.name
        assert c.name not in seen_names
        seen_names.add(c.name)
        assert c.layer in codes.LAYERS.values()
        for text in (c.summary, c.fix, c.what, c.why):
            assert text.strip(), c.code


def test_every_code_named_in_the_source_is_registered():
    """A code string used anywhere in wsdiag/ exists in the registry."""
    used = set()
    for path in SRC.rglob("*.py"):
        used |= set(re.findall(r'"(WS\d{3})"', path.read_text()))
    assert used, "the scan found no codes at all"
    assert used - set(codes.REGISTRY) == set()


def test_transport_error_kinds_are_finding_names():
    """The transport's error table only produces kinds that name registered codes."""
    kinds = {row[3] for row in transport.error_table()} | {"tls-spoken-on-plain-url", "proxy-refused", "closed-before-response", "response-head-too-large"}
    assert kinds <= set(codes.BY_NAME)
    assert all(codes.BY_NAME[k].layer == "transport" for k in kinds)


@pytest.mark.parametrize("c", list(codes.REGISTRY.values()), ids=lambda c: c.code)
def test_summary_templates_never_raise(c):
    """A template with missing or odd evidence still renders."""
    assert codes.format_summary(c, {})
    assert codes.format_summary(c, {"status": None, "path": object()})


def test_lookup_by_code_or_name():
    """explain accepts WS601, ws601 and route-not-websocket."""
    assert codes.lookup("WS601") is codes.lookup("ws601") is codes.lookup("route-not-websocket")
    assert codes.lookup("WS999") is None
