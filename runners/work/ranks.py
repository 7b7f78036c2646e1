"""Which process of a distributed launch (torchrun, accelerate launch) this is."""

from __future__ import annotations

import os


def is_main_process() -> bool:
    """True on rank 0 (or without a launcher): only it writes the adapter, reports and the ledger."""
    return int(os.environ.get("RANK", "0")) == 0


def close_process_group() -> None:
    """Tear down the process group a launcher's Trainer opened (none: nothing to do). A process that
    exits with gloo's threads still running can die in C++ (``terminate called without an active
    exception``, SIGABRT), failing the whole torchrun job after a good run."""
    import sys

    torch = sys.modules.get("torch")
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
