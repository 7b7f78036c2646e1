"""The fixtures sftgate's pytest plugin provides for your own tests.

- ``sftgate_report``: run the preflight gates of a config and get the
  :class:`sftgate.gates.frame.report.Report` (cached per config);
- ``sftgate_tiny_tokenizer`` / ``sftgate_tiny_model``: a tiny tokenizer and a tiny random
  Mistral-architecture model built offline in a temporary folder (session-scoped).

Light to import: the gates and the builders are imported when a fixture is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sftgate.runners.integrations.pytest_session import plugin_state

if TYPE_CHECKING:
    from sftgate.gates.frame.report import Report

TINY_CORPUS = (
    "The quick brown fox jumps over the lazy dog.",
    'Answer in JSON: {"name": "Ada", "age": 36, "tags": ["math", "code"], "ok": true}',
    "user assistant system: what is 2 + 2? It is 4.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ {}[]:,\"'.-_",
)


def _default_config(config: pytest.Config) -> Path:
    from sftgate.gates.readers.config import find_config

    given = sorted(plugin_state(config).configs)
    if given:
        return given[0]
    ini = str(config.getini("sftgate_config") or "")
    if ini:
        p = Path(ini)
        return p if p.is_absolute() else config.rootpath / p
    return find_config(config.rootpath)


@pytest.fixture(scope="session")
def sftgate_report(request: pytest.FixtureRequest) -> Callable[..., Report]:
    """``sftgate_report(config=None, *, stages=None) -> Report``: the preflight gates of a config.

    ``config`` defaults to ``--sftgate``, the ``sftgate_config`` ini option, or ``sftgate.yaml``
    in the rootdir; relative paths are relative to the rootdir. Reports are cached per config.
    A bad config fails the calling test with sftgate's message (no traceback)::

        def test_preflight(sftgate_report):
            report = sftgate_report("configs/sftgate.yaml")
            assert report.passed, format_report(report)
    """
    cache: dict[tuple[Path, tuple[str, ...]], Report] = {}
    config = request.config

    def run(path: str | os.PathLike[str] | None = None, *, stages: tuple[str, ...] | None = None) -> Report:
        from sftgate.gates.frame.core import SftgateError, Stage
        from sftgate.gates.frame.preflight import run_preflight

        try:
            target = _default_config(config) if path is None else Path(path)
            if not target.is_absolute():
                target = config.rootpath / target
            wanted = tuple(Stage(s) for s in stages) if stages else None
            key = (target.resolve(), tuple(s.value for s in wanted or ()))
            if key not in cache:
                cache[key] = run_preflight(target, stages=wanted)
        except SftgateError as exc:
            pytest.fail(f"sftgate: error: {exc}", pytrace=False)
        except ValueError as exc:  # an unknown stage name
            pytest.fail(f"sftgate_report: {exc}", pytrace=False)
        return cache[key]

    return run


def _builder(module: str, name: str, extra: str) -> Callable[..., Any]:
    """Import a builder lazily; a missing dependency fails the test with the extra to install."""
    import importlib

    problem = None
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except ImportError as exc:
        problem = f"{name} could not be imported ({exc}); it needs sftgate[{extra}]"
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def sftgate_tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny tokenizer folder (BPE, chatml template, special tokens) built offline."""
    build = _builder("sftgate.runners.demo.tiny_tokenizer", "build_tiny_tokenizer", "tokenizer")
    return Path(build(tmp_path_factory.mktemp("sftgate-tokenizer"), corpus=TINY_CORPUS))


@pytest.fixture(scope="session")
def sftgate_tiny_model(tmp_path_factory: pytest.TempPathFactory, sftgate_tiny_tokenizer: Path) -> Path:
    """A tiny random Mistral-architecture model folder (fp32 safetensors + tokenizer), built offline."""
    build = _builder("sftgate.runners.demo.tiny_model", "build_tiny_model", "train")
    return Path(build(tmp_path_factory.mktemp("sftgate-model"), sftgate_tiny_tokenizer))
