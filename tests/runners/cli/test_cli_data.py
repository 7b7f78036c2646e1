"""`sftgate data`: exit codes, the JSON report, skips, progress, GX, and no heavy imports."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, validate_report

DATA = REPO / "fixtures" / "data"
TRAIN = str(DATA / "clean_prompt_completion.jsonl")
SCHEMA = str(DATA / "output_schema.json")


@pytest.mark.parametrize(
    ("args", "code", "statuses", "reason"),
    [
        ([TRAIN, "--eval", str(DATA / "clean_eval.jsonl"), "--output-schema", SCHEMA, "--cases",
          str(DATA / "clean_cases.jsonl"), "--group-key", "source"], 0,
         {"dataset-schema": "pass", "split-isolation": "pass"}, "clean data passes"),
        ([TRAIN], 0, {"dataset-schema": "pass", "split-isolation": "skip"}, "no eval: split isolation skipped, optional"),
        ([str(DATA / "wrong_type.jsonl")], 1, {"dataset-schema": "fail", "split-isolation": "skip"}, "a broken record"),
        ([TRAIN, "--eval", str(DATA / "eval_leak_exact.jsonl")], 1,
         {"dataset-schema": "pass", "split-isolation": "fail"}, "an eval leak"),
        ([str(DATA / "duplicate_example.jsonl")], 0, {"dataset-schema": "pass", "split-isolation": "skip"},
         "warnings do not fail"),
    ],
)
def test_exit_codes_and_statuses(cli, args: list[str], code: int, statuses: dict[str, str], reason: str) -> None:
    result = cli("data", *args, "--format", "json")
    assert result.code == code, (reason, result.err)
    assert result.statuses() == statuses, reason
    assert result.report["exit_code"] == code


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["missing.jsonl"], "a missing train file"),
        ([TRAIN, "--eval", "missing.jsonl"], "a missing eval file"),
        ([TRAIN, "--output-schema", str(DATA / "clean_eval.jsonl")], "an output schema that is not a schema"),
        ([TRAIN, "--max-seq-len", "512"], "--max-seq-len without --tokenizer"),
        ([TRAIN, "--ngram", "x"], "a bad number"),
        ([TRAIN, "--cases", str(DATA / "clean_eval.jsonl")], "a cases file without ids"),
    ],
)
def test_usage_and_input_errors_exit_2(cli, args: list[str], reason: str) -> None:
    result = cli("data", *args)
    assert result.code == 2, reason
    assert "Traceback" not in result.err


def test_json_report_findings_and_metrics(cli) -> None:
    result = cli("data", TRAIN, "--eval", str(DATA / "eval_leak_ngram.jsonl"), "--format", "json")
    validate_report(result.report)
    assert result.rules() == ["unseen_enum_value"] * 0 + ["eval_leak_ngram"]
    gates = {g["gate"]: g for g in result.report["gates"]}
    metrics = gates["dataset-schema"]["metrics"]
    assert metrics["train"]["records"] == 8 and metrics["eval"]["records"] == 3
    assert gates["split-isolation"]["metrics"]["leaked_eval_records"] == 1
    finding = gates["split-isolation"]["findings"][0]
    assert finding["code"] == "LEAK004" and finding["line"] == 2 and "ngram" in finding["evidence"]


def test_every_rule_shows_in_the_catalogue(cli) -> None:
    result = cli("rules", "--format", "json")
    names = {r["rule"] for r in json.loads(result.out)}
    assert {"role_order", "too_long", "completion_schema", "eval_leak_ngram", "cases_leak"} <= names
    assert cli("rules", "eval_leak_normalized").code == 0


def test_table_and_github_annotations(cli) -> None:
    result = cli("data", str(DATA / "role_order.jsonl"), env={"GITHUB_ACTIONS": "true"})
    assert result.code == 1
    assert "DATA007 role_order" in result.out
    assert "::error file=" in result.out and "line=2" in result.out


def test_junit_xml(cli, tmp_path: Path) -> None:
    out = tmp_path / "junit.xml"
    assert cli("data", str(DATA / "invalid_json_line_utf8.jsonl"), "--junit-xml", str(out)).code == 1
    assert "invalid_json_line" in out.read_text()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("quiet", "expect_bar"), [(False, True), (True, False)])
def test_progress_bar_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch, quiet: bool, expect_bar: bool) -> None:
    from sftgate.gates.readers import dataset_io
    from sftgate.runners.cli.main import main

    monkeypatch.setattr(dataset_io, "PROGRESS_MIN_BYTES", 0)
    out, err = io.StringIO(), _Tty()
    argv = ["data", TRAIN, "--eval", str(DATA / "clean_eval.jsonl")] + (["--quiet"] if quiet else [])
    assert main(argv, stdout=out, stderr=err, env={}) == 0
    assert ("clean_prompt_completion.jsonl" in err.getvalue()) is expect_bar
    out2, err2 = io.StringIO(), io.StringIO()
    assert main(argv, stdout=out2, stderr=err2, env={}) == 0
    assert err2.getvalue() == "", "not a terminal: no bar"


def test_core_needs_no_torch_or_transformers() -> None:
    code = (
        "import io, sys; from sftgate.runners.cli.main import main; "
        f"rc = main(['data', {TRAIN!r}, '--eval', {str(DATA / 'eval_leak_exact.jsonl')!r}, '--output-schema', "
        f"{SCHEMA!r}], io.StringIO(), io.StringIO(), {{}}); "
        "heavy = [m for m in ('torch', 'transformers', 'great_expectations', 'datasets') if m in sys.modules]; "
        "print(rc, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "1 []"


def test_check_config_runs_the_data_gates(cli, tmp_path: Path) -> None:
    for name in ("clean_prompt_completion.jsonl", "eval_leak_prompt.jsonl", "output_schema.json"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    config = tmp_path / "sftgate.yaml"
    config.write_text(
        "model:\n  id: ./no-such-model\ndata:\n  train: clean_prompt_completion.jsonl\n"
        "  eval: eval_leak_prompt.jsonl\n  output_schema: output_schema.json\n"
    )
    result = cli("check", str(config), "--format", "json")
    statuses = result.statuses()
    assert statuses["dataset-schema"] == "pass" and statuses["split-isolation"] == "fail"
    assert "eval_leak_prompt" in result.rules()


@pytest.mark.slow
def test_expectations_write_data_docs(cli, tmp_path: Path) -> None:
    pytest.importorskip("great_expectations")
    suite = tmp_path / "team.json"
    suite.write_text(json.dumps({"name": "team", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "source"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "source", "value_set": ["doc-01"]}},
    ]}))
    docs = tmp_path / "docs"
    result = cli("data", str(DATA / "duplicate_example.jsonl"), "--expectations", "--expectations-suite", str(suite),
                 "--data-docs", str(docs), "--format", "json")
    assert result.code == 1
    gx = {g["gate"]: g for g in result.report["gates"]}["expectations"]
    failed = [f["evidence"].get("sftgate_rule") or f["evidence"]["expectation"] for f in gx["findings"]]
    assert failed == ["duplicate_example", "expect_column_values_to_be_in_set"]
    assert (docs / "index.html").is_file() and result.report["artifacts"]["data_docs"].endswith("index.html")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert cli("data", TRAIN, "--expectations-suite", str(bad)).code == 2
