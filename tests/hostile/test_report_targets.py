"""Report targets (``--junit-xml``, ``$GITHUB_STEP_SUMMARY``): devices stay devices, links are not
followed, folders and full or read-only disks are exit 2, and nothing beside the target changes.

Device nodes are made here with ``mknod`` (the test runs as root in CI); the machine's own
``/dev/null`` is never written by a test. A small tmpfs stands for a full and a read-only disk.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.hostile.conftest import assert_user_error, run_watched

MODEL_ID = ("model-id", "mistralai/Mistral-7B-Instruct-v0.3")


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder`` (not following links): its mode and size."""
    out = {}
    for entry in sorted(folder.rglob("*")):
        st = entry.lstat()
        out[str(entry.relative_to(folder))] = (st.st_mode, st.st_size if not stat.S_ISDIR(st.st_mode) else 0)
    return out


@pytest.fixture
def null_device(tmp_path: Path) -> Path:
    """A private character device equal to /dev/null (major 1, minor 3)."""
    path = tmp_path / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc}): needs root outside a restricted container")
    return path


def test_a_character_device_is_written_never_replaced(null_device: Path) -> None:
    before = null_device.lstat()
    result = run_cli(*MODEL_ID, "--junit-xml", str(null_device))
    assert result.code == 0
    after = null_device.lstat()
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert sorted(p.name for p in null_device.parent.iterdir()) == ["null"]  # no temp file left beside it


def test_a_fifo_with_a_reader_gets_the_report(tmp_path: Path) -> None:
    fifo = tmp_path / "junit.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    result = run_cli(*MODEL_ID, "--junit-xml", str(fifo))
    reader.join(10)
    assert result.code == 0
    assert got and got[0].startswith(b"<?xml") and stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_fifo_nobody_reads_is_an_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "junit.fifo"
    os.mkfifo(fifo)
    assert_user_error(run_cli(*MODEL_ID, "--junit-xml", str(fifo)))
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("kind", ["to a file", "to a missing file", "to a folder", "loop"])
def test_a_symlink_is_not_followed(kind: str, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    if kind == "to a file":
        victim.write_text("precious")
    elif kind == "to a folder":
        victim.mkdir()
    link = tmp_path / "junit.xml"
    os.symlink(link.name if kind == "loop" else victim, link)
    before = listing(tmp_path)
    assert_user_error(run_cli(*MODEL_ID, "--junit-xml", str(link)))
    assert listing(tmp_path) == before
    if kind == "to a file":
        assert victim.read_text() == "precious"


def test_a_symlink_to_a_device_is_written_through(null_device: Path, tmp_path: Path) -> None:
    link = tmp_path / "junit.xml"
    os.symlink(null_device, link)
    assert run_cli(*MODEL_ID, "--junit-xml", str(link)).code == 0
    assert link.is_symlink() and stat.S_ISCHR(null_device.lstat().st_mode)


def test_a_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    assert_user_error(run_cli(*MODEL_ID, "--junit-xml", str(folder)))
    assert listing(tmp_path) == {"reports": listing(tmp_path)["reports"], "reports/keep.txt": listing(tmp_path)["reports/keep.txt"]}


def test_a_regular_file_is_replaced_atomically_keeping_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "junit.xml"
    target.write_text("old")
    target.chmod(0o640)
    assert run_cli(*MODEL_ID, "--junit-xml", str(target)).code == 0
    assert target.read_text().startswith("<?xml") and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml"]


def test_a_new_report_follows_the_umask_and_its_folders_are_made(tmp_path: Path) -> None:
    target = tmp_path / "out" / "junit.xml"
    assert run_cli(*MODEL_ID, "--junit-xml", str(target)).code == 0
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_a_path_too_long_and_a_file_as_folder_are_exit_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for target in (tmp_path / ("x" * 300), tmp_path / "file" / "junit.xml"):
        assert_user_error(run_cli(*MODEL_ID, "--junit-xml", str(target)))


def test_the_step_summary_in_a_folder_is_exit_2(tmp_path: Path) -> None:
    result = run_cli(*MODEL_ID, env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path)})
    assert_user_error(result)
    assert list(tmp_path.iterdir()) == []


def test_the_step_summary_is_appended(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    assert run_cli(*MODEL_ID, env=env).code == 0
    assert summary.read_text().startswith("# earlier step\n## sftgate")


# --------------------------------------------------------------------------- full and read-only disks


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc})")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode(errors='replace').strip()}")


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 64 KiB tmpfs, filled up but for a few bytes."""
    where = tmp_path / "small"
    _mount_tmpfs(where, "size=64k")
    try:
        with open(where / "fill", "wb") as fill, contextlib.suppress(OSError):
            fill.write(b"\0" * (64 * 1024))
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


@pytest.fixture
def read_only_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    where = tmp_path / "ro"
    _mount_tmpfs(where, "ro,size=64k")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


def test_a_full_disk_is_exit_2_and_leaves_no_temp_file(small_disk: Path) -> None:
    before = sorted(p.name for p in small_disk.iterdir())
    assert_user_error(run_cli(*MODEL_ID, "--junit-xml", str(small_disk / "junit.xml")))
    summary = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(small_disk / "summary.md")}
    assert_user_error(run_cli(*MODEL_ID, env=summary))
    assert sorted(p.name for p in small_disk.iterdir() if p.stat().st_size) == before


def test_a_read_only_place_is_exit_2(read_only_disk: Path) -> None:
    assert_user_error(run_cli(*MODEL_ID, "--junit-xml", str(read_only_disk / "junit.xml")))


# --------------------------------------------------------------------------- stdout itself


def test_stdout_closed_full_or_broken_is_exit_2_without_traceback(tmp_path: Path) -> None:
    closed = run_watched(*MODEL_ID, shell_suffix=">&-")
    assert_user_error(closed)
    if Path("/dev/full").exists():
        full = run_watched(*MODEL_ID, shell_suffix=">/dev/full")
        assert_user_error(full)
    proc = subprocess.Popen([sys.executable, "-m", "sftgate.runners.cli.main", "rules"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # a reader that went away (`| head`): the write meets a broken pipe
    err = proc.stderr.read().decode("utf-8", "replace")
    assert proc.wait(30) == 2 and "Traceback" not in err and "Exception ignored" not in err, err
