"""Exit statuses of every wsdiag command (documented in --help and README)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0  # every counted profile was upgraded and serviced; no error findings
    FINDINGS = 1  # the server has problems (findings at or above --fail-on)
    USAGE = 2  # bad command line or input (bad URL, unknown profile, unreadable file)
    COULD_NOT_RUN = 3  # wsdiag itself could not do its job (sample failed to start, internal error)


HELP = """Exit statuses: 0 OK; 1 findings at or above --fail-on; 2 usage error;
3 wsdiag could not run (e.g. the sample server did not start)."""
