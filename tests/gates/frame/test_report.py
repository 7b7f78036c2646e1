"""Reports: schema-valid JSON, exit codes, well-formed JUnit, GitHub annotations."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftgate.gates.frame.core import GateResult, Rule, Severity, Stage, Status
from sftgate.gates.frame.report import Report, github_annotations, to_junit, to_markdown, to_table
from tests.conftest import validate_report

RULE = Rule("TST001", "bad_thing", Severity.ERROR, "test", "s", "w", "f")


def result(status: Status, *, findings=(), required=True, exit_code=3) -> GateResult:
    return GateResult("a-gate", Stage.DATA, status, 0.01, list(findings), required=required, error_exit_code=exit_code)


@pytest.mark.parametrize(
    ("statuses", "passed", "code", "reason"),
    [
        ([Status.PASS], True, 0, "all passed"),
        ([Status.PASS, Status.FAIL], False, 1, "one failed"),
        ([Status.SKIP], False, 1, "a required skip is not a pass"),
        ([Status.PASS, Status.ERROR], False, 3, "an internal error"),
        ([], False, 1, "no gate ran: nothing passed"),
    ],
)
def test_passed_and_exit_code(statuses, passed, code, reason):
    report = Report("check x", [result(s) for s in statuses])
    assert (report.passed, report.exit_code) == (passed, code), reason
    validate_report(report.to_dict())


def test_input_error_gate_gives_exit_2():
    report = Report("data", [result(Status.ERROR, exit_code=2)])
    assert report.exit_code == 2


def test_optional_skip_passes():
    report = Report("check", [result(Status.PASS), result(Status.SKIP, required=False)])
    assert report.passed and report.exit_code == 0


@given(st.text())
def test_junit_stays_well_formed_with_any_message(message):
    finding = RULE.finding(message, "f.jsonl:1", suggestion=message, evidence={"sample": message})
    report = Report(f"data {message}", [result(Status.FAIL, findings=[finding]), result(Status.PASS)])
    root = ET.fromstring(to_junit(report))
    assert root.tag == "testsuite"
    assert len(root.findall("testcase")) == 2
    assert root.get("failures") == "1"


def test_junit_required_skip_is_a_failure():
    report = Report("run", [result(Status.SKIP, required=True), result(Status.SKIP, required=False)])
    root = ET.fromstring(to_junit(report))
    cases = root.findall("testcase")
    assert cases[0].find("failure") is not None
    assert cases[1].find("skipped") is not None


def test_github_annotations_name_file_and_line():
    findings = [
        RULE.finding("bad id", "job.json:model.name", line=3, suggestion="a/b"),
        RULE.finding("bad line", "train.jsonl:7"),
        Rule("TST002", "fyi", Severity.INFO, "t", "s", "w", "f").finding("info", "x:1"),
    ]
    text = github_annotations(Report("check", [result(Status.FAIL, findings=findings)]))
    lines = text.splitlines()
    assert lines[0].startswith("::error file=job.json,line=3,title=TST001 bad_thing::")
    assert lines[1].startswith("::error file=train.jsonl,line=7,")
    assert len(lines) == 2  # info findings are not annotated


def test_human_renderers_mention_rule_and_fix():
    finding = RULE.finding("bad id", "job.json:model.name", suggestion="org/name")
    report = Report("check", [result(Status.FAIL, findings=[finding])])
    for text in (to_table(report), to_markdown(report)):
        assert "bad_thing" in text and "org/name" in text
