"""``sftgate json-check``: exit codes, rules in the JSON report, options, and no heavy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

F = "fixtures/strict_json"
SCHEMA = f"{F}/schema.json"
CASE_RULES = [
    "no_json_start", "code_fence", "unterminated_json", "truncated", "trailing_text", "invalid_json",
    "duplicate_key", "non_finite_number", "missing_key", "unexpected_key", "type_mismatch", "range_mismatch",
    "enum_mismatch", "value_mismatch", "schema_mismatch", "invalid_output_line",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_clean_outputs_pass(cli):
    result = cli("json-check", f"{F}/clean.jsonl", "--schema", SCHEMA, "--format", "json")
    assert result.code == 0
    gate = result.report["gates"][0]
    assert (gate["gate"], gate["status"], gate["findings"]) == ("strict-json", "pass", [])
    assert gate["metrics"]["pass_rate"] == 1.0
    assert gate["metrics"]["eos_stop_rate"] == 1.0


@pytest.mark.parametrize("rule", CASE_RULES)
def test_each_rule_fixture_fails_with_its_rule(cli, rule):
    result = cli("json-check", f"{F}/{rule}.jsonl", "--schema", SCHEMA, "--format", "json")
    assert result.code == 1
    assert set(result.rules()) == {rule, "pass_rate_below_min"}
    gate = result.report["gates"][0]
    assert rule in gate["metrics"]["counts"]
    case = next(f for f in gate["findings"] if f["rule"] == rule)
    assert case["location"].startswith(f"{F}/{rule}.jsonl:")
    assert case["code"].startswith("JSON")


@pytest.mark.parametrize(
    ("rate", "code", "reason"),
    [("1.0", 1, "default: all must pass"), ("0.8", 1, "3/4 < 0.8"), ("0.75", 0, "3/4 reaches 0.75"),
     ("75%", 0, "a percentage")],
)
def test_min_pass_rate(cli, rate, code, reason):
    result = cli("json-check", f"{F}/pass_rate_below_min.jsonl", "--schema", SCHEMA, "--min-pass-rate", rate,
                 "--format", "json")
    assert result.code == code, reason
    assert result.report["gates"][0]["metrics"]["pass_rate"] == 0.75


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["missing.jsonl", "--schema", SCHEMA], "a missing outputs file"),
        ([F, "--schema", SCHEMA], "a folder for outputs"),
        ([f"{F}/clean.jsonl", "--schema", "missing.json"], "a missing schema"),
        ([f"{F}/clean.jsonl", "--schema", f"{F}/schema_invalid.json"], "a schema that is not valid JSON Schema"),
        ([f"{F}/clean.jsonl", "--schema", f"{F}/schema_not_json.json"], "a schema that is not JSON"),
        ([f"{F}/empty.jsonl", "--schema", SCHEMA], "no outputs at all"),
        ([f"{F}/clean.jsonl"], "no --schema"),
        ([f"{F}/clean.jsonl", "--schema", SCHEMA, "--min-pass-rate", "1.5"], "a rate above 1"),
        ([f"{F}/clean.jsonl", "--schema", SCHEMA, "--min-pass-rate", "high"], "a rate that is not a number"),
    ],
)
def test_bad_input_exits_2_without_traceback(cli, argv, reason):
    result = cli("json-check", *argv)
    assert result.code == 2, reason
    assert "Traceback" not in result.err + result.out


def test_invalid_schema_says_why(cli):
    result = cli("json-check", f"{F}/clean.jsonl", "--schema", f"{F}/schema_invalid.json", "--format", "json")
    assert result.code == 2
    assert "schema_invalid.json:4" in result.err


def test_exact_keys(cli):
    args = ("json-check", f"{F}/unexpected_key.jsonl", "--schema", f"{F}/schema_open.json", "--format", "json")
    assert cli(*args).code == 0
    result = cli(*args, "--exact-keys")
    assert result.code == 1
    assert set(result.rules()) == {"unexpected_key", "pass_rate_below_min"}


def test_fail_fast_stops_at_the_first_failing_case(cli):
    result = cli("json-check", f"{F}/invalid_json.jsonl", "--schema", SCHEMA, "--fail-fast", "--format", "json")
    assert result.code == 1
    gate = result.report["gates"][0]
    assert result.rules() == ["invalid_json", "pass_rate_below_min"]
    assert gate["metrics"]["checked"] == 1 and gate["metrics"]["stopped_early"] is True


def test_table_and_github_annotations(cli):
    result = cli("json-check", f"{F}/code_fence.jsonl", "--schema", SCHEMA, env={"GITHUB_ACTIONS": "true"})
    assert result.code == 1
    assert "JSON002" in result.out
    assert f"::error file={F}/code_fence.jsonl,line=1" in result.out


def test_help_has_examples(cli):
    result = cli("json-check", "--help")
    assert result.code == 0
    assert "sftgate json-check outputs.jsonl --schema schema.json" in result.out


def test_json_check_imports_no_torch_or_transformers():
    code = (
        "import sys, io; from sftgate.runners.cli.main import main; "
        f"rc = main(['json-check', '{F}/type_mismatch.jsonl', '--schema', '{SCHEMA}'], io.StringIO(), io.StringIO(), {{}}); "
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'datasets', 'tokenizers') if m in sys.modules]; "
        "assert rc == 1, rc; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
