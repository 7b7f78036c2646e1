"""sftgate tokenizer --template-kwargs / --inference-template-kwargs / --split-special-tokens, and the config keys."""

from __future__ import annotations

import pytest

NO_THINKING = '{"enable_thinking": false}'


@pytest.mark.parametrize(("family", "args", "code", "rules", "reason"), [
    ("qwen3", ["--data", "clean_messages.jsonl"], 1, ["template_tokens_trained"], "the empty think block is trained"),
    ("qwen3", ["--data", "clean_messages.jsonl", "--template-kwargs", NO_THINKING], 0, [], "non-thinking mode"),
    ("qwen3", ["--data", "clean_messages.jsonl", "--template-kwargs", NO_THINKING, "--inference-template-kwargs", "{}"],
     1, ["template_kwargs_mismatch"], "served in thinking mode"),
    ("tiny", ["--data", "special_token_in_content.jsonl"], 1, ["special_token_in_content"] * 2, "control tokens in text"),
    ("tiny", ["--data", "special_token_in_content.jsonl", "--split-special-tokens"], 0, [], "tokenized as text"),
    ("gemma", ["--data", "record_not_rendered.jsonl"], 1, ["record_not_rendered"], "35% of the data not checked"),
])
def test_tokenizer_command_template_options(cli, folders, fixtures_dir, family, args, code, rules, reason):
    paths = [str(fixtures_dir / "tokenizer" / a) if a.endswith(".jsonl") else a for a in args]
    result = cli("tokenizer", str(folders.base(family)), *paths, "--format", "json")
    assert result.code == code, (reason, result.err)
    assert sorted(result.rules()) == sorted(rules), reason


@pytest.mark.parametrize("value", ["[1]", "{not json", '{"messages": 1}', '{"bad name": 1}'])
def test_bad_template_kwargs_are_usage_errors(cli, folders, value):
    result = cli("tokenizer", str(folders.base("tiny")), "--template-kwargs", value, "--format", "json")
    assert result.code == 2


def test_check_reads_the_template_kwargs_of_the_config(cli, folders, fixtures_dir, tmp_path):
    config = tmp_path / "sftgate.yaml"
    config.write_text(
        f"model:\n  id: Qwen/Qwen3-0.6B\n  tokenizer: {folders.base('qwen3')}\n"
        f"data:\n  train: {fixtures_dir / 'tokenizer' / 'clean_messages.jsonl'}\n"
        "prompt:\n  template_kwargs: {enable_thinking: false}\n  inference_template_kwargs: {enable_thinking: true}\n"
    )
    result = cli("check", str(config), "--format", "json")
    found = [f for g in result.report["gates"] for f in g["findings"] if f["rule"] == "template_kwargs_mismatch"]
    assert [f["location"] for f in found] == [f"{config}:prompt.inference_template_kwargs"]
    assert "template_tokens_trained" not in result.rules()
