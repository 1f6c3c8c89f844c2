"""The ``wsdiag check`` cache: each file's compact facts, keyed by the file's content.

A second run over an unchanged tree reads every file (to hash it) but parses none. Rules:

* The key of an entry is a hash of the file's bytes, its displayed path (findings carry it) and
  whether it was named explicitly; the cache file's name is a version key: the cache format,
  wsdiag's version, the installed versions (advice depends on them) and the size and mtime of
  every module of ``wsdiag.check`` and ``wsdiag.core``, so an edited rule (or another wsdiag)
  never reads an old answer.
* An entry is plain JSON: ``[error, uses_websocket, local findings, deployment findings]``,
  a finding as ``[code, evidence, subject, confidence]`` with its typed location and fix as
  evidence keys (``Finding.wire_evidence``, read back by ``Finding.from_wire``); never syntax
  trees or file text.
* One file per version key (``check-<key>.json``; the 8 newest are kept) in the cache directory (default
  ``.wsdiag_cache/`` in the current directory, or ``$WSDIAG_CACHE_DIR``); the directory holds a
  ``.gitignore`` of ``*``, as ruff's does. Written atomically (temporary file + rename); a cache
  that cannot be read or written is ignored, never an error.
* ``stats`` counts hits, misses and writes (tests prove a second run reads the cache with it).
* The route rules judge with the project's pinned Werkzeug when its pins name one
  (``wsdiag.check.projpins``, read before the file loop): that release, where it comes from and the
  pinned fix refusal are added to the entry key (``salt``), so a changed pin never reads facts
  judged with another release.
* Version pins (``wsdiag.check.pins``) are a file's facts like any other; the files a requirements
  file includes with ``-r``/``-c`` are read when the project is related (``pins.Resolution``), never
  cached, so an edited included file counts even when the including file is a cache hit.
* The project context of named files (``wsdiag.check.context``) reads the same entries, and marks
  a context file it did not need to parse under its key + ``":context-none"`` (``has``, not counted).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

CACHE_FORMAT = 2  # 2: findings packed from typed location/fix (Finding.wire_evidence)
DEFAULT_DIR = ".wsdiag_cache"
MAX_ENTRIES = 200_000  # entries not seen in this run are dropped beyond this many

_RULE_PACKAGES = ("check", "core")  # every module whose code can change a finding


def version_key(versions: dict | None) -> str:
    from wsdiag import __version__

    base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = [str(CACHE_FORMAT), __version__, json.dumps(versions or {}, sort_keys=True, default=str)]
    for pkg in _RULE_PACKAGES:
        try:
            with os.scandir(os.path.join(base, pkg)) as it:
                for entry in sorted(it, key=lambda e: e.name):
                    if entry.name.endswith(".py"):
                        st = entry.stat()
                        parts.append(f"{pkg}/{entry.name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{pkg}:-")
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:16]


def default_dir() -> str:
    return os.environ.get("WSDIAG_CACHE_DIR") or DEFAULT_DIR


class Cache:
    """Facts per content key; ``get`` and ``put`` during the run, ``save`` once at the end."""

    def __init__(self, directory: str, versions: dict | None):
        self.directory = directory
        self.path = os.path.join(directory, f"check-{version_key(versions)}.json")
        self.stats = {"hits": 0, "misses": 0, "written": 0}
        self._old: dict = {}
        self._new: dict = {}
        self._dirty = False
        try:
            with open(self.path, encoding="utf-8") as f:
                doc = json.load(f)
            if isinstance(doc, dict) and doc.get("format") == CACHE_FORMAT and isinstance(doc.get("entries"), dict):
                self._old = doc["entries"]
        except (OSError, ValueError):
            pass

    @staticmethod
    def key(path: str, data: bytes, explicit: bool, salt: str = "") -> str:
        """``salt``: the project's Werkzeug facts the route rules judged with (``projpins.salt``)."""
        h = hashlib.blake2b(data, digest_size=16)
        h.update(b"\0" + path.encode("utf-8", "surrogateescape") + (b"\0e" if explicit else b"\0i"))
        if salt:
            h.update(b"\0s" + salt.encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    def get(self, key: str):
        entry = self._new.get(key)
        if entry is None:
            entry = self._old.get(key)
            if entry is not None:
                self._new[key] = entry
        if entry is None:
            self.stats["misses"] += 1
        else:
            self.stats["hits"] += 1
        return entry

    def has(self, key: str) -> bool:
        """Is there an entry for ``key``? Not counted in ``stats`` (the project context's markers)."""
        if key in self._new:
            return True
        if key in self._old:
            self._new[key] = self._old[key]
            return True
        return False

    def put(self, key: str, entry) -> None:
        self._new[key] = entry
        self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        entries = self._new
        if len(self._old) + len(self._new) <= MAX_ENTRIES:  # keep entries of files this run did not see
            entries = dict(self._old)
            entries.update(self._new)
        try:
            os.makedirs(self.directory, exist_ok=True)
            ignore = os.path.join(self.directory, ".gitignore")
            if not os.path.exists(ignore):
                with open(ignore, "w", encoding="utf-8") as f:
                    f.write("# written by wsdiag check\n*\n")
            fd, tmp = tempfile.mkstemp(prefix=".check-", suffix=".tmp", dir=self.directory)
            try:
                mask = os.umask(0)
                os.umask(mask)
                os.chmod(tmp, 0o666 & ~mask)  # like any file the user writes (mkstemp makes it 0600)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump({"format": CACHE_FORMAT, "entries": entries}, f, separators=(",", ":"), default=str)
                os.replace(tmp, self.path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            self.stats["written"] = len(self._new)
            self._prune()
        except OSError:
            pass

    def _prune(self, keep: int = 8) -> None:
        """Old version keys (another wsdiag, Werkzeug or rule code) leave files: keep the newest few."""
        old = []
        with os.scandir(self.directory) as it:
            for e in it:
                if e.name.startswith("check-") and e.name.endswith(".json"):
                    old.append((e.stat().st_mtime, e.path))
        for _, path in sorted(old, reverse=True)[keep:]:
            try:
                os.unlink(path)
            except OSError:
                pass
