"""The job ledger: one JSON line per submitted run in ``runs/submissions.jsonl``.

Every ``sftgate run`` / ``sftgate train`` gets a job id (``sft-YYYYmmdd-HHMMSS-<6 hex>``: sortable,
unique without coordination) and appends one line when it starts and one when it ends. An append
is one ``write`` of one line on a file opened with ``O_APPEND`` under an exclusive ``flock``, then
``fsync``: concurrent jobs never interleave lines and a crash never leaves half a line that
breaks the readers (a torn last line, if the disk fills, is skipped by :func:`read`).

::

    from sftgate.runners.pipeline.ledger import new_job_id, append, read
    job = new_job_id()
    append("runs/submissions.jsonl", {"job_id": job, "event": "start", "config": "sftgate.yaml"})
    [e for e in read("runs/submissions.jsonl") if e["job_id"] == job]
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import secrets
from pathlib import Path
from typing import Any

LEDGER_NAME = "submissions.jsonl"


def new_job_id(now: _dt.datetime | None = None) -> str:
    """``sft-20250101-120000-a1b2c3``: UTC time to the second, then 24 random bits."""
    moment = now or _dt.datetime.now(_dt.timezone.utc)
    return f"sft-{moment.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_ledger(config_dir: str | os.PathLike[str]) -> Path:
    """``<config folder>/runs/submissions.jsonl``."""
    return Path(config_dir) / "runs" / LEDGER_NAME


def append(path: str | os.PathLike[str], entry: dict[str, Any]) -> dict[str, Any]:
    """Append ``entry`` (with ``time`` added when missing) as one line; return what was written."""
    record = {"time": utc_now(), **entry}
    line = (json.dumps(record, ensure_ascii=False, sort_keys=False, default=str) + "\n").encode("utf-8")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        with _locked(fd):
            written = os.write(fd, line)
            if written != len(line):  # a short write (disk full): the reader skips the torn line
                raise OSError(f"{target}: short write ({written} of {len(line)} bytes)")
            os.fsync(fd)
    finally:
        os.close(fd)
    return record


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every entry of the ledger, oldest first; missing file -> []; torn or invalid lines skipped."""
    from sftgate.gates.train.provenance_manifest import read_ledger

    return read_ledger(path)


def find(path: str | os.PathLike[str], job_id: str) -> list[dict[str, Any]]:
    return [e for e in read(path) if e.get("job_id") == job_id]


@contextlib.contextmanager
def _locked(fd: int):  # type: ignore[no-untyped-def]
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: O_APPEND alone
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
