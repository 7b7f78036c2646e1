"""The embeddings gate: untrained rows, vocabulary sizes, added tokens and tied embeddings, read by offset.

Model folders are written with safetensors (fixtures/embeddings.py): the embedding and lm_head
only, random rows with specific rows zeroed, tied and untied, fp32 and bf16.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.embeddings import add_tokens, embedding_folder
from sftgate.gates.frame.core import Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.registry import get
from sftgate.gates.readers.tokenizer_io import load_tokenizer
from sftgate.gates.tokenizer import embeddings
from sftgate.gates.tokenizer.trainable_embeddings import LoraEmbeddings

LLAMA3_BASE_UNTRAINED = [128006, 128007, 128009]  # <|start_header_id|>, <|end_header_id|>, <|eot_id|>


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from sftgate.runners.demo.tiny_tokenizer import build_tiny_tokenizer

    root = tmp_path_factory.mktemp("embeddings")
    tok_dir = build_tiny_tokenizer(root / "tok")
    tok = load_tokenizer(tok_dir)
    return {"root": root, "tok": tok_dir, "ids": {t: tok.convert_tokens_to_ids(t) for t in
                                                  ("<|im_start|>", "<|im_end|>", "[INST]", "</s>")}, "len": len(tok)}


def run(model_dir, **kwargs):
    result = run_gate("embeddings", get("embeddings").stage, embeddings.check, model_dir=model_dir, **kwargs)
    assert result.status is not Status.ERROR, result.reason
    return result


def rules(result):
    return sorted({f.rule for f in result.findings})


# --------------------------------------------------------------------------- untrained_token


def test_a_clean_model_passes(tiny):
    folder = embedding_folder(tiny["root"] / "clean", tokenizer_dir=tiny["tok"])
    result = run(folder)
    assert (result.status, result.findings) == (Status.PASS, [])
    assert set(result.metrics["checked_tokens"]) >= {"<|im_start|>", "<|im_end|>"}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_zeroed_end_of_turn_row_is_untrained(tiny, dtype):
    eot = tiny["ids"]["<|im_end|>"]
    folder = embedding_folder(tiny["root"] / f"zero-eot-{dtype}", tokenizer_dir=tiny["tok"], zero_tokens=[eot], dtype=dtype)
    result = run(folder)
    assert result.status is Status.FAIL and rules(result) == ["untrained_token"]
    (finding,) = result.findings
    assert finding.evidence["id"] == eot and set(finding.evidence["rows"]) == {"embedding", "lm_head"}
    assert finding.suggestion == f"lora.trainable_token_indices: {{embed_tokens: [{eot}], lm_head: [{eot}]}}"


def test_rows_the_config_trains_are_a_warning(tiny):
    eot = tiny["ids"]["<|im_end|>"]
    folder = embedding_folder(tiny["root"] / "zero-eot", tokenizer_dir=tiny["tok"], zero_tokens=[eot])
    covered = LoraEmbeddings(trainable_token_indices={"embed_tokens": (eot,), "lm_head": (eot,)})
    result = run(folder, lora=covered)
    assert result.status is Status.PASS and [f.severity.value for f in result.findings] == ["warning"]
    saved = run(folder, lora=LoraEmbeddings(modules_to_save=("embed_tokens", "lm_head")))
    assert [f.severity.value for f in saved.findings] == ["warning"]
    input_only = run(folder, lora=LoraEmbeddings(trainable_token_indices=(eot,)))  # lm_head row still untrained
    assert input_only.status is Status.FAIL


def test_on_tied_embeddings_trainable_tokens_cover_both_sides(tiny):
    eot = tiny["ids"]["<|im_end|>"]
    folder = embedding_folder(tiny["root"] / "tied-zero-eot", tokenizer_dir=tiny["tok"], tied=True, zero_tokens=[eot])
    assert run(folder).status is Status.FAIL
    result = run(folder, lora=LoraEmbeddings(trainable_token_indices=(eot,)))
    assert result.status is Status.PASS and rules(result) == ["untrained_token"]


def test_llama3_base_control_tokens_are_untrained(tmp_path_factory):
    """unsloth #658: base Llama 3's <|eot_id|> and header tokens are untrained; the instruct model's are not."""
    from fixtures.tokenizers import tokenizer_folders

    tok = tokenizer_folders(tmp_path_factory.getbasetemp() / "tokenizers").base("llama3")
    root = tmp_path_factory.mktemp("llama3")
    base = embedding_folder(root / "base", vocab_size=128256, zero_tokens=LLAMA3_BASE_UNTRAINED)
    instruct = embedding_folder(root / "instruct", vocab_size=128256)
    result = run(base, tokenizer=tok)  # the session's Llama 3 tokenizer folder, loaded once
    assert rules(result) == ["untrained_token"]
    assert sorted(f.evidence["id"] for f in result.findings) == LLAMA3_BASE_UNTRAINED
    assert run(instruct, tokenizer=tok).findings == []


def test_special_tokens_the_data_uses_are_checked(tiny, tmp_path):
    inst = tiny["ids"]["[INST]"]  # a special token the ChatML template never writes
    folder = embedding_folder(tiny["root"] / "zero-inst", tokenizer_dir=tiny["tok"], zero_tokens=[inst])
    assert run(folder).findings == []
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "[INST] again"}]}) + "\n")
    result = run(folder, data=data)
    assert rules(result) == ["untrained_token"] and result.findings[0].evidence["id"] == inst


