"""One finished `sftgate run` of the tiny project per test session; tests work on copies of it.

Copying a finished project is itself the scenario of issue 14 (``cp -r d d2``): a copy must re-run
or reuse its own outputs, never the original's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

_FINISHED: dict[str, Path] = {}


def finished_project(factory: pytest.TempPathFactory) -> Path:
    """The root of a tiny project whose `sftgate run` passed every stage (built once, never modified)."""
    if "root" not in _FINISHED:
        from fixtures.runner import tiny_project
        from tests.conftest import run_cli

        project = tiny_project(factory.mktemp("finished"))
        result = run_cli("run", str(project.config), "--format", "json")
        assert result.code == 0, result.err
        _FINISHED["root"] = project.root
    return _FINISHED["root"]


def copy_project(src: Path, dst: Path) -> Path:
    """``cp -r src dst`` (links kept as links)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst
