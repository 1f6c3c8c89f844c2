"""Which Werkzeug the route advice of a static run is for: the project's, read before the file loop.

``wsdiag check DIR`` reports each file as it is scanned (``run._stream_files``), so the route
rules (WS501's diff, WS701/WS706/WS509, the hook advice) must know the project's Werkzeug before
the walk reaches its pin file. This module reads the pin files first, cheaply, and names the
release (``advice.Release`` with ``source`` and ``refusal``):

* **which pin files**: a file is judged with the pin files of its own directory and of the
  directories above it, up to the directory given on the command line (for a file named alone:
  up to its project root, ``context.find_root``, as for the project context). A pin file in a
  sibling directory (``docs/requirements.txt``, another app of a monorepo) does not decide this
  file's routes. The directories are listed lazily (``os.scandir``, once each), so the loop still
  reports a file before it asks for the next. ``-r``/``-c`` includes are followed by
  ``pins.Resolution``. Each pin file is read as the scan reads it (``static.scan_file`` +
  ``rules.summary``); no other file is parsed. ``--no-project-context``: only pin files named.
* **which release** (``pins.Resolution.version``, the one precedence): a lock file or an exact pin
  (``==``) says what is deployed, so the route rules judge with it; a range that allows the
  installed release keeps the installed one; a range that excludes it gives the lowest release it
  allows (as the project rules judge); a pin wsdiag cannot read as one release keeps the installed one.
* **the refusal** (``model.Project.pinned_fix_refusal``, the one wording): why ``websocket=True``
  must not be added (Werkzeug < 2.0.2 or Flask < 2 pinned). The WS501 finding then shows no diff
  and carries this reason as its fix blocker, the same text ``--fix`` and ``--diff`` give.

The release's facts are part of the per-file facts, so the cache keys them (``salt``).
An edge: it reads the pin files; never prints.
"""

from __future__ import annotations

import json
import os

from wsdiag.check import advice as _advice


class Routes:
    """The Werkzeug the route rules judge each file with: the pins of its directory and of the
    directories above it, up to the path given (or the project root of a named file) decide; else
    the installed release. Lazy: a directory's pin files are listed (``os.scandir``) the first
    time a file below it asks, so the file loop stays a stream; one resolution per directory."""

    def __init__(self, paths: list, ctx, installed: dict):
        from wsdiag.check import pins as _pins

        self.installed = dict(installed)
        self.tops: list[str] = []  # directories whose pin files count (paths given, project roots)
        self.named: dict[str, list] = {}  # named pin files (judged alone): directory -> paths
        for p in paths:
            a = os.path.abspath(p)
            if os.path.isdir(p):
                self.tops.append(a)
            elif _pins.is_pin_file(p):
                self.named.setdefault(os.path.dirname(a), []).append(p)
        self.tops += sorted(ctx.roots) if ctx is not None else []
        self._pins: dict[str, list] = {}
        self._memo: dict[str, tuple] = {}

    def _inside(self, d: str) -> bool:
        return any(d == t or d.startswith(t.rstrip(os.sep) + os.sep) for t in self.tops)

    def _pin_files(self, d: str) -> list:
        """(path as read, display path) of the pin files directly in ``d`` that count."""
        if d not in self._pins:
            from wsdiag.check import pins as _pins
            from wsdiag.check.run import display_path

            found = list(self.named.get(d, []))
            if self._inside(d):
                try:
                    found += sorted(os.path.join(d, e.name) for e in os.scandir(d)
                                    if _pins.is_pin_file(e.name) and e.is_file())
                except OSError:
                    pass
            shown = {display_path(f): f for f in found}
            self._pins[d] = summaries([(raw, sd) for sd, raw in sorted(shown.items())])
        return self._pins[d]

    def for_dir(self, d: str) -> tuple[_advice.Release, str]:
        """(release, where it comes from) for the files of the absolute directory ``d``."""
        if d not in self._memo:
            items, up = [], d
            while self._inside(up) or up in self.named:
                items += self._pin_files(up)
                parent = os.path.dirname(up)
                if parent == up:
                    break
                up = parent
            key = "\0" + json.dumps([x["file"] for x in items])
            if key not in self._memo:
                self._memo[key] = route_release(items, self.installed)
            self._memo[d] = self._memo[key]
        return self._memo[d]

    def for_file(self, path: str) -> _advice.Release:
        return self.for_dir(os.path.dirname(os.path.abspath(path)))[0]

    def header(self, paths: list) -> tuple[_advice.Release, str]:
        """What the report's advice is for: the (release, where) of the first path's directory."""
        first = (paths or ["."])[0]
        return self.for_dir(os.path.abspath(first) if os.path.isdir(first) else os.path.dirname(os.path.abspath(first)))


def summaries(paths: list) -> list:
    """The compact summaries (``rules.summary``) of the pin files: what ``model.Project`` reads."""
    from wsdiag.check import fixwrite as _fixwrite
    from wsdiag.check import rules as _rules
    from wsdiag.check import static as _static

    out = []
    for raw, shown in paths:
        try:
            text = _fixwrite.read_text(raw)
        except (OSError, UnicodeDecodeError):
            continue  # the loop reports it
        scan = _static.scan_file(shown, text, False)
        if scan.error is None:
            item = _rules.summary(scan)
            if item:
                out.append(item)
    return out


def route_release(items: list, installed: dict) -> tuple[_advice.Release, str]:
    """(the release the route rules judge with, where it comes from) for the project's pin summaries."""
    from wsdiag.check import model as _model
    from wsdiag.check import pins as _pins

    here = installed.get("werkzeug")
    if not items:
        return _advice.release(here), "installed"
    proj = _model.Project(items, installed)
    version, where = proj.pins.version("werkzeug", here)
    refusal = proj.pinned_fix_refusal()
    if where.startswith("installed") or _advice.parse_version(version) is None:
        rel = _advice.release(here)
        return _advice.Release(rel.version, rel.text, None, refusal), where if where.startswith("installed") else "installed"
    shown = proj.version_text("werkzeug")  # werkzeug 2.0.1 (requirements.txt:2: werkzeug==2.0.1)
    source = shown[shown.index("(") + 1:-1] if "(" in shown and shown.endswith(")") else where
    if not any(_pins.exact(e["spec"]) for _tier, _file, e in proj.pins.winning("werkzeug")):
        source += "; the lowest release this range allows"  # the installed one is outside it
    return _advice.Release(_advice.parse_version(version), version, source, refusal), where


def salt(rel: _advice.Release) -> str:
    """What the per-file facts depend on beyond the installed versions (the cache key's part)."""
    if rel.source is None and rel.refusal is None:
        return ""
    return json.dumps([rel.text, rel.source, rel.refusal])
