"""Source edits for ``wsdiag check``: exact character spans, applied last-first, shown as diffs.

An edit replaces ``text[start:end]`` with new text, so the file's formatting, comments and
line endings survive; a diff is computed on the lines around the edit only. Suggested fixes
(the server and worker fixes, shown as diffs) and ``--fix`` (which writes the
``websocket=True`` edits through ``fixwrite``) both use these. Pure: standard library only.
"""

from __future__ import annotations

import bisect
import difflib
import os
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:end]`` (character offsets into the file's text) with ``new``."""

    file: str
    start: int
    end: int
    new: str


def apply_edits(text: str, edits: list[Edit]) -> str:
    """Apply non-overlapping edits to ``text`` (last first, so offsets stay valid)."""
    out = text
    for e in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        out = out[: e.start] + e.new + out[e.end:]
    return out


def edit_diff(scan, edit: Edit, context: int = 1) -> str:
    """The unified diff of one edit, computed on the lines around it only (not the whole file)."""
    t = scan.table
    first = max(bisect.bisect_right(t.starts, edit.start) - 1, 0)
    last = max(bisect.bisect_right(t.starts, max(edit.end - 1, edit.start)) - 1, first)
    lo, hi = max(first - context, 0), min(last + context + 1, len(t.lines))
    start, end = t.starts[lo], t.starts[hi] if hi < len(t.starts) else len(scan.text)
    local = Edit(edit.file, edit.start - start, edit.end - start, edit.new)
    before = scan.text[start:end]
    diff = unified_diff(scan.file, before, apply_edits(before, [local]), context=context)
    # shift the hunk headers from the excerpt's line numbers to the file's
    return re.sub(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@",
                  lambda m: f"@@ -{int(m.group(1)) + lo}{m.group(2) or ''} +{int(m.group(3)) + lo}{m.group(4) or ''} @@",
                  diff, flags=re.M)


def unified_diff(file: str, before: str, after: str, context: int = 1) -> str:
    rel = file.replace(os.sep, "/")
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 f"a/{rel.lstrip('/')}", f"b/{rel.lstrip('/')}", n=context)
    return "".join(ln if ln.endswith("\n") else ln + "\n" for ln in lines)


def edits_diff(scan, edits: list[Edit], context: int = 1) -> str:
    """The unified diff of several edits to one file (a call and the imports it needs)."""
    if len(edits) == 1:
        return edit_diff(scan, edits[0], context)
    return unified_diff(scan.file, scan.text, apply_edits(scan.text, edits), context=context)
