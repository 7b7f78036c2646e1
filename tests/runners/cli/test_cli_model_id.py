"""CLI tests of model-id, check on foreign configs, fix-model-ids and triage (exit codes, rules)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import FIXTURES, REPO

SHA = "0123456789abcdef0123456789abcdef01234567"
BASE_ENV = {"HF_HUB_CACHE": "/nonexistent-sftgate-cache"}


def rules_of(result):
    return [f["rule"] for f in result.report["gates"][0]["findings"]]


# (argv, env extra, exit code, rules, reason)
MODEL_ID_CASES = [
    (["mistralai-Mistral-7B-Instruct"], {}, 1, ["dash_separated_id"], "the postmortem's ID"),
    (["mistralai/Mistral-7B-Instruct"], {}, 0, [], "the slash form passes"),
    (["gpt2"], {}, 0, ["missing_namespace"], "a warning does not fail"),
    (["https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/tree/main"], {}, 1, ["url_not_id"], "a URL"),
    (["./no/such/folder"], {}, 1, ["local_path_missing"], "a missing local folder"),
    (["Qwen/Qwen2.5-0.5B-Instruct", "--revision", "main", "--release"], {}, 1, ["unpinned_revision"], "release: branch"),
    (["Qwen/Qwen2.5-0.5B-Instruct", "--release"], {}, 1, ["unpinned_revision"], "release: no revision"),
    (["Qwen/Qwen2.5-0.5B-Instruct", "--revision", SHA, "--release"], {}, 0, [], "release: pinned"),
    (["Qwen/Qwen2.5-0.5B-Instruct", "--online"], {"HF_HUB_OFFLINE": "1"}, 0, ["online_check_skipped"],
     "HF_HUB_OFFLINE is respected, and reported"),
    (["gpt2", "org/x--y", "a/b"], {}, 1, ["missing_namespace", "invalid_repo_id"], "several IDs at once"),
    (["acme", "--kind", "publish"], {}, 0, ["missing_namespace"], "a publish target without namespace"),
    ([str(FIXTURES / "model_id" / "local_model")], {}, 0, [], "an existing model folder"),
]


@pytest.mark.parametrize(("argv", "env", "code", "rules", "reason"), MODEL_ID_CASES, ids=[c[4] for c in MODEL_ID_CASES])
def test_model_id(cli, argv, env, code, rules, reason):
    result = cli("model-id", *argv, "--format", "json", env={**BASE_ENV, **env})
    assert result.code == code, reason
    assert rules_of(result) == rules, reason
    assert result.report["gates"][0]["gate"] == "model-id"


def test_model_id_table_shows_the_fix(cli):
    result = cli("model-id", "mistralai-Mistral-7B-Instruct", env=BASE_ENV)
    assert result.code == 1
    assert "MID003" in result.out and "dash_separated_id" in result.out
    assert "mistralai/Mistral-7B-Instruct" in result.out


@pytest.mark.parametrize(("argv", "reason"), [([], "no ID"), (["x", "--kind", "dataset"], "bad kind")])
def test_model_id_usage_errors(cli, argv, reason):
    result = cli("model-id", *argv)
    assert result.code == 2, reason
    assert "Traceback" not in result.err


# --------------------------------------------------------------------------- sftgate check on foreign configs


def test_check_foreign_job_json(cli, tmp_path, monkeypatch):
    """The issue's acceptance test: exit 1, MID003 at job.json:model.name, the slash form as fix."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.json").write_text(json.dumps({"model": {"name": "mistralai-Mistral-7B-Instruct"}}))
    result = cli("check", "job.json", "--format", "json", env=BASE_ENV)
    assert result.code == 1
    [gate] = result.report["gates"]
    [finding] = gate["findings"]
    assert (gate["gate"], gate["status"]) == ("model-id", "fail")
    assert (finding["code"], finding["rule"], finding["location"], finding["suggestion"]) == (
        "MID003", "dash_separated_id", "job.json:model.name", "mistralai/Mistral-7B-Instruct")


