"""The strict-json gate: one fixture per rule, pass rates, severities, metrics and the value diff."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.adapter import strict_json
from sftgate.gates.adapter.output_records import OutputRecord, normalize_stop_reason, parse_output_line
from sftgate.gates.adapter.output_schema import OutputSchema
from sftgate.gates.adapter.strict_json import RULES, check, check_records
from sftgate.gates.adapter.value_diff import value_diff
from sftgate.gates.frame.core import Finding, InputError, Severity, Stage
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.readers.cases import MISSING

FIXTURES = "fixtures/strict_json"

# fixture file (named after its rule) -> the case-level rule every failing case triggers, reason
RULE_FIXTURES = [
    ("no_json_start", "prose, an empty output and a BOM"),
    ("code_fence", "fenced JSON, with and without a tag"),
    ("unterminated_json", "cut off with stop_reason eos"),
    ("truncated", "cut off with stop_reason length (and OpenAI's finish_reason)"),
    ("trailing_text", "prose or a second object after the JSON"),
    ("invalid_json", "single quotes, trailing comma, raw newline, comment"),
    ("duplicate_key", "a repeated key"),
    ("non_finite_number", "NaN, -Infinity and 1e400 (overflows to infinity)"),
    ("missing_key", "a required key is absent"),
    ("unexpected_key", "a key outside additionalProperties: false"),
    ("type_mismatch", "true, 31.5 and '36' for an integer"),
    ("range_mismatch", "below minimum, too short, too many items"),
    ("enum_mismatch", "a label outside the enum"),
    ("value_mismatch", "differs from the case's expected value"),
    ("schema_mismatch", "a pattern"),
    ("invalid_output_line", "broken lines of the outputs file"),
]


def _run(outputs, schema="schema.json", **kwargs):
    metrics: dict = {}
    findings = list(check(outputs=f"{FIXTURES}/{outputs}", schema=f"{FIXTURES}/{schema}", metrics=metrics, **kwargs))
    return findings, metrics


def test_rule_codes_are_unique_and_in_design_order():
    codes = [r.code for r in RULES]
    assert codes == [f"JSON{i:03d}" for i in range(1, len(RULES) + 1)]
    names = [r.name for r in RULES]
    assert names[:14] == [
        "no_json_start", "code_fence", "unterminated_json", "truncated", "trailing_text", "invalid_json",
        "duplicate_key", "non_finite_number", "missing_key", "unexpected_key", "type_mismatch",
        "range_mismatch", "enum_mismatch", "value_mismatch",
    ]  # fmt: skip
    assert all(r.gate == "strict-json" and r.why and r.fix for r in RULES)


@pytest.mark.parametrize(("rule", "reason"), RULE_FIXTURES, ids=[r for r, _ in RULE_FIXTURES])
def test_each_fixture_triggers_its_rule(rule, reason):
    findings, metrics = _run(f"{rule}.jsonl")
    case_rules = {f.rule for f in findings} - {"pass_rate_below_min"}
    assert case_rules == {rule}, reason
    assert "pass_rate_below_min" in {f.rule for f in findings}
    assert metrics["counts"] == {rule: metrics["failed"]}
    for finding in findings:
        if finding.rule != "pass_rate_below_min":
            assert finding.location.startswith(f"{FIXTURES}/{rule}.jsonl:")
            assert finding.file_line == finding.line
            assert "case" in finding.evidence or rule == "invalid_output_line"


def test_clean_fixture_triggers_nothing():
    findings, metrics = _run("clean.jsonl")
    assert findings == []
    assert metrics["pass_rate"] == 1.0
    assert metrics["eos_stop_rate"] == 1.0
    assert metrics["counts"] == {}


def test_findings_carry_case_id_path_and_stop_reason():
    findings, _ = _run("truncated.jsonl")
    first = findings[0]
    assert (first.code, first.location, first.line) == ("JSON004", f"{FIXTURES}/truncated.jsonl:1", 1)
    assert first.evidence["case"] == "c1"
    assert first.evidence["stop_reason"] == "length"
    assert first.evidence["path"] == "$.tags[3]"


def test_value_mismatch_evidence_has_a_per_key_diff():
    findings, _ = _run("value_mismatch.jsonl")
    diff = findings[0].evidence["diff"]
    assert diff == [{"path": "$.age", "expected": "36", "got": "37"}]


@pytest.mark.parametrize(
    ("min_rate", "passes", "case_severity", "reason"),
    [
        (1.0, False, "error", "by default every case must pass"),
        (0.8, False, "warning", "3/4 is below 0.8; case findings become warnings"),
        (0.75, True, "warning", "3/4 reaches 0.75"),
        (0.0, True, "warning", "anything passes 0"),
    ],
)
def test_min_pass_rate(min_rate, passes, case_severity, reason):
    result = run_gate("strict-json", Stage.ADAPTER, check, outputs=f"{FIXTURES}/pass_rate_below_min.jsonl", schema=f"{FIXTURES}/schema.json",
                      min_pass_rate=min_rate)
    assert result.passed is passes, reason
    assert result.metrics["pass_rate"] == 0.75
    case = [f for f in result.findings if f.rule == "code_fence"]
    assert case and case[0].severity.value == case_severity
    assert ("pass_rate_below_min" in {f.rule for f in result.findings}) is not passes


def _records(outputs):
    return [OutputRecord(id=f"c{i}", output=o, stop_reason="eos") for i, o in enumerate(outputs)]


GOOD = '{"name": "Ada", "age": 1, "status": "active"}'
SCHEMA = OutputSchema.load(f"{FIXTURES}/schema.json")


@pytest.mark.parametrize(
    ("outputs", "min_rate", "checked", "fails", "reason"),
    [
        (["x", GOOD, "y", GOOD], 1.0, 1, True, "every case must pass: stop at the first failure"),
        ([GOOD, "x", "y", "z", GOOD], 0.5, 4, True, "0.5 of 5: the third failure makes it unreachable"),
        ([GOOD, GOOD, GOOD, "x"], 0.5, 4, False, "reachable: no early stop, and it passes"),
    ],
)
def test_fail_fast_stops_when_the_verdict_is_certain(outputs, min_rate, checked, fails, reason):
    metrics: dict = {}
    findings = list(check_records(_records(outputs), SCHEMA, source="mem", min_pass_rate=min_rate,
                                  fail_fast=True, metrics=metrics))
    assert metrics["checked"] == checked, reason
    assert metrics["cases"] == len(outputs)
    verdict = [f for f in findings if f.rule == "pass_rate_below_min"]
    assert bool(verdict) is fails, reason


def test_records_without_a_line_are_located_by_case_id():
    findings = list(check_records([OutputRecord("case-7", "```json\n{}\n```")], None, source="eval"))
    assert findings[0].location == "case-7"
    assert findings[0].rule == "code_fence"


def test_metrics_eos_stop_rate_and_stop_reason_synonyms():
    records = [
        OutputRecord("a", GOOD, stop_reason="stop"),
        OutputRecord("b", GOOD, stop_reason="eos_token"),
        OutputRecord("c", '{"name": "Ada"', stop_reason="max_tokens"),
        OutputRecord("d", GOOD),
    ]
    metrics: dict = {}
    findings = list(check_records(records, SCHEMA, source="mem", metrics=metrics))
    assert metrics["eos_stop_rate"] == pytest.approx(2 / 3)
    assert metrics["stop_reasons"] == {"eos": 2, "length": 1}
    assert metrics["counts"] == {"truncated": 1}
    assert [f.rule for f in findings] == ["truncated", "pass_rate_below_min"]


def test_no_stop_reason_means_no_eos_metric():
    metrics: dict = {}
    list(check_records([OutputRecord("a", GOOD)], SCHEMA, source="mem", metrics=metrics))
    assert "eos_stop_rate" not in metrics


def test_without_schema_only_syntax_and_expected_are_checked():
    records = [OutputRecord("a", '{"anything": 1}'), OutputRecord("b", '{"x": 1}', expected={"x": 2})]
    findings = list(check_records(records, None, source="mem", min_pass_rate=0.5))
    assert [f.rule for f in findings] == ["value_mismatch"]


def test_many_problems_in_one_case_are_bounded():
    schema = OutputSchema.from_dict({"type": "array", "items": {"type": "integer"}})
    findings = list(check_records([OutputRecord("a", json.dumps(["x"] * 100))], schema, source="mem"))
    case = [f for f in findings if f.rule == "type_mismatch"]
    assert len(case) == strict_json.MAX_FINDINGS_PER_CASE
    assert case[0].evidence["problems_in_case"] == 50


def test_findings_are_bounded_and_one_line():
    long = "{" + '"k": "' + "x\n" * 10_000
    findings = list(check_records([OutputRecord("a", long)], None, source="mem"))
    for finding in findings:
        assert "\n" not in finding.message and len(finding.message) <= 500
        assert len(json.dumps(finding.to_dict())) < 5_000


def test_empty_outputs_is_input_error():
    with pytest.raises(InputError):
        _run("empty.jsonl")


def test_invalid_min_pass_rate_is_rejected():
    with pytest.raises(ValueError):
        list(check_records([], None, source="mem", min_pass_rate=1.5))


@pytest.mark.parametrize(
    ("line", "ok", "reason"),
    [
        ('{"id": "a", "output": "{}"}', True, "a minimal record"),
        ('{"id": 3, "output": "{}", "stop_reason": null}', True, "an integer id, a null stop reason"),
        ('{"output": "{}"}', True, "no id: the line number stands in"),
        ('{"id": "a", "output": "{}", "expected": NaN}', False, "NaN in the record line"),
        ('{"id": "a"}', False, "no output"),
        ('{"id": "a", "output": 1}', False, "output not a string"),
        ('{"id": true, "output": "{}"}', False, "a boolean id"),
        ('{"id": "a", "output": "{}", "stop_reason": 1}', False, "a numeric stop reason"),
        ('"just a string"', False, "not an object"),
        ('{"id": "a", "output": "{}"', False, "not JSON"),
    ],
)
def test_parse_output_line(line, ok, reason):
    got = parse_output_line(line, 7, "out.jsonl")
    assert isinstance(got, OutputRecord) is ok, reason
    if not ok:
        assert isinstance(got, Finding)
        assert (got.rule, got.location, got.severity) == ("invalid_output_line", "out.jsonl:7", Severity.ERROR)


def test_output_line_keeps_expected_and_big_numbers():
    record = parse_output_line('{"id": "a", "output": "1", "expected": 123456789012345678901234567890}', 1, "f")
    assert record.expected == 123456789012345678901234567890
    assert parse_output_line('{"id": "a", "output": "1"}', 1, "f").expected is MISSING
    assert parse_output_line('{"id": "a", "output": "1", "expected": null}', 1, "f").expected is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [("eos", "eos"), ("stop", "eos"), ("EOS_TOKEN", "eos"), ("stop_sequence", "eos"), ("end_turn", "eos"),
     ("length", "length"), ("max_tokens", "length"), (None, None), ("abort", "abort")],
)
def test_normalize_stop_reason(given, expected):
    assert normalize_stop_reason(given) == expected


@pytest.mark.parametrize(
    ("expected", "got", "paths", "reason"),
    [
        ({"a": 1}, {"a": 1.0}, [], "1 equals 1.0"),
        ({"a": 1}, {"a": True}, ["$.a"], "true never equals 1"),
        ({"a": 1, "b": 2}, {"a": 1}, ["$.b"], "a missing key"),
        ({"a": 1}, {"a": 1, "c": 3}, ["$.c"], "an extra key"),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}, ["$.a.b[1]"], "a nested item"),
        ([1, 2], [1], ["$"], "a length difference"),
        (None, {}, ["$"], "null expected"),
    ],
)
def test_value_diff(expected, got, paths, reason):
    assert [d["path"] for d in value_diff(expected, got)] == paths, reason


# --------------------------------------------------------------------------- properties

@settings(deadline=None)
@given(st.lists(st.tuples(st.text(max_size=40), st.sampled_from([None, "eos", "length", "stop", "weird"])),
                min_size=1, max_size=5))
def test_any_outputs_never_raise(rows):
    records = [OutputRecord(f"c{i}", text, stop) for i, (text, stop) in enumerate(rows)]
    metrics: dict = {}
    findings = list(check_records(records, SCHEMA, source="mem", metrics=metrics))
    assert metrics["cases"] == len(rows)
    assert all(f.code.startswith("JSON") for f in findings)


@settings(deadline=None)
@given(st.text(max_size=80))
def test_any_outputs_line_never_raises(text):
    got = parse_output_line(text, 1, "out.jsonl")
    assert isinstance(got, OutputRecord | Finding)
