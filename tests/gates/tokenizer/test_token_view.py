"""sftgate.gates.tokenizer.token_view: each token with its id and trained/masked, coloured on a TTY, plain otherwise."""

from __future__ import annotations

import pytest

from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached
from sftgate.gates.tokenizer import rendering, token_view
from sftgate.gates.tokenizer.rendering import PromptSpec

EXAMPLE = {"messages": [{"role": "user", "content": "What is the capital of France?"},
                        {"role": "assistant", "content": "Paris."}]}


def rows(text: str) -> list[list[str]]:
    """Token rows: index, id, label (the header and markers dropped)."""
    out = []
    for line in text.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit():
            out.append(parts[:3])
    return out


def test_every_token_with_id_and_label(folders):
    tok = load_tokenizer_cached(folders.base("tiny"))
    enc = rendering.encode_example(tok, EXAMPLE, PromptSpec())
    text = token_view.format_encoded(tok, enc)
    table = rows(text)
    assert [int(r[1]) for r in table] == enc.input_ids
    assert [r[2] == "TRAINED" for r in table] == [label != rendering.IGNORE_INDEX for label in enc.labels]
    assert "<- EOS/end of turn" in text
    assert "\033[" not in text  # plain when not a TTY


def test_colour_on_request_and_masked_eos_marked(folders):
    tok = load_tokenizer_cached(folders.base("mistral_v3"))
    enc = rendering.encode_example(tok, EXAMPLE, PromptSpec())
    labels = rendering.collate([enc], rendering.pad_id_for(tok), mask_pad_labels=True)["labels"][0]
    text = token_view.format_encoded(tok, enc, labels=labels, color=True)
    assert token_view.RED in text and token_view.GREEN in text
    assert "EOS/end of turn MASKED" in text and "EOS masked at" in text.splitlines()[0]


@pytest.mark.parametrize(("max_tokens", "hidden", "reason"), [
    (None, False, "no limit: every token"),
    (9, True, "a limit hides the middle, keeps the start and the end"),
])
def test_long_examples_keep_the_end(folders, max_tokens, hidden, reason):
    tok = load_tokenizer_cached(folders.base("tiny"))
    enc = rendering.encode_example(tok, EXAMPLE, PromptSpec())
    text = token_view.format_encoded(tok, enc, max_tokens=max_tokens)
    assert ("not shown" in text) is hidden, reason
    assert rows(text)[-1][0] == str(len(enc.input_ids) - 1), reason


def test_show_examples_reads_k_records(folders, fixtures_dir):
    tok = load_tokenizer_cached(folders.base("tiny"))
    data = fixtures_dir / "tokenizer" / "clean_messages.jsonl"
    text = token_view.show_examples(tok, data, PromptSpec(), 2)
    assert text.count("clean_messages.jsonl:") == 2
    truncated = token_view.show_examples(tok, data, PromptSpec(), 1, max_seq_len=8)
    assert "TRUNCATED" in truncated and "nothing is trained" in truncated


def test_show_examples_reports_unrenderable_records(folders, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "x"}\n')
    text = token_view.show_examples(load_tokenizer_cached(folders.base("tiny")), data, PromptSpec(), 1)
    assert "not shown" in text
