"""Atomic writes: a temp file in the target's folder, fsync, then rename over the target.

The temp file is ``.NAME.PID-XXXXXXXX.tmp``; a writer killed before its rename leaves it behind,
and the next write of the same target removes it (:mod:`sftgate.gates.readers.leftovers`).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from sftgate.gates.readers.leftovers import remove_stale_files


def write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    write_bytes(path, text.encode(encoding))


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_files(target.parent, stale_temp_pattern(target.name))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, target.stat().st_mode & 0o777)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def stale_temp_pattern(name: str) -> re.Pattern[str]:
    """The names of this module's temp files for target ``name`` (legacy ones without a pid too)."""
    return re.compile(rf"^\.{re.escape(name)}\.(?:(?P<pid>\d+)-)?[a-z0-9_]{{8}}\.tmp$")
