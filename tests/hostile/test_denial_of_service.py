"""Bad input cannot hang sftgate or take the machine's memory: every loop over user data is bounded.

Memory is the peak RSS of the sftgate child process itself (``ru_maxrss`` from ``wait4``, see
:func:`tests.hostile.conftest.run_watched`); a plain command peaks at 20-60 MB here.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

from sftgate.gates.readers.jsonl_reader import MAX_RECORD_BYTES
from tests.conftest import FIXTURES, run_cli
from tests.hostile.conftest import ALIAS_BOMB, assert_no_bug, assert_user_error, run_watched

TRAIN = str(FIXTURES / "data" / "clean_prompt_completion.jsonl")
MESSAGES = str(FIXTURES / "data" / "clean_messages.jsonl")


def test_a_yaml_alias_bomb_is_refused_fast_and_small(tmp_path: Path) -> None:
    bomb = tmp_path / "sftgate.yaml"
    bomb.write_text(ALIAS_BOMB)  # 9^9 values once expanded
    for argv in (("check", str(bomb)), ("fix-model-ids", str(bomb)),
                 ("json-check", str(FIXTURES / "strict_json" / "clean.jsonl"), "--schema", str(bomb))):
        run = run_watched(*argv, timeout=20)
        assert_user_error(run)
        assert run.seconds < 10 and run.rss_mb < 150, (argv[0], run.seconds, run.rss_mb)


@pytest.mark.parametrize("argv", [("check", "/dev/zero"), ("data", "/dev/zero"), ("json-check", "/dev/zero", "--schema",
                                  str(FIXTURES / "strict_json" / "schema.json")), ("triage", "/dev/zero")])
def test_dev_zero_as_input_is_an_error_in_bounded_memory(argv: tuple[str, ...]) -> None:
    if not Path("/dev/zero").is_char_device():
        pytest.skip("/dev/zero is not a character device on this machine")
    run = run_watched(*argv, timeout=30)
    assert_no_bug(run)
    assert run.code in (0, 2) and run.seconds < 15 and run.rss_mb < 300, (run.code, run.seconds, run.rss_mb)


def test_a_fifo_nobody_writes_is_given_up_on(tmp_path: Path) -> None:
    fifo = tmp_path / "train.jsonl"
    os.mkfifo(fifo)
    run = run_watched("data", str(fifo), timeout=20, env={"SFTGATE_INPUT_WAIT": "0.5"})
    assert_user_error(run)
    assert run.seconds < 10


def test_a_fifo_with_data_is_read_like_a_file(tmp_path: Path) -> None:
    fifo = tmp_path / "train.jsonl"
    os.mkfifo(fifo)
    shell = f"& p=$!; cat {TRAIN} > {fifo}; wait $p"  # the writer comes after sftgate waits
    run = run_watched("data", str(fifo), "--eval", str(fifo), "--format", "json", timeout=30, shell_suffix=shell)
    assert run.code == 1, run.out[-500:]  # eval is train: every eval record leaks (it was read twice, once)
    report = json.loads(run.out)
    rules = {f["rule"] for g in report["gates"] for f in g["findings"]}
    assert "eval_leak_exact" in rules


def test_one_huge_record_in_eval_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    huge = tmp_path / "eval.jsonl"
    with huge.open("w") as out:
        out.write('{"prompt": "a b c", "completion": "d"}\n')
        out.write('{"prompt": "' + "word " * (8 * MAX_RECORD_BYTES // 5) + '", "completion": "x"}\n')
    run = run_watched("data", TRAIN, "--eval", str(huge), "--format", "json", timeout=30)
    assert run.code == 1  # the huge line is a finding: over the record bound
    assert run.rss_mb < 250, run.rss_mb  # a 64 MB record, never held: not the 9 GB it once took
    report = json.loads(run.out)
    issues = [f for g in report["gates"] for f in g["findings"] if f["rule"] == "invalid_json_line"]
    assert [f.get("evidence", {}).get("reason") for f in issues] == ["too_large"]


def test_a_gzip_bomb_in_triage_stays_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "job.log.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:  # 256 KB that inflate to 256 MB, one endless line
        for _ in range(256):
            out.write(b"\0" * (1 << 20))
    run = run_watched("triage", str(bomb), timeout=30)
    assert run.code == 0 and run.rss_mb < 150, (run.code, run.rss_mb)


def test_a_gzip_log_past_the_decompression_bound_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sftgate.gates.config import triage

    monkeypatch.setattr(triage, "MAX_DECOMPRESSED", 1 << 20)
    bomb = tmp_path / "job.log.gz"
    bomb.write_bytes(gzip.compress(b"a line\n" * (1 << 19)))
    assert_user_error(run_cli("triage", str(bomb)))


# --------------------------------------------------------------------------- chat templates


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures.tokenizers import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tok"))


TEMPLATES = {
    "nested loops": "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "a huge constant": "{{ 'x' * 10**10 }}",
    "a huge runtime product": "{% set n = 10**10 %}{{ 'x' * n }}",
    "a huge filter argument": "{{ 'x'|center(2000000000) }}",
    "endless recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "a huge power": "{{ 9 ** 99999999 }}",
    "a huge constant in a generation block": "{% generation %}{{ 'x' * 10**10 }}{% endgeneration %}",
}


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_a_hostile_chat_template_cannot_hang_the_tokenizer_gates(name: str, tiny_tokenizer: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from sftgate.gates.tokenizer import render_limits

    monkeypatch.setattr(render_limits, "RENDER_SECONDS", 1.0)
    folder = tmp_path / "tok"
    shutil.copytree(tiny_tokenizer, folder)
    body = "{% for m in messages %}{{ m.content }}{% endfor %}"
    (folder / "chat_template.jinja").write_text(TEMPLATES[name] + body)
    result = run_cli("tokenizer", str(folder), "--data", MESSAGES, "--format", "json")
    assert_no_bug(result)
    assert result.code in (1, 2)
    if result.code == 1:
        rules = {f["rule"] for g in result.report["gates"] for f in g["findings"]}
        assert rules & {"record_not_rendered", "template_error"}, rules


def test_a_schema_pattern_that_backtracks_is_exit_2_not_a_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sftgate.gates.adapter import schema_regex

    monkeypatch.setattr(schema_regex, "PATTERN_SECONDS", 0.1)
    schema = tmp_path / "schema.json"
    outputs = tmp_path / "outputs.jsonl"
    for name, node in (("pattern", {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a|a)*$"}}}),
                       ("patternProperties", {"type": "object", "patternProperties": {"^(a|aa)+$": {}},
                                              "additionalProperties": False})):
        schema.write_text(json.dumps(node))
        value = "a" * 60 + "!"
        outputs.write_text(json.dumps({"id": "c1", "output": json.dumps({"a": value, value: 1})}) + "\n")
        result = run_cli("json-check", str(outputs), "--schema", str(schema))
        assert_no_bug(result)
        assert result.code == 2, (name, result.out[-400:])
