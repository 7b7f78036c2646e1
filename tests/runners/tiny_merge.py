"""Tiny offline models for the merge tests: a char-level tokenizer, a 2-layer Mistral, LoRA adapters.

Everything is built in a second or two on CPU, with no download.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>"]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build_tokenizer(out_dir: Path) -> Path:
    """A char-level fast tokenizer with ChatML special tokens and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = list(string.ascii_letters + string.digits + string.punctuation + " \n")
    vocab = {tok: i for i, tok in enumerate(SPECIALS + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(SPECIALS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
    )
    fast.chat_template = CHATML
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    if not (out_dir / "chat_template.jinja").exists():
        (out_dir / "chat_template.jinja").write_text(CHATML, encoding="utf-8")
    return out_dir


def build_base(out_dir: Path, *, seed: int = 0, dtype: str = "float32") -> Path:
    """A random 2-layer MistralForCausalLM (hidden 32) with its tokenizer, saved as safetensors."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    build_tokenizer(out_dir)
    vocab = len(json.loads((out_dir / "tokenizer.json").read_text())["model"]["vocab"])
    config = MistralConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = MistralForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(out_dir)
    return out_dir


def build_adapter(out_dir: Path, base_dir: Path, *, zero: bool = False, seed: int = 1, std: float = 0.3) -> Path:
    """A LoRA adapter on every projection; lora_B random (an effect) unless ``zero`` (peft's init)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, lora_dropout=0.0))
    if not zero:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=gen) * std)
    model.save_pretrained(out_dir)
    return out_dir


def merge_by_hand(base_dir: Path, adapter_dir: Path, out_dir: Path, *, dtype: str = "float32") -> Path:
    """merge_and_unload + save_pretrained, without the runner (to test the gate on its own)."""
    import shutil

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=getattr(torch, dtype))
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (base_dir / name).exists():
            shutil.copy(base_dir / name, out_dir / name)
    return out_dir


def edit_weight(folder: Path, name_part: str, fn) -> str:
    """Apply ``fn`` to the first tensor whose name contains ``name_part``; returns its name."""
    from safetensors.torch import load_file, save_file

    path = folder / ("adapter_model.safetensors" if (folder / "adapter_model.safetensors").exists() else "model.safetensors")
    tensors = load_file(str(path))
    name = next(k for k in tensors if name_part in k)
    tensors[name] = fn(tensors[name].clone())
    save_file(tensors, str(path), metadata={"format": "pt"})
    return name
