"""The Socket.IO section of a probe report: each path through Engine.IO, step by step."""

from __future__ import annotations

from typing import Any


def path_line(run: dict[str, Any]) -> str:
    """``101 → OPEN (upgrades [...], ping 25000/20000 ms) → 40 connected`` and where it stopped."""
    steps: list[str] = []
    op = run.get("open")
    reached = run.get("reached")
    if run["path"] == "websocket":
        if run.get("status") not in (None, 101) and op is None:
            steps.append(f"handshake → {run.get('status')}")
        elif reached != "start":
            steps.append("101")
    else:
        steps.append("polling handshake" + (" → 200" if op else ""))
    if op:
        steps.append(f"OPEN sid {op['sid'][:8]}… upgrades {op['upgrades']}, ping {op['pingInterval']}/{op['pingTimeout']} ms")
    con = run.get("connect")
    if con:
        steps.append("40 connected" if con["packet"] == "40" else f"44 {con['data']!r}")
    if run["path"] == "polling" and reached in ("upgrade 101", "3probe", "upgraded"):
        steps.append("upgrade 101 → 2probe/3probe" + (" → 5 upgraded" if reached == "upgraded" else ""))
    text = " → ".join(steps)
    if run.get("stopped_at"):
        text += f"  ✗ stops at {run['stopped_at']}: {run.get('detail', '')}"
    return text


def socketio_renderables(sio: dict[str, Any]) -> list:
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    out: list = [Text.from_markup(
        f"[bold]Socket.IO[/] [dim](EIO {sio['eio']}, namespace {escape(sio['namespace'])}, Origin {escape(str(sio['origin']))})[/]")]
    for key, label in (("websocket", "websocket transport"), ("polling", "JS client path (polling, then upgrade)")):
        run = sio[key]
        mark = "[green]✓[/]" if run["ok"] else "[red]✗[/]"
        out.append(Padding(Text.from_markup(f"{mark} [bold]{label}[/]: {escape(path_line(run))}"), (0, 0, 0, 2)))
        if run.get("replay"):
            rp = run["replay"]
            out.append(Padding(Text(f"replayed over polling on sid {rp.get('sid', '')[:8]}…: {rp.get('status')} "
                                    f"{rp.get('message') or ''}", style="dim"), (0, 0, 0, 4)))
    rp = sio.get("replay")
    if rp:
        got = repr(rp["message"]) if rp.get("message") else ("OPEN (polling works)" if rp.get("opened") else str(rp.get("status")))
        out.append(Padding(Text(f"websocket request {rp['how']}; the same request over polling: {got}", style="dim"), (0, 0, 0, 2)))
    wk = sio.get("several_processes")
    if wk:
        outs = ", ".join(f"{v}× {k}" for k, v in sorted(wk["outcomes"].items())) or "no answers"
        out.append(Padding(Text(f"{wk['opened']}/{wk['sessions']} polling sessions, each addressed again by sid: {outs}",
                                style="dim"), (0, 0, 0, 2)))
    return out
