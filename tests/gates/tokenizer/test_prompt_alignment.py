"""Gate prompt-alignment: one fixture per rule for each tokenizer family where it applies, plus clean ones."""

from __future__ import annotations

import pytest

from fixtures.tokenizers import template_text
from sftgate.gates.frame.core import Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.readers.config import load as load_config
from sftgate.gates.tokenizer import prompt_alignment, prompt_comparison
from sftgate.gates.tokenizer.rendering import PromptSpec
from tests.gates.tokenizer.alignment_run import assert_rules, run

DATA = "tokenizer"
FAMILIES = ["tiny", "mistral_v3", "tekken", "llama3"]


TRAIN_SYSTEM = {"spec": PromptSpec(system="Answer briefly."), "inference_spec": PromptSpec()}
INFER_SYSTEM = {"spec": PromptSpec(), "inference_spec": PromptSpec(system="Answer briefly.")}

CASES = [
    # (id, family, variant, data, cases, kwargs, expected rules, reason)
    *[(f"clean-{f}", f, None, None, None, {}, [], "a clean template, nothing else") for f in FAMILIES],
    *[(f"clean-messages-{f}", f, None, "clean_messages.jsonl", "cases.jsonl", {}, [], "clean chat data and cases") for f in FAMILIES],
    *[(f"clean-pc-{f}", f, None, "clean_prompt_completion.jsonl", None, {}, [], "prompts without trailing space") for f in FAMILIES],
    ("clean-system-both-sides", "tiny", None, None, "cases.jsonl",
     {"spec": PromptSpec(system="S"), "inference_spec": PromptSpec(system="S")}, [], "the same system prompt on both sides"),
    *[(f"prompt-not-prefix-{f}", f, None, "prompt_not_prefix.jsonl", None, {}, ["prompt_not_prefix"] * 2,
       "a trailing space moves the token boundary") for f in FAMILIES],
    ("prompt-not-prefix-template-mistral", "mistral_v3", {"template": "mistral_v3_system_last_user.jinja"}, None, None, {},
     ["prompt_not_prefix"], "the system prompt is rendered only when the user turn is last (probe)"),
    ("prompt-not-prefix-template-data-mistral", "mistral_v3", {"template": "mistral_v3_system_last_user.jinja"},
     "clean_messages.jsonl", None, {}, ["prompt_not_prefix"] * 2, "record 2 has a system prompt; plus the template finding"),
    ("double-bos-mistral", "mistral_v3", None, "double_bos.jsonl", None, {}, ["double_bos"], "<s> in the text + the tokenizer's BOS"),
    ("double-bos-llama3", "llama3", None, "double_bos_llama3.jsonl", None, {}, ["double_bos"], "<|begin_of_text|> twice"),
    ("double-bos-template-mistral", "mistral_v3", None, "clean_prompt_completion.jsonl", None,
     {"spec": PromptSpec(template="<s>[INST] {prompt}[/INST]")}, ["double_bos"] * 3, "prompt.template writes <s>"),
    ("double-bos-cases-mistral", "mistral_v3", None, None, "cases_plain.jsonl",
     {"spec": PromptSpec(template="<s>{prompt}")}, ["double_bos"], "the inference prompt of the case"),
    *[(f"template-mismatch-train-system-{f}", f, None, None, "cases.jsonl", TRAIN_SYSTEM, ["template_mismatch"] * 2,
       "system prompt in training only") for f in FAMILIES],
    ("template-mismatch-infer-system", "tiny", None, None, "cases.jsonl", INFER_SYSTEM, ["template_mismatch"] * 2,
     "system prompt at inference only"),
    ("template-mismatch-edited", "tiny", None, None, "cases.jsonl",
     {"inference_spec": PromptSpec(chat_template=template_text("chatml_edited.jinja"))}, ["template_mismatch"] * 3,
     "an edited template: its hash and both cases' renderings differ"),
    ("template-mismatch-no-generation-prompt-inference", "tiny", None, None, "cases.jsonl",
     {"inference_spec": PromptSpec(chat_template=template_text("chatml_no_generation_prompt.jinja"))},
     ["template_mismatch"] * 4, "hash + the inference template ignores add_generation_prompt + both cases"),
    ("template-mismatch-no-generation-prompt-training", "tiny", {"template": "chatml_no_generation_prompt.jinja"}, None, None,
     {}, ["template_mismatch"], "the training template ignores add_generation_prompt"),
    ("template-mismatch-case-format", "tiny", None, "clean_messages.jsonl", "cases_plain.jsonl", {}, ["template_mismatch"],
     "a plain-prompt case for a model trained on chat messages"),
    ("template-mismatch-data-sample", "llama3", None, "clean_messages.jsonl", None, TRAIN_SYSTEM, ["template_mismatch"] * 3,
     "no cases: training records are compared instead (one already has its own system prompt)"),
    ("implicit-system-prompt", "tiny", {"template": "chatml_default_system.jinja"}, None, None, {}, ["implicit_system_prompt"],
     "the template injects a default system prompt"),
    ("implicit-system-prompt-data", "tiny", {"template": "chatml_default_system.jinja"}, "clean_messages.jsonl", None, {},
     ["implicit_system_prompt"], "records without a system prompt get the default"),
    ("implicit-system-prompt-explicit", "tiny", {"template": "chatml_default_system.jinja"}, "clean_messages.jsonl", None,
     {"spec": PromptSpec(system="S")}, [], "an explicit system prompt: the default is never used"),
    ("clean-no-system-role", "tiny", {"template": "chatml_no_system_role.jinja"}, None, None, {}, [],
     "a template that refuses a system role (Gemma style) is not an error"),
    ("implicit-system-prompt-inference", "tiny", None, None, None,
     {"inference_spec": PromptSpec(chat_template=template_text("chatml_default_system.jinja"))},
     ["template_mismatch", "implicit_system_prompt"], "the serving template injects one"),
]


