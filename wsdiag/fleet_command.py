"""``wsdiag probe --format jsonl``: a front end that runs a fleet and streams its records.

A front end like ``cli``: it wires the fleet runner (``wsdiag.net.fleet``) to the streaming
output (``wsdiag.ui.stream``); records are written and flushed as they complete, and a
progress line goes to stderr only when stderr is a terminal.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time

from wsdiag.core.exits import Exit
from wsdiag.ui.stream import FLEET_SCHEMA


def _progress_writer(stream, total: int | None):
    width = 30

    def show(summary, final: bool = False) -> None:
        done = summary.urls + summary.bad_urls + summary.errors + summary.resumed
        rate = summary.urls / max(time.monotonic() - summary.started, 1e-6)
        if total:
            filled = min(width, int(width * done / max(total, 1)))
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        else:
            bar = f"{done} URLs"
        stream.write(f"\r\x1b[2Kwsdiag: {bar}, {summary.urls - summary.ok} with problems, {rate:.0f}/s")
        if final:
            stream.write("\r\x1b[2K")
        stream.flush()

    return show


def _count_lines(f) -> int | None:
    """URL lines in a regular file (a cheap first pass for the progress bar), else None."""
    try:
        if not os.path.isfile(f.name):
            return None
        from wsdiag.net.fleet import iter_url_lines

        with open(f.name, encoding="utf-8", errors="replace") as again:
            return sum(1 for _ in iter_url_lines(again))
    except (AttributeError, OSError, TypeError):
        return None


def summary_text(d: dict) -> str:
    verdicts = ", ".join(f"{k} {v}" for k, v in d["verdicts"].items()) or "none"
    causes = ", ".join(f"{k} {v}" for k, v in itertools.islice(d["leading_causes"].items(), 5)) or "none"
    extra = "".join(f", {d[k]} {k.replace('_', ' ')}" for k in ("bad_urls", "errors", "resumed") if d[k])
    return (f"wsdiag: {d['urls']} URLs probed in {d['seconds']:.1f} s: {d['ok']} ok, {d['with_problems']} with "
            f"problems{extra}. Verdicts: {verdicts}. Leading causes: {causes}.")


def run_fleet_command(urls, from_file, *, per_host, rate, resume, options, as_json, verbose, fail_on, show_secrets,
                      concurrency, **kw) -> int:
    """``wsdiag probe --format jsonl``: returns the exit status."""
    from wsdiag.net.fleet import FleetOptions, resume_keys, run_fleet
    from wsdiag.ui.render import _redact_obj, report_dict

    for k in ("trace", "app", "paths", "gunicorn", "app_timeout"):
        kw.pop(k, None)
    if not urls and from_file is None:
        sys.stderr.write("wsdiag: error: give URLs or --from-file with --format jsonl\n")
        return Exit.USAGE
    opts = options(concurrency=concurrency, **kw)
    fleet = FleetOptions(concurrency=concurrency, per_host=per_host, rate=rate)
    out = sys.stdout
    if resume:
        try:
            if os.path.exists(resume):
                fleet.skip, good = resume_keys(resume)
                with open(resume, "r+b") as fh:  # cut a torn last line before appending
                    fh.truncate(good)
            out = open(resume, "a", encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"wsdiag: error: cannot resume from {resume!r}: {exc.strerror or exc}\n")
            return Exit.USAGE
    from wsdiag.net.fleet import read_lines

    lines = itertools.chain(urls, read_lines(from_file) if from_file is not None else ())
    floor = {"error": 2, "warning": 1}.get(fail_on)  # Severity.rank; never: nothing fails

    def failing(report) -> bool:
        worst = report.worst
        return floor is not None and worst is not None and worst.rank >= floor

    def emit(kind, value) -> None:
        if kind == "report":
            if not show_secrets:  # reflected credentials too (wsdiag.ui.secrets)
                from wsdiag.ui.secrets import redact_reports

                redact_reports([value])
            rec = {"type": "report", **_redact_obj(report_dict(value, verbose), show_secrets)}
        else:
            rec = {"type": "error", **value}
            sys.stderr.write("\r\x1b[2K" if tty else "")
            sys.stderr.write(f"wsdiag: {value['url']}: {value['error']}\n")
        out.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
        out.flush()

    tty = sys.stderr.isatty()
    progress = _progress_writer(sys.stderr, _count_lines(from_file) if from_file is not None else len(urls)) if tty else None
    try:
        summary = run_fleet(lines, opts, fleet, emit, is_failing=failing, progress=progress)
    except KeyboardInterrupt:
        sys.stderr.write("\nwsdiag: interrupted\n")
        return 130
    except OSError as exc:
        sys.stderr.write(f"wsdiag: error: {exc}\n")
        return Exit.USAGE
    finally:
        if out is not sys.stdout:
            out.close() if not out.closed else None
    if progress is not None:
        progress(summary, final=True)
    d = summary.to_dict()
    d["schema"] = FLEET_SCHEMA
    d["fail_on"] = fail_on
    target = sys.stdout if not resume else open(resume, "a", encoding="utf-8")
    try:
        target.write(json.dumps(d, ensure_ascii=False) + "\n")
        target.flush()
    finally:
        if target is not sys.stdout:
            target.close()
    sys.stderr.write(summary_text(d) + "\n")
    if summary.bad_urls:
        return Exit.USAGE
    if summary.errors:
        return Exit.COULD_NOT_RUN
    return Exit.FINDINGS if summary.failing else Exit.OK
