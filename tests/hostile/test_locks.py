"""Issue 14, defect 8: two `sftgate run` on one config; killed writers' temp files; small write targets.

- a second run on a locked run folder stops at once with exit 2 and names the holder;
- a SIGKILLed holder frees the lock (the kernel drops a flock with its process);
- a writer killed before its rename leaves `.NAME.PID-XXXX.tmp`: the next write of NAME removes it;
- `fix-model-ids --write` on a symlinked config edits the target and keeps the link;
- `rules --junit-xml` writes a report.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sftgate.gates.readers import atomic
from sftgate.runners.pipeline.run_lock import LOCK_NAME, RunLocked, run_lock
from tests.conftest import REPO

CONFIG = "sftgate: 1\nmodel:\n  id: org/base\ntrain:\n  output_dir: run\n"
HOLD = """
import sys, time
from sftgate.runners.pipeline.run_lock import run_lock
with run_lock(sys.argv[1], command="run other.yaml"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the run folder's lock."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLD), str(tmp_path / "run")],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_run_on_the_same_folder_stops_and_names_the_holder(cli, tmp_path, holder):
    config = tmp_path / "sftgate.yaml"
    config.write_text(CONFIG)
    result = cli("run", str(config), "--format", "json")
    assert result.code == 2
    assert str(holder.pid) in result.err  # who holds it
    assert "Traceback" not in result.err


def test_a_killed_holder_frees_the_lock(tmp_path, holder):
    with pytest.raises(RunLocked), run_lock(tmp_path / "run", command="run x"):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with run_lock(tmp_path / "run", command="run x"):
        assert (tmp_path / "run" / LOCK_NAME).read_text().startswith("{")


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    with run_lock(tmp_path, command="run x"), run_lock(tmp_path, command="merge x"):
        pass


# --------------------------------------------------------------------------- stale temp files

KILLED_WRITER = """
import os, signal, sys
from sftgate.gates.readers import atomic
def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)
atomic.os.replace = die
atomic.write_text(sys.argv[1], "new")
"""


def test_a_killed_writer_leaves_a_temp_file_the_next_write_removes(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_WRITER), str(target)], cwd=REPO,
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir() if p.name != "report.json"]
    assert len(left) == 1 and left[0].startswith(".report.json.") and left[0].endswith(".tmp")
    assert target.read_text() == "old"
    atomic.write_text(target, "next")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"] and target.read_text() == "next"


def test_temp_files_of_live_writers_and_other_files_stay(tmp_path):
    live = tmp_path / f".report.json.{os.getpid()}-abcd1234.tmp"
    young_legacy = tmp_path / ".report.json.abcd1234.tmp"
    old_legacy = tmp_path / ".report.json.zzzz9999.tmp"
    other = tmp_path / ".other.json.1-abcd1234.tmp"
    for p in (live, young_legacy, old_legacy, other):
        p.write_text("x")
    hour_ago = time.time() - 7200
    os.utime(old_legacy, (hour_ago, hour_ago))
    atomic.write_text(tmp_path / "report.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, young_legacy.name, other.name,
                                                                 "report.json"])


# --------------------------------------------------------------------------- small write targets


def test_fix_model_ids_write_edits_the_target_of_a_symlink_and_keeps_the_link(cli, tmp_path):
    real = tmp_path / "configs" / "real.yaml"
    real.parent.mkdir()
    real.write_text("model:\n  id: mistralai-Mistral-7B-Instruct-v0.3\n")
    link = tmp_path / "sftgate.yaml"
    os.symlink(real, link)
    result = cli("fix-model-ids", str(link), "--write", "--no-backup")
    assert result.code == 0, result.err
    assert link.is_symlink() and Path(os.readlink(link)) == real
    assert "mistralai/Mistral-7B-Instruct-v0.3" in real.read_text()


def test_rules_writes_the_junit_report_it_was_asked_for(cli, tmp_path):
    target = tmp_path / "reports" / "rules.xml"
    result = cli("rules", "--junit-xml", str(target))
    assert result.code == 0
    assert target.read_text().startswith("<?xml")
