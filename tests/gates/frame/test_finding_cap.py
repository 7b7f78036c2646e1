"""Findings capped per rule and counted: every gate's report and memory stay bounded."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from sftgate.gates.frame.core import Rule, Severity, Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.finding_cap import MAX_PER_RULE, NEXT_LOCATIONS, FindingCap, is_summary
from sftgate.gates.frame.report import Report
from tests.conftest import run_cli, validate_report

ERR = Rule("TST001", "bad_thing", Severity.ERROR, "test", "s", "w", "f")
WARN = Rule("TST002", "odd_thing", Severity.WARNING, "test", "s", "w", "f")


def many(n_errors: int, n_warnings: int = 0):
    def gate():
        for i in range(n_errors):
            yield ERR.finding(f"bad {i}", f"f:{i + 1}")
        for i in range(n_warnings):
            yield WARN.finding(f"odd {i}", f"g:{i + 1}")
    return gate


@given(rules=st.lists(st.sampled_from(["a", "b", "c"]), max_size=60), limit=st.integers(0, 8))
def test_lists_limit_per_rule_and_counts_every_finding(rules, limit):
    cap = FindingCap(limit)
    listed = Counter(rule for i, rule in enumerate(rules) if cap.room(rule, f"f:{i}"))
    counts = Counter(rules)
    assert cap.totals == dict(counts)
    assert listed == Counter({r: n if not limit else min(n, limit) for r, n in counts.items()})
    summaries = list(cap.summaries())
    assert {s.rule: s.evidence["not_listed"] for s in summaries} == {r: counts[r] - listed[r]
                                                                      for r in counts if counts[r] > listed[r]}
    assert all(is_summary(s) and len(s.evidence["next_locations"]) <= NEXT_LOCATIONS for s in summaries)
    assert cap.not_listed == sum(s.evidence["not_listed"] for s in summaries)


def test_run_gate_caps_every_gate_and_says_how_many_were_not_shown():
    result = run_gate("t", Stage.DATA, many(MAX_PER_RULE + 150, 3))
    assert result.status is Status.FAIL
    by_rule = Counter(f.rule for f in result.findings if not is_summary(f))
    assert by_rule == {"bad_thing": MAX_PER_RULE, "odd_thing": 3}
    (summary,) = [f for f in result.findings if is_summary(f)]
    assert (summary.code, summary.rule, summary.severity) == ("TST001", "bad_thing", Severity.ERROR)
    assert summary.evidence["total"] == MAX_PER_RULE + 150 and summary.evidence["not_listed"] == 150
    assert summary.evidence["next_locations"][0] == f"f:{MAX_PER_RULE + 1}"
    report = Report(command="t")
    report.add(result)
    validate_report(json.loads(json.dumps(report.to_dict())))


def test_a_gates_own_max_per_rule_is_the_cap_and_zero_lists_all():
    """A gate that takes max_per_rule caps itself (per input file, in its workers): run_gate adds no cap."""
    def gate(max_per_rule: int = 5):
        cap = FindingCap(max_per_rule)
        for finding in many(30)():
            if cap.admit(finding):
                yield finding
        yield from cap.summaries()

    assert len(run_gate("t", Stage.DATA, gate).findings) == 5 + 1
    assert len(run_gate("t", Stage.DATA, gate, max_per_rule=0).findings) == 30


def test_a_gates_own_summary_passes_the_cap_as_it_is():
    def gate(max_per_rule: int = 2):
        cap = FindingCap(max_per_rule)
        for i in range(10):
            if cap.room(ERR.name, f"f:{i}", code=ERR.code):
                yield ERR.finding("bad", f"f:{i}")
        yield from cap.summaries()

    findings = run_gate("t", Stage.DATA, gate).findings
    assert [is_summary(f) for f in findings] == [False, False, True]
    assert findings[-1].evidence["total"] == 10


def test_json_check_lists_a_hundred_per_rule_and_counts_the_rest(tmp_path: Path):
    outputs = tmp_path / "outputs.jsonl"
    outputs.write_text("".join(json.dumps({"id": f"c{i}", "output": "Sure! {\"a\": 1}"}) + "\n"
                               for i in range(MAX_PER_RULE + 40)))
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object"}))
    result = run_cli("json-check", str(outputs), "--schema", str(schema), "--format", "json", "--min-pass-rate", "0")
    gate = result.report["gates"][0]
    rules = Counter(f["rule"] for f in gate["findings"] if "not_listed" not in f.get("evidence", {}))
    assert rules == {"no_json_start": MAX_PER_RULE}
    summary = [f for f in gate["findings"] if "not_listed" in f.get("evidence", {})]
    assert [(f["rule"], f["evidence"]["not_listed"]) for f in summary] == [("no_json_start", 40)]
    assert gate["metrics"]["failed"] == MAX_PER_RULE + 40 and gate["metrics"]["findings_not_listed"] == 40
