"""Which rank this is, and the process group closed before a launched process exits."""

from __future__ import annotations

import pytest

from sftgate.runners.work.ranks import close_process_group, is_main_process


@pytest.mark.parametrize(("rank", "main"), [(None, True), ("0", True), ("1", False)])
def test_rank_0_or_no_launcher_is_the_main_process(rank, main, monkeypatch):
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    assert is_main_process() is main


def test_an_open_process_group_is_closed(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=0, world_size=1, init_method=f"file://{tmp_path / 'init'}")
    assert dist.is_initialized()
    close_process_group()
    assert not dist.is_initialized()
    close_process_group()  # nothing open: nothing to do
