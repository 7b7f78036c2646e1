"""Which process of a distributed launch (torchrun, accelerate launch) this is."""

from __future__ import annotations

import os


def is_main_process() -> bool:
    """True on rank 0 (or without a launcher): only it writes the adapter, reports and the ledger."""
    return int(os.environ.get("RANK", "0")) == 0
