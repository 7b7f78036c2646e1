"""Gate eos: one fixture per rule for each tokenizer family where it applies, plus clean ones."""

from __future__ import annotations

import pytest

from fixtures.tokenizers import NO_EOS_TEMPLATE
from sftgate.gates.frame.core import GateSkipped, Severity, Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.readers.config import load as load_config
from sftgate.gates.tokenizer import eos
from sftgate.gates.tokenizer.rendering import PromptSpec

DATA = "tokenizer"


def run(folders, fixtures_dir, family, variant=None, data=None, **kwargs):
    folder = folders.variant(family, **variant) if variant else folders.base(family)
    if data is not None:
        kwargs["data"] = fixtures_dir / DATA / data
    return run_gate("eos", Stage.TOKENIZER, eos.check, tokenizer=folder, **kwargs)


FAMILIES = ["tiny", "mistral_v3", "tekken", "llama3"]

CASES = [
    # (id, family, variant, data, kwargs, expected rules, reason)
    *[(f"clean-{f}", f, None, None, {}, [], "the clean template ends turns with a trained, stopping token") for f in FAMILIES],
    *[(f"clean-messages-{f}", f, None, "clean_messages.jsonl", {}, [], "clean chat data") for f in FAMILIES],
    *[(f"clean-pc-{f}", f, None, "clean_prompt_completion.jsonl", {}, [], "clean prompt/completion data") for f in FAMILIES],
    ("no-eos-token-tiny", "tiny", {"eos_token": None}, None, {}, ["no_eos_token"], "tokenizer_config has no eos_token"),
    ("no-eos-token-llama3", "llama3", {"eos_token": None}, None, {}, ["no_eos_token"], "tokenizer_config has no eos_token"),
    *[(f"eos-not-appended-{f}", f, {"template": t}, None, {}, ["eos_not_appended"], "template does not close the turn (probe)")
      for f, t in NO_EOS_TEMPLATE.items()],
    *[(f"eos-not-appended-data-{f}", f, {"template": t}, "clean_messages.jsonl", {}, ["eos_not_appended"],
       "every record's last trained token is content: one cause, reported once at the template")
      for f, t in NO_EOS_TEMPLATE.items()],
    ("eos-masked-mistral", "mistral_v3", None, None, {"collator": "mask_pad"}, ["eos_masked"], "no pad token: pad == eos == </s>"),
    ("eos-masked-tekken", "tekken", None, None, {"collator": "mask_pad"}, ["eos_masked"], "no pad token: pad == eos == </s>"),
    ("eos-masked-data-mistral", "mistral_v3", None, "clean_messages.jsonl", {"collator": "mask_pad"}, ["eos_masked"] * 4,
     "every record's </s> label is masked"),
    ("eos-masked-pc-llama3", "llama3", None, "clean_prompt_completion.jsonl", {"collator": "mask_pad"}, ["eos_masked"] * 3,
     "pad == eos == <|end_of_text|>, appended to plain completions"),
    ("eos-masked-pc-tiny", "tiny", {"pad_token": "</s>"}, "clean_prompt_completion.jsonl", {"collator": "mask_pad"},
     ["eos_masked"] * 3, "pad_equals_eos tiny tokenizer"),
    ("mask-pad-distinct-pad-tiny", "tiny", None, "clean_prompt_completion.jsonl", {"collator": "mask_pad"}, [],
     "mask_pad is harmless with a distinct pad token"),
    ("mask-pad-llama3-chat", "llama3", None, "clean_messages.jsonl", {"collator": "mask_pad"}, [],
     "Llama 3 chat ends with <|eot_id|>, not the pad (= <|end_of_text|>)"),
    *[(f"eos-truncated-{f}", f, None, "eos_truncated.jsonl", {"max_seq_len": 64}, ["eos_truncated"], "one example is over 64 tokens")
      for f in FAMILIES],
    ("eos-not-in-stop-ids-llama3", "llama3", {"generation_eos": 128001}, None, {}, ["eos_not_in_stop_ids"],
     "stop ids lack <|eot_id|>"),
    ("eos-not-in-stop-ids-llama3-no-config", "llama3", {"generation_eos": None}, None, {}, ["eos_not_in_stop_ids"],
     "no generation_config.json: generation stops on <|end_of_text|> only"),
    ("eos-not-in-stop-ids-tiny", "tiny", {"generation_eos": 2}, "clean_messages.jsonl", {}, ["eos_not_in_stop_ids"],
     "stop ids lack <|im_end|>"),
    ("stop-ids-mistral-no-config", "mistral_v3", {"generation_eos": None}, None, {}, [],
     "Mistral ends turns with EOS itself: the tokenizer's eos is enough"),
    ("clean-no-system-role-tiny", "tiny", {"template": "chatml_no_system_role.jinja"}, None, {}, [],
     "a template that refuses a system role (Gemma style) is not an error"),
    ("stop-token-not-trained-llama3", "llama3", {"template": "llama3_final_eos.jinja"}, None, {}, ["stop_token_not_trained"],
     "the last turn ends with <|end_of_text|>, earlier turns with <|eot_id|>"),
]


