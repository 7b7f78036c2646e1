"""Shared test helpers: run the CLI in-process and validate every JSON report it prints."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sftgate.gates.frame.report import report_schema

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
# Commands whose --format json output is not a gate report (a rule listing).
NON_REPORT_COMMANDS = {"rules"}


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def report(self) -> dict[str, Any]:
        """The JSON report on stdout (validated against the shipped schema)."""
        doc = json.loads(self.out)
        validate_report(doc)
        return doc  # type: ignore[no-any-return]

    def rules(self) -> list[str]:
        return [f["rule"] for g in self.report["gates"] for f in g["findings"]]

    def statuses(self) -> dict[str, str]:
        return {g["gate"]: g["status"] for g in self.report["gates"]}


def validate_report(doc: dict[str, Any]) -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator(report_schema()).validate(doc)


def run_cli(*argv: str, env: dict[str, str] | None = None) -> CliResult:
    from sftgate.runners.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, env=env if env is not None else {})
    result = CliResult(code, out.getvalue(), err.getvalue())
    reports = argv and argv[0] not in NON_REPORT_COMMANDS
    if reports and "--format" in argv and argv[argv.index("--format") + 1] == "json" and result.out.strip():
        result.report  # noqa: B018 - validates against the report schema
    return result


@pytest.fixture
def cli():
    """``cli("model-id", "x", "--format", "json")`` -> CliResult; JSON reports are schema-checked."""
    return run_cli


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Every tokenizer family of fixtures/tokenizers.py (built on first use, once per session)."""
    from fixtures.tokenizers import tokenizer_folders

    return tokenizer_folders(tmp_path_factory.getbasetemp() / "tokenizers")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run several times faster on one thread than on two contended ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
