"""What sftgate's pytest plugin keeps per session, and how it detects and counts ``gpu`` tests.

- :class:`PluginState`: the ``--sftgate`` configs, the gate reports collected, the ``--require-gpu``
  flag and the ``gpu`` test counts, stashed on the pytest config;
- :func:`cuda_available`: whether a CUDA GPU is usable, without importing torch where no GPU
  driver is present;
- :class:`GpuTracker`: counts the ``gpu`` tests that ran and that skipped.

Light to import (pytest and the standard library only): the plugin loads it in every session.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sftgate.gates.frame.report import Report


@dataclass
class PluginState:
    """One session's plugin state, stashed on the pytest config under :data:`STATE_KEY`."""

    configs: frozenset[Path] = frozenset()
    require_gpu: bool = False
    gpu_ran: int = 0
    gpu_skipped: int = 0
    cuda: bool | None = None
    reports: list[Report] = field(default_factory=list)
    require_gpu_failed: bool = False


STATE_KEY = pytest.StashKey[PluginState]()


def plugin_state(config: pytest.Config) -> PluginState:
    return config.stash.get(STATE_KEY, None) or PluginState()


_GPU_DEVICE_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")


def cuda_available() -> bool:
    """Whether a CUDA GPU is usable; ``CUDA_VISIBLE_DEVICES=""`` (or ``-1``) hides every GPU.

    torch is imported only here, the first time a ``gpu`` test is set up, and not at all on a
    Linux machine without an NVIDIA or ROCm driver.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    if sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _GPU_DEVICE_FILES):
        return False  # no NVIDIA (or ROCm) driver: no need to import torch to know
    try:
        import torch
    except ImportError:
        return False
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # a broken driver is no GPU
        return False


class GpuTracker:
    """Counts the ``gpu`` tests that ran, per session (a plugin object registered per config)."""

    def __init__(self, state: PluginState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not getattr(report, "sftgate_gpu", False):
            return
        if report.when == "call" and not report.skipped:
            self.state.gpu_ran += 1
        elif report.skipped and report.when in ("setup", "call"):
            self.state.gpu_skipped += 1
