"""The project around the files ``wsdiag check FILE...`` is given (what pre-commit passes).

pre-commit runs ``wsdiag check`` with only the changed files. The project rules
(``rules.project_findings``: servers and gunicorn workers against the WebSocket stack of the
code they serve, requirements pins, Flask-SocketIO's deployments) relate files, so a changed
``app.py`` alone cannot tell that a Procfile runs it on gunicorn's sync worker. This module
gives the run the rest of the project:

* **the root** of each named file: the nearest directory above it holding ``.git``,
  ``pyproject.toml``, ``setup.cfg`` or ``setup.py``. The walk is lexical (the path as given,
  made absolute) and stops below the user's home directory: ``/``, ``~`` and the directories
  above ``~`` are never roots (a dotfiles repository in ``~`` would make the whole home the
  context). Without a marker: the current directory if the file is inside it, else the file's
  directory, under the same rule. No root: no context for that file.
* **the context**: the files ``wsdiag check ROOT`` would scan (``static.iter_files``, so the
  same skipped directories and the same file patterns, ``deploy.CONFIG_NAMES`` and ``*.py``),
  minus the files of the run itself; a file that is a symbolic link leaving the root is left
  out. Each is read through the content-keyed cache (``cache.Cache``) and only its compact
  summary (``rules.summary``) is kept: after one full run, the context costs reading and
  hashing. A Python file that names nothing the rules look at (``run.skippable``) has no
  summary and is not even parsed. At most ``MAX_CONTEXT_FILES`` files per run.
* **what is reported**: nothing of a context file on its own (its per-file findings are never
  computed or shown); the project findings that *concern* a file of the run (``concerns`` says
  exactly which: located in one; located in a file whose deciding files, ``model.Project.related``,
  include one of a stack the rule applies to or of no stack; naming one in their evidence; or
  all of them when a file of the run carries requirement pins, which are project-wide facts).

The invariant (``tests/test_check_context.py``): the findings of ``wsdiag check CHANGED...``
are the findings of ``wsdiag check ROOT`` that concern CHANGED. To hold it, a named file
covered by a context is scanned as ``check ROOT`` scans it (not as a file named alone, which
is judged as if it were the whole project: a gunicorn config named alone reports its worker
even with no WebSocket code in sight). ``--no-project-context`` restores the file-alone run.

An edge: it reads files. No printing; the run reports what was used (``Context.info``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

ROOT_MARKERS = (".git", "pyproject.toml", "setup.cfg", "setup.py")
MAX_CONTEXT_FILES = 20_000
NO_FACTS = ":context-none"  # cache key suffix: a context file that cannot have a summary (not parsed)


def _refuses(home: str | None):
    """A test for the directories that are never a root: ``/``, the home directory and any
    directory above it (a walk from a file under ``~`` stops below ``~``)."""
    home = os.path.abspath(home if home is not None else os.path.expanduser("~"))

    def refused(d: str) -> bool:
        return os.path.dirname(d) == d or _inside(home, d)

    return refused


def find_root(path: str, cwd: str | None = None, home: str | None = None) -> tuple[str, str] | None:
    """(root directory, why) for a named file, or None (see the module's rules)."""
    refused = _refuses(home)
    start = d = os.path.dirname(os.path.abspath(path))
    while not refused(d):
        for marker in ROOT_MARKERS:
            if os.path.exists(os.path.join(d, marker)):
                return d, marker
        d = os.path.dirname(d)
    here = os.path.abspath(cwd or os.getcwd())
    if not refused(here) and _inside(start, here):
        return here, "the current directory (no .git, pyproject.toml, setup.cfg or setup.py above the file)"
    if not refused(start):
        return start, "the file's directory (no .git, pyproject.toml, setup.cfg or setup.py above it)"
    return None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass
class Context:
    roots: dict = field(default_factory=dict)  # absolute root -> why it is the root
    covered: set = field(default_factory=set)  # absolute paths of the named files that have a root
    info: dict = field(default_factory=dict)  # what was read, for the human note and the tests

    def covers(self, raw: str) -> bool:
        """Is this named file judged inside its project (as ``check ROOT`` judges it)?"""
        return os.path.abspath(raw) in self.covered

    def gather(self, run_files: set, cache, versions: dict, routes=None) -> list:
        """The compact summaries of the context files (every file under the roots not in ``run_files``,
        display paths), each read through ``cache`` when there is one."""
        from wsdiag.check import fixwrite as _fixwrite
        from wsdiag.check import projpins as _projpins
        from wsdiag.check import run as _run
        from wsdiag.check import static as _static

        started = time.perf_counter()
        summaries: list = []
        seen = set(run_files)
        read = hits = parsed = 0
        truncated = False
        before = dict(cache.stats) if cache is not None else {}
        for root in sorted(self.roots):
            real_root = os.path.realpath(root)
            shown = _run.display_path(root)  # each path as `check ROOT` shows it, without a relpath per file
            prefix = root.rstrip(os.sep) + os.sep
            here = os.path.abspath(os.getcwd()).rstrip(os.sep) + os.sep
            for raw, _named in _static.iter_files([root]):
                if not raw.startswith(prefix):
                    path = _run.display_path(raw)
                elif shown == ".":  # the root is the current directory (pre-commit's case)
                    path = raw[len(prefix):]
                elif not os.path.isabs(shown):  # the root is below the current directory
                    path = os.path.join(shown, raw[len(prefix):])
                elif raw.startswith(here):  # the current directory is below the root: relative below it
                    path = _run.display_path(raw)
                else:
                    path = raw
                if path in seen:
                    continue
                seen.add(path)
                if read >= MAX_CONTEXT_FILES:
                    truncated = True
                    break
                if os.path.islink(raw) and not _inside(os.path.realpath(raw), real_root):
                    continue  # never follow a link out of the project
                try:
                    data = _fixwrite.read_bytes(raw)
                except OSError:
                    continue  # `check ROOT` would list it under skipped; it has no facts either way
                read += 1
                key = facts = None
                route = routes.for_file(raw) if routes is not None else None  # projpins.Routes
                if cache is not None:  # the key `check ROOT` uses (the project's Werkzeug: projpins.salt)
                    key = cache.key(path, data, False, _projpins.salt(route) if route is not None else "")
                    facts = cache.get(key)
                    if facts is None and cache.has(key + NO_FACTS):
                        hits += 1
                        continue
                if facts is None:
                    try:
                        text = _fixwrite.decode_source(raw, data)
                    except OSError:
                        continue
                    if _run.skippable(path, text):
                        # no summary whatever its content: remembered as such, under a key of its own
                        # (it was not parsed, so it is not the full facts `check ROOT` caches)
                        if cache is not None:
                            cache.put(key + NO_FACTS, 0)
                        continue
                    parsed += 1
                    facts = _run.file_facts(path, text, False, versions, route=route)
                    if cache is not None:
                        cache.put(key, facts)
                else:
                    hits += 1
                if len(facts) > 4 and facts[4]:
                    summaries.append(facts[4])
            if truncated:
                break
        self.info = {"roots": dict(self.roots), "files": read, "summaries": len(summaries), "cache_hits": hits,
                     "parsed": parsed, "truncated": truncated, "seconds": round(time.perf_counter() - started, 4)}
        if cache is not None:
            self.info["cache_misses"] = cache.stats["misses"] - before.get("misses", 0)
        return summaries


def plan(paths: list, cwd: str | None = None, home: str | None = None) -> Context | None:
    """The context of a run over ``paths``: None when no path is a file (directories carry their own)."""
    files = [p for p in paths if not os.path.isdir(p)]
    if not files:
        return None
    ctx = Context()
    by_dir: dict = {}  # pre-commit may name hundreds of files: one walk per directory
    for p in files:
        d = os.path.dirname(os.path.abspath(p))
        if d not in by_dir:
            by_dir[d] = find_root(p, cwd, home)
        found = by_dir[d]
        if found is None:
            continue
        root, why = found
        ctx.roots.setdefault(root, why)
        ctx.covered.add(os.path.abspath(p))
    return ctx if ctx.roots else None


def note(info: dict) -> str:
    """The one line the human output prints on stderr: which project the named files were judged in."""
    from wsdiag.check.run import display_path

    roots = "; ".join(f"{r if display_path(r) == '.' else display_path(r)} ({why})"
                      for r, why in sorted(info.get("roots", {}).items()))
    n = info.get("files", 0)
    cached = f", {info.get('cache_hits', 0)} from the cache" if info.get("cache_hits") else ""
    cut = f"; stopped at {MAX_CONTEXT_FILES} files" if info.get("truncated") else ""
    return (f"wsdiag: project context: {roots}: {n} other file{'' if n == 1 else 's'} read{cached}, "
            f"{info.get('summaries', 0)} with project facts{cut} (--no-project-context: the named files alone)")


def gather_cached(ctx: Context, run_files: set, use_cache: bool, cache_dir: str | None, versions: dict,
                  routes=None) -> list:
    """``Context.gather`` for the runs that do not stream (``--fix``, ``--diff``): opens and saves the cache."""
    cache = None
    if use_cache:
        from wsdiag.check.cache import Cache, default_dir

        cache = Cache(cache_dir or default_dir(), versions)
    out = ctx.gather(run_files, cache, versions, routes)
    if cache is not None:
        cache.save()
    return out


def findings(scans: list, context_summaries: list, werkzeug: str | None, versions: dict | None,
             run_files: set | None = None, routes=None) -> list:
    """``rules.findings`` for whole scans of the run's files, with the context's summaries added to the
    project rules and the project findings kept when they concern the run's files. ``routes``
    (``projpins.Routes``): the Werkzeug each file's route rules judge with (None: ``werkzeug``)."""
    from wsdiag.check import rules as _rules

    out: list = []
    for s in scans:
        out += _rules.file_findings(s, routes.for_file(s.file) if routes is not None else werkzeug)
    summaries = [_rules.summary(s) for s in scans] + list(context_summaries)
    project = _rules.project_findings(summaries, werkzeug, versions)
    files = set(run_files or ()) | {s.file for s in scans}
    return out + concerns(project, summaries, files, versions)


def concerns(findings: list, summaries: list, run_files: set, versions: dict | None = None) -> list:
    """The project findings that concern the files of the run (``run_files``, display paths).

    A project finding located in file F concerns the run when (1) F is a file of the run; or (2) a
    file R of the run is related to F (``model.Project.related``: the files whose facts the project
    rules read for F) and R either has no WebSocket stack of its own (it brings launches,
    deployments, patching, options) or has one the finding's rule applies to (``rules.APPLIES``:
    a flask-sock app next to a Procfile does not concern the Procfile's gevent-websocket finding);
    or (3) the finding's evidence names a file of the run (Flask-SocketIO's facts name the
    deployments that serve it); or (4) a file of the run carries requirement pins, which are
    project-wide facts.
    """
    import re

    from wsdiag.check import model as _model
    from wsdiag.check.rules import APPLIES

    proj = _model.Project(summaries, versions)
    if any((x.get("pins") or x.get("pin_includes")) and x["file"] in run_files for x in proj.items):
        return list(findings)
    by_file = {x["file"]: x for x in proj.items}
    named = re.compile("|".join(rf"(?<![\w./-]){re.escape(f)}(?![\w/-])" for f in sorted(run_files))) if run_files else None
    out = []
    for f in findings:
        file = f.location.file if f.location is not None else None
        if file is None or file in run_files:
            out.append(f)
            continue
        x = by_file.get(file)
        applies = APPLIES.get(f.code)
        if x is not None and any(r["file"] in run_files and (not r["stacks"] or applies is None or set(r["stacks"]) & applies)
                                 for r in proj.related(x)):
            out.append(f)
        elif named is not None and any(named.search(str(v)) for v in f.evidence.values()):
            out.append(f)
    return out
