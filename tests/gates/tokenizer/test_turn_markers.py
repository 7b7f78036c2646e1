"""Turn markers learned from probe renderings, for real tokenizers and the templates people serve."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.tokenizers import template_text
from sftgate.gates.readers.tokenizer_io import load_tokenizer, load_tokenizer_cached
from sftgate.gates.tokenizer.prompt_spec import PromptSpec
from sftgate.gates.tokenizer.turn_markers import learn_markers
from sftgate.gates.tokenizer.turn_regions import (
    ASSISTANT_TEXT,
    PROMPT_TEXT,
    UNKNOWN,
    TurnMarkers,
    assistant_spans,
    classify,
)

# family -> (role -> a token its header must contain)
EXPECTED = {
    "tiny": {"user": "user", "assistant": "<|im_start|>"},
    "mistral_v3": {"user": "[INST]", "assistant": "[/INST]"},
    "tekken": {"user": "[INST]", "assistant": "[/INST]"},
    "llama3": {"user": "user", "assistant": "assistant"},
}


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_markers_are_learned_for_each_family(folders, family):
    tok = load_tokenizer_cached(folders.base(family))
    markers = learn_markers(tok)
    assert markers.has_roles, markers.problem
    headers = {role: tok.convert_ids_to_tokens(list(ids)) for role, ids in markers.headers}
    for role, token in EXPECTED[family].items():
        assert token in headers[role], headers
    assert tok.eos_token_id in markers.end_of_turn


@pytest.mark.parametrize("template", ["gemma.jinja", "phi3.jinja", "qwen3_thinking.jinja", "chatml_default_system.jinja",
                                      "mistral_v3_system_last_user.jinja", "chatml_no_system_role.jinja"])
def test_markers_are_learned_for_served_templates(folders, template):
    tok = load_tokenizer(folders.base("tiny"), chat_template=template_text(template))
    assert learn_markers(tok, PromptSpec(chat_template=template_text(template))).has_roles


def test_a_template_without_headers_gives_no_roles(folders):
    bare = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    markers = learn_markers(load_tokenizer(folders.base("tiny"), chat_template=bare), PromptSpec(chat_template=bare))
    assert not markers.has_roles and markers.problem


def test_no_chat_template_means_eos_ends_each_example(folders):
    tok = load_tokenizer_cached(folders.base("tiny"))
    markers = learn_markers(tok, PromptSpec(chat_template=None))
    assert markers.eos_id == tok.eos_token_id  # the tiny ChatML never writes </s>: it ends plain examples


def test_classify_regions_of_a_conversation(folders):
    from sftgate.gates.tokenizer.rendering import PromptSpec as Spec
    from sftgate.gates.tokenizer.rendering import encode_example

    tok = load_tokenizer_cached(folders.base("llama3"))
    markers = learn_markers(tok)
    example = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}]}
    enc = encode_example(tok, example, Spec())
    zero = np.zeros(1, dtype=np.int64)
    region = classify(np.asarray(enc.input_ids), zero, zero, markers)
    trained = [i for i, label in enumerate(enc.labels) if label != -100]
    assert all(region[i] == ASSISTANT_TEXT for i in trained)
    assert PROMPT_TEXT in region.tolist()
    assert assistant_spans(enc.input_ids, markers) == ((trained[0], len(enc.input_ids)),)


def test_rows_without_any_header_are_unknown():
    markers = TurnMarkers(headers=(("user", (7,)), ("assistant", (8,))), end_of_turn=(9,))
    ids = np.array([1, 2, 3, 7, 4, 8, 5, 9], dtype=np.int64)
    region = classify(ids, np.array([0, 3]), np.array([0, 3]), markers)
    assert region[:3].tolist() == [UNKNOWN] * 3 and region[6] == ASSISTANT_TEXT
