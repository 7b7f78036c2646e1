"""Open and read input files, mapping every way they can fail to one InputError (exit 2).

The one place that says "no such file", "is a folder" and "not UTF-8 at line N", so every
command words a bad path the same way, and the one place that decides what an input may be:

- a regular file is read as it is;
- a named special file (a FIFO, ``/dev/stdin``, a process substitution ``<(zcat x.gz)``, a
  character device) is read with limits: sftgate waits at most ``SFTGATE_INPUT_WAIT`` seconds
  (default 30) for its first byte, so a FIFO that nobody writes is an error, not a hang, and reads
  at most :data:`MAX_SPECIAL_BYTES`, so ``/dev/zero`` is an error, not a machine out of memory.
  Readers that need to read a file twice or seek in it get a spooled copy (:func:`regular_path`);
- a folder, a socket, a symbolic-link loop, a name too long, a file without read permission:
  an :class:`InputError` naming the path.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import io
import os
import select
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from sftgate.gates.frame.core import InputError

PATH_HINT = "check the path (relative paths are from the current folder)"
MAX_SPECIAL_BYTES = 256 * 1024 * 1024  # what a FIFO or device may hold; save bigger inputs to a file
MAX_SPECIAL_DOCUMENT = 64 * 1024 * 1024  # a whole config, schema or cases file read from one
DEFAULT_WAIT = 30.0  # seconds for a FIFO's first byte
_CHUNK = 1 << 20


def input_wait() -> float:
    """Seconds to wait for the first byte of a FIFO (``SFTGATE_INPUT_WAIT``, default 30)."""
    try:
        return max(0.0, float(os.environ.get("SFTGATE_INPUT_WAIT", DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def os_problem(exc: OSError, shown: str, expected: str = "a file") -> InputError:
    """The :class:`InputError` for an ``OSError`` on the input ``shown``."""
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{shown}: no such file", hint=PATH_HINT)
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{shown}: is a folder, expected {expected}")
    if isinstance(exc, PermissionError):
        return InputError(f"{shown}: permission denied", hint="check the file's permissions")
    if exc.errno == errno.ELOOP:
        return InputError(f"{shown}: a loop of symbolic links", hint="fix or remove the link")
    if exc.errno == errno.ENAMETOOLONG:
        return InputError(f"{shown[:120]}…: file name too long", hint="a file name is at most 255 bytes")
    if exc.errno == errno.ENOTDIR:
        return InputError(f"{shown}: a part of the path is a file, not a folder", hint=PATH_HINT)
    return InputError(f"{shown}: cannot read ({exc.strerror or exc})")


def open_input(path: str | os.PathLike[str], *, display: str | None = None, expected: str = "a file",
               limit: int = MAX_SPECIAL_BYTES) -> BinaryIO:
    """``path`` opened for binary reading: a regular file, or a special file that has data.

    A special file is opened without blocking, waited on for :func:`input_wait` seconds, then
    read as a stream; its reader raises :class:`InputError` past ``limit`` bytes.
    """
    shown = display or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise os_problem(exc, shown, expected) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{shown}: is a folder, expected {expected}")
        if not stat.S_ISREG(mode) and not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)):
            raise InputError(f"{shown}: is a block device, expected {expected}")
        if not stat.S_ISREG(mode):
            _wait_for_data(fd, shown)
        os.set_blocking(fd, True)
        if stat.S_ISREG(mode):
            return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return io.BufferedReader(_BoundedRaw(fd, shown, limit), _CHUNK)


def is_special(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (followed) is a FIFO, a device or a socket; False when it cannot be stat'ed."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def regular_path(path: str | os.PathLike[str], *, display: str | None = None, expected: str = "a file") -> Path:
    """``path`` itself when it is not a special file; else a regular copy of its content (bounded,
    removed at exit), for readers that read twice, seek or map it."""
    if not is_special(path):
        return Path(path)
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_rdev)
    if key in _SPOOLED:  # a pipe is read once: the second reader of it gets the same copy
        return _SPOOLED[key]
    with open_input(path, display=display, expected=expected) as source:
        fd, tmp = tempfile.mkstemp(prefix="sftgate-input-", suffix=Path(path).suffix[:16])
        atexit.register(_remove, tmp)
        with os.fdopen(fd, "wb") as copy:
            while chunk := source.read(_CHUNK):
                copy.write(chunk)
    _SPOOLED[key] = Path(tmp)
    return _SPOOLED[key]


_SPOOLED: dict[tuple[int, int, int], Path] = {}


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _wait_for_data(fd: int, shown: str) -> None:
    wait = input_wait()
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    if not poller.poll(int(wait * 1000)):
        raise InputError(f"{shown}: no data after {wait:g} s (a FIFO that no process writes?)",
                         hint="start the writer first, or give a regular file (SFTGATE_INPUT_WAIT sets the wait)")


class _BoundedRaw(io.RawIOBase):
    """The raw reader of a special file: refuses to go past ``limit`` bytes (buffered by :func:`open_input`)."""

    def __init__(self, fd: int, shown: str, limit: int) -> None:
        self.fd = fd
        self.shown = shown
        self.limit = limit
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = os.readv(self.fd, [buffer])
        self.total += n
        if self.total > self.limit:
            raise InputError(
                f"{self.shown}: more than {self.limit >> 20} MiB from a FIFO or device",
                hint="save the input to a regular file first (sftgate reads regular files of any size)",
            )
        return n

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        super().close()


def read_bytes(path: str | os.PathLike[str], *, display: str | None = None, expected: str = "a file") -> bytes:
    """The file's bytes; a missing, folder or unreadable path raises :class:`InputError`."""
    shown = display or str(path)
    try:
        with open_input(path, display=shown, expected=expected, limit=MAX_SPECIAL_DOCUMENT) as handle:
            return handle.read()
    except IsADirectoryError:
        raise InputError(f"{shown}: is a folder, expected {expected}") from None
    except OSError as exc:
        raise os_problem(exc, shown, expected) from None


def read_text(
    path: str | os.PathLike[str], *, display: str | None = None, expected: str = "a file", encoding: str = "utf-8-sig"
) -> str:
    """The file's text (a UTF-8 BOM dropped by default); invalid UTF-8 names the line."""
    return decode(read_bytes(path, display=display, expected=expected), display=display or str(path), encoding=encoding)


def decode(raw: bytes, *, display: str, encoding: str = "utf-8-sig") -> str:
    """``raw`` as text; invalid UTF-8 raises :class:`InputError` naming ``display:LINE``."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        hint = "save the file as UTF-8"
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = "this file is UTF-16: save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)"
        raise InputError(f"{display}:{line}: not UTF-8 text ({exc.reason})", hint=hint) from None
