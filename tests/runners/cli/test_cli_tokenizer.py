"""sftgate tokenizer DIR, and the tokenizer gates inside sftgate check."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DATA = "tokenizer"


@pytest.mark.parametrize(("variant", "args", "code", "rules", "reason"), [
    (None, [], 0, [], "a clean tokenizer folder"),
    (None, ["--data", "clean_messages.jsonl", "--cases", "cases.jsonl"], 0, [], "clean data and cases"),
    (None, ["--data", "prompt_not_prefix.jsonl"], 1, ["prompt_not_prefix"] * 2, "trailing spaces"),
    (None, ["--data", "eos_truncated.jsonl", "--max-seq-len", "64"], 1, ["eos_truncated"], "truncation cuts EOS"),
    (None, ["--cases", "cases.jsonl", "--system", "Be brief.", "--no-inference-system"], 1, ["template_mismatch"] * 2,
     "system prompt in training only"),
    (None, ["--cases", "cases.jsonl", "--inference-system", "Be brief."], 1, ["template_mismatch"] * 2,
     "system prompt at inference only"),
    ({"pad_token": "</s>"}, ["--data", "clean_prompt_completion.jsonl", "--collator", "mask_pad"], 1, ["eos_masked"] * 3,
     "pad == eos with the pad-masking collator"),
    ({"generation_eos": 2}, [], 1, ["eos_not_in_stop_ids"], "stop ids lack <|im_end|>"),
    ({"template": "chatml_no_eos.jinja"}, [], 1, ["eos_not_appended"], "template without end of turn"),
    ({"template": "chatml_default_system.jinja"}, [], 1, ["implicit_system_prompt"], "a default system prompt"),
])
def test_tokenizer_command(cli, folders, fixtures_dir, variant, args, code, rules, reason):
    folder = folders.variant("tiny", **variant) if variant else folders.base("tiny")
    paths = [str(fixtures_dir / DATA / a) if a.endswith(".jsonl") else a for a in args]
    result = cli("tokenizer", str(folder), *paths, "--format", "json")
    assert result.code == code, (reason, result.err)
    assert sorted(result.rules()) == sorted(rules), reason
    assert set(result.statuses()) == {"prompt-alignment", "eos"}


def test_chat_template_options(cli, folders, fixtures_dir):
    template = fixtures_dir / "templates"
    broken = cli("tokenizer", str(folders.base("tiny")), "--chat-template", str(template / "chatml_no_eos.jinja"), "--format", "json")
    assert broken.code == 1 and broken.rules() == ["eos_not_appended"]
    serving = cli("tokenizer", str(folders.base("tiny")), "--cases", str(fixtures_dir / DATA / "cases.jsonl"),
                  "--inference-chat-template", str(template / "chatml_edited.jinja"), "--format", "json")
    assert serving.code == 1 and serving.rules() == ["template_mismatch"] * 3


def test_generation_config_option(cli, folders, fixtures_dir):
    result = cli("tokenizer", str(folders.base("llama3")), "--generation-config",
                 str(fixtures_dir / DATA / "eos_not_in_stop_ids.generation_config.json"), "--format", "json")
    assert result.code == 1 and result.rules() == ["eos_not_in_stop_ids"]


@pytest.mark.parametrize(("fmt", "on_stdout"), [("table", True), ("json", False)])
def test_show_prints_the_token_view(cli, folders, fixtures_dir, fmt, on_stdout):
    result = cli("tokenizer", str(folders.base("tiny")), "--data", str(fixtures_dir / DATA / "clean_messages.jsonl"),
                 "--show", "1", "--format", fmt)
    assert result.code == 0
    assert ("TRAINED" in result.out) is on_stdout and ("TRAINED" in result.err) is not on_stdout
    if fmt == "json":
        json.loads(result.out)  # stdout stays one JSON document


def test_show_without_data_uses_the_probe(cli, folders):
    result = cli("tokenizer", str(folders.base("mistral_v3")), "--show", "1", "--collator", "mask_pad")
    assert result.code == 1
    assert "probe (no --data)" in result.out and "MASKED" in result.out


@pytest.mark.parametrize(("args", "reason"), [
    (["{missing}"], "the folder does not exist"),
    (["{tiny}", "--data", "{missing}"], "the data file does not exist"),
    (["{tiny}", "--cases", "{missing}"], "the cases file does not exist"),
    (["{tiny}", "--chat-template", "{missing}"], "the template file does not exist"),
    (["{tiny}", "--max-seq-len", "0"], "max-seq-len must be positive"),
    (["{tiny}", "--inference-system", "x", "--no-inference-system"], "exclusive options"),
])
def test_bad_input_exits_2_without_traceback(cli, folders, tmp_path, args, reason):
    values = {"missing": str(tmp_path / "missing"), "tiny": str(folders.base("tiny"))}
    result = cli("tokenizer", *[a.format(**values) for a in args])
    assert result.code == 2, reason
    assert "Traceback" not in result.err, reason


def test_check_runs_the_tokenizer_gates_from_the_config(cli, folders, fixtures_dir, tmp_path):
    config = tmp_path / "sftgate.yaml"
    config.write_text(f"""
