"""The hostile-input harness: hostile files of every kind, and running sftgate under a watch.

:func:`hostile_file` makes one file (or folder, FIFO, link) of a hostile kind; :func:`run_watched`
runs ``sftgate`` in a child process with a time limit and reports its exit code, output, wall
time and peak memory (the child's own ``ru_maxrss``, from ``os.wait4``); :func:`assert_user_error`
and :func:`assert_no_bug` state what every hostile run must show: the contract's exit code and no
traceback, no "internal error".
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, CliResult

DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = "9" * 5000
ALIAS_BOMB = "\n".join(
    ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
) + "\n"

# kind -> what the file holds (bytes), or a special maker in make_kind
BYTES_KINDS: dict[str, bytes] = {
    "empty": b"",
    "binary": bytes(range(256)) * 16,
    "non_utf8": '{"prompt": "caf\xe9", "completion": "x"}\n'.encode("latin-1"),
    "utf16": '{"prompt": "a", "completion": "b"}\n'.encode("utf-16"),
    "nul": b'{"prompt": "a\x00", "completion": "b"}\n\x00\x00\n',
    "deep": DEEP.encode(),
    "huge_int": ('{"prompt": "a", "completion": "b", "n": ' + HUGE_INT + "}\n").encode(),
    "huge_int_yaml": ("sftgate: 1\nmodel:\n  id: a/b\nx: " + HUGE_INT + "\n").encode(),
    "alias_bomb": ALIAS_BOMB.encode(),
    "recursive_alias": b"a: &a [*a]\n",
    "bad_tag": b"sftgate: 1\nmodel:\n  id: !!int abc\n",
    "complex_key": b"? [a, b]\n: 1\n",
    "null_key": b"sftgate: 1\n~: 1\nmodel: {id: a/b}\n",
    "lone_surrogate": b'{"id": "c1", "prompt": "\\ud800", "completion": "x"}\n',
}
SPECIAL_KINDS = ("missing", "folder", "fifo", "symlink_loop", "dangling", "name_too_long", "truncated_gz")
KINDS = (*BYTES_KINDS, *SPECIAL_KINDS)


def make_kind(root: Path, kind: str, suffix: str = ".jsonl") -> Path:
    """A path of ``kind`` under ``root`` (named with ``suffix``)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{kind}{suffix}"
    if kind in BYTES_KINDS:
        path.write_bytes(BYTES_KINDS[kind])
    elif kind == "missing":
        pass
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink_loop":
        os.symlink(path.name, path)
    elif kind == "dangling":
        os.symlink(root / "nowhere", path)
    elif kind == "name_too_long":
        path = root / ("x" * 300 + suffix)
    elif kind == "truncated_gz":
        path = root / f"{kind}.gz"
        path.write_bytes(gzip.compress(b"a line of a log\n" * 2000)[:60])
    else:  # pragma: no cover
        raise ValueError(kind)
    return path


@pytest.fixture(scope="session")
def kinds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-kinds")


@pytest.fixture(autouse=True)
def _short_input_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A FIFO that nobody writes is given up on after 0.3 s here (the default is 30 s)."""
    monkeypatch.setenv("SFTGATE_INPUT_WAIT", "0.3")


def assert_no_bug(result: CliResult | Watched) -> None:
    """No exit 3, no traceback, no "internal error" on stderr."""
    assert result.code != 3, result.err[-800:]
    assert "Traceback" not in result.err, result.err[-800:]
    assert "internal error" not in result.err, result.err[-800:]


def assert_user_error(result: CliResult | Watched) -> None:
    """Exit 2 (usage, config or input error) with a message, and no bug."""
    assert_no_bug(result)
    assert result.code == 2, (result.code, result.out[-800:], result.err[-800:])


# --------------------------------------------------------------------------- a watched child process


@dataclass
class Watched:
    code: int | None  # None: killed at the time limit
    out: str
    err: str
    seconds: float
    rss_mb: float


# A small process that starts sftgate and reports that child's own peak RSS: the peak a child
# reports counts the memory of the process it was forked from (Linux carries the high-water
# mark across fork and exec), so the child must come from this small one, not from pytest.
_WATCHER = """
import json, os, subprocess, sys, time
argv, timeout, out, err, cwd, shell = json.loads(sys.argv[1])
with open(out, "wb") as o, open(err, "wb") as e:
    proc = subprocess.Popen(argv, stdout=o, stderr=e, stdin=subprocess.DEVNULL, cwd=cwd, shell=shell)
    start = time.monotonic()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() - start > timeout:
            proc.kill()
            _, _, usage = os.wait4(proc.pid, 0)
            code = None
            break
        time.sleep(0.01)
print(json.dumps([code, time.monotonic() - start, usage.ru_maxrss / 1024]))
"""


def run_watched(*argv: str, timeout: float = 30.0, env: dict[str, str] | None = None, cwd: Path | None = None,
                shell_suffix: str = "") -> Watched:
    """``sftgate ARGV`` in a child process: exit code, output, seconds and peak RSS (MB) of that child.

    ``shell_suffix`` (e.g. ``">&-"``, to start it without a stdout) runs it through ``/bin/sh``."""
    import json
    import shlex

    full_env = {**os.environ, "SFTGATE_INPUT_WAIT": "0.3", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    cmd: Any = [sys.executable, "-m", "sftgate.runners.cli.main", *argv]
    if shell_suffix:
        cmd = "exec " + " ".join(shlex.quote(c) for c in cmd) + " " + shell_suffix
    with tempfile.TemporaryDirectory() as tmp:
        out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        spec = json.dumps([cmd, timeout, out, err, str(cwd or REPO), bool(shell_suffix)])
        done = subprocess.run([sys.executable, "-c", _WATCHER, spec], capture_output=True, env=full_env,
                              timeout=timeout + 30)
        code, seconds, rss = json.loads(done.stdout)
        return Watched(code, Path(out).read_text("utf-8", "replace"), Path(err).read_text("utf-8", "replace"),
                       seconds, rss)
