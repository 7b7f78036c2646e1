"""torch's CPU threads follow the CPUs other processes leave free, and are restored afterwards."""

from __future__ import annotations

import pytest

from sftgate.runners.work import cpu_threads
from sftgate.runners.work.cpu_threads import ThreadGovernor, fixed_threads, governed_threads


def governor(samples: list[tuple[float, float, float]], cpus: int = 4) -> ThreadGovernor:
    """A governor over ``cpus`` CPUs whose looks at the machine return ``samples`` (time, busy, ours)."""
    g = ThreadGovernor(max_threads=cpus)
    g.cpus = list(range(cpus))
    feed = iter(samples)
    g._sample = lambda: next(feed)  # type: ignore[method-assign]
    g.last = g._sample()
    return g


@pytest.mark.parametrize(("others", "expected"), [(0.0, 4), (1.0, 3), (2.6, 1), (3.9, 1), (9.0, 1)])
def test_threads_are_the_cpus_other_processes_leave(others, expected):
    """Over 1 s: the CPUs were busy ``others`` + 2 s, 2 of them this process's own."""
    g = governor([(0.0, 0.0, 0.0), (1.0, others + 2.0, 2.0)])
    assert g.threads_now() == expected


def test_too_soon_means_no_change():
    g = governor([(0.0, 0.0, 0.0), (0.1, 0.3, 0.1)])
    assert g.threads_now() is None


def test_a_real_look_gives_a_count_within_bounds():
    g = ThreadGovernor(max_threads=2)
    if g.last is None:
        pytest.skip("no /proc/stat")
    g.last = (g.last[0] - 1.0, g.last[1], g.last[2])  # as if the last look were a second ago
    threads = g.threads_now()  # a second has passed and /proc/stat was read once: a count, not None
    assert threads is not None and 1 <= threads <= 2


def test_threads_are_restored_and_the_users_setting_wins(monkeypatch):
    import torch

    before = torch.get_num_threads()
    with governed_threads("cpu") as g:
        assert g is not None and 1 <= torch.get_num_threads() <= g.max_threads
    assert torch.get_num_threads() == before
    with fixed_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with governed_threads("cpu") as g:
        assert g is None
    with governed_threads("cuda") as g:
        assert g is None
    assert cpu_threads.user_set_threads()
