"""Issue 14, defect 1: sftgate replaces or deletes only folders it made itself.

A folder without sftgate's marker at a target, a target that is or holds the config, the data,
the base model or the run folder, a symlink or a file at a target: exit 2, and every file is still
there. A copied project re-runs or reuses its own outputs, never the original's. The fallback swap
after a kill, with a zombie writer, and on overlayfs (EXDEV).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.runner import tiny_config
from sftgate.gates.readers.leftovers import writer_running
from sftgate.runners.pipeline import folder_swap as swap
from sftgate.runners.pipeline import release as rel
from tests.conftest import FIXTURES
from tests.hostile.release_kit import PINNED, model_copy, passing_report, promoted, snapshot
from tests.hostile.tiny_run import copy_project, finished_project

USER_FILES = {"notes.md": b"my notes", "sub/results.csv": b"a,b\n1,2\n", ".hidden": b"keep me"}


def user_folder(path: Path) -> Path:
    for rel_path, data in USER_FILES.items():
        (path / rel_path).parent.mkdir(parents=True, exist_ok=True)
        (path / rel_path).write_bytes(data)
    return path


def bare_project(root: Path, release_dir: str) -> Path:
    """A config with its data and base folders on disk (nothing trained): enough to be refused."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    (root / "base").mkdir()
    (root / "base" / "config.json").write_text("{}")
    user_folder(root / "important")
    (root / "a-file").write_text("a file, not a folder")
    config = root / "sftgate.yaml"
    config.write_text(tiny_config().replace("dir: run/release", f"dir: {release_dir}"))
    return config


# --------------------------------------------------------------------------- targets sftgate refuses


@pytest.mark.parametrize(("release_dir", "reason"), [
    ("important", "a folder with the user's files"),
    ("data", "the folder holding the training data"),
    (".", "the project folder, holding the config"),
    ("..", "a folder above the project"),
    ("base", "the base model folder"),
    ("run", "the run folder itself"),
    ("run/adapter", "the adapter of the same run"),
    ("a-file", "a file"),
    ("linked", "a symlink to an empty folder"),
])
def test_sftgate_run_refuses_a_target_it_did_not_make_and_touches_nothing(cli, tmp_path, release_dir, reason):
    root = tmp_path / "project"
    config = bare_project(root, release_dir)
    (tmp_path / "empty").mkdir()
    os.symlink(tmp_path / "empty", root / "linked")
    before = snapshot(tmp_path)
    result = cli("run", str(config), "--format", "json")
    assert result.code == 2, reason
    assert "Traceback" not in result.err
    assert snapshot(tmp_path) == before, reason  # every file still there, nothing added
    assert not (root / "run").exists()


def test_an_empty_folder_or_one_sftgate_made_may_be_a_target(tmp_path):
    (tmp_path / "empty").mkdir()
    swap.ensure_replaceable(tmp_path / "empty")
    swap.ensure_replaceable(tmp_path / "not-yet")
    release = promoted(model_copy(tmp_path / "merged"), tmp_path / "release")
    swap.ensure_replaceable(release)


def test_promote_refuses_a_user_folder(tmp_path):
    target = user_folder(tmp_path / "important")
    before = snapshot(target)
    with pytest.raises(swap.TargetRefused):
        rel.promote(model_copy(tmp_path / "merged"), target, report=passing_report(), extra_manifest=PINNED)
    assert snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["important", "merged"]


def test_replace_dir_itself_refuses_a_user_folder(tmp_path):
    """The last line of defence: even a caller that skipped the early check cannot delete it."""
    target = user_folder(tmp_path / "important")
    new = tmp_path / ".important.promote-1-abcd"
    new.mkdir()
    with pytest.raises(swap.TargetRefused):
        swap.replace_dir(new, target)
    assert snapshot(target) == {k: v for k, v in USER_FILES.items()}


@pytest.mark.parametrize("out", ["important", ".", "adapter"])
def test_sftgate_merge_refuses_an_existing_folder_before_loading_anything(cli, tmp_path, out):
    root = tmp_path / "project"
    config = bare_project(root, "run/release")
    shutil.copytree(FIXTURES / "artifacts" / "adapter_clean", root / "adapter")
    before = snapshot(tmp_path)
    result = cli("merge", str(config), "--adapter", str(root / "adapter"), "--out", str(root / out))
    assert result.code == 2 and "Traceback" not in result.err
    assert snapshot(tmp_path) == before


def test_sftgate_demo_refuses_a_folder_that_is_not_a_demo(cli, tmp_path):
    target = user_folder(tmp_path / "important")
    result = cli("demo", "--out", str(target))
    assert result.code == 2
    assert snapshot(target) == USER_FILES


def test_the_tiny_model_builder_never_replaces_a_user_folder(tmp_path):
    from sftgate.runners.demo.tiny_model import build_tiny_model

    target = user_folder(tmp_path / "important")
    with pytest.raises(swap.TargetRefused):
        build_tiny_model(target, tmp_path / "no-tokenizer-needed", hidden_size=8, layers=1, heads=2)
    assert snapshot(target) == USER_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["important"]


# --------------------------------------------------------------------------- copied projects


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return finished_project(tmp_path_factory)


