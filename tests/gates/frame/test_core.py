"""The finding model: bounded evidence, one-line messages, locations."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.frame.core import MAX_SAMPLES, GateResult, Rule, Severity, Stage, Status, bound_evidence

RULE = Rule("TST001", "test_rule", Severity.ERROR, "test", "summary", "why", "fix")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=50) | st.dictionaries(st.text(), inner, max_size=60),
    max_leaves=200,
)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=60))
def test_evidence_is_bounded_and_json_safe(evidence):
    bounded = bound_evidence(evidence)
    text = json.dumps(bounded, allow_nan=False)  # NaN/Inf are shown as strings, never emitted raw
    assert len(text) < 200_000

    def check(node):
        if isinstance(node, list):
            assert len(node) <= MAX_SAMPLES + 1
            for item in node:
                check(item)
        elif isinstance(node, dict):
            assert len(node) <= 41
            for item in node.values():
                check(item)

    check(bounded)


@given(st.text())
def test_message_is_always_one_line(message):
    finding = RULE.finding(message, "f.jsonl:3")
    assert "\n" not in finding.message and "\r" not in finding.message


@pytest.mark.parametrize(
    ("location", "line", "file", "file_line", "reason"),
    [
        ("train.jsonl:12", None, "train.jsonl", 12, "FILE:LINE"),
        ("job.json:model.name", 3, "job.json", 3, "FILE:key.path with an explicit line"),
        ("job.json:model.name", None, "job.json", None, "FILE:key.path without a line"),
        ("case-7", None, None, None, "a case id names no file"),
    ],
)
def test_finding_location_parts(location, line, file, file_line, reason):
    finding = RULE.finding("m", location, line=line)
    assert (finding.file, finding.file_line) == (file, file_line), reason


@pytest.mark.parametrize(
    ("status", "required", "blocks"),
    [
        (Status.PASS, True, False),
        (Status.FAIL, True, True),
        (Status.ERROR, False, True),
        (Status.SKIP, True, True),  # a skip is never a pass for a required gate
        (Status.SKIP, False, False),
    ],
)
def test_what_blocks_promotion(status, required, blocks):
    result = GateResult("g", Stage.DATA, status, 0.0, required=required)
    assert result.blocks is blocks
    assert result.passed is (status is Status.PASS)


def test_huge_integers_survive_as_text():
    assert bound_evidence({"n": 10**30, "m": 5}) == {"n": str(10**30), "m": 5}
