"""sftgate's own labels: every assistant turn trained by default (train.turns: last for only the last)."""

from __future__ import annotations

import pytest

from fixtures.tokenized import chat_records
from sftgate.gates.frame.core import Stage
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached
from sftgate.gates.tokenizer import eos
from sftgate.gates.tokenizer.rendering import IGNORE_INDEX, PromptSpec, encode_example, end_of_turn_ids
from sftgate.gates.tokenizer.token_view import format_encoded


def trained_text(tok, enc):
    return tok.decode([t for t, label in zip(enc.input_ids, enc.labels, strict=True) if label != IGNORE_INDEX])


@pytest.mark.parametrize("family", ["tiny", "mistral_v3", "llama3"])
def test_every_assistant_turn_and_its_end_of_turn_are_trained(folders, family):
    """Mistral's template puts the system prompt in the LAST user turn: earlier turns still count."""
    tok = load_tokenizer_cached(folders.base(family))
    record = chat_records(1)[0]
    enc = encode_example(tok, record, PromptSpec())
    ends = set(end_of_turn_ids(tok))
    assert len(enc.turn_spans) == 1 and len(enc.spans) == 2
    for start, end in enc.spans:
        trained = [i for i in range(start, end) if enc.labels[i] != IGNORE_INDEX]
        assert trained and enc.input_ids[trained[-1]] in ends
    text = trained_text(tok, enc)
    assert "It is 0." in text and "That is 0." in text
    assert "plus" not in text and "Answer briefly" not in text and "times two" not in text


def test_train_turns_last_trains_only_the_final_reply(folders):
    tok = load_tokenizer_cached(folders.base("tiny"))
    enc = encode_example(tok, chat_records(1)[0], PromptSpec(turns="last"))
    assert enc.turn_spans == () and "It is" not in trained_text(tok, enc) and "That is" in trained_text(tok, enc)


def test_single_turn_records_are_unchanged(folders):
    tok = load_tokenizer_cached(folders.base("tiny"))
    record = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    assert encode_example(tok, record, PromptSpec()) == encode_example(tok, record, PromptSpec(turns="last"))


EARLY_OPEN = (  # closes only the LAST assistant turn with <|im_end|>
    "{%- for m in messages %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] }}"
    "{%- if m['role'] != 'assistant' or loop.last %}{{- '<|im_end|>' }}{%- endif %}{{- '\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def test_eos_gate_checks_every_turn(folders, tmp_path):
    data = tmp_path / "multi.jsonl"
    import json

    data.write_text("".join(json.dumps(r) + "\n" for r in chat_records(3)))
    folder = folders.base("tiny")
    every = run_gate("eos", Stage.TOKENIZER, eos.check, tokenizer=folder, data=data, spec=PromptSpec(chat_template=EARLY_OPEN))
    assert "eos_not_appended" in {f.rule for f in every.findings}
    last = run_gate("eos", Stage.TOKENIZER, eos.check, tokenizer=folder, data=data,
                    spec=PromptSpec(chat_template=EARLY_OPEN, turns="last"))
    assert "eos_not_appended" not in {f.rule for f in last.findings}


def test_token_view_marks_every_turn(folders):
    tok = load_tokenizer_cached(folders.base("tiny"))
    text = format_encoded(tok, encode_example(tok, chat_records(1)[0], PromptSpec()), max_tokens=None)
    assert "assistant turn 1 starts" in text and "completion starts" in text
    assert text.count("<- EOS/end of turn") == 2


def test_config_train_turns(tmp_path):
    from sftgate.gates.frame.core import ConfigError
    from sftgate.gates.readers.config import load
    from sftgate.gates.tokenizer.prompt_spec import spec_from_config

    config = tmp_path / "sftgate.yaml"
    config.write_text("sftgate: 1\nmodel:\n  id: org/m\ndata:\n  train: t.jsonl\ntrain:\n  turns: last\n")
    assert spec_from_config(load(config)).turns == "last"
    config.write_text("sftgate: 1\nmodel:\n  id: org/m\ndata:\n  train: t.jsonl\ntrain:\n  turns: first\n")
    with pytest.raises(ConfigError):
        load(config)
