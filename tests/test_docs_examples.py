"""The "From Python" examples in the README and docs/ import what they say, from where it lives."""

from __future__ import annotations

import ast
import importlib
import re

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _imports() -> list[tuple[str, str, str]]:
    found = []
    for page in PAGES:
        for block in BLOCK.findall(page.read_text("utf-8")):
            for node in ast.walk(ast.parse(block)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {"sftgate", "gates", "runners"}:
                    found.extend((page.name, node.module, alias.name) for alias in node.names)
    return found


def test_the_docs_have_python_examples() -> None:
    assert len(_imports()) >= 5


@pytest.mark.parametrize(("page", "module", "name"), _imports(), ids=lambda v: str(v))
def test_every_example_import_resolves(page: str, module: str, name: str) -> None:
    assert module.startswith("sftgate."), f"{page}: import from sftgate.*, not {module}"
    owner = importlib.import_module(module)
    if not hasattr(owner, name):  # ``from package import submodule``
        importlib.import_module(f"{module}.{name}")
