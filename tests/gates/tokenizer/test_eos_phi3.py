"""stop_token_not_trained on Phi-3: the last turn ends ``<|end|>\\n`` + eos_token, and ``<|end|>`` is what TRL trains
right after the reply, the token that closes every turn of a conversation (no finding); a template whose last turn
ends with eos_token alone still is one."""

from __future__ import annotations

import pytest

from sftgate.gates.frame.core import Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached
from sftgate.gates.tokenizer import eos
from sftgate.gates.tokenizer.end_of_turn import turn_probe
from sftgate.gates.tokenizer.label_building import IGNORE_INDEX, Encoded
from sftgate.gates.tokenizer.rendering import PromptSpec, encode_example

RECORD = [{"role": "user", "content": "What is 2 plus 2?"}, {"role": "assistant", "content": "It is 4."}]


@pytest.mark.parametrize(("variant", "data", "expected"), [
    (None, None, []),  # the probe alone
    (None, "clean_messages.jsonl", []),  # one-turn, system and two-turn records
    ({"template": "phi3_final_eos.jinja"}, None, ["stop_token_not_trained"]),
    # and the two-turn record's first reply is closed by <|end|>, which that template never ends a final turn with
    ({"template": "phi3_final_eos.jinja"}, "clean_messages.jsonl", ["eos_not_appended", "stop_token_not_trained"]),
], ids=["clean-probe", "clean-data", "final-eos-probe", "final-eos-data"])
def test_phi3_stop_token(folders, fixtures_dir, variant, data, expected):
    folder = folders.variant("phi3", **variant) if variant else folders.base("phi3")
    kwargs = {"data": fixtures_dir / "tokenizer" / data} if data else {}
    result = run_gate("eos", Stage.TOKENIZER, eos.check, tokenizer=folder, **kwargs)
    assert sorted(f.rule for f in result.findings) == expected
    assert result.status is (Status.FAIL if expected else Status.PASS)
    for finding in (f for f in result.findings if f.rule == "stop_token_not_trained"):
        assert (finding.evidence["closing_token"], finding.evidence["trained_token"]) == ("<|end|>", "<|endoftext|>")


def test_trl_labels_train_the_closing_token_right_after_the_reply(folders):
    """TRL's own tokenization (conversational prompt-completion, completion_only_loss): ``<|end|>`` then eos_token
    are trained after the reply; sftgate's labels are the same, and the gate reads ``<|end|>`` as the trained stop."""
    trl_data = pytest.importorskip("trl.data_utils")
    tok = load_tokenizer_cached(folders.base("phi3"))
    prompt_ids = trl_data._tokenize(tok, RECORD[:1], add_generation_prompt=True)["input_ids"]
    full_ids = trl_data._tokenize(tok, RECORD)["input_ids"]
    start = trl_data.common_prefix_length(prompt_ids, full_ids)
    labels = [IGNORE_INDEX] * start + full_ids[start:]
    assert tok.convert_ids_to_tokens(full_ids[start:])[-2:] == ["<|end|>", "<|endoftext|>"]

    ours = encode_example(tok, {"messages": RECORD}, PromptSpec())
    assert (ours.input_ids, ours.labels) == (full_ids, labels)
    probe = turn_probe(tok)
    assert probe is not None and tok.convert_ids_to_tokens(list(probe.closing_ids[:1])) == ["<|end|>"]
    trl_encoded = Encoded(full_ids, labels, start, ours.eos_ids, False)
    assert eos.trained_after_reply(trl_encoded, probe.final_tail_ids) == probe.closing_ids[0]


def test_the_trained_stop_token_may_have_id_0():
    """A vocabulary whose end token is id 0 (SmolLM's <|endoftext|>): found, not mistaken for none."""
    enc = Encoded(input_ids=[5, 6, 7, 0, 9], labels=[IGNORE_INDEX, IGNORE_INDEX, 7, 0, 9], prompt_len=2,
                  eos_ids=(9,), truncated=False)
    assert eos.trained_after_reply(enc, (0, 9)) == 0
    assert eos.trained_after_reply(enc, (4,)) is None