def test_rows_a_resize_initialised_together_are_untrained(tiny):
    """Mean-initialised rows after resize_token_embeddings are identical: never trained."""
    im_start, im_end = tiny["ids"]["<|im_start|>"], tiny["ids"]["<|im_end|>"]
    folder = embedding_folder(tiny["root"] / "same-rows", tokenizer_dir=tiny["tok"], same_rows=[im_start, im_end])
    result = run(folder)
    assert rules(result) == ["untrained_token"]
    assert sorted(f.evidence["id"] for f in result.findings) == [im_start, im_end]


# --------------------------------------------------------------------------- vocabulary


def test_added_tokens_without_a_resize_are_a_vocab_mismatch(tiny):
    """LlamaFactory #7997 in small: the tokenizer has more tokens than the embedding has rows."""
    grown = add_tokens(tiny["tok"], tiny["root"] / "tok-grown", ["<tool_call>", "</tool_call>"])
    folder = embedding_folder(tiny["root"] / "not-resized", tokenizer_dir=tiny["tok"])
    result = run(folder, tokenizer=grown)
    assert rules(result) == ["new_tokens_not_trained", "vocab_mismatch"]


def test_config_vocab_size_that_is_not_the_weights(tiny):
    folder = embedding_folder(tiny["root"] / "config-lies", tokenizer_dir=tiny["tok"], config_vocab_size=tiny["len"] + 64)
    assert rules(run(folder)) == ["vocab_mismatch"]


def test_a_padded_embedding_is_not_a_mismatch(tiny):
    folder = embedding_folder(tiny["root"] / "padded", tokenizer_dir=tiny["tok"], vocab_size=tiny["len"] + 11)
    assert run(folder).findings == []


def test_new_tokens_need_their_rows_trained(tiny):
    grown = add_tokens(tiny["tok"], tiny["root"] / "tok-new", ["<tool_call>"])
    new_id = len(load_tokenizer(grown)) - 1
    resized = embedding_folder(tiny["root"] / "resized", tokenizer_dir=tiny["tok"], vocab_size=new_id + 1)
    result = run(resized, tokenizer=grown)
    assert rules(result) == ["new_tokens_not_trained"]
    assert result.findings[0].suggestion == f"lora.trainable_token_indices: [{new_id}]"
    trained = LoraEmbeddings(trainable_token_indices={"embed_tokens": (new_id,), "lm_head": (new_id,)})
    assert run(resized, tokenizer=grown, lora=trained).findings == []
    assert run(resized, tokenizer=grown, lora=LoraEmbeddings(modules_to_save=("embed_tokens", "lm_head"))).findings == []


# --------------------------------------------------------------------------- tied embeddings


@pytest.mark.parametrize(("tied", "head", "expected"), [
    (True, "auto", []),                                   # only the embedding saved: tied, as it should be
    (False, "auto", []),                                  # both saved, untied
    (True, "differs", ["tied_embeddings_broken"]),        # transformers #45127: tied flag, two different tensors
    (False, "none", ["tied_embeddings_broken"]),          # transformers #43429: untied, no lm_head saved
])
def test_tied_flag_and_saved_tensors(tiny, tied, head, expected):
    folder = embedding_folder(tiny["root"] / f"tied-{tied}-{head}", tokenizer_dir=tiny["tok"], tied=tied, head=head)
    assert rules(run(folder)) == expected


def test_training_one_side_of_a_tied_pair(tiny, monkeypatch):
    folder = embedding_folder(tiny["root"] / "tied", tokenizer_dir=tiny["tok"], tied=True)
    one_side = LoraEmbeddings(modules_to_save=("lm_head",))
    assert run(folder, lora=one_side).findings == []  # the installed peft keeps the pair tied (ensure_weight_tying)
    monkeypatch.setattr(embeddings, "runner_keeps_ties", lambda: False)  # an older peft
    assert rules(run(folder, lora=one_side)) == ["tied_embeddings_broken"]
    assert run(folder, lora=LoraEmbeddings(modules_to_save=("embed_tokens", "lm_head"))).findings == []


# --------------------------------------------------------------------------- in sftgate check


def write_config(folder: Path, model: Path | str, *, extra: str = "") -> Path:
    path = folder / "sftgate.yaml"
    path.write_text(f"sftgate: 1\nmodel:\n  id: {model}\n{extra}")
    return path


def test_check_without_local_weights_skips_the_gate(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    result = cli("check", str(write_config(tmp_path, "mistralai/Mistral-7B-Instruct-v0.3")), "--format", "json")
    gates = {g["gate"]: g for g in result.report["gates"]}
    for name in ("embeddings", "model-config"):
        assert gates[name]["status"] == "skip" and gates[name]["required"] is False


def test_check_reports_an_untrained_token_from_the_config(cli, tiny, tmp_path):
    eot = tiny["ids"]["<|im_end|>"]
    folder = embedding_folder(tmp_path / "base", tokenizer_dir=tiny["tok"], zero_tokens=[eot])
    result = cli("check", str(write_config(tmp_path, "./base")), "--format", "json")
    assert result.code == 1 and result.statuses()["embeddings"] == "fail"
    assert "untrained_token" in result.rules()
    covered = write_config(tmp_path, folder, extra="lora:\n  modules_to_save: [embed_tokens, lm_head]\n")
    again = cli("check", str(covered), "--format", "json")
    assert again.statuses()["embeddings"] == "pass"
