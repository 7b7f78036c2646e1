"""Run a command and measure it as a user sees it: wall and CPU time, and its memory over time.

:func:`measure` starts ``argv`` in a fresh process and samples ``/proc`` every 20 ms for it and
every process under it (forked workers included): the peak of their summed resident memory
(``Rss``), of their summed proportional memory (``Pss``: a page shared by N processes counts 1/N
in each, so the sum is what the tree really occupies), and of their summed private memory
(``Private_*``: what each process owns alone; a file that a process reads is not in it). CPU time
comes from ``wait4`` (the child and its workers). Peak RSS from ``ru_maxrss`` is NOT used: Linux
carries a parent's high-water mark over ``fork`` and ``exec``, so a child of a big benchmark
process would report the benchmark's own size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty")


def build_mistral_v3_in_child(folder: Path) -> Path:
    """The Mistral v3 tokenizer of fixtures.tokenizers, built in a child process (the caller stays small)."""
    subprocess.run([sys.executable, "-c", "import sys, pathlib; sys.path.insert(0, sys.argv[1]); "
                    "from fixtures.tokenizers import build_mistral_v3; build_mistral_v3(pathlib.Path(sys.argv[2]))",
                    str(ROOT), str(folder)], check=True, cwd=ROOT)
    return folder


def _tree(pid: int) -> list[int]:
    """``pid`` and every process under it."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").glob("*/children"))
        except OSError:  # it has just exited
            continue
        for task in tasks:
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except (OSError, ValueError):
                continue
    return out


def _memory(pid: int) -> dict[str, int]:
    """Summed ``FIELDS`` (bytes) of the processes of ``pid``'s tree, and their number (``processes``)."""
    total = dict.fromkeys(FIELDS, 0)
    members = _tree(pid)
    total["processes"] = len(members)
    for member in members:
        try:
            text = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue
        for row in text.splitlines():
            name, _, value = row.partition(":")
            if name in total:
                total[name] += int(value.split()[0]) * 1024
    total["Private"] = total["Private_Clean"] + total["Private_Dirty"]
    return total


def measure(argv: list[str], *, cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
            interval: float = 0.02) -> dict[str, Any]:
    """Run ``argv``; its stdout, exit code, wall and CPU seconds, peak memory (MiB) and load average."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd, env=env, text=True)
    peaks = dict.fromkeys((*FIELDS, "Private"), 0)
    processes = 1
    done = threading.Event()

    def sample() -> None:
        nonlocal processes
        while not done.is_set():
            now = _memory(proc.pid)
            processes = max(processes, now.pop("processes"))
            for key, value in now.items():
                peaks[key] = max(peaks[key], value)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    mib = 1 / 2**20
    return {
        "wall": time.perf_counter() - start,
        "cpu": usage.ru_utime + usage.ru_stime,
        "exit": os.waitstatus_to_exitcode(status),
        "out": out,
        "peak_rss_mib": round(peaks["Rss"] * mib),
        "peak_pss_mib": round(peaks["Pss"] * mib),
        "peak_private_mib": round(peaks["Private"] * mib),
        "processes": processes,
        "load": (round(load, 2), round(os.getloadavg()[0], 2)),
    }
