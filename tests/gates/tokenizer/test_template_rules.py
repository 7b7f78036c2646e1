"""prompt-alignment's template rules on the Qwen3-, Phi-3- and Gemma-like families, and the accuracy fixes.

template_kwargs_mismatch, template_tokens_trained, special_token_in_content, missing_bos,
record_not_rendered; prompt_not_prefix decided on tokens (rstrip tokens); a system message every
training record carries while the cases have none. One fixture triggers each, a clean one does not.
"""

from __future__ import annotations

import pytest

from fixtures.tokenizers import template_text
from sftgate.gates.frame.core import Severity, Status
from sftgate.gates.readers.config import load as load_config
from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached
from sftgate.gates.tokenizer.prompt_spec import (
    PromptSpec,
    inference_spec_from_config,
    kwargs_items,
    spec_from_config,
)
from sftgate.gates.tokenizer.rendering import IGNORE_INDEX, encode_example, render_texts
from sftgate.gates.tokenizer.special_content import special_token_strings
from sftgate.gates.tokenizer.template_checks import template_variables
from tests.gates.tokenizer.alignment_run import assert_rules, run

NO_THINKING = kwargs_items({"enable_thinking": False})


CASES = [
    # (id, family, variant, data, cases, kwargs, expected rules, reason)
    ("qwen3-default", "qwen3", None, "clean_messages.jsonl", None, {}, ["template_tokens_trained"],
     "the empty <think></think> of the final reply is trained (LlamaFactory #9392)"),
    ("qwen3-no-thinking", "qwen3", None, "clean_messages.jsonl", None, {"spec": PromptSpec(template_kwargs=NO_THINKING)}, [],
     "enable_thinking=false puts the empty block in the prompt, where it is masked"),
    ("qwen3-kwargs-differ", "qwen3", None, "clean_messages.jsonl", None,
     {"spec": PromptSpec(template_kwargs=NO_THINKING), "inference_spec": PromptSpec()}, ["template_kwargs_mismatch"],
     "trained without thinking, served with the default: reported once, not per record"),
    ("qwen3-kwargs-same", "qwen3", None, None, "cases.jsonl",
     {"spec": PromptSpec(template_kwargs=NO_THINKING), "inference_spec": PromptSpec(template_kwargs=NO_THINKING)}, [],
     "the same template variables on both sides"),
    ("phi3-rstrip", "phi3", None, "clean_messages.jsonl", "cases.jsonl", {}, [],
     "rstrip tokens absorb the newline: the prompt's text is not a prefix, its tokens are"),
    ("gemma-clean", "gemma", None, "clean_messages.jsonl", None, {}, ["record_not_rendered"],
     "record 2 has a system message the Gemma template refuses: not checked, so not a pass"),
    ("gemma-no-bos", "gemma", {"template": "gemma_no_bos.jinja"}, None, None, {}, ["missing_bos"],
     "the template never writes <bos> and chat text gets no special tokens"),
    ("gemma-bos", "gemma", None, None, "cases.jsonl", {}, [], "the template writes <bos> itself"),
    ("special-token-in-content", "tiny", None, "special_token_in_content.jsonl", None, {}, ["special_token_in_content"] * 2,
     "'<|im_end|>' and '</s>' in message text tokenize as control tokens"),
    ("special-token-split", "tiny", None, "special_token_in_content.jsonl", None,
     {"spec": PromptSpec(split_special_tokens=True)}, [], "the split-special-tokens rendering tokenizes them as text"),
    ("special-token-in-case", "tiny", None, None, "cases_special_token.jsonl", {}, ["special_token_in_content"],
     "a fixed case with an injected control token"),
    ("record-not-rendered", "gemma", None, "record_not_rendered.jsonl", None, {}, ["record_not_rendered"],
     "7 of 20 records have a system message the template refuses"),
    ("system-in-data-only", "tiny", None, "system_in_every_record.jsonl", "cases.jsonl", {}, ["template_mismatch"],
     "every training record has its own system message, the cases and the inference config none"),
    ("system-in-data-and-cases", "tiny", None, "system_in_every_record.jsonl", "cases_with_system.jsonl", {}, [],
     "the cases carry the same system message"),
]


