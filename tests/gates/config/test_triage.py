"""Triage: known failure messages in job logs map to the gate and rule that would have caught them."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.config import triage
from sftgate.gates.frame.core import InputError
from tests.conftest import FIXTURES

LOGS = FIXTURES / "logs"

# (log fixture, expected [(code, rule, suggestion)], reason)
LOG_CASES = [
    ("dash_separated_id.log", [("MID003", "dash_separated_id", "mistralai/Mistral-7B-Instruct")],
     "the postmortem: RepositoryNotFound and OSError are one failure"),
    ("invalid_repo_id.log", [("MID001", "invalid_repo_id", None)], "HFValidationError, whitespace in the ID"),
    ("local_path_missing.log", [("MID005", "local_path_missing", None)], "a missing checkpoint path"),
    ("url_not_id.log", [("MID004", "url_not_id", "Qwen/Qwen2.5-0.5B-Instruct")], "a URL passed as the ID"),
    ("gated.log", [("MID008", "gated", None)], "three gated messages, one repo"),
    ("not_found.log", [("MID007", "not_found", None)], "a well-formed ID that does not exist"),
    ("revision_not_found.log", [("MID011", "revision_not_found", None)], "'is not a valid git identifier'"),
    ("remote_code.log", [("ART003", "remote_code", None)], "trust_remote_code"),
    ("trailing_text.log", [(None, "trailing_text", None)], "JSONDecodeError: Extra data"),
    ("too_long.log", [("DATA012", "too_long", None)], "sequence longer than the maximum"),
    ("clean.log", [], "a successful run"),
]


@pytest.mark.parametrize(("name", "expected", "reason"), LOG_CASES, ids=[c[0] for c in LOG_CASES])
def test_log_fixture(name, expected, reason):
    findings = list(triage.check(logs=[LOGS / name]))
    got = [(f.code if expected and expected[0][0] else None, f.rule, f.suggestion) for f in findings]
    assert got == expected, reason
    for f in findings:
        assert f.location.startswith(str(LOGS / name) + ":") and f.file_line is not None
        assert f.evidence["gate"] and f.evidence["occurrences"] >= 1


def test_repeats_are_counted_not_repeated():
    [finding] = triage.check(logs=[LOGS / "gated.log"])
    assert finding.evidence["occurrences"] == 3 and finding.file_line == 3


def test_revision_keeps_the_repo_id_when_a_later_line_names_it():
    [finding] = triage.check(logs=[LOGS / "revision_not_found.log"])
    assert finding.evidence["id"] == "Qwen/Qwen2.5-0.5B-Instruct" and finding.evidence["revision"] == "v2.0"


def test_folders_and_gzip(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "job.log").write_text((LOGS / "dash_separated_id.log").read_text())
    with gzip.open(tmp_path / "old.log.gz", "wt") as handle:
        handle.write((LOGS / "gated.log").read_text())
    (tmp_path / "notes.md").write_text("OSError: gpt2-x is not a local folder and is not a valid model identifier")
    metrics: dict = {}
    rules = sorted(f.rule for f in triage.check(logs=[tmp_path], metrics=metrics))
    assert rules == ["dash_separated_id", "gated"], "only log files in a folder are read"
    assert metrics["logs"] == 2 and metrics["lines"] > 20


def test_ansi_colours_are_ignored(tmp_path):
    log = tmp_path / "color.log"
    log.write_text("\x1b[31mOSError: \x1b[0mmistralai-Mistral-7B is not a local folder and is not a valid model "
                   "identifier listed on 'https://huggingface.co/models'\n")
    [finding] = triage.check(logs=[log])
    assert (finding.rule, finding.suggestion) == ("dash_separated_id", "mistralai/Mistral-7B")


@pytest.mark.parametrize("paths", [["/nonexistent/job.log"], []], ids=["missing file", "empty folder"])
def test_missing_logs_are_input_errors(tmp_path, paths):
    with pytest.raises(InputError):
        triage.resolve_logs(paths or [tmp_path])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=10))
def test_any_text_never_raises(lines):
    for _number, _line, hit in triage.scan_lines(lines):
        assert hit.gate and hit.rule


# (log text, expected [(rule, line, severity)], reason)
WORDINGS = [
    ("OSError: acme-corp-llama-3-8b is not a local folder or a valid repository name on 'https://hf.co'.\n",
     [("dash_separated_id", 1, "error")], "transformers 5.x wording; an unknown org is still an error"),
    ("OSError: meta-llama/Llama-3.1-8B is a gated repository. Make sure to request access at "
     "https://huggingface.co/meta-llama/Llama-3.1-8B and pass a token\n", [("gated", 1, "error")], "5.x gated wording"),
    ("step 1\n" + "".join(f"{i}%|##\r" for i in range(0, 100, 10)) + "\nOSError: mistralai-Mistral-7B is not a local "
     "folder and is not a valid model identifier listed on 'https://huggingface.co/models'\n",
     [("dash_separated_id", 3, "error")], "a bare \\r (a progress bar) is not a line break"),
    ("OSError: mistralai-Mistral-7B-Instruct is not a local folder and is not a valid model\nidentifier listed on 'x'\n",
     [("dash_separated_id", 1, "error")], "wrapped at a space"),
    ("OSError: mistralai-Mistral-7B-Instruct is not a loc\nal folder and is not a valid model identifier\n",
     [("dash_separated_id", 1, "error")], "cut in the middle of a word"),
    ("loading\n2025-03-14 02:11:08 ERROR train.py:88 OSError: mistralai-Mistral-7B-Ins\ntruct is not a local folder "
     "and is not a valid model identifier\n", [("dash_separated_id", 2, "error")], "cut inside the ID, at column 80"),
    ("loading base model\nmistralai-Mistral-7B is not a local folder and is not a valid model identifier\n",
     [("dash_separated_id", 2, "error")], "an ID at the start of a line after a short one: not joined"),
]


@pytest.mark.parametrize(("text", "expected", "reason"), WORDINGS, ids=[w[2] for w in WORDINGS])
def test_wordings_line_breaks_and_wraps(tmp_path, text, expected, reason):
    log = tmp_path / "job.log"
    log.write_bytes(text.encode())
    findings = list(triage.check(logs=[log]))
    assert [(f.rule, f.file_line, f.severity.value) for f in findings] == expected, reason


def test_a_guess_in_a_failed_load_keeps_its_readings(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("OSError: replit-replit-code-v1-3b is not a local folder and is not a valid model identifier\n")
    [finding] = triage.check(logs=[log])
    assert (finding.rule, finding.severity.value, finding.suggestion) == ("dash_separated_id", "error",
                                                                           "replit/replit-code-v1-3b")
    assert finding.evidence["confident"] is False and "replit/replit-code-v1-3b" in finding.evidence["candidates"]
