"""`wsdiag check --fix` never loses a byte; `check` reads only regular, bounded files (issue 15, item 1).

Every test runs the real CLI in a child process on real files: a file-size limit
(RLIMIT_FSIZE) stands in for a full disk, SIGKILL lands in the middle of a run.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)

ROUTE = '@app.route("/ws")'
FIXED = '@app.route("/ws", websocket=True)'


def source(nl: str = "\n", pad: int = 0, extra: str = "") -> str:
    lines = ["from flask import Flask, request", extra, "app = Flask(__name__)", "", "",
             ROUTE, "def ws():", '    sock = request.environ.get("wsgi.websocket")', "    return sock.receive()", ""]
    text = nl.join(line for line in lines if line is not None)
    if pad:
        text += ("# padding " + "x" * 69 + nl) * (pad // 80 + 1)
    return text


def wsdiag(*args, cwd, timeout=60, preexec_fn=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", COLUMNS="200",
               WSDIAG_CACHE_DIR=os.path.join(str(cwd), os.pardir, "wsdiag-cache"))
    return subprocess.run([sys.executable, "-m", "wsdiag", *args], cwd=cwd, env=env, capture_output=True,
                          timeout=timeout, preexec_fn=preexec_fn, text=True)


def test_fix_keeps_bom_crlf_coding_cookie_and_mode(tmp_path):
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + source("\r\n").encode())
    lat = tmp_path / "lat.py"
    lat_text = "# -*- coding: latin-1 -*-\n" + source(extra="NAME = 'caf\u00e9'")
    lat.write_bytes(lat_text.encode("latin-1"))
    lat.chmod(0o640)
    before = wsdiag("check", ".", cwd=tmp_path)
    assert before.returncode == 1, before.stdout + before.stderr  # both files are scanned, not skipped
    assert "skipped" not in before.stdout and "bom.py" in before.stdout and "lat.py" in before.stdout
    r = wsdiag("check", "--fix", ".", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert bom.read_bytes() == b"\xef\xbb\xbf" + source("\r\n").replace(ROUTE, FIXED).encode()
    assert lat.read_bytes() == lat_text.replace(ROUTE, FIXED).encode("latin-1")
    assert (lat.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bom.py", "lat.py"]  # no temporary file left


def _limit_fsize(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_file_size_limit_leaves_the_big_file_untouched_and_fixes_the_rest(tmp_path):
    big = tmp_path / "big.py"
    small = tmp_path / "small.py"
    big.write_text(source(pad=96 * 1024))
    small.write_text(source())
    big_before = big.read_bytes()
    r = wsdiag("check", "--fix", ".", cwd=tmp_path, preexec_fn=_limit_fsize(32 * 1024))
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert big.read_bytes() == big_before  # not half a file
    assert small.read_text() == source().replace(ROUTE, FIXED)  # the run went on
    assert "not written" in r.stdout and "big.py" in r.stdout
    assert r.returncode == 1  # big.py's finding is still there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.py", "small.py"]


def test_kill_during_fix_leaves_each_file_identical_or_fully_fixed(tmp_path):
    count = 120
    before = source(pad=24 * 1024)
    after = before.replace(ROUTE, FIXED)
    files = [tmp_path / f"m{i:03}.py" for i in range(count)]
    partial_runs = 0
    for attempt in range(8):
        for f in files:
            f.write_text(before)
        stamp = {f: f.stat().st_mtime_ns for f in files}
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-m", "wsdiag", "check", "--fix", str(tmp_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        # kill as soon as the first file has been replaced: the writes are under way (no guessed
        # delay, so machine load cannot make the kill land before or after the fixing)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if any(f.stat().st_mtime_ns != stamp[f] for f in files[attempt::8]):
                break
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        states = []
        for f in files:
            text = f.read_text()
            assert text in (before, after), f"{f.name} is neither the old nor the fixed file ({len(text)} chars)"
            states.append(text == after)
        if any(states) and not all(states):
            partial_runs += 1
            if partial_runs >= 2:
                break
    assert partial_runs >= 1, "no kill landed while files were being fixed; the test proved nothing"


def test_symlink_leaving_the_checked_tree_is_not_written_through(tmp_path):
    outside = tmp_path / "outside"
    project = tmp_path / "project"
    outside.mkdir()
    (project / "sub").mkdir(parents=True)
    victim = outside / "victim.py"
    victim.write_text(source())
    (project / "link.py").symlink_to(victim)
    inner = project / "sub" / "real.py"
    inner.write_text(source())
    (project / "inner_link.py").symlink_to(inner)
    r = wsdiag("check", "--fix", "project", cwd=tmp_path)
    assert victim.read_text() == source()  # never written
    assert "outside the checked paths" in r.stdout, r.stdout
    assert inner.read_text() == source().replace(ROUTE, FIXED)  # a link inside the tree: its target is fixed
    assert (project / "inner_link.py").is_symlink()
    assert r.returncode == 1


def test_read_only_file_is_a_per_file_refusal_and_the_run_goes_on(tmp_path):
    ro = tmp_path / "a_readonly.py"
    ro.write_text(source())
    ro.chmod(0o444)
    ok = tmp_path / "b_ok.py"
    ok.write_text(source())
    r = wsdiag("check", "--fix", ".", cwd=tmp_path)
    assert "internal error" not in r.stderr, r.stderr
    assert ro.read_text() == source() and (ro.stat().st_mode & 0o777) == 0o444
    assert ok.read_text() == source().replace(ROUTE, FIXED)
    assert "read-only" in r.stdout
    assert r.returncode == 1


def test_check_skips_fifo_and_device_links_and_says_so(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    (tmp_path / "app.py").write_text(source())
    r = wsdiag("check", ".", cwd=tmp_path, timeout=30)  # used to hang on the FIFO or eat memory
    assert "skipped pipe.py: cannot read: a FIFO" in r.stdout
    assert "skipped zero.py: cannot read: a character device" in r.stdout
    assert r.returncode == 1  # app.py was still checked
    named = wsdiag("check", "pipe.py", cwd=tmp_path, timeout=30)
    assert named.returncode == 2
    assert named.stderr.strip().splitlines()[-1] == "wsdiag: error: cannot check pipe.py: cannot read: a FIFO, not a regular file"


def test_check_refuses_oversize_and_undecodable_sources(tmp_path):
    from wsdiag.check.fixwrite import MAX_SOURCE

    (tmp_path / "huge.py").write_text("x = 1\n" * (MAX_SOURCE // 6 + 10))
    (tmp_path / "bad.py").write_bytes(b"x = '\xff\xfe'\n")
    r = wsdiag("check", ".", cwd=tmp_path)
    assert "skipped huge.py: cannot read:" in r.stdout and "limit for a source file" in r.stdout
    assert "skipped bad.py: cannot read: not valid utf-8" in r.stdout
    assert r.returncode == 0
    named = wsdiag("check", "bad.py", cwd=tmp_path)
    assert named.returncode == 2 and "cannot check bad.py" in named.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another owner")
def test_fix_keeps_the_owner_and_group(tmp_path):
    f = tmp_path / "owned.py"
    f.write_text(source())
    os.chown(f, 65534, 65534)
    f.chmod(0o664)
    r = wsdiag("check", "--fix", ".", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    st = f.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o664)
    assert f.read_text() == source().replace(ROUTE, FIXED)
