"""sftgate's pytest plugin: gates as test items, fixtures for your own tests, GPU markers.

Installed with sftgate (entry point ``pytest11`` named ``sftgate``), so it is active in every
pytest session; it imports nothing heavy until a gate, a fixture or a ``gpu`` test needs it.

Run the preflight gates of a config as tests, one test item per gate (``CONFIG::stage::gate``),
the findings as the failure text, and so one JUnit ``testcase`` per gate::

    pytest --sftgate sftgate.yaml
    pytest --sftgate sftgate.yaml --junitxml reports/gates.xml
    pytest tests/ --sftgate sftgate.yaml -k data      # your tests plus the data-stage gates

With ``--sftgate`` and no paths, pytest collects only the gates; name your test paths to run
both. A gate that fails is a failed test; a gate that could not run is a test error; a required
gate that was skipped fails (a skip is never a pass); an optional one is skipped.

Markers: ``gpu`` (skipped when no CUDA GPU is present) and ``slow``. On a GPU runner::

    pytest -m gpu --require-gpu

``--require-gpu`` fails the session when no ``gpu`` test actually ran, so a GPU job where
every GPU test skipped (no driver, a CPU-only torch, a wrong runner label) is never green.

Fixtures for your own tests:

- ``sftgate_report``: ``sftgate_report("sftgate.yaml")`` runs the preflight gates and returns
  the :class:`sftgate.gates.frame.report.Report` (cached per config); with no argument it uses
  ``--sftgate``, the ``sftgate_config`` ini option, or ``sftgate.yaml`` in the rootdir.
- ``sftgate_tiny_tokenizer`` / ``sftgate_tiny_model``: a tiny tokenizer and a tiny random
  Mistral-architecture model built offline in a temporary folder (session-scoped; the
  model needs ``sftgate[train]``).

This module holds the hooks and the gate test items; the fixtures are in
:mod:`sftgate.runners.integrations.pytest_fixtures` (registered through ``pytest_plugins``), the
session state and GPU detection in :mod:`sftgate.runners.integrations.pytest_session`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sftgate.runners.integrations.pytest_session import (
    STATE_KEY,
    GpuTracker,
    PluginState,
    cuda_available,
    plugin_state,
)

if TYPE_CHECKING:
    from sftgate.gates.frame.core import GateResult
    from sftgate.gates.frame.report import Report

GPU_MARKER = "gpu: needs a CUDA GPU (skipped without one; --require-gpu turns that into a failure)"
SLOW_MARKER = "slow: long-running (the full demo pipeline); deselect with -m 'not slow'"

# The fixtures: a plugin module of their own, registered with this one (and not without it).
pytest_plugins = ("sftgate.runners.integrations.pytest_fixtures",)


class GateFailure(Exception):
    """A gate that failed (or a required gate that was skipped): its text is the failure."""


class GateError(Exception):
    """A gate that could not run: reported as a test error, not as a failure."""


# --------------------------------------------------------------------------- options and markers


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sftgate", "sftgate gates")
    group.addoption(
        "--sftgate",
        action="append",
        default=[],
        metavar="CONFIG",
        dest="sftgate_configs",
        help="run sftgate's preflight gates on CONFIG (an sftgate.yaml or any JSON/YAML job config) "
        "as test items, one per gate; repeatable. Without test paths only the gates are collected.",
    )
    group.addoption(
        "--require-gpu",
        action="store_true",
        default=False,
        dest="sftgate_require_gpu",
        help="fail the session when no test marked gpu actually ran "
        "(a GPU job whose GPU tests all skipped must not be green)",
    )
    parser.addini("sftgate_config", "default config for the sftgate_report fixture", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", GPU_MARKER)
    config.addinivalue_line("markers", SLOW_MARKER)
    resolved = [_config_path(config.invocation_params.dir, p) for p in config.getoption("sftgate_configs") or ()]
    config.stash[STATE_KEY] = PluginState(configs=frozenset(resolved), require_gpu=bool(config.getoption("sftgate_require_gpu")))
    if resolved:
        # The configs become collection arguments. Without explicit paths, pytest would collect
        # testpaths (or the current folder) too; `pytest --sftgate X` runs just the gates.
        extra = [str(p) for p in resolved]
        if config.args_source is pytest.Config.ArgsSource.ARGS:
            config.args = [*config.args, *(a for a in extra if a not in config.args)]
        else:
            config.args = extra
    config.pluginmanager.register(GpuTracker(config.stash[STATE_KEY]), f"sftgate-gpu-tracker-{id(config)}")


def _config_path(base: Path, given: str) -> Path:
    """``--sftgate`` takes a config file or a folder holding sftgate.yaml; a missing one is a usage error."""
    path = Path(given).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if path.is_dir():
        from sftgate.gates.frame.core import SftgateError
        from sftgate.gates.readers.config import find_config

        try:
            return find_config(path)
        except SftgateError as exc:
            raise pytest.UsageError(f"--sftgate {given}: {exc}") from None
    if not path.is_file():
        raise pytest.UsageError(f"--sftgate {given}: no such file")
    return path


# --------------------------------------------------------------------------- gates as test items


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SftgateConfig | None:
    configs = plugin_state(parent.config).configs
    if configs and file_path.resolve() in configs:
        return SftgateConfig.from_parent(parent, path=file_path)  # type: ignore[no-any-return]
    return None


class SftgateConfig(pytest.File):
    """One config: runs ``sftgate.gates.frame.preflight.run_preflight`` once and yields a collector per stage."""

    def collect(self) -> Iterator[SftgateStage]:
        from sftgate.gates.frame import preflight
        from sftgate.gates.frame.core import SftgateError

        try:
            report = preflight.run_preflight(self.path)
        except SftgateError as exc:  # bad input: a collection error with the message, no traceback
            raise self.CollectError(f"sftgate: error: {exc}") from None
        if not report.gates:
            raise self.CollectError(f"sftgate: {self.path}: the config enables no preflight gate")
        plugin_state(self.config).reports.append(report)
        stages: dict[str, list[GateResult]] = {}
        for result in report.gates:
            stages.setdefault(result.stage.value, []).append(result)
        for stage, results in stages.items():
            yield SftgateStage.from_parent(self, name=stage, results=results)


class SftgateStage(pytest.Collector):
    """The gates of one stage (``config``, ``data``, ``tokenizer``...)."""

    def __init__(self, *, results: list[GateResult], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results

    def collect(self) -> Iterator[SftgateGate]:
        for result in self.results:
            yield SftgateGate.from_parent(self, name=result.gate, result=result)


class SftgateGate(pytest.Item):
    """One gate's result as a test: pass, fail (findings), error (could not run) or skip."""

    def __init__(self, *, result: GateResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result = result
        errors = [f for f in result.findings if f.is_error]
        self.user_properties.extend([
            ("sftgate.gate", result.gate),
            ("sftgate.stage", result.stage.value),
            ("sftgate.status", result.status.value),
            ("sftgate.findings", len(result.findings)),
            ("sftgate.rules", ",".join(sorted({f.rule for f in result.findings}))),
            ("sftgate.errors", len(errors)),
            ("sftgate.seconds", round(result.seconds, 6)),
        ])

    def setup(self) -> None:
        from sftgate.gates.frame.core import Status

        if self.result.status is Status.ERROR:
            raise GateError(format_gate(self.result))

    def runtest(self) -> None:
        from sftgate.gates.frame.core import Status

        status = self.result.status
        if status is Status.FAIL:
            raise GateFailure(format_gate(self.result))
        if status is Status.SKIP:
            if self.result.required:
                raise GateFailure(f"required gate skipped (a skip is never a pass): {self.result.reason or 'skipped'}")
            pytest.skip(self.result.reason or "skipped")
        if self.result.findings:
            self.add_report_section("call", "sftgate findings", format_gate(self.result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, GateFailure | GateError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"sftgate {self.result.stage.value}::{self.result.gate}"


def format_gate(result: GateResult) -> str:
    """The failure text of a gate: the same block as the table report (one per finding, with its fix)."""
    from sftgate.gates.frame.report import gate_lines

    return "\n".join(gate_lines(result))


def format_report(report: Report) -> str:
    """Every gate of ``report`` that blocks, formatted; for ``assert report.passed, format_report(report)``."""
    blocks = [format_gate(g) for g in report.gates if g.blocks]
    return "\n".join(blocks) if blocks else "every gate passed"


# --------------------------------------------------------------------------- GPU marker and reporting


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is None:
        return
    state = plugin_state(item.config)
    if state.cuda is None:
        state.cuda = cuda_available()
    if not state.cuda:
        pytest.skip("no CUDA GPU: marked gpu (with --require-gpu a run where no gpu test ran fails)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, GateFailure | GateError):
        report.longrepr = str(call.excinfo.value)  # type: ignore[attr-defined]
    if item.get_closest_marker("gpu") is not None:
        report.sftgate_gpu = True  # type: ignore[attr-defined]  # survives xdist's report transfer
    return report  # type: ignore[no-any-return]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = plugin_state(session.config)
    if not state.require_gpu or hasattr(session.config, "workerinput") or state.gpu_ran:
        return
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    state.require_gpu_failed = True


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = plugin_state(config)
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    if github and state.reports:
        from sftgate.gates.frame.report import emit_github

        stream = _Writer(terminalreporter)
        for report in state.reports:
            emit_github(report, stream, os.environ)  # type: ignore[arg-type]
    if state.require_gpu_failed:
        message = (
            f"--require-gpu: no test marked gpu ran ({state.gpu_skipped} skipped"
            f"{', no CUDA GPU' if state.cuda is False else ''}); the session fails"
        )
        terminalreporter.section("sftgate", sep="=", red=True, bold=True)
        terminalreporter.write_line(message, red=True)
        if github:
            terminalreporter.write_line(f"::error title=sftgate --require-gpu::{message}")


class _Writer:
    def __init__(self, terminalreporter: Any) -> None:
        self._tr = terminalreporter

    def write(self, text: str) -> int:
        self._tr.write(text)
        return len(text)