def test_a_copied_project_reuses_its_own_outputs_never_the_originals(cli, finished, tmp_path):
    original = copy_project(finished, tmp_path / "d")
    copy = copy_project(original, tmp_path / "d2")
    shutil.rmtree(original)  # nothing of d is left to reuse: what d2 reuses must be its own
    result = cli("run", str(copy / "sftgate.yaml"), "--format", "json")
    assert result.code == 0, result.err
    assert all("resumed" in (g.get("reason") or "") for g in result.report["gates"])
    for name, path in result.report["artifacts"].items():
        if name in ("adapter", "merged", "release", "outputs_adapter", "outputs_merged", "run_dir"):
            assert Path(path).resolve().is_relative_to(copy.resolve()), (name, path)
    state = json.loads((copy / "run" / "sftgate-state.json").read_text())
    recorded = [p for s in state["stages"].values() for p in (s.get("outputs") or {}).values()]
    assert recorded and not any(os.path.isabs(p) for p in recorded)


def test_a_copied_project_with_release_dir_dot_loses_nothing(cli, finished, tmp_path):
    copy = copy_project(finished, tmp_path / "d2")
    config = copy / "sftgate.yaml"
    config.write_text(config.read_text().replace("dir: run/release", "dir: ."))
    before = snapshot(copy)
    result = cli("run", str(config), "--format", "json")
    assert result.code == 2
    assert snapshot(copy) == before


# --------------------------------------------------------------------------- the fallback swap under faults


def _release_pair(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    source = model_copy(tmp_path / "merged")
    release = promoted(source, tmp_path / "releases" / "model")
    (source / "generation_config.json").write_text('{"eos_token_id": [1, 7]}\n')
    return source, release, snapshot(release)


def test_a_zombie_writer_does_not_keep_the_release_away(tmp_path):
    """Killed between the two renames, its process a zombie nobody reaped: the next run restores."""
    _, release, before = _release_pair(tmp_path)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while _state(zombie.pid) != "Z" and time.time() < deadline:
        time.sleep(0.05)
    assert _state(zombie.pid) == "Z"
    try:
        os.rename(release, release.parent / f".model{swap.OLD_TAG}{zombie.pid}-0badcafe")
        assert not writer_running(zombie.pid)
        assert swap.recover(release) and snapshot(release) == before
    finally:
        zombie.wait()


def test_a_reused_pid_is_not_the_writer(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert writer_running(sleeper.pid)
        assert not writer_running(sleeper.pid, made_at=time.time() - 3600)  # started after the leftover
    finally:
        sleeper.kill()
        sleeper.wait()


def _state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()[0]


def test_exdev_on_rename_falls_back_to_copy_aside(tmp_path, monkeypatch):
    """overlayfs refuses to rename a lower-layer folder (EXDEV): the swap copies it aside instead."""
    source, release, _ = _release_pair(tmp_path)
    real = os.rename

    def no_rename_of_the_release(a, b):
        if Path(a) == release:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(a))
        return real(a, b)

    monkeypatch.setattr(swap, "_exchange", lambda a, b: False)
    monkeypatch.setattr(swap.os, "rename", no_rename_of_the_release)
    result = rel.promote(source, release, report=passing_report(), extra_manifest=PINNED)
    assert result.passed
    assert json.loads((release / "generation_config.json").read_text()) == {"eos_token_id": [1, 7]}
    assert sorted(p.name for p in release.parent.iterdir()) == ["model"]


def test_a_kill_while_the_old_release_is_deleted_is_recovered(tmp_path):
    """Killed midway through deleting the copied-aside folder: its remains are replaced by the copy."""
    _, release, before = _release_pair(tmp_path)
    backup = release.parent / f".model{swap.OLD_TAG}999999999-0badcafe"
    shutil.copytree(release, backup)
    (release / "sftgate-manifest.json").unlink()  # markers go first...
    (release / "model.safetensors").unlink()  # ...then the kill, halfway through
    assert swap.recover(release)
    assert snapshot(release) == before and sorted(p.name for p in release.parent.iterdir()) == ["model"]


def test_recover_leaves_a_user_folder_at_the_target_alone(tmp_path):
    _, release, _ = _release_pair(tmp_path)
    backup = release.parent / f".model{swap.OLD_TAG}999999999-0badcafe"
    os.rename(release, backup)
    user_folder(release)  # the user put their own folder there meanwhile
    swap.recover(release)
    assert snapshot(release) == USER_FILES


def test_the_swap_on_a_real_overlayfs(tmp_path):
    """Where this test may mount overlayfs (root, Linux), a release in the lower layer is replaced."""
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    promoted(model_copy(tmp_path / "src"), lower / "release")
    mount = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount overlayfs here: {mount.stderr.strip() or mount.returncode}")
    try:
        source = model_copy(tmp_path / "v2")
        (source / "generation_config.json").write_text('{"eos_token_id": [1, 7]}\n')
        result = rel.promote(source, merged / "release", report=passing_report(), extra_manifest=PINNED)
        assert result.passed, result.reason
        assert json.loads((merged / "release" / "generation_config.json").read_text()) == {"eos_token_id": [1, 7]}
        assert sorted(p.name for p in merged.iterdir()) == ["release"]
    finally:
        subprocess.run(["umount", str(merged)], capture_output=True)
