"""Shared by the prompt-alignment tests: run the gate on a fixture family, and check its rules."""

from __future__ import annotations

from typing import Any

from sftgate.gates.frame.core import GateResult, Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.tokenizer import prompt_alignment


def run(folders: Any, fixtures_dir: Any, family: str, variant: dict[str, Any] | None = None, data: str | None = None,
        cases: str | None = None, **kwargs: Any) -> GateResult:
    """prompt-alignment on ``family``'s tokenizer (or a variant), with fixtures/tokenizer/ data and cases."""
    folder = folders.variant(family, **variant) if variant else folders.base(family)
    if data is not None:
        kwargs["data"] = fixtures_dir / "tokenizer" / data
    if cases is not None:
        kwargs["cases"] = fixtures_dir / "tokenizer" / cases
    return run_gate("prompt-alignment", Stage.TOKENIZER, prompt_alignment.check, tokenizer=folder, **kwargs)


def assert_rules(result: GateResult, expected: list[str], reason: str) -> None:
    """Exactly the ``expected`` rules (with their codes), a fail when any, never an error."""
    assert result.status is not Status.ERROR, result.reason
    assert sorted(f.rule for f in result.findings) == sorted(expected), reason
    assert result.status is (Status.FAIL if expected else Status.PASS), reason
    codes = {rule.name: rule.code for rule in prompt_alignment.RULES}
    assert all(f.code == codes[f.rule] for f in result.findings)