def test_check_foreign_config_github_annotation(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.yaml").write_text("# job\nmodel:\n  name: mistralai-Mistral-7B-Instruct\n")
    summary = tmp_path / "summary.md"
    result = cli("check", "job.yaml", env={**BASE_ENV, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.code == 1
    assert "::error file=job.yaml,line=3,title=MID003 dash_separated_id::" in result.out
    assert "dash_separated_id" in summary.read_text()


# (fixture, exit code, rules, reason)
FOREIGN_CASES = [
    ("dash_separated_id.yaml", 1, ["dash_separated_id"], "axolotl YAML"),
    ("url_not_id.yaml", 1, ["url_not_id"], "model.name is a URL"),
    ("missing_namespace.yaml", 0, ["missing_namespace"], "warning only"),
    ("clean.yaml", 0, [], "a clean foreign config"),
]


@pytest.mark.parametrize(("name", "code", "rules", "reason"), FOREIGN_CASES, ids=[c[3] for c in FOREIGN_CASES])
def test_check_foreign_fixtures(cli, name, code, rules, reason):
    result = cli("check", str(FIXTURES / "model_id" / name), "--format", "json", env=BASE_ENV)
    assert result.code == code, reason
    [model_id] = [g for g in result.report["gates"] if g["gate"] == "model-id"]
    assert [f["rule"] for f in model_id["findings"]] == rules, reason


def test_check_config_without_model_fields_is_a_required_skip(cli, tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"epochs": 3}')
    result = cli("check", str(path), "--format", "json", env=BASE_ENV)
    assert result.code == 1, "a skip is never a pass"
    assert result.statuses() == {"model-id": "skip"}


# --------------------------------------------------------------------------- sftgate check on peer configs


def test_check_a_peer_config_reports_its_format_first(cli):
    result = cli("check", str(FIXTURES / "peer_configs" / "axolotl" / "dash_separated_id.yml"), "--format", "json",
                 env=BASE_ENV)
    assert result.code == 1
    gates = result.report["gates"]
    assert [g["gate"] for g in gates][:2] == ["peer-config", "model-id"]
    assert gates[0]["metrics"]["format"] == "axolotl" and "axolotl" in gates[0]["metrics"]["key_table"]
    assert [f["code"] for f in gates[1]["findings"]] == ["MID003", "MID003"]


@pytest.mark.parametrize(("argv", "code", "reason"), [
    (["--format-of", "trl"], 1, "forced: TRL's required keys are missing"),
    (["--format-of", "sftgate"], 2, "forced: not a valid sftgate config"),
    (["--format-of", "unsloth"], 2, "not a format sftgate reads"),
])
def test_check_format_of(cli, tmp_path, argv, code, reason):
    job = tmp_path / "job.yaml"
    job.write_text("model_name_or_path: Qwen/Qwen2.5-0.5B\n")
    result = cli("check", str(job), *argv, "--format", "json", env=BASE_ENV)
    assert result.code == code, reason
    assert "Traceback" not in result.err


def test_check_help_teaches_the_peer_formats(cli):
    result = cli("check", "--help")
    assert result.code == 0 and "--format-of" in result.out and "axolotl" in result.out


def test_not_a_job_config_passes(cli):
    result = cli("check", str(FIXTURES / "peer_configs" / "not_a_job" / "deepspeed_zero3.json"), "--format", "json",
                 env=BASE_ENV)
    assert result.code == 0
    assert [f["rule"] for g in result.report["gates"] for f in g["findings"]] == ["not_a_job_config"]


def test_junit_stays_well_formed_with_control_characters(cli, tmp_path):
    junit = tmp_path / "r.xml"
    result = cli("model-id", "org/bad\x01\x1bname\x7f", "--junit-xml", str(junit), env=BASE_ENV)
    assert result.code == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuite" and root.attrib["failures"] == "1"


# --------------------------------------------------------------------------- fix-model-ids


def test_fix_model_ids_diff_then_write(cli, tmp_path):
    job = tmp_path / "job.json"
    original = '{\n  "model": {"name": "mistralai-Mistral-7B-Instruct", "dtype": "bf16"}\n}\n'
    job.write_text(original)
    pending = cli("fix-model-ids", str(job), env=BASE_ENV)
    assert pending.code == 1, "exit 1 when something would change"
    assert '-  "model": {"name": "mistralai-Mistral-7B-Instruct"' in pending.out
    assert '+  "model": {"name": "mistralai/Mistral-7B-Instruct"' in pending.out
    assert job.read_text() == original, "no --write, no change"
    written = cli("fix-model-ids", str(job), "--write", env=BASE_ENV)
    assert written.code == 0
    assert job.read_text() == original.replace("mistralai-Mistral", "mistralai/Mistral")
    assert (tmp_path / "job.json.bak").read_text() == original
    again = cli("fix-model-ids", str(job), "--format", "json", env=BASE_ENV)
    assert again.code == 0 and rules_of(again) == []


def test_fix_model_ids_json_report(cli, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("base_model: gpt2\nteacher_model_name_or_path: Mistral-7B-v0.1\n")
    result = cli("fix-model-ids", str(job), "--format", "json", env=BASE_ENV)
    assert result.code == 1
    findings = result.report["gates"][0]["findings"]
    assert [(f["rule"], f["severity"], f.get("suggestion")) for f in findings] == [
        ("missing_namespace", "error", "openai-community/gpt2"),
        ("missing_namespace", "warning", "mistralai/Mistral-7B-v0.1"),
    ], "a pending fix is an error; a guess is a warning, never applied"


@pytest.mark.parametrize(("argv", "reason"), [(["/nonexistent/x.yaml"], "missing file"), ([], "no file")])
def test_fix_model_ids_bad_input(cli, argv, reason):
    result = cli("fix-model-ids", *argv)
    assert result.code == 2, reason
    assert "Traceback" not in result.err


# --------------------------------------------------------------------------- triage


# (log, exit code, rules, reason)
TRIAGE_CASES = [
    ("dash_separated_id.log", 1, ["dash_separated_id"], "the postmortem log"),
    ("gated.log", 1, ["gated"], "gated repo"),
    ("too_long.log", 0, ["too_long"], "a warning only"),
    ("clean.log", 0, [], "nothing known"),
]


@pytest.mark.parametrize(("name", "code", "rules", "reason"), TRIAGE_CASES, ids=[c[3] for c in TRIAGE_CASES])
def test_triage(cli, name, code, rules, reason):
    result = cli("triage", str(FIXTURES / "logs" / name), "--format", "json")
    assert result.code == code, reason
    assert rules_of(result) == rules, reason


def test_triage_suggests_the_slash_form(cli):
    result = cli("triage", str(FIXTURES / "logs" / "dash_separated_id.log"), "--format", "json")
    [finding] = result.report["gates"][0]["findings"]
    assert (finding["code"], finding["suggestion"]) == ("MID003", "mistralai/Mistral-7B-Instruct")
    assert finding["location"].endswith("dash_separated_id.log:12")


def test_triage_missing_log_is_exit_2(cli):
    assert cli("triage", "/nonexistent/job.log").code == 2


def test_rules_explains_model_id_rules(cli):
    result = cli("rules", "MID003")
    assert result.code == 0 and "dash_separated_id" in result.out


# --------------------------------------------------------------------------- no heavy imports

_PROBE = """
import json, sys
from sftgate.runners.cli.main import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "transformers", "peft", "datasets", "tokenizers", "huggingface_hub")
               if m in sys.modules)
print("HEAVY=" + json.dumps(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [
    ["model-id", "mistralai-Mistral-7B-Instruct"],
    ["fix-model-ids", str(FIXTURES / "model_id" / "dash_separated_id.json")],
    ["triage", str(FIXTURES / "logs" / "dash_separated_id.log")],
    ["check", str(FIXTURES / "model_id" / "dash_separated_id.json")],
    ["check", str(FIXTURES / "peer_configs" / "axolotl" / "dash_separated_id.yml")],
    ["check", str(FIXTURES / "peer_configs" / "not_a_job" / "accelerate_config.yaml")],
], ids=["model-id", "fix-model-ids", "triage", "check-foreign", "check-axolotl", "check-not-a-job"])
def test_commands_import_no_torch_or_transformers(argv):
    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, cwd=REPO,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_CACHE": "/nonexistent-sftgate-cache"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    heavy = json.loads(proc.stderr.rsplit("HEAVY=", 1)[1])
    assert heavy == [], f"{argv[0]} imported {heavy}"
