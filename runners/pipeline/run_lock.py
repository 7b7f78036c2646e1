"""One writer per run folder: ``sftgate run`` / ``train`` / ``merge`` hold a lock on it while they work.

The lock is an advisory ``flock`` on ``<run folder>/sftgate-run.lock``; the kernel drops it when
the holder exits, however it exits (a SIGKILL or an OOM kill included), so a stale lock file is
harmless and is simply taken over. The file records who holds it (pid, host, start time,
command), and a second run on the same folder stops at once with exit 2, saying so.

::

    with run_lock(run_dir, command="run sftgate.yaml"):
        ...   # stages
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from sftgate.gates.frame.core import InputError

LOCK_NAME = "sftgate-run.lock"
_HELD: dict[str, int] = {}  # run folders this process holds: re-entry (run -> merge) is a no-op


class RunLocked(InputError):
    """Another sftgate process works in this run folder (exit 2)."""


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike[str], *, command: str) -> Iterator[None]:
    """Hold the run folder's lock for the ``with`` block; :class:`RunLocked` when another process holds it.

    Where the filesystem has no locks (some network filesystems), the block runs unlocked.
    """
    import fcntl

    folder = Path(run_dir)
    key = os.path.abspath(folder)
    if key in _HELD:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                yield  # no lock support here: run unlocked rather than not at all
                return
            raise RunLocked(f"{folder} is in use: {_holder(fd)}",
                            hint="wait for that run to finish (or stop it), or give this config its own "
                                 "train.output_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "since_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }) + "\n").encode())
        _HELD[key] = fd
        try:
            yield
        finally:
            del _HELD[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing drops the flock


def _holder(fd: int) -> str:
    """Who holds the lock, from the lock file: ``sftgate run x.yaml (pid 42 on host, since ...)``."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode("utf-8", "replace") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another sftgate process holds its lock"
    return (f"`sftgate {str(info.get('command', '?'))[:200]}` holds its lock (pid {info.get('pid')} on "
            f"{str(info.get('host', '?'))[:100]}, since {info.get('since_utc', '?')})")
