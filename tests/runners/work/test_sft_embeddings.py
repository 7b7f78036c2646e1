"""The runner trains what the embedding gates ask for: lora.modules_to_save, lora.trainable_token_indices
and lora.target_parameters reach peft, and tied embeddings stay tied."""

from __future__ import annotations

import pytest

from sftgate.gates.readers import config as config_mod
from sftgate.runners.work.sft_model import wrap_lora
from sftgate.runners.work.sft_settings import TrainSettings


def tiny_llama(tied: bool):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=tied))


def test_settings_read_the_lora_embedding_keys(tmp_path):
    path = tmp_path / "sftgate.yaml"
    path.write_text("sftgate: 1\nmodel:\n  id: org/name\nlora:\n  modules_to_save: [embed_tokens, lm_head]\n"
                    "  trainable_token_indices: {embed_tokens: [5, 7]}\n"
                    "  target_parameters: [mlp.experts.gate_up_proj]\n")
    settings = TrainSettings.from_config(config_mod.load(path))
    assert settings.modules_to_save == ["embed_tokens", "lm_head"]
    assert settings.trainable_token_indices == {"embed_tokens": [5, 7]}
    assert settings.lora_dict()["target_parameters"] == ["mlp.experts.gate_up_proj"]
    assert "modules_to_save" not in TrainSettings().lora_dict()  # unset keys stay out of the manifest


def test_bad_lora_embedding_keys_are_config_errors(cli, tmp_path):
    path = tmp_path / "sftgate.yaml"
    path.write_text("sftgate: 1\nmodel:\n  id: org/name\nlora:\n  trainable_token_indices: [-1]\n")
    assert cli("check", str(path)).code == 2


def test_trainable_token_indices_train_only_those_rows():
    settings = TrainSettings(target_modules=["q_proj"], trainable_token_indices=[5, 7])
    model = wrap_lora(tiny_llama(tied=False), settings)
    trainable = {n: p.shape for n, p in model.named_parameters() if p.requires_grad}
    delta = [shape for name, shape in trainable.items() if "trainable_tokens_delta" in name]
    assert delta and tuple(delta[0]) == (2, 16)
    assert settings.trainable_token_indices == [5, 7]  # peft edits its config: the settings are not touched


@pytest.mark.parametrize("saved", [["embed_tokens", "lm_head"], ["lm_head"]])
def test_tied_embeddings_stay_one_tensor(saved):
    model = wrap_lora(tiny_llama(tied=True), TrainSettings(target_modules=["q_proj"], modules_to_save=list(saved)))
    base = model.base_model.model
    embed, head = base.get_input_embeddings(), base.get_output_embeddings()
    embed_w = getattr(embed, "modules_to_save", {"default": embed})["default"].weight
    head_w = getattr(head, "modules_to_save", {"default": head})["default"].weight
    assert embed_w.requires_grad and embed_w.data_ptr() == head_w.data_ptr()
