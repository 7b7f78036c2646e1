"""sftgate installed in an environment must not break a project that has its own gates/ and runners/.

The pytest plugin is registered through ``pytest11``, so it is imported in EVERY pytest session of
the environment. These tests run a real ``python -m pytest`` (which puts the project root first on
``sys.path``) in a throwaway project whose own top-level packages are called ``gates`` and
``runners``, as users' projects often are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES


def _foreign_project(root: Path) -> Path:
    for package, value in (("gates", "users-own-gates"), ("runners", "users-own-runners")):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text(f"WHO = {value!r}\n", "utf-8")
    (root / "runners" / "cli.py").write_text("def main():\n    return 'mine'\n", "utf-8")
    (root / "test_mine.py").write_text(
        "import gates, runners\n"
        "from runners.cli import main\n\n"
        "def test_my_packages_are_mine():\n"
        "    assert gates.WHO == 'users-own-gates'\n"
        "    assert runners.WHO == 'users-own-runners'\n"
        "    assert main() == 'mine'\n",
        "utf-8",
    )
    return root


def _pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "PYTHONPATH"}}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=project, capture_output=True, text=True, timeout=300, env=env)


def test_a_project_with_its_own_gates_and_runners_packages_still_runs_its_tests(tmp_path: Path) -> None:
    project = _foreign_project(tmp_path)
    proc = _pytest(project, "test_mine.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    assert "Error while loading plugin" not in proc.stderr


def test_the_sftgate_option_still_works_in_that_project(tmp_path: Path) -> None:
    project = _foreign_project(tmp_path)
    for name in ("sftgate.yaml", "train.jsonl", "eval.jsonl"):
        shutil.copy(FIXTURES / "ci" / "clean_project" / name, project / name)
    proc = _pytest(project, "test_mine.py", "--sftgate", "sftgate.yaml", "-k", "config or data or mine", "-rA")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_my_packages_are_mine" in proc.stdout
    assert "model-id" in proc.stdout  # the gate ran as a test item beside the user's test


def test_sftgate_claims_no_generic_top_level_name(tmp_path: Path) -> None:
    """Outside this checkout, ``gates`` and ``runners`` do not import: sftgate lives under ``sftgate``."""
    from importlib import metadata

    probe = "import importlib.util as u; print([u.find_spec(n) is None for n in ('gates', 'runners')])"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[True, True]", proc.stderr
    points = [*metadata.entry_points(group="pytest11", name="sftgate"),
              *metadata.entry_points(group="console_scripts", name="sftgate")]
    assert len(points) == 2
    assert all(p.value.startswith("sftgate.") for p in points)
