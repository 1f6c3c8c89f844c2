"""Terminal safety: everything a server (or a scanned file) sends is shown as data.

A reason phrase, a header, a body excerpt, a close reason or an app's log line may carry
control characters: ESC sequences that retitle the terminal, clear it, hide text, move the
cursor or (on some terminals) write files.  ``terminal_safe`` escapes them visibly (``\\x1b``),
keeping newlines; ``SafeConsole`` applies it to every segment rich renders (the styles wsdiag
itself adds are not text and are untouched).  JSON output needs none of this: ``json.dumps``
escapes every control character, so the raw bytes stay exact there.

Escaped: C0 controls except newline (and tab, which rich expands), DEL, C1 controls
(U+0080-U+009F, e.g. the one-byte CSI U+009B), and the bidirectional overrides and isolates
(U+202A-U+202E, U+2066-U+2069) that reorder what the reader sees.
"""

from __future__ import annotations

import re
from typing import Any

UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
UNSAFE_NO_NEWLINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    c = m.group(0)
    code = ord(c)
    if c == "\r":
        return "\\r"
    if c == "\n":
        return "\\n"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: Any, newlines: bool = True) -> str:
    """``text`` with every control character escaped; ``newlines=False`` escapes newlines too."""
    s = text if isinstance(text, str) else str(text)
    return (UNSAFE if newlines else UNSAFE_NO_NEWLINE).sub(_escape, s)


def is_terminal_safe(text: str) -> bool:
    return UNSAFE.search(text) is None


def safe_console_class():
    """A rich Console whose rendered text segments pass through ``terminal_safe``."""
    from rich.console import Console
    from rich.segment import Segment

    class SafeConsole(Console):
        def render(self, renderable, options=None):  # type: ignore[override]
            for seg in super().render(renderable, options):
                if seg.control is None and UNSAFE.search(seg.text):
                    yield Segment(terminal_safe(seg.text), seg.style)
                else:
                    yield seg

    return SafeConsole


JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_safe(document: str) -> str:
    """A JSON text with DEL, C1 controls and bidi/line-separator characters as \\u escapes.

    ``json.dumps(ensure_ascii=False)`` escapes C0 controls but leaves these raw; a JSON
    document printed on a terminal must not carry them.  Outside strings JSON is ASCII, so
    the replacement is valid everywhere and the decoded values are unchanged.
    """
    return JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", document)