@pytest.mark.parametrize(("family", "variant", "data", "cases", "kwargs", "expected", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_template_rules(folders, fixtures_dir, family, variant, data, cases, kwargs, expected, reason):
    assert_rules(run(folders, fixtures_dir, family, variant, data, cases, **kwargs), expected, reason)


def test_trained_template_tokens_suggest_the_kwargs_that_fix_them(folders, fixtures_dir):
    (finding,) = run(folders, fixtures_dir, "qwen3", data="clean_messages.jsonl").findings
    assert finding.evidence["fix_template_kwargs"] == {"enable_thinking": False}
    assert finding.location.endswith("chat_template.jinja")
    assert template_variables(template_text("qwen3_thinking.jinja")).count("enable_thinking") == 1


def test_template_kwargs_reach_training_labels(folders):
    """The one rendering: the labels training builds honour prompt.template_kwargs."""
    tok = load_tokenizer_cached(folders.base("qwen3"))
    example = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    think = tok.convert_tokens_to_ids("<think>")
    for spec, trained in ((PromptSpec(), True), (PromptSpec(template_kwargs=NO_THINKING), False)):
        enc = encode_example(tok, example, spec)
        position = enc.input_ids.index(think)
        assert (enc.labels[position] != IGNORE_INDEX) is trained
        assert render_texts(tok, example, spec).full.count("<think>") == 1


def test_kwargs_mismatch_is_a_warning_when_the_template_ignores_them(folders, fixtures_dir):
    spec = PromptSpec(template_kwargs=kwargs_items({"unused_flag": True}))
    result = run(folders, fixtures_dir, "tiny", cases="cases.jsonl", spec=spec, inference_spec=PromptSpec())
    (finding,) = result.findings
    assert (finding.rule, finding.severity) == ("template_kwargs_mismatch", Severity.WARNING)
    assert result.status is Status.PASS


def test_record_not_rendered_counts_what_was_not_checked(folders, fixtures_dir):
    (finding,) = run(folders, fixtures_dir, "gemma", data="record_not_rendered.jsonl").findings
    assert finding.evidence["count"] == 7 and finding.evidence["total"] == 20 and finding.evidence["checked"] == 13
    assert finding.evidence["cause"] == "template_error"


def test_special_token_findings_name_the_message_and_token(folders, fixtures_dir):
    result = run(folders, fixtures_dir, "tiny", data="special_token_in_content.jsonl")
    hits = [f.evidence["hits"][0] for f in result.findings]
    assert [(h["field"], h["token"]) for h in hits] == [("messages[0].content", "<|im_end|>"), ("messages[1].content", "</s>")]
    assert all(f.suggestion == "prompt.split_special_tokens: true" for f in result.findings)


@pytest.mark.parametrize("family", ["tiny", "llama3", "mistral_v3"])
def test_split_rendering_tokenizes_content_as_text(folders, family):
    tok = load_tokenizer_cached(folders.base(family))
    specials = {tok.convert_tokens_to_ids(t) for t in special_token_strings(tok)}
    text = " ".join(special_token_strings(tok)[:6])
    example = {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}
    plain = encode_example(tok, example, PromptSpec())
    split = encode_example(tok, example, PromptSpec(split_special_tokens=True))
    assert sum(i in specials for i in split.input_ids) < sum(i in specials for i in plain.input_ids)
    assert split.ends_with_eos and tok.decode(split.input_ids, skip_special_tokens=False).count(text) == 1


def test_system_difference_suggests_the_data_system_prompt(folders, fixtures_dir):
    (finding,) = run(folders, fixtures_dir, "tiny", data="system_in_every_record.jsonl", cases="cases.jsonl").findings
    assert finding.evidence["cause"] == "system_prompt_in_training_data_only"
    assert finding.suggestion == 'prompt.inference_system: "You are a terse assistant. Answer in one line."'


def test_config_template_kwargs_feed_both_specs(tmp_path):
    cfg_file = tmp_path / "sftgate.yaml"
    cfg_file.write_text("model:\n  id: org/model\nprompt:\n  template_kwargs: {enable_thinking: false}\n"
                        "  inference_template_kwargs: {}\n  split_special_tokens: true\n")
    cfg = load_config(cfg_file)
    train, serve = spec_from_config(cfg), inference_spec_from_config(cfg)
    assert train.kwargs == {"enable_thinking": False} and serve.kwargs == {}
    assert train.split_special_tokens and serve.split_special_tokens
    only_train = tmp_path / "sftgate2.yaml"
    only_train.write_text("model:\n  id: org/model\nprompt:\n  template_kwargs: {enable_thinking: false}\n")
    assert inference_spec_from_config(load_config(only_train)).kwargs == {"enable_thinking": False}
