"""The eos-behaviour gate: the share of fixed cases that stop with EOS, against a threshold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftgate.gates.adapter import eos_behaviour
from sftgate.gates.adapter.output_records import OutputRecord
from sftgate.gates.adapter.strict_json import check
from sftgate.gates.frame.core import InputError, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.registry import get
from tests.conftest import FIXTURES

DIR = FIXTURES / "eos_behaviour"


def _records(name: str) -> list[OutputRecord]:
    """The records of an outputs fixture, read by the strict-json gate's own line parser."""
    from sftgate.gates.adapter.output_records import parse_output_line
    from sftgate.gates.readers.cases import read_jsonl_lines

    path = DIR / name
    return [parse_output_line(text, n, str(path)) for n, text in read_jsonl_lines(path)]


CASES = [
    # (fixture, min_eos_rate, expected rules, status, reason)
    ("clean.jsonl", 1.0, [], "pass", "every case stopped (finish_reason 'stop' counts as eos)"),
    ("no_eos_stop.jsonl", 0.7, ["no_eos_stop"], "pass", "one case hit the limit: a warning, 0.75 >= 0.7"),
    ("no_eos_stop.jsonl", 1.0, ["no_eos_stop", "eos_rate_below_min"], "fail", "0.75 < 1.0 fails"),
    ("eos_rate_below_min.jsonl", 0.95, ["no_eos_stop"] * 3 + ["eos_rate_below_min"], "fail",
     "three of four ran on (max_tokens is length)"),
    ("no_stop_reason.jsonl", 0.5, ["no_stop_reason"], "fail", "a record without stop_reason cannot be judged"),
]


@pytest.mark.parametrize(("fixture", "rate", "rules", "status", "reason"), CASES, ids=[c[4] for c in CASES])
def test_rules_and_status(fixture: str, rate: float, rules: list[str], status: str, reason: str) -> None:
    metrics: dict = {}
    result = run_gate("eos-behaviour", get("eos-behaviour").stage, eos_behaviour.check,
                      records=_records(fixture), max_new_tokens=64, min_eos_rate=rate, source=fixture, metrics=metrics)
    assert [f.rule for f in result.findings] == rules, reason
    assert result.status is Status(status), reason
    assert {f.code for f in result.findings} <= {r.code for r in eos_behaviour.RULES}


def test_metrics_and_locations() -> None:
    metrics: dict = {}
    findings = list(eos_behaviour.check(records=_records("no_eos_stop.jsonl"), max_new_tokens=64,
                                        min_eos_rate=1.0, source="out.jsonl", metrics=metrics))
    assert metrics["eos_rate"] == 0.75 and metrics["stopped"] == 3 and metrics["cases"] == 4
    assert findings[0].location == "out.jsonl:3"  # FILE:LINE of the case that ran on
    assert findings[0].evidence["case"] == "c3"


def test_no_records_is_input_error() -> None:
    with pytest.raises(InputError):
        list(eos_behaviour.check(records=[], min_eos_rate=1.0))


def test_unreadable_lines_are_ignored() -> None:
    """Items that are not records (an invalid outputs line, reported by strict-json) do not count."""
    items = list(check(outputs=DIR / "clean.jsonl", schema=None))  # strict-json findings, not records
    records = [*_records("clean.jsonl"), *items]
    assert not list(eos_behaviour.check(records=records, min_eos_rate=1.0))


def test_rule_catalogue() -> None:
    codes = [r.code for r in eos_behaviour.RULES]
    assert codes == ["EOSB001", "EOSB002", "EOSB003"]
    assert all(r.gate == "eos-behaviour" for r in eos_behaviour.RULES)


@given(st.lists(st.sampled_from(["eos", "length", "stop", "max_tokens"]), min_size=1, max_size=30),
       st.floats(min_value=0.0, max_value=1.0))
def test_rate_property(reasons: list[str], threshold: float) -> None:
    """The rate is the share of eos stops; the gate fails exactly when it is below the threshold."""
    records = [OutputRecord(id=f"c{i}", output="{}", stop_reason=r) for i, r in enumerate(reasons)]
    metrics: dict = {}
    rules = [f.rule for f in eos_behaviour.check(records=records, min_eos_rate=threshold, metrics=metrics)]
    stopped = sum(r in ("eos", "stop") for r in reasons)
    assert metrics["stopped"] == stopped
    assert ("eos_rate_below_min" in rules) == (stopped / len(reasons) < threshold)
    assert rules.count("no_eos_stop") == len(reasons) - stopped
