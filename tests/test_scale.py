"""Scale (issue 14): `check` and `probe --format jsonl` stream, their memory does not grow with
the input, and the check cache is read on a second run. Nothing here is timed: results must
come out while the input is still open, and peak RSS is compared between N and 10N inputs.
"""

from __future__ import annotations

import json
import os
import select
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wsdiag.check import run as check_run
from wsdiag.check import static

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parent.parent
ROUTE = (ROOT / "fixtures/check/seed_route.py").read_text(encoding="utf-8")
# run wsdiag's CLI in a child and write that child's own peak RSS (KiB) to the file in argv[1]
PEAK = ("import atexit, resource, sys\n"
        "out = sys.argv.pop(1)\n"
        "atexit.register(lambda: open(out, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))\n"
        "from wsdiag.cli import run\n"
        "sys.argv[0] = 'wsdiag'\n"
        "run()\n")
FILLER = "".join(f"def helper_{i}(x):\n    '''doc'''\n    return [x * {i} for _ in range(3)]\n\n\n" for i in range(40))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WSDIAG_CACHE_DIR", None)
    return env


def _read_line(proc, deadline: float) -> str | None:
    """One line of the child's stdout, waiting at most until ``deadline``."""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            return line if line else None
        if proc.poll() is not None:
            return proc.stdout.readline() or None
    return None


def _peak_kib(args: list, tmp_path: Path, name: str, stdin=None) -> tuple[int, subprocess.CompletedProcess]:
    out = tmp_path / f"peak-{name}"
    r = subprocess.run([sys.executable, "-c", PEAK, str(out), *args], capture_output=True, text=True,
                       env=_env(), cwd=tmp_path, timeout=150, stdin=stdin)
    return int(out.read_text()), r


# -- check -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "github", "human"])
def test_check_reports_a_file_before_the_next_one_is_read(tmp_path, monkeypatch, fmt):
    """a.py's finding is written before the scan asks for the next file (a slow file source).

    (A FIFO would be the natural slow input, but the reader refuses FIFOs: a ``*.py`` FIFO
    must never block a check. So the file source here is a generator that looks at what was
    written when the next file is asked for.)"""
    import io

    from wsdiag.ui.stream import CheckStream

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.py").write_text(ROUTE, encoding="utf-8")
    (tree / "z.py").write_text("x = 1\n", encoding="utf-8")
    out = io.StringIO()
    written_when_z_was_asked = []

    def slow_files(paths):
        yield str(tree / "a.py"), False
        written_when_z_was_asked.append(out.getvalue())
        yield str(tree / "z.py"), False

    monkeypatch.setattr(check_run._static, "iter_files", slow_files)
    streamer = CheckStream(fmt, lambda: out)
    opts = check_run.CheckOptions(paths=[str(tree)], use_cache=False, versions={"werkzeug": "3.1.3"},
                                  on_start=streamer.start, on_finding=streamer.finding)
    report = check_run.run_check(opts).report
    streamer.finish(report, "error")
    assert streamer.started and len(written_when_z_was_asked) == 1
    early = written_when_z_was_asked[0]
    assert "WS501" in early and "a.py" in early, early
    assert report.files == [check_run.display_path(str(tree / n)) for n in ("a.py", "z.py")]
    if fmt == "jsonl":
        records = [json.loads(x) for x in out.getvalue().splitlines()]
        assert records[0]["type"] == "start" and records[-1]["type"] == "summary"
        assert records[-1]["files"] == 2 and records[-1]["exit_status"] == 1
        assert [r["code"] for r in records if r["type"] == "finding"] == ["WS501"]


def test_check_cli_streams_jsonl(tmp_path):
    """The command line writes the jsonl records (start, findings, summary) with the exit status."""
    tree = _tree(tmp_path / "tree", 20)
    r = subprocess.run([sys.executable, "-m", "wsdiag", "check", str(tree), "--format", "jsonl"],
                       capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=60)
    assert r.returncode == 1, r.stderr
    records = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["type"] for x in records] == ["start"] + ["finding"] * 2 + ["summary"]
    assert (tmp_path / ".wsdiag_cache" / ".gitignore").exists()  # the default cache directory


