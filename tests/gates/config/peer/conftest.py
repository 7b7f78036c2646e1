"""The peer-tool projects (fixtures/peer_configs/<tool> + a tiny model folder), built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.peer_projects import peer_project

TOOLS = ("axolotl", "llamafactory", "trl", "mistral-finetune")


@pytest.fixture(scope="session")
def projects(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("peer")
    tokenizers = tmp_path_factory.getbasetemp() / "tokenizers"
    return {tool: peer_project(tool, root / tool, tokenizers) for tool in TOOLS}


@pytest.fixture(scope="module", autouse=True)
def no_hf_cache():
    """Never the machine's own HF cache: a model found there would change what runs (per module, so
    the environment is restored before any other folder's tests)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_CACHE", "/nonexistent-sftgate-cache")
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield
    mp.undo()
