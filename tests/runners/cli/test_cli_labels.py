"""sftgate labels DATA --tokenizer DIR: exit codes, the JSON report, JUnit, --show."""

from __future__ import annotations

import pytest

from fixtures import tokenized
from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached


@pytest.fixture(scope="module")
def tiny(folders):
    return folders.base("tiny")


def write(tiny, tmp_path, rule=None, name="d.parquet"):
    tok = load_tokenizer_cached(tiny)
    rows = tokenized.broken_rows(rule, tok) if rule else tokenized.clean_rows(tok)
    return tokenized.write_rows(rows, tmp_path / name)


def test_clean_data_passes(cli, tiny, tmp_path):
    result = cli("labels", str(write(tiny, tmp_path)), "--tokenizer", str(tiny), "--format", "json")
    assert result.code == 0 and result.statuses() == {"labels": "pass"}


def test_a_failure_is_exit_1_with_junit(cli, tiny, tmp_path):
    junit = tmp_path / "labels.xml"
    result = cli("labels", str(write(tiny, tmp_path, "eos_masked")), "--tokenizer", str(tiny), "--format", "json",
                 "--junit-xml", str(junit))
    assert result.code == 1 and result.rules() == ["eos_masked"]
    assert "eos_masked" in junit.read_text()


def test_show_prints_the_token_view_of_problem_rows(cli, tiny, tmp_path):
    result = cli("labels", str(write(tiny, tmp_path, "eos_masked")), "--tokenizer", str(tiny), "--show", "1")
    assert result.code == 1
    assert "EOS/end of turn MASKED" in result.out and "assistant turn 1 starts" in result.out


def test_allow_prompt_training_passes_with_a_warning(cli, tiny, tmp_path):
    data = str(write(tiny, tmp_path, "prompt_trained"))
    assert cli("labels", data, "--tokenizer", str(tiny)).code == 1
    allowed = cli("labels", data, "--tokenizer", str(tiny), "--allow-prompt-training", "--format", "json")
    assert allowed.code == 0 and allowed.rules() == ["prompt_trained"]


@pytest.mark.parametrize("args", [
    ["missing.jsonl", "--tokenizer", "TOK"],
    ["DATA", "--tokenizer", "missing-tokenizer"],
    ["DATA", "--tokenizer", "TOK", "--model", "missing-model"],
])
def test_bad_paths_are_exit_2(cli, tiny, tmp_path, args):
    data = str(write(tiny, tmp_path))
    argv = [str(tmp_path / a) if a.startswith("missing") else data if a == "DATA" else str(tiny) if a == "TOK" else a
            for a in args]
    result = cli("labels", *argv)
    assert result.code == 2 and "Traceback" not in result.err


def test_help_lists_the_rules(cli):
    result = cli("labels", "--help")
    assert result.code == 0 and "packing_leak" in result.out and "--tokenizer" in result.out
