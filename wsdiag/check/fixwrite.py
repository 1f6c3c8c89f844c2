"""Read sources safely and write ``--fix`` results atomically.

Reading (``read_source``): only regular files (a FIFO, a device or a link to one named
``*.py`` is refused with a reason, never opened for a blocking read), at most ``MAX_SOURCE``
bytes, decoded the way Python decodes source: a UTF-8 BOM, else a PEP 263 coding cookie
in the first two lines, else UTF-8.  Line endings are kept as they are.

Writing (``write_fixed``): the new text goes to a temporary file in the same directory, is
fsynced and renamed over the original, so at any moment the file holds either every old
byte or every new one (a full disk, a file-size limit or a kill leaves it untouched).  Mode,
owner, encoding, BOM and line endings are kept.  A file whose real path leaves the given
roots (a symlink pointing elsewhere) is not written, nor one that is read-only or changed
since it was read.  Failures are returned as a reason (one line); nothing here raises for I/O.
Standard library only.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
import tempfile
from dataclasses import dataclass

MAX_SOURCE = 4 * 1024 * 1024
COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
BOM = codecs.BOM_UTF8


class SourceSkip(OSError):
    """The file is not read (not a regular file, too large, undecodable); the message says why."""


@dataclass
class Source:
    path: str
    text: str
    encoding: str  # a codec name Python knows
    bom: bool
    raw: bytes  # the bytes read, to detect a change before writing


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def declared_encoding(raw: bytes) -> tuple[str, bool]:
    """(codec, has BOM) the way the interpreter decides it for a source file."""
    if raw.startswith(BOM):
        return "utf-8", True
    for line in raw.split(b"\n", 2)[:2]:
        m = COOKIE.match(line)
        if m:
            name = m.group(1).decode("ascii", "replace")
            try:
                found = codecs.lookup(name).name
                return ("utf-8" if found.startswith("utf-8") else found), False  # as the tokenizer does
            except LookupError:
                raise SourceSkip(f"unknown source encoding {name!r} in its coding line") from None
        if line.strip() and not line.lstrip().startswith(b"#"):
            break  # the cookie must be on line 1, or on line 2 after a comment line
    return "utf-8", False


def read_bytes(path: str, limit: int = MAX_SOURCE) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; SourceSkip (an OSError) otherwise."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SourceSkip(exc.strerror or str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise SourceSkip(f"{_kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise SourceSkip(f"{st.st_size} bytes, over the {limit}-byte limit for a source file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SourceSkip(exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)  # what was opened, not what was stat'ed a moment ago
        if not stat.S_ISREG(st.st_mode):
            raise SourceSkip(f"{_kind(st.st_mode)}, not a regular file")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise SourceSkip(f"over the {limit}-byte limit for a source file")
            chunks.append(chunk)
        return b"".join(chunks)
    except SourceSkip:
        raise
    except OSError as exc:
        raise SourceSkip(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def read_source(path: str, limit: int = MAX_SOURCE) -> Source:
    raw = read_bytes(path, limit)
    encoding, bom = source_encoding(path, raw)
    return Source(path, decode_source(path, raw), encoding, bom, raw)


def source_encoding(path: str, raw: bytes) -> tuple[str, bool]:
    return declared_encoding(raw) if path.endswith((".py", ".pyw")) else ("utf-8", raw.startswith(BOM))


def decode_source(path: str, raw: bytes) -> str:
    """The text of ``raw`` (BOM dropped, coding cookie honoured); SourceSkip when it does not decode."""
    encoding, bom = source_encoding(path, raw)
    try:
        return raw[len(BOM):].decode(encoding) if bom else raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SourceSkip(f"not valid {encoding} at byte {exc.start}") from None


def read_text(path: str) -> str:
    return read_source(path).text


def _inside(real: str, roots: list[str]) -> bool:
    for root in roots:
        r = os.path.realpath(root)
        if os.path.isfile(r):
            r = os.path.dirname(r)
        if real == r or real.startswith(r.rstrip(os.sep) + os.sep):
            return True
    return False


def write_fixed(path: str, before: str, after: str, roots: list[str]) -> str | None:
    """Replace ``path`` (read as ``before``) by ``after`` atomically; None, or why it was not written."""
    real = os.path.realpath(path)
    if not _inside(real, roots or ["."]):
        return f"not written: it resolves to {real}, outside the checked paths"
    try:
        src = read_source(path)
    except OSError as exc:
        return f"not written: cannot read it again ({exc})"
    if src.text != before:
        return "the file changed while wsdiag was checking it"
    try:
        st = os.stat(real)
    except OSError as exc:
        return f"not written: {exc.strerror or exc}"
    if not os.access(real, os.W_OK) or not st.st_mode & 0o222:  # the mode bits count even for root
        return "not written: the file is read-only"
    try:
        data = (BOM if src.bom else b"") + after.encode(src.encoding)
    except UnicodeEncodeError:
        return f"not written: the fix cannot be encoded in the file's encoding ({src.encoding})"
    directory = os.path.dirname(real) or "."
    try:
        fd, made = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".wsdiag-fix", dir=directory)
    except OSError as exc:
        return f"not written: cannot create a file next to it ({exc.strerror or exc})"
    tmp: str | None = made
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            made_st = os.fstat(fd)
            if (st.st_uid, st.st_gid) != (made_st.st_uid, made_st.st_gid) and hasattr(os, "fchown"):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except PermissionError:
                    raise OSError(errno.EPERM, "cannot keep the file's owner") from None
            os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which may clear set-id bits
            os.fsync(fd)  # data and metadata on disk before the rename makes them the file
        finally:
            os.close(fd)
        if read_bytes(real) != src.raw:  # last look: nobody wrote it meanwhile
            raise OSError(errno.EAGAIN, "the file changed while wsdiag was writing it")
        os.replace(made, real)
        tmp = None
        _sync_dir(directory)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
            why = f"{why}; the file is unchanged"
        return f"not written: {why}"
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return None


def _sync_dir(directory: str) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