@pytest.mark.parametrize(("family", "variant", "data", "kwargs", "expected", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_eos_rules(folders, fixtures_dir, family, variant, data, kwargs, expected, reason):
    result = run(folders, fixtures_dir, family, variant, data, **kwargs)
    assert result.status is not Status.ERROR, result.reason
    assert sorted(f.rule for f in result.findings) == sorted(expected), reason
    assert result.status is (Status.FAIL if expected else Status.PASS), reason
    codes = {rule.name: rule.code for rule in eos.RULES}
    assert all(f.code == codes[f.rule] for f in result.findings)


def test_findings_point_at_the_file_to_fix(folders, fixtures_dir):
    llama = run(folders, fixtures_dir, "llama3", {"generation_eos": 128001})
    (finding,) = llama.findings
    assert finding.location.endswith("generation_config.json:eos_token_id")
    assert finding.suggestion == '"eos_token_id": [128001, 128009]'
    data = run(folders, fixtures_dir, "mistral_v3", {"template": "mistral_v3_no_eos.jinja"}, "clean_messages.jsonl")
    (template,) = data.findings
    assert template.location.endswith("chat_template.jinja") and template.suggestion
    assert template.evidence["records_affected"] == 4


def test_generation_config_argument_overrides_the_folder(folders, fixtures_dir):
    broken = fixtures_dir / DATA / "eos_not_in_stop_ids.generation_config.json"
    result = run(folders, fixtures_dir, "llama3", generation_config=broken)
    assert [f.rule for f in result.findings] == ["eos_not_in_stop_ids"]
    assert result.findings[0].location.startswith(str(broken))


def test_eos_truncated_is_counted_and_can_be_tolerated(folders, fixtures_dir):
    strict = run(folders, fixtures_dir, "tiny", data="eos_truncated.jsonl", max_seq_len=64)
    (finding,) = strict.findings
    assert finding.evidence["count"] == 1 and finding.evidence["total"] == 2 and finding.evidence["share"] == 0.5
    assert strict.metrics["eos_truncated_share"] == 0.5
    tolerated = run(folders, fixtures_dir, "tiny", data="eos_truncated.jsonl", max_seq_len=64, max_truncated_share=0.5)
    assert tolerated.findings[0].severity is Severity.WARNING
    assert tolerated.status is Status.PASS


def test_many_failures_are_summarised(folders, tmp_path):
    data = tmp_path / "many.jsonl"
    data.write_text('{"prompt": "Q", "completion": " A"}\n' * 30)
    result = run_gate("eos", Stage.TOKENIZER, eos.check, tokenizer=folders.base("mistral_v3"), data=data, collator="mask_pad")
    assert [f.rule for f in result.findings] == ["eos_masked"] * (eos.MAX_FINDINGS + 1)
    assert result.findings[-1].evidence["count"] == 30
    assert result.metrics["counts"]["eos_masked"] == 30


def test_unknown_collator_is_an_input_error(folders):
    result = run_gate("eos", Stage.TOKENIZER, eos.check, tokenizer=folders.base("tiny"), collator="nope")
    assert result.status is Status.ERROR and result.error_exit_code == 2


def test_missing_data_file_is_an_input_error(folders, tmp_path):
    result = run_gate("eos", Stage.TOKENIZER, eos.check, tokenizer=folders.base("tiny"), data=tmp_path / "nope.jsonl")
    assert result.status is Status.ERROR and result.error_exit_code == 2


def test_spec_chat_template_overrides_the_folder(folders):
    from fixtures.tokenizers import template_text

    spec = PromptSpec(chat_template=template_text("chatml_no_eos.jinja"))
    result = run_gate("eos", Stage.TOKENIZER, eos.check, tokenizer=folders.base("tiny"), spec=spec)
    assert [f.rule for f in result.findings] == ["eos_not_appended"]
    assert result.findings[0].location == "prompt.chat_template"


# --------------------------------------------------------------------------- from_config


def write_config(tmp_path, text):
    path = tmp_path / "sftgate.yaml"
    path.write_text(text)
    return load_config(path)


def test_from_config_uses_model_tokenizer_and_train_settings(folders, fixtures_dir, tmp_path):
    folder = folders.base("mistral_v3")
    cfg = write_config(tmp_path, f"""
model: {{id: mistralai/Mistral-7B-Instruct-v0.3, tokenizer: {folder}}}
data: {{train: {fixtures_dir / DATA / 'clean_messages.jsonl'}}}
train: {{max_seq_len: 64, collator: mask_pad}}
""")
    kwargs = eos.from_config(cfg)
    assert kwargs["tokenizer"] == folder and kwargs["collator"] == "mask_pad" and kwargs["max_seq_len"] == 64
    result = run_gate("eos", Stage.TOKENIZER, eos.check, **kwargs)
    assert sorted({f.rule for f in result.findings}) == ["eos_masked"]


def test_from_config_uses_a_local_model_folder(folders, tmp_path):
    cfg = write_config(tmp_path, f"model: {{id: {folders.base('tiny')}}}\n")
    assert eos.from_config(cfg)["tokenizer"] == folders.base("tiny")


def test_from_config_skips_when_no_tokenizer_is_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = write_config(tmp_path, "model: {id: acme-nonexistent/never-cached-model-xyz}\n")
    with pytest.raises(GateSkipped, match="no tokenizer available offline"):
        eos.from_config(cfg)


def test_from_config_missing_local_tokenizer_is_a_config_error(tmp_path):
    from sftgate.gates.frame.core import ConfigError

    cfg = write_config(tmp_path, "model: {id: org/name, tokenizer: ./no-such-folder}\n")
    with pytest.raises(ConfigError):
        eos.from_config(cfg)