model: {{id: mistralai/Mistral-7B-Instruct-v0.3, tokenizer: {folders.base('mistral_v3')}}}
data: {{train: {fixtures_dir / DATA / 'clean_messages.jsonl'}, cases: {fixtures_dir / DATA / 'cases.jsonl'}}}
prompt: {{system: "Answer briefly.", inference_system: null}}
train: {{max_seq_len: 512, collator: mask_pad}}
gates: {{skip: [model-id, dataset-schema, split-isolation]}}
""")
    result = cli("check", str(config), "--format", "json")
    assert result.code == 1, result.err
    statuses = result.statuses()
    assert statuses["prompt-alignment"] == "fail" and statuses["eos"] == "fail"
    assert set(result.rules()) == {"template_mismatch", "eos_masked"}


def test_check_skips_the_tokenizer_gates_when_no_tokenizer_is_offline(cli, tmp_path):
    config = tmp_path / "sftgate.yaml"
    config.write_text("model: {id: acme-nonexistent/never-cached-xyz}\ngates: {skip: [model-id]}\n")
    result = cli("check", str(config), "--format", "json")
    statuses = result.statuses()
    assert statuses["prompt-alignment"] == "skip" and statuses["eos"] == "skip"
    reasons = [g.get("reason", "") for g in result.report["gates"] if g["gate"] in ("eos", "prompt-alignment")]
    assert all("no tokenizer available offline" in r for r in reasons)


def test_help_does_not_import_transformers():
    code = ("import sys, io; from sftgate.runners.cli.main import main; "
            "main(['tokenizer', '--help'], io.StringIO(), io.StringIO(), {}); "
            "assert 'transformers' not in sys.modules and 'torch' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("template", "pad_equals_eos", "args", "rules", "reason"), [
    ("chatml", False, [], [], "the demo's tiny tokenizer passes both gates"),
    ("mistral", False, [], [], "tiny Mistral-format tokenizer"),
    ("llama3", False, [], [], "tiny Llama-3-format tokenizer, stop ids include <|eot_id|>"),
    ("mistral", True, ["--collator", "mask_pad"], ["eos_masked"], "pad_equals_eos + mask_pad masks </s>"),
    ("mistral", True, [], [], "pad_equals_eos alone is harmless with completion_only"),
])
def test_build_tiny_tokenizer(cli, tmp_path, template, pad_equals_eos, args, rules, reason):
    from sftgate.runners.demo.tiny_tokenizer import build_tiny_tokenizer

    folder = build_tiny_tokenizer(tmp_path / "tok", corpus=["Extract the name: Ada"], template=template,
                                  pad_equals_eos=pad_equals_eos)
    assert {p.name for p in folder.iterdir()} >= {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                                                   "generation_config.json"}
    result = cli("tokenizer", str(folder), *args, "--format", "json")
    assert result.rules() == rules, reason
    assert result.code == (1 if rules else 0), reason


def test_build_tiny_tokenizer_rejects_an_unknown_template(tmp_path):
    from sftgate.runners.demo.tiny_tokenizer import build_tiny_tokenizer

    with pytest.raises(ValueError):
        build_tiny_tokenizer(tmp_path / "tok", template="nope")
