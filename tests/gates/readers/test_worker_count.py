"""Workers from the file size and the CPUs that are really free; chunks cut on line starts, no mapping."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftgate.gates.readers import dataset_io, worker_count
from sftgate.gates.readers.dataset_io import default_workers, open_dataset
from sftgate.gates.readers.jsonl_reader import line_chunks
from sftgate.gates.readers.worker_count import free_cpus

CPUS = len(os.sched_getaffinity(0))


def test_free_cpus_is_at_least_one_and_at_most_the_allowed_ones():
    assert 1 <= free_cpus(0.01) <= CPUS


@pytest.mark.parametrize(("idle", "expected"), [(0.0, 1), (0.3, 1), (float(CPUS), CPUS)])
def test_busy_cpus_are_not_free(monkeypatch, idle, expected):
    monkeypatch.setattr(worker_count, "_idle_cpus", lambda allowed, seconds: idle)
    assert free_cpus() == expected


def test_without_proc_stat_the_load_average_decides(monkeypatch):
    monkeypatch.setattr(worker_count, "_idle_cpus", lambda allowed, seconds: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (CPUS + 3.0, 0.0, 0.0))
    assert free_cpus() == 1


def test_a_cgroup_quota_caps_the_cpus(monkeypatch):
    monkeypatch.setattr(worker_count, "_idle_cpus", lambda allowed, seconds: float(CPUS))
    monkeypatch.setattr(worker_count, "_cgroup_cpus", lambda: 1)
    assert free_cpus() == 1


def _jsonl(path: Path, size: int) -> Path:
    line = b'{"prompt": "p", "completion": "c"}\n'
    path.write_bytes(line * (size // len(line) + 1))
    return path


def test_workers_follow_the_size_and_the_free_cpus(monkeypatch, tmp_path):
    monkeypatch.setattr(worker_count, "free_cpus", lambda sample_seconds=0.1: 8)
    small = open_dataset(_jsonl(tmp_path / "small.jsonl", 1000))
    big = open_dataset(_jsonl(tmp_path / "big.jsonl", 5 * 1024 * 1024))
    assert default_workers(small, min_bytes=4096) == 1
    assert default_workers(big, min_bytes=4096, bytes_per_worker=2 * 1024 * 1024) == 2, "one per 2 MB of file"
    assert default_workers(big, min_bytes=4096, bytes_per_worker=1024) == dataset_io.MAX_WORKERS
    monkeypatch.setattr(worker_count, "free_cpus", lambda sample_seconds=0.1: 1)
    assert default_workers(big, min_bytes=4096, bytes_per_worker=1024) == 1, "a busy machine: one process"


@given(lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), min_size=1, max_size=60),
       n=st.integers(1, 9))
def test_chunks_start_on_line_starts_and_count_lines(lines, n):
    data = b"\n".join(lines) + b"\n"
    chunks = line_chunks(io.BytesIO(data), len(data), n)
    assert chunks[0][0] == 0 and chunks[-1][1] is None
    for (start, end, first), following in zip(chunks, [*chunks[1:], None], strict=True):
        assert start == 0 or data[start - 1:start] == b"\n"
        assert first == data[:start].count(b"\n") + 1
        assert end == (following[0] if following else None)
