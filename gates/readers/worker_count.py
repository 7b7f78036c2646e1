"""How many worker processes a scan may use: the CPUs that are really free now.

:func:`free_cpus` is what :func:`sftgate.gates.readers.dataset_io.default_workers` and the
tokenizer scan (:func:`sftgate.gates.tokenizer.data_scan.worker_count`) start from: a machine whose
CPUs are busy with other work gets fewer workers, since a second process on a taken core only
slows both down.
"""

from __future__ import annotations

from pathlib import Path


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (``os.sched_getaffinity``; all of them where it is missing)."""
    import os

    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return list(range(os.cpu_count() or 1))


def free_cpus(sample_seconds: float = 0.1) -> int:
    """The CPUs this process may use that nothing else is using now (at least 1).

    The CPUs it may run on (``os.sched_getaffinity``, capped by a cgroup CPU quota), times their idle
    share over ``sample_seconds`` (``/proc/stat``, those CPUs only); where that cannot be read, those
    CPUs less the 1-minute load average.
    """
    import os

    allowed = allowed_cpus()
    cpus = min(len(allowed), _cgroup_cpus() or len(allowed))
    idle = _idle_cpus(allowed, sample_seconds)
    if idle is None:
        try:
            idle = len(allowed) - os.getloadavg()[0]
        except OSError:  # pragma: no cover
            idle = float(cpus)
    return max(1, min(cpus, int(idle + 0.5)))


def _cgroup_cpus() -> int | None:
    """CPUs a cgroup v2 quota allows (``cpu.max`` "QUOTA PERIOD"), or ``None`` without one."""
    import math

    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def _idle_cpus(allowed: list[int], seconds: float) -> float | None:
    """How many of the ``allowed`` CPUs were idle over ``seconds`` (``/proc/stat``), or ``None``."""
    import time

    def sample() -> dict[int, tuple[int, int]]:
        out = {}
        for row in Path("/proc/stat").read_text().splitlines():
            name, *values = row.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in wanted:
                ticks = [int(v) for v in values[:8]]
                out[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))  # idle + iowait, all
        return out

    wanted = set(allowed)
    try:
        before = sample()
        time.sleep(seconds)
        after = sample()
    except (OSError, ValueError, IndexError):
        return None
    if not before or before.keys() != after.keys():
        return None
    idle = 0.0
    for cpu, (idle_after, total_after) in after.items():
        idle_before, total_before = before[cpu]
        total = total_after - total_before
        idle += (idle_after - idle_before) / total if total > 0 else 1.0
    return idle