def _tree(root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        d = root / f"pkg{i // 100}"
        d.mkdir(exist_ok=True)
        (d / f"m{i}.py").write_text(ROUTE + FILLER if i % 10 == 0 else FILLER, encoding="utf-8")
    return root


def test_check_memory_does_not_grow_with_the_tree(tmp_path):
    small = _tree(tmp_path / "small", 150)
    large = _tree(tmp_path / "large", 1500)
    peaks = {}
    for name, tree in (("small", small), ("large", large)):
        peaks[name], r = _peak_kib(["check", str(tree), "--format", "jsonl", "--no-cache", "--fail-on", "never"],
                                   tmp_path, name)
        assert r.returncode == 0, r.stderr
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        assert lines[-1]["files"] == len(list(tree.rglob("*.py")))
        assert sum(1 for x in lines if x["type"] == "finding" and x["code"] == "WS501") == lines[-1]["files"] // 10
    # 10x the files (about 13 MB of source) may cost a little (the file list), not a tree's worth
    assert peaks["large"] - peaks["small"] < 12 * 1024, peaks


def test_second_run_reads_the_cache(tmp_path):
    tree = _tree(tmp_path / "tree", 30)
    cache = tmp_path / "cache"
    first, second, third = {}, {}, {}
    opts = dict(paths=[str(tree)], cache_dir=str(cache), versions={"werkzeug": "3.1.3"})
    r1 = check_run.run_check(check_run.CheckOptions(cache_stats=first, **opts)).report
    r2 = check_run.run_check(check_run.CheckOptions(cache_stats=second, **opts)).report
    assert first["misses"] == 30 and first["hits"] == 0
    assert second["hits"] == 30 and second["misses"] == 0
    assert [f.to_dict() for f in r1.findings] == [f.to_dict() for f in r2.findings]
    assert r1.files == r2.files and len(r1.findings) == 3
    assert (cache / ".gitignore").read_text().strip().endswith("*")
    (tree / "pkg0" / "m1.py").write_text(ROUTE, encoding="utf-8")  # one file changes: one miss
    r3 = check_run.run_check(check_run.CheckOptions(cache_stats=third, **opts)).report
    assert third == {"hits": 29, "misses": 1, "written": 30}
    assert len(r3.findings) == 4
    other = {}  # another Werkzeug: other advice, so another cache
    check_run.run_check(check_run.CheckOptions(cache_stats=other, **dict(opts, versions={"werkzeug": "2.0.1"})))
    assert other["hits"] == 0


def _trees() -> list:
    """Real trees: the fixtures and the installed WebSocket-related packages."""
    out = [ROOT / "fixtures"]
    for sp in site.getsitepackages():
        for name in ("flask", "werkzeug", "geventwebsocket", "flask_sock", "simple_websocket", "flask_socketio",
                     "socketio", "engineio", "gunicorn", "websocket"):
            if (Path(sp) / name).is_dir():
                out.append(Path(sp) / name)
    return out


def test_the_prefilter_changes_no_finding(monkeypatch):
    """Files skipped by the cheap word filter would have had no finding anyway (real trees)."""
    versions = {"werkzeug": "3.1.3", "flask": "3.1.0"}
    trees = [str(t) for t in _trees()]
    runs = {}
    for on in (True, False):
        monkeypatch.setattr(check_run, "PREFILTER", on)
        runs[on] = check_run.run_check(check_run.CheckOptions(paths=trees, use_cache=False, versions=versions)).report
    assert len(runs[True].files) > 300
    assert runs[True].files == runs[False].files and runs[True].skipped == runs[False].skipped
    assert [f.to_dict() for f in runs[True].findings] == [f.to_dict() for f in runs[False].findings]


def test_streaming_scan_equals_the_whole_project_scan(tmp_path):
    """The streaming loop (compact facts per file) finds what scanning the project as a whole finds."""
    versions = {"werkzeug": "3.1.3"}
    trees = [str(ROOT / "fixtures")]
    streamed = check_run.run_check(check_run.CheckOptions(paths=trees, use_cache=False, versions=versions)).report
    scans = []
    for path, explicit in static.iter_files(trees):
        try:
            text = Path(path).read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue
        scans.append(static.scan_file(check_run.display_path(path), text, explicit))
    whole = static.findings([s for s in scans if not s.error], "3.1.3")
    key = lambda f: (f.code, f.location and (f.location.file, f.location.line, f.location.column))  # noqa: E731
    assert sorted(map(key, streamed.findings)) == sorted(map(key, whole))
    assert len(streamed.findings) > 10


# -- probe --format jsonl ----------------------------------------------------------------


def test_probe_jsonl_writes_each_url_while_the_list_is_still_open(serve_app):
    served = serve_app("fixtures.apps.seed_fixed")
    proc = subprocess.Popen([sys.executable, "-m", "wsdiag", "probe", "--from-file", "-", "--format", "jsonl",
                             "-p", "minimal", "--no-controls", "--watch", "0.2"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    try:
        got = []
        for i in range(3):
            proc.stdin.write(served.url(f"/ws?n={i}") + "\n")
            proc.stdin.flush()
            line = _read_line(proc, time.monotonic() + 30)
            assert line is not None, proc.stderr.read() if proc.poll() is not None else "no record"
            rec = json.loads(line)
            assert rec["type"] == "report" and rec["url"].endswith(f"n={i}")
            assert rec["results"][0]["verdict"] == "serviced"
            assert proc.poll() is None  # still waiting for more URLs
            got.append(rec)
        proc.stdin.close()  # the end of the list
        rest, err = proc.stdout.read(), proc.stderr.read()  # bounded by the test's timeout
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = json.loads(rest.splitlines()[-1])
    assert summary["type"] == "summary" and summary["urls"] == 3 and summary["verdicts"] == {"serviced": 3}
    assert proc.returncode == 0, err
    assert "3 URLs probed" in err


def test_probe_jsonl_memory_does_not_grow_with_the_url_count(serve_app, tmp_path):
    served = serve_app("fixtures.apps.seed_fixed")
    peaks = {}
    for n in (150, 1500):
        urls = tmp_path / f"urls{n}.txt"
        urls.write_text("".join(served.url(f"/ws?n={i}") + "\n" for i in range(n)))
        peaks[n], r = _peak_kib(["probe", "--from-file", str(urls), "--format", "jsonl", "-p", "minimal",
                                 "--no-controls", "--watch", "0.2"], tmp_path, str(n))
        assert r.returncode == 0, r.stderr[-2000:]
        records = [json.loads(x) for x in r.stdout.splitlines()]
        assert len(records) == n + 1 and records[-1]["urls"] == n
        assert len({x["url"] for x in records[:-1]}) == n
    assert peaks[1500] - peaks[150] < 8 * 1024, peaks


def test_probe_resume_skips_recorded_urls_and_drops_a_torn_line(serve_app, tmp_path):
    served = serve_app("fixtures.apps.seed_fixed")
    urls = [served.url(f"/ws?n={i}") for i in range(6)]
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    out = tmp_path / "out.jsonl"
    first = subprocess.run([sys.executable, "-m", "wsdiag", "probe", urls[0], urls[1], "--format", "jsonl", "-p",
                            "minimal", "--no-controls", "--watch", "0.2"], capture_output=True, text=True,
                           env=_env(), timeout=60)
    assert first.returncode == 0, first.stderr
    body = "".join(x + "\n" for x in first.stdout.splitlines() if json.loads(x)["type"] == "report")
    out.write_text(body + '{"type": "report", "url": "' + urls[2] + '", "ok": tr')  # cut short mid-record
    r = subprocess.run([sys.executable, "-m", "wsdiag", "probe", "--from-file", str(listing), "--format", "jsonl",
                        "-p", "minimal", "--no-controls", "--watch", "0.2", "--resume", str(out), "--per-host", "2",
                        "--rate", "50"], capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    reports = [x["url"] for x in records if x["type"] == "report"]
    assert sorted(reports) == sorted(urls)  # each URL once: 2 kept, the torn one and 3 more probed now
    assert records[-1]["type"] == "summary" and records[-1]["resumed"] == 2 and records[-1]["urls"] == 4


def test_probe_jsonl_bad_line_is_a_record_and_status_2(serve_app, tmp_path):
    served = serve_app("fixtures.apps.seed_fixed")
    r = subprocess.run([sys.executable, "-m", "wsdiag", "probe", "--from-file", "-", "--format", "jsonl", "-p",
                        "minimal", "--no-controls", "--watch", "0.2"],
                       input=f"{served.url('/ws')}\nnot a url\n", capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 2
    records = [json.loads(x) for x in r.stdout.splitlines()]
    assert {x["type"] for x in records} == {"report", "error", "summary"}
    assert records[-1]["bad_urls"] == 1 and records[-1]["urls"] == 1
    assert "Traceback" not in r.stderr


def test_probe_jsonl_options_need_jsonl():
    r = subprocess.run([sys.executable, "-m", "wsdiag", "probe", "ws://127.0.0.1:9/ws", "--rate", "5"],
                       capture_output=True, text=True, env=_env(), timeout=30)
    assert r.returncode == 2 and "--format jsonl" in r.stderr


def test_fleet_politeness_limits_hosts_and_rate():
    """The per-host slots never exceed the limit, and the token bucket spaces starts by 1/rate."""
    import threading

    from wsdiag.net.fleet import _Politeness

    polite = _Politeness(per_host=2, rate=None)
    stop = threading.Event()
    inside, peak, lock = [0], [0], threading.Lock()

    def one():
        assert polite.acquire("h:1", stop)
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.02)
        with lock:
            inside[0] -= 1
        polite.release("h:1")

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] == 2 and polite.busy == {}
    bucket = _Politeness(per_host=None, rate=1000)
    marks = []
    for _ in range(5):
        assert bucket.acquire("h:1", stop)
        marks.append(bucket.next_start)
        bucket.release("h:1")
    assert all(b - a >= 0.001 - 1e-9 for a, b in zip(marks, marks[1:]))
