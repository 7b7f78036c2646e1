"""At release (the artifacts gate that `sftgate release` runs): an adapter's embeddings must fit its base
(LlamaFactory #7997: 128320 vs 128256 rows), and a model's generation_config.json must be one transformers saves."""

from __future__ import annotations

import shutil

import pytest

from fixtures.embeddings import copy_with
from sftgate.gates.merge import artifacts
from tests.conftest import FIXTURES

VOCAB, ADDED = 96, 8


def _adapter(base, out, *, resize: int | None, lora_kwargs: dict):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if resize:
        model.resize_token_embeddings(resize)
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], **lora_kwargs))
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("adapter-vocab")
    base = root / "base"
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(base)
    saved = {"modules_to_save": ["embed_tokens", "lm_head"]}
    return {
        "resized": _adapter(base, root / "resized", resize=VOCAB + ADDED, lora_kwargs=saved),
        "fits": _adapter(base, root / "fits", resize=None, lora_kwargs=saved),
        "plain": _adapter(base, root / "plain", resize=None, lora_kwargs={}),
        "tokens": _adapter(base, root / "tokens", resize=None, lora_kwargs={"trainable_token_indices": [3, 5]}),
        "base": base,
    }


def rules(folder):
    return [f.rule for f in artifacts.check(model_dir=folder)]


def test_an_adapter_with_resized_embeddings_does_not_fit_its_base(adapters):
    findings = list(artifacts.check(model_dir=adapters["resized"]))
    assert [f.rule for f in findings] == ["vocab_mismatch", "vocab_mismatch"]  # the embedding and lm_head copies
    assert {(f.evidence["adapter_rows"], f.evidence["base_rows"]) for f in findings} == {(VOCAB + ADDED, VOCAB)}


@pytest.mark.parametrize("name", ["fits", "plain", "tokens"])
def test_adapters_that_fit_their_base(adapters, name):
    assert rules(adapters[name]) == []


def test_trainable_tokens_past_the_base_rows(adapters, tmp_path):
    folder = copy_with(adapters["tokens"], tmp_path / "tokens", "adapter_config.json",
                       trainable_token_indices=[3, VOCAB + 2])
    assert rules(folder) == ["vocab_mismatch"]


def test_an_adapter_whose_base_is_not_here_is_not_judged(adapters, tmp_path):
    folder = copy_with(adapters["resized"], tmp_path / "elsewhere", "adapter_config.json",
                       base_model_name_or_path="nobody/not-in-the-cache")
    assert rules(folder) == []


@pytest.mark.parametrize(("generation", "expected"), [
    ("invalid_generation_config.json", ["invalid_generation_config", "invalid_generation_config"]),
    ("clean_generation_config.json", []),
])
def test_a_release_generation_config_is_validated(tmp_path, generation, expected):
    folder = tmp_path / "release"
    shutil.copytree(FIXTURES / "artifacts" / "clean", folder)
    shutil.copyfile(FIXTURES / "model_config" / generation, folder / "generation_config.json")
    assert rules(folder) == expected
