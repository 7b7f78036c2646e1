"""What a killed writer leaves behind, and whether its writer still runs.

sftgate's temp files and folders carry the writer's process id in their names
(``.report.json.4242-1a2b3c4d.tmp``, ``.release.promote-4242-1a2b3c4d``). The next writer of
the same target removes those whose process is gone (:func:`remove_stale_files`), so a SIGKILL
or an OOM kill leaves nothing behind for longer than one run.

:func:`writer_running` is careful about the two ways a dead writer looks alive: a zombie (killed
but not yet reaped by its parent, as under a container init that never reaps) and a reused pid
(another process that started after the leftover was made).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

_CLOCK_SLACK = 2.0  # seconds: /proc/stat's btime is whole seconds
LEGACY_TMP_AGE = 3600.0  # temp files from before pids were in the names: removed when this old


def writer_running(pid: int, made_at: float | None = None) -> bool:
    """True when process ``pid`` runs, is not a zombie, and (given ``made_at``, the leftover's
    ctime) started before the leftover was made, so it can be the writer."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    state, started = _proc_stat(pid)
    if state in ("Z", "X"):
        return False
    return not (made_at is not None and started is not None and started > made_at + _CLOCK_SLACK)


def remove_stale_files(folder: Path, pattern: re.Pattern[str]) -> list[str]:
    """Remove the files of ``folder`` whose name matches ``pattern`` (group ``pid``) and whose writer is gone.

    A match without a ``pid`` group value (a legacy name) is removed when older than an hour.
    Returns the names removed. Errors (a read-only folder) are ignored: cleanup is best effort.
    """
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        pid = m.groupdict().get("pid")
        stale = (now - st.st_mtime > LEGACY_TMP_AGE) if pid is None else not writer_running(int(pid), st.st_ctime)
        if stale and not entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def _proc_stat(pid: int) -> tuple[str | None, float | None]:
    """The state letter and the start time (epoch seconds) of ``pid`` from /proc; Nones elsewhere."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        fields = raw[raw.rindex(")") + 2:].split()
        state, start_ticks = fields[0], int(fields[19])
        boot = _boot_time()
        started = None if boot is None else boot + start_ticks / os.sysconf("SC_CLK_TCK")
        return state, started
    except (OSError, ValueError, IndexError):
        return None, None


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None
