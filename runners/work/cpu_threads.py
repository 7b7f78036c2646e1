"""torch's CPU threads during training: as many as the CPUs other processes leave free, re-checked.

An OpenMP thread on a core that another process holds makes every parallel region wait for it:
on 2 cores with one busy, a step of the demo's tiny model took 1.45 s with 2 threads and 0.11 s
with 1; on the same 2 cores, quiet, it took 0.065 s with 2 and 0.11 s with 1. So the number is
not set once: :class:`ThreadGovernor` reads ``/proc/stat`` (the busy time of the CPUs this process
may use) and its own CPU time (``getrusage``) every :data:`INTERVAL` seconds of training, takes
the difference as what OTHER processes used, and sets ``torch.set_num_threads`` to the CPUs left.
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` set by the user (torchrun sets 1 per rank) win.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
INTERVAL = 0.5  # seconds between two looks at the machine


def user_set_threads() -> bool:
    return any(os.environ.get(name) for name in THREAD_VARIABLES)


class ThreadGovernor:
    """Keeps torch's intra-op threads at the CPUs that other processes leave free (see the module doc)."""

    def __init__(self, max_threads: int) -> None:
        from sftgate.gates.readers.worker_count import allowed_cpus

        self.max_threads = max(1, max_threads)
        self.cpus = allowed_cpus()
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last: tuple[float, float, float] | None = self._sample()
        self.changes = 0

    def _sample(self) -> tuple[float, float, float] | None:
        """(now, seconds the allowed CPUs were busy, this process's CPU seconds), or None."""
        import resource

        wanted = {f"cpu{n}" for n in self.cpus}
        busy = 0
        try:
            for row in Path("/proc/stat").read_text().splitlines():
                name, *values = row.split()
                if name in wanted:
                    ticks = [int(v) for v in values[:8]]
                    busy += sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
        except (OSError, ValueError, IndexError):
            return None
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return time.monotonic(), busy / self.tick, usage.ru_utime + usage.ru_stime

    def threads_now(self) -> int | None:
        """The threads for the CPUs left free since the last look (None: too soon, or no /proc)."""
        if self.last is None:
            return None
        now = self._sample()
        if now is None or now[0] - self.last[0] < INTERVAL:
            return None
        wall = now[0] - self.last[0]
        others = max(0.0, (now[1] - self.last[1]) - (now[2] - self.last[2])) / wall
        self.last = now
        return max(1, min(self.max_threads, int(len(self.cpus) - others + 0.5)))

    def check(self) -> None:
        """Set torch's threads to :meth:`threads_now` when it changed."""
        threads = self.threads_now()
        if threads is None:
            return
        import torch

        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
            self.changes += 1


@contextlib.contextmanager
def governed_threads(device: str) -> Iterator[ThreadGovernor | None]:
    """A :class:`ThreadGovernor` for a CPU training run (None on a GPU, or when the user set the
    threads); torch's threads are restored afterwards. Call its ``check`` at every step."""
    if device != "cpu" or user_set_threads():
        yield None
        return
    import torch

    from sftgate.gates.readers.worker_count import allowed_cpus, free_cpus

    before = torch.get_num_threads()
    governor = ThreadGovernor(max(before, len(allowed_cpus())))
    torch.set_num_threads(max(1, min(governor.max_threads, free_cpus())))
    try:
        yield governor
    finally:
        torch.set_num_threads(before)


def governor_callback(governor: ThreadGovernor) -> Any:
    """A TrainerCallback that lets ``governor`` look at the machine before every step."""
    from transformers import TrainerCallback

    class Governor(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            governor.check()

    return Governor()


@contextlib.contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` for the block (unless the user set them)."""
    if user_set_threads():
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
