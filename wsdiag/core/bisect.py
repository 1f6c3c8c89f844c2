"""Handshake bisection: the smallest difference between two requests that flips the verdict.

Pure core: standard library only, no I/O.  The caller supplies ``run``, a function that
sends one candidate request and says whether it *worked*; this module decides which
candidates to try and what the answer means.

A request is modelled as its request-line version plus its header lines in wire order
(exact casing).  The differences between the failing ("bad") and the working ("good")
request are split into atomic changes, each turning one aspect of the bad request into
the good one's: the HTTP version, one header added or removed, one header's value, one
header name's casing, and the order of the headers.  The search:

1. confirms both ends (the good request works, the bad one fails): 2 exchanges;
2. tries each change alone on the bad request (n exchanges); every change that flips
   it alone is a minimal difference, checked in reverse on the good request (one more
   exchange each) to say "fails *only* when ...";
3. if no single change flips it, applies the changes cumulatively, finds by binary
   search the shortest prefix that works (log2 n exchanges), then drops changes from it
   one at a time while it still works (at most n exchanges).

So at most ``2 + 3n + log2(n) + 1`` exchanges; ``max_exchanges`` caps it harder.
Placeholder values (``{host}``, ``{origin}``, ``{key}``) are compared as templates, so the
fresh key of every exchange is never a "difference".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

# Headers whose value is filled per exchange: never a difference by value.
RUN_VALUES = frozenset({"host", "origin", "sec-websocket-key"})


@dataclass(frozen=True)
class Candidate:
    """One request shape: request-line version and header lines (wire order, exact case)."""

    http_version: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for n, v in self.headers if n.lower() == low), None)


@dataclass(frozen=True)
class Change:
    """One atomic step from the bad request toward the good one."""

    kind: str  # version | add | remove | value | casing | order
    name: str = ""  # header name as the good request spells it (bad's for remove)
    old: str | None = None  # the bad request's value / spelling / version
    new: str | None = None  # the good request's

    def describe(self) -> str:
        if self.kind == "version":
            return f"request line {self.old} -> {self.new}"
        if self.kind == "add":
            return f"add {self.name}: {self.new}"
        if self.kind == "remove":
            return f"remove {self.name}: {self.old}"
        if self.kind == "value":
            return f"{self.name}: {self.old!r} -> {self.new!r}"
        if self.kind == "casing":
            return f"header name {self.old} -> {self.new}"
        return "reorder the headers as the working request does"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "old": self.old, "new": self.new,
                "describe": self.describe()}


def differences(bad: Candidate, good: Candidate) -> list[Change]:
    """Every atomic change from ``bad`` toward ``good`` (empty when they are the same shape)."""
    changes: list[Change] = []
    if bad.http_version != good.http_version:
        changes.append(Change("version", "", bad.http_version, good.http_version))
    bad_by = {n.lower(): (n, v) for n, v in bad.headers}
    good_by = {n.lower(): (n, v) for n, v in good.headers}
    for low, (name, value) in bad_by.items():
        if low not in good_by:
            changes.append(Change("remove", name, value, None))
    for low, (name, value) in good_by.items():
        if low not in bad_by:
            changes.append(Change("add", name, None, value))
            continue
        bname, bvalue = bad_by[low]
        if bname != name:
            changes.append(Change("casing", name, bname, name))
        if bvalue != value and low not in RUN_VALUES:
            changes.append(Change("value", name, bvalue, value))
    common_bad = [n.lower() for n, _ in bad.headers if n.lower() in good_by]
    common_good = [n.lower() for n, _ in good.headers if n.lower() in bad_by]
    if common_bad != common_good:
        changes.append(Change("order"))
    return changes


def apply(bad: Candidate, good: Candidate, changes: list[Change] | tuple[Change, ...]) -> Candidate:
    """``bad`` with ``changes`` applied (each brings one aspect to what ``good`` has)."""
    version = bad.http_version
    lines = [list(pair) for pair in bad.headers]
    good_order = [n.lower() for n, _ in good.headers]
    for ch in changes:
        if ch.kind == "version":
            version = ch.new or version
        elif ch.kind == "remove":
            lines = [ln for ln in lines if ln[0].lower() != ch.name.lower()]
        elif ch.kind == "value":
            for ln in lines:
                if ln[0].lower() == ch.name.lower():
                    ln[1] = ch.new or ""
        elif ch.kind == "casing":
            for ln in lines:
                if ln[0].lower() == ch.name.lower():
                    ln[0] = ch.new or ln[0]
    for ch in changes:  # additions go where the good request has them, relative to neighbours
        if ch.kind != "add":
            continue
        at = good_order.index(ch.name.lower())
        before = set(good_order[:at])
        pos = 0
        for i, ln in enumerate(lines):
            if ln[0].lower() in before:
                pos = i + 1
        lines.insert(pos, [ch.name, ch.new or ""])
    if any(ch.kind == "order" for ch in changes):
        rank = {n: i for i, n in enumerate(good_order)}
        lines.sort(key=lambda ln: rank.get(ln[0].lower(), len(rank)))
    return Candidate(version, tuple((n, v) for n, v in lines))


@dataclass
class Step:
    """One exchange the search made."""

    label: str
    changes: tuple[Change, ...]
    candidate: Candidate
    works: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return {"label": self.label, "changes": [c.describe() for c in self.changes],
                "http_version": self.candidate.http_version,
                "headers": [list(h) for h in self.candidate.headers],
                "works": self.works, "detail": self.detail}


@dataclass
class Result:
    """What the bisection found."""

    status: str  # found | no-split | inconclusive | budget
    minimal: list[list[Change]] = field(default_factory=list)  # each a minimal flipping set
    only_when: dict[int, bool] = field(default_factory=dict)  # index in minimal -> reverse confirmed
    steps: list[Step] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    good_works: bool | None = None
    bad_works: bool | None = None

    @property
    def exchanges(self) -> int:
        return len(self.steps)

    def sentences(self) -> list[str]:
        return [explain(m, self.only_when.get(i, False)) for i, m in enumerate(self.minimal)]

    def hints(self) -> list[str]:
        out: list[str] = []
        for m in self.minimal:
            for h in hint(m):
                if h not in out:
                    out.append(h)
        return out

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "exchanges": self.exchanges,
            "good_works": self.good_works,
            "bad_works": self.bad_works,
            "differences": [c.to_dict() for c in self.changes],
            "minimal": [[c.to_dict() for c in m] for m in self.minimal],
            "sentences": self.sentences(),
            "hints": self.hints(),
            "steps": [s.to_dict() for s in self.steps],
        }


class _Budget(Exception):
    pass


def bisect(good: Candidate, bad: Candidate, run: Callable[[Candidate], tuple[bool, str]],
           max_exchanges: int = 64) -> Result:
    """Search for the minimal change(s) that make ``bad`` work like ``good``.

    ``run(candidate)`` sends one request and returns (works, short detail)."""
    changes = differences(bad, good)
    result = Result("found", changes=changes)

    def trial(label: str, chs, base: Candidate | None = None, cand: Candidate | None = None) -> bool:
        if len(result.steps) >= max_exchanges:
            raise _Budget()
        cand = cand if cand is not None else apply(base or bad, good, list(chs))
        works, detail = run(cand)
        result.steps.append(Step(label, tuple(chs), cand, works, detail))
        return works

    try:
        result.good_works = trial("good", (), cand=good)
        result.bad_works = trial("bad", (), cand=bad)
        if result.good_works == result.bad_works or not changes:
            result.status = "no-split"
            return result
        if not result.good_works:  # the "good" one fails: search the other way round
            result.status = "no-split"
            return result
        singles = [ch for ch in changes if trial("one change", (ch,))]
        if singles:
            result.minimal = [[ch] for ch in singles]
            for i, ch in enumerate(singles):
                # reverse: the good request with the bad request's aspect must fail
                rev = differences(good, bad)
                back = [r for r in rev if _same_aspect(r, ch)]
                if back:
                    fails = not trial("reverse on good", tuple(back), base=good,
                                      cand=apply(good, bad, back))
                    result.only_when[i] = fails
            return result
        # cumulative prefix search: shortest prefix of changes that works
        lo, hi = 1, len(changes)
        if not trial("all changes", tuple(changes)):
            result.status = "inconclusive"  # even every change together does not work
            return result
        while lo < hi:
            mid = (lo + hi) // 2
            if trial("prefix", tuple(changes[:mid])):
                hi = mid
            else:
                lo = mid + 1
        kept = list(changes[:lo])
        i = 0
        while i < len(kept) and len(kept) > 1:
            fewer = kept[:i] + kept[i + 1:]
            if trial("drop one", tuple(fewer)):
                kept = fewer
            else:
                i += 1
        result.minimal = [kept]
        return result
    except _Budget:
        result.status = "budget"
        return result


def _same_aspect(a: Change, b: Change) -> bool:
    """Whether reversed change ``a`` (good -> bad) undoes forward change ``b``."""
    pairs = {("add", "remove"), ("remove", "add")}
    if (a.kind, b.kind) in pairs or a.kind == b.kind:
        return a.kind in ("version", "order") or a.name.lower() == b.name.lower()
    return False


def explain(minimal: list[Change], only: bool) -> str:
    """One sentence for a minimal flipping set, e.g. "fails only when Connection is exactly 'Upgrade'"."""
    head = "fails only when" if only else "works once"
    if len(minimal) == 1:
        ch = minimal[0]
        if only:
            if ch.kind == "value":
                return f"fails only when {ch.name} is exactly {ch.old!r} (works with {ch.new!r})"
            if ch.kind == "version":
                return f"fails only when the request line says {ch.old} (works with {ch.new})"
            if ch.kind == "add":
                return f"fails only when {ch.name} is missing (works with {ch.name}: {ch.new})"
            if ch.kind == "remove":
                return f"fails only when {ch.name} is sent (here {ch.old!r})"
            if ch.kind == "casing":
                return f"fails only when the header name is spelled {ch.old} (works as {ch.new})"
            return "fails only with the failing request's header order"
        return f"{head} {ch.describe()}"
    adds = [c for c in minimal if c.kind == "add"]
    if len(adds) == len(minimal):
        names = " and ".join(c.name for c in adds)
        return f"fails unless {names} are all sent (adding any one alone is not enough)"
    return "works only with all of: " + "; ".join(c.describe() for c in minimal)


def hint(minimal: list[Change]) -> list[str]:
    """What a minimal difference points to: a version window or a proxy rule."""
    out: list[str] = []
    names = {c.name.lower() for c in minimal}
    for c in minimal:
        if c.kind == "value" and c.name.lower() == "connection":
            out.append("Werkzeug 2.0.0 - 2.0.1 classify WebSocket requests by the exact Connection value "
                       "(WS701): upgrade Werkzeug to >= 2.0.2 and use websocket=True")
        if c.kind == "version":
            out.append("an intermediary speaks HTTP/1.0 upstream: set proxy_http_version 1.1 (WS704)")
    if names & {"upgrade", "connection"} and any(c.kind == "add" for c in minimal):
        out.append("a proxy drops the hop-by-hop Upgrade/Connection headers: "
                   "proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\" (WS703)")
    return out


def candidate_of(http_version: str, headers) -> Candidate:
    return Candidate(http_version, tuple((str(n), str(v)) for n, v in headers))


def parse_request_head(raw: bytes) -> Candidate:
    """A Candidate from raw request bytes (e.g. what a browser or proxy really sent)."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    first = lines[0].split()
    version = first[2] if len(first) >= 3 else "HTTP/1.1"
    headers = []
    for ln in lines[1:]:
        if not ln:
            break
        name, _, value = ln.partition(":")
        headers.append((name.strip(), value.strip()))
    return Candidate(version, tuple(headers))