@pytest.mark.parametrize(("family", "variant", "data", "cases", "kwargs", "expected", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_prompt_alignment_rules(folders, fixtures_dir, family, variant, data, cases, kwargs, expected, reason):
    assert_rules(run(folders, fixtures_dir, family, variant, data, cases, **kwargs), expected, reason)


def test_prompt_not_prefix_shows_the_tokens_on_both_sides(folders, fixtures_dir):
    result = run(folders, fixtures_dir, "mistral_v3", data="prompt_not_prefix.jsonl")
    finding = result.findings[0]
    assert finding.location.endswith("prompt_not_prefix.jsonl:1")
    evidence = finding.evidence
    offset = evidence["position"] - evidence["from"]
    assert evidence["prompt_tokens"][offset] == "▁"
    assert evidence["training_tokens"][offset] == "▁Paris"
    assert evidence["prompt_ids"][:offset] == evidence["training_ids"][:offset]
    assert result.metrics["prompt_not_prefix_rate"] == 1.0


def test_template_mismatch_names_its_cause(folders, fixtures_dir):
    causes = {
        "system_prompt_in_training_only": TRAIN_SYSTEM,
        "system_prompt_at_inference_only": INFER_SYSTEM,
        "different_chat_template": {"inference_spec": PromptSpec(chat_template=template_text("chatml_edited.jinja"))},
        "missing_generation_prompt": {"inference_spec": PromptSpec(chat_template=template_text("chatml_no_generation_prompt.jinja"))},
    }
    for cause, kwargs in causes.items():
        result = run(folders, fixtures_dir, "tiny", cases="cases.jsonl", **kwargs)
        per_case = [f for f in result.findings if f.location.endswith(("cases.jsonl:1", "cases.jsonl:2"))]
        assert [f.evidence["cause"] for f in per_case] == [cause, cause], cause


def test_template_hash_recorded_for_training(folders, fixtures_dir):
    ok = run(folders, fixtures_dir, "tiny", training_template_sha256="0" * 64)
    assert [f.rule for f in ok.findings] == ["template_mismatch"]
    from sftgate.gates.tokenizer.rendering import template_hash

    same = run(folders, fixtures_dir, "tiny", training_template_sha256=template_hash(template_text("chatml.jinja")))
    assert same.findings == []


def test_implicit_system_prompt_quotes_the_injected_text(folders):
    from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached

    tok = load_tokenizer_cached(folders.variant("tiny", template="chatml_default_system.jinja"))
    assert prompt_comparison.implicit_system_text(tok, PromptSpec()) == "You are a helpful assistant created by Example Corp."
    clean = load_tokenizer_cached(folders.base("llama3"))
    assert prompt_comparison.implicit_system_text(clean, PromptSpec()) is None


def test_many_failures_are_summarised(folders, tmp_path):
    data = tmp_path / "many.jsonl"
    data.write_text('{"prompt": "Answer: ", "completion": "Paris"}\n' * 25)
    result = run_gate("prompt-alignment", Stage.TOKENIZER, prompt_alignment.check, tokenizer=folders.base("tiny"), data=data)
    assert [f.rule for f in result.findings] == ["prompt_not_prefix"] * (prompt_alignment.MAX_FINDINGS + 1)
    assert result.findings[-1].evidence["count"] == 25
    assert result.metrics["counts"]["prompt_not_prefix"] == prompt_alignment.MAX_FINDINGS + 1


def test_records_not_rendered_fail_the_gate(folders, tmp_path):
    """Records the gate could not check are not a pass (one record_not_rendered per cause)."""
    data = tmp_path / "mixed.jsonl"
    data.write_text('{"text": "unknown format"}\nnot json\n[1]\n{"messages": [{"role": "user", "content": "only a question"}]}\n'
                    '{"prompt": "Q:", "completion": " A"}\n')
    result = run_gate("prompt-alignment", Stage.TOKENIZER, prompt_alignment.check, tokenizer=folders.base("tiny"), data=data)
    assert result.status is Status.FAIL
    assert result.metrics["records"] == 1 and result.metrics["skipped_records"] == 4
    causes = sorted(f.evidence["cause"] for f in result.findings if f.rule == "record_not_rendered")
    assert causes == ["no_completion", "not_an_object", "template_error"]


def test_a_template_that_cannot_render_is_an_input_error(folders):
    spec = PromptSpec(chat_template="{{ raise_exception('broken') }}")
    result = run_gate("prompt-alignment", Stage.TOKENIZER, prompt_alignment.check, tokenizer=folders.base("tiny"), spec=spec)
    assert result.status is Status.ERROR and result.error_exit_code == 2


def test_bad_cases_file_is_an_input_error(folders, tmp_path):
    bad = tmp_path / "cases.jsonl"
    bad.write_text("{not json\n")
    result = run_gate("prompt-alignment", Stage.TOKENIZER, prompt_alignment.check, tokenizer=folders.base("tiny"), cases=bad)
    assert result.status is Status.ERROR and result.error_exit_code == 2


def test_from_config_reads_the_prompt_section(folders, fixtures_dir, tmp_path):
    inference = tmp_path / "serving.jinja"
    inference.write_text(template_text("chatml_edited.jinja"))
    config = tmp_path / "sftgate.yaml"
    config.write_text(f"""
model: {{id: {folders.base('tiny')}}}
data: {{train: {fixtures_dir / DATA / 'clean_messages.jsonl'}, cases: {fixtures_dir / DATA / 'cases.jsonl'}}}
prompt: {{system: "Answer briefly.", inference_system: null, inference_chat_template: serving.jinja}}
""")
    kwargs = prompt_alignment.from_config(load_config(config))
    assert kwargs["spec"].system == "Answer briefly." and kwargs["inference_spec"].system is None
    assert kwargs["inference_template_source"] == str(inference)
    result = run_gate("prompt-alignment", Stage.TOKENIZER, prompt_alignment.check, **kwargs)
    assert {f.rule for f in result.findings} == {"template_mismatch"}
    assert any(f.location == str(inference) for f in result.findings)
