"""Write a report where the user asked (``--junit-xml PATH``, ``$GITHUB_STEP_SUMMARY``), safely.

What is at the path decides how:

- nothing yet, or a regular file: written atomically (:func:`sftgate.gates.readers.atomic.write_bytes`:
  a temp file beside it, then a rename); a regular file keeps its permissions, a new one gets the umask's;
- a character device or a FIFO (``/dev/null``, a named pipe): written directly, never replaced, so
  ``--junit-xml /dev/null`` leaves ``/dev/null`` a device; a FIFO that no process reads is an error,
  not a hang;
- ``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N``, ``/proc/self/fd/N``: written to that open descriptor;
- a folder, a socket or a block device: refused;
- a symbolic link (other than the above): refused, whatever it points at. sftgate does not write
  through a link it did not make: a checkout can plant ``junit.xml -> ~/.ssh/authorized_keys``, and
  a job running as root would replace the target. Give the link's target as the path instead.

Every failure (a folder, a read-only place, a full disk, a name too long) is an
:class:`~sftgate.gates.frame.core.OutputError` (exit 2) naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys

from sftgate.gates.frame.core import OutputError
from sftgate.gates.readers import atomic

_FD_PATH = re.compile(r"^/(?:dev/fd|proc/self/fd)/(\d+)$")
_STD = {"/dev/stdout": 1, "/dev/stderr": 2}


def write_report(path: str | os.PathLike[str], text: str, *, what: str = "report") -> None:
    """Replace the report at ``path`` with ``text`` (see the module doc for what is refused)."""
    _write(os.fspath(path), text.encode("utf-8"), what=what, append=False)


def append_report(path: str | os.PathLike[str], text: str, *, what: str = "report") -> None:
    """Append ``text`` to the report at ``path`` (the step summary), created when missing."""
    _write(os.fspath(path), text.encode("utf-8"), what=what, append=True)


def _write(path: str, data: bytes, *, what: str, append: bool) -> None:
    shown = f"{what} {path}" if what != path else path
    try:
        fd = _open_descriptor(path)
        if fd is not None:
            return _write_fd(fd, data, shown)
        kind = _kind(path, shown, what)
        if kind == "special":
            return _write_special(path, data, shown)
        if append:
            return _append_regular(path, data)
        _replace_regular(path, data, new=kind == "missing")
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write ({_reason(exc)})", hint=_hint(exc)) from None


def _open_descriptor(path: str) -> int | None:
    """The descriptor ``/dev/stdout``-like paths name, or None."""
    if path in _STD:
        return _STD[path]
    m = _FD_PATH.match(path)
    return int(m.group(1)) if m else None


def _kind(path: str, shown: str, what: str) -> str:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.stat(path)
        except OSError:
            target = None
        if target is not None and (stat.S_ISCHR(target.st_mode) or stat.S_ISFIFO(target.st_mode)):
            return "special"
        raise OutputError(
            f"{shown}: is a symbolic link (to {os.readlink(path)}); sftgate does not write through links",
            hint="give the link's target as the path, or remove the link",
        )
    if stat.S_ISREG(st.st_mode):
        return "regular"
    if stat.S_ISDIR(st.st_mode):
        example = "junit.xml" if "junit" in what else "summary.md"
        raise OutputError(f"{shown}: is a folder, expected a file path",
                          hint=f"e.g. {os.path.join(path, example)}")
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return "special"
    raise OutputError(f"{shown}: is a socket or block device, not a file", hint="give a regular file path")


def _replace_regular(path: str, data: bytes, *, new: bool) -> None:
    parent = os.path.dirname(path)
    if parent and os.path.isfile(parent):
        raise OutputError(f"{path}: its folder {parent} is a file")
    atomic.write_bytes(path, data)
    if new:  # mkstemp made it 0600; a report is as readable as any file the user makes
        mask = os.umask(0)
        os.umask(mask)
        with contextlib.suppress(OSError):
            os.chmod(path, 0o666 & ~mask)


def _append_regular(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _write_special(path: str, data: bytes, shown: str) -> None:
    """A device or FIFO: opened without blocking (a FIFO nobody reads is ENXIO, not a hang), written whole."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OutputError(f"{shown}: a FIFO that no process is reading",
                              hint="start the reader first, or give a file path") from None
        raise
    try:
        os.set_blocking(fd, True)
        _write_all(fd, data)
    finally:
        os.close(fd)


def _write_fd(fd: int, data: bytes, shown: str) -> None:
    for stream in (sys.stdout, sys.stderr):  # what was printed before comes first
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        _write_all(fd, data)
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write to descriptor {fd} ({_reason(exc)})") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _hint(exc: OSError) -> str | None:
    return {
        errno.ENOSPC: "free some space, or write the report elsewhere",
        errno.EROFS: "this place is read-only: write the report elsewhere",
        errno.EACCES: "no permission to write here: write the report elsewhere",
        errno.ENAMETOOLONG: "shorten the path",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
    }.get(exc.errno or 0)
