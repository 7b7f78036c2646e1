"""The gate runner: every finding collected, skips and exceptions mapped to statuses."""

from __future__ import annotations

from sftgate.gates.frame.core import GateSkipped, InputError, Rule, Severity, Stage, Status
from sftgate.gates.frame.execute import run_gate

ERR = Rule("TST001", "bad_thing", Severity.ERROR, "test", "s", "w", "f")
WARN = Rule("TST002", "odd_thing", Severity.WARNING, "test", "s", "w", "f")


def three_errors():
    for i in range(3):
        yield ERR.finding(f"bad {i}", f"f:{i + 1}")


def test_collects_every_finding_and_fails():
    result = run_gate("t", Stage.DATA, three_errors)
    assert result.status is Status.FAIL
    assert [f.location for f in result.findings] == ["f:1", "f:2", "f:3"]


def test_fail_fast_stops_at_first_error():
    result = run_gate("t", Stage.DATA, three_errors, fail_fast=True)
    assert result.status is Status.FAIL
    assert len(result.findings) == 1


def test_warnings_alone_pass():
    result = run_gate("t", Stage.DATA, lambda: iter([WARN.finding("w", "f:1")]))
    assert result.status is Status.PASS and result.findings[0].rule == "odd_thing"


def test_skip_is_reported_with_reason():
    def gate():
        raise GateSkipped("no tokenizer")
        yield

    result = run_gate("t", Stage.TOKENIZER, gate)
    assert (result.status, result.reason) == (Status.SKIP, "no tokenizer")
    assert result.blocks


def test_exception_is_error_not_fail_and_keeps_earlier_findings():
    def gate():
        yield ERR.finding("first", "f:1")
        raise RuntimeError("boom")

    result = run_gate("t", Stage.DATA, gate)
    assert result.status is Status.ERROR
    assert result.error_exit_code == 3
    assert len(result.findings) == 1


def test_input_error_maps_to_exit_2():
    def gate():
        raise InputError("x.jsonl: no such file")
        yield

    result = run_gate("t", Stage.DATA, gate)
    assert (result.status, result.error_exit_code) == (Status.ERROR, 2)


def test_metrics_parameter_is_filled():
    def gate(*, metrics):
        metrics["rows"] = 5
        return iter(())

    assert run_gate("t", Stage.DATA, gate).metrics == {"rows": 5}
