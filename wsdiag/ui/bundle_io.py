"""Write and read repro bundles (``wsdiag.core.bundle``) and their HAR export; the file I/O half."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from typing import Any


def versions() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from wsdiag import __version__

    out: dict[str, Any] = {"wsdiag": __version__, "python": platform.python_version(),
                           "platform": platform.platform(terse=True)}
    for pkg in ("websocket-client", "rich", "click"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def build(reports, *, trace_token: str | None = None) -> dict[str, Any]:
    from wsdiag.core.bundle import make_bundle
    from wsdiag.ui.render import report_dict

    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    doc = make_bundle(reports, created=created, versions=versions(), argv=sys.argv[1:],
                      rendered=[report_dict(r, verbose=False) for r in reports], trace_token=trace_token)
    return doc


def write_json(path: str, doc: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


def write_har(path: str, bundle: dict[str, Any]) -> None:
    from wsdiag.ui.har import to_har

    write_json(path, to_har(bundle))


def load(path: str) -> dict[str, Any]:
    """Read a bundle; raises ``BundleError`` with a one-line message."""
    from wsdiag.core.bundle import BundleError

    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise BundleError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path!r} is not JSON: {exc}") from None
