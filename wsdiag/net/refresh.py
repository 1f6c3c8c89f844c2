"""``wsdiag profiles --refresh``: capture each installed browser's handshake and write the data file."""

from __future__ import annotations

import datetime as _dt
import json
import os

from wsdiag.core.browsercheck import PROFILE_OF
from wsdiag.core.profiledata import document, entry_from_capture
from wsdiag.net.browser import NAMES, missing, run_browser
from wsdiag.net.capture import CaptureServer


def refresh_profiles(path: str, names=NAMES, timeout: float = 60.0) -> tuple[str | None, list[str]]:
    """Capture every browser in ``names`` that is installed; write ``path``. (path or None, notes)."""
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    entries, notes = [], []
    for name in names:
        reason = missing(name)
        if reason:
            notes.append(f"{name}: {reason}; its profile is left as it is")
            continue
        with CaptureServer() as server:
            run = run_browser(name, server.ws_url, timeout=timeout, watch=0.2)
            raw = server.captured[0] if server.captured else None
        if run.error or raw is None:
            notes.append(f"{name}: no handshake captured ({run.error or run.outcome}); its profile is left as it is")
            continue
        entries.append(entry_from_capture(PROFILE_OF[name], raw, run.version, created))
        notes.append(f"{name}: captured {PROFILE_OF[name]!r} from {run.version}")
    if not entries:
        return None, notes
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(document(entries, created), f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return path, notes
