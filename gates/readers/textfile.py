"""Read a whole input file, mapping every way it can fail to one InputError (exit 2).

The one place that says "no such file", "is a folder" and "not UTF-8 at line N", so every
command words a bad path the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from sftgate.gates.frame.core import InputError

PATH_HINT = "check the path (relative paths are from the current folder)"


def read_bytes(path: str | os.PathLike[str], *, display: str | None = None, expected: str = "a file") -> bytes:
    """The file's bytes; a missing, folder or unreadable path raises :class:`InputError`."""
    shown = display or str(path)
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{shown}: no such file", hint=PATH_HINT) from None
    except IsADirectoryError:
        raise InputError(f"{shown}: is a folder, expected {expected}") from None
    except OSError as exc:
        raise InputError(f"{shown}: cannot read ({exc.strerror})") from None


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
        raise InputError(f"{display}:{line}: not UTF-8 text ({exc.reason})", hint="save the file as UTF-8") from None
