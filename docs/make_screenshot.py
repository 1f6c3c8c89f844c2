"""Regenerate docs/report.svg: a real `wsdiag demo` report, exported with rich.

    python docs/make_screenshot.py

It starts the sample server, probes its three variants (default profiles) and records
the terminal report at a fixed width, so the README image is real output, not a mock-up.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from wsdiag.ui import render
from wsdiag.net.probe import ProbeOptions, probe
from wsdiag.core.profiles import resolve
from wsdiag.proc import start_sample
from wsdiag.net.transport import Settings

OUT = Path(__file__).resolve().parent / "report.svg"


def main() -> None:
    child = start_sample()
    try:
        urls = [child.url(v) for v in ("route", "fixed")]
        reports = probe(urls, ProbeOptions(resolve(["chrome", "firefox", "firefox-legacy", "websocket-client"]),
                                           Settings(use_env_proxy=False), trace=child.trace))
    finally:
        child.stop()
    console = Console(record=True, width=100, file=io.StringIO(), force_terminal=True)
    out = render.Output(io.StringIO(), io.StringIO())
    out._console = console
    for r in reports:
        out.text_report(r, verbose=False, show_secrets=False)
    console.save_svg(str(OUT), title="wsdiag demo")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
