"""The layout is a rule, not a habit: stages as folders, small modules, a one-way import graph.

- every gate of the registry lives in the subpackage named after its stage (``FAIL eos
  [tokenizer]`` leads to ``gates/tokenizer/eos.py``);
- no module of ``gates/`` or ``runners/`` is over 400 lines;
- ``gates`` never imports ``runners``, and imports form no cycle;
- the packages pyproject installs are exactly the package folders, and tests mirror them;
- the package metadata pins no torch build (users keep the CUDA torch they have).
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from sftgate.gates.frame.registry import GATES, RULE_MODULES

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"gates": "sftgate.gates", "runners": "sftgate.runners"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """Every module of the distribution: dotted name -> file."""
    found: dict[str, Path] = {}
    for folder, dotted in ROOTS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([dotted, *parts])] = path
    return found


def _imports(path: Path, modules: dict[str, Path] | None = None) -> set[str]:
    """Every module a file imports, at any depth (lazy imports in functions count too).

    ``from pkg import mod`` counts as an import of ``pkg.mod`` when that is a module, else of ``pkg``.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            subs = {f"{node.module}.{alias.name}" for alias in node.names}
            found = subs & set(modules or ())
            names.update(found or {node.module})
    return names


@pytest.mark.parametrize("spec", GATES, ids=lambda s: s.name)
def test_every_gate_lives_in_the_folder_of_its_stage(spec) -> None:  # type: ignore[no-untyped-def]
    assert spec.module.startswith(f"sftgate.gates.{spec.stage.value}."), spec.module
    module = spec.load()
    assert callable(module.check) and module.RULES, spec.module


def test_every_rule_module_imports_and_sits_in_a_stage_or_the_frame() -> None:
    stages = {spec.stage.value for spec in GATES}
    for name in RULE_MODULES:
        assert name.split(".")[2] in stages, name


def test_no_module_is_over_the_line_limit() -> None:
    long = {str(p.relative_to(REPO)): n for p in _modules().values()
            if (n := len(p.read_text("utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_gates_never_import_runners() -> None:
    offenders = {name: sorted(i for i in _imports(path) if i.startswith("sftgate.runners"))
                 for name, path in _modules().items() if name.startswith("sftgate.gates")}
    assert not {k: v for k, v in offenders.items() if v}


def test_imports_form_no_cycle() -> None:
    """Not even through a lazy import inside a function or a TYPE_CHECKING block."""
    modules = _modules()
    graph = {name: {i for i in _imports(path, modules) if i in modules and i != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                walk(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert not cycles, cycles[:5]


def test_pyproject_installs_exactly_the_package_folders() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    assert config["package-dir"] == {dotted: folder for folder, dotted in ROOTS.items()}
    folders = {".".join([ROOTS[p.relative_to(REPO).parts[0]], *p.relative_to(REPO).parts[1:-1]])
               for folder in ROOTS for p in (REPO / folder).rglob("__init__.py")}
    assert set(config["packages"]) == folders


def test_tests_mirror_the_package_folders() -> None:
    for folder in ROOTS:
        packages = {p.parent.relative_to(REPO / folder) for p in (REPO / folder).rglob("__init__.py")}
        for test_dir in (REPO / "tests" / folder).rglob("test_*.py"):
            where = test_dir.parent.relative_to(REPO / "tests" / folder)
            assert where in packages, f"{test_dir.relative_to(REPO)} mirrors no package of {folder}/"


def test_the_metadata_pins_no_torch_build() -> None:
    requirements = metadata.requires("sftgate") or []
    torch = [r for r in requirements if re.match(r"torch\b", r)]
    assert torch, "the train extra declares torch"
    for req in torch:
        spec = req.split(";")[0]
        assert "==" not in spec and "===" not in spec, req
        assert ">=" in spec, f"a supported range with a lower bound: {req}"
