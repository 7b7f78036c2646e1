"""Tiny offline models for the merge tests: a 2-layer Mistral with the project's tiny tokenizer, LoRA adapters.

Everything is built in a second or two on CPU, with no download.
"""

from __future__ import annotations

from pathlib import Path

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CORPUS = ('{"name": "Ada", "city": "Paris"}', "hello world", "Extract the city: Paris is nice.")


def build_base(out_dir: Path, *, seed: int = 0, dtype: str = "float32") -> Path:
    """A random 2-layer MistralForCausalLM (hidden 32) with its tokenizer, saved as safetensors."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from sftgate.gates.readers.tokenizer_io import load_tokenizer
    from sftgate.runners.demo.tiny_tokenizer import build_tiny_tokenizer

    build_tiny_tokenizer(out_dir, corpus=CORPUS, vocab_size=300)
    (out_dir / "generation_config.json").unlink(missing_ok=True)  # a base that knows only its EOS, like most
    tok = load_tokenizer(out_dir)
    config = MistralConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
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
