"""Build a tiny Mistral-architecture model offline: random weights, fp32, safetensors.

For the demo, the tests and users' own tests (the pytest plugin's fixture). No download: the
model is a ``MistralForCausalLM`` built from a ``MistralConfig`` sized to the tokenizer in
``tokenizer_dir``, saved with that tokenizer's files (``tokenizer.json``, ``tokenizer_config.json``,
``chat_template.jinja``) and a ``generation_config.json`` whose ``eos_token_id`` holds EOS and the
chat template's end-of-turn token. The folder is written to a temp folder and renamed into place.

::

    from sftgate.runners.demo.tiny_tokenizer import build_tiny_tokenizer
    from sftgate.runners.demo.tiny_model import build_tiny_model
    tok = build_tiny_tokenizer("tiny-tok")
    build_tiny_model("tiny-model", tok)                       # about 0.1M parameters
    build_tiny_model("tiny-model-big", tok, hidden_size=128, layers=4)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer.model", "tekken.json", "tokenizer_config.json",
    "special_tokens_map.json", "chat_template.jinja", "chat_template.json",
)


def build_tiny_model(
    out_dir: str | os.PathLike[str],
    tokenizer_dir: str | os.PathLike[str],
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 1024,
) -> Path:
    """Build and save a random-init ``MistralForCausalLM`` for the tokenizer in ``tokenizer_dir``.

    Returns ``out_dir``. The same arguments and seed give the same weights. An existing
    ``out_dir`` is replaced as a whole (rename), never half-written, and only when an earlier build
    made it (``sftgate-tiny-model.json``): any other folder is refused before any work.
    """
    from sftgate.runners.pipeline.folder_swap import ensure_replaceable, replace_dir, temp_dir_for

    ensure_replaceable(out_dir)
    from transformers import GenerationConfig, MistralConfig, MistralForCausalLM

    from sftgate.gates.readers.tokenizer_io import load_tokenizer
    from sftgate.gates.tokenizer.rendering import end_of_turn_ids

    if hidden_size % heads:
        raise ValueError(f"hidden_size {hidden_size} is not a multiple of heads {heads}")
    tok_dir = Path(tokenizer_dir)
    tokenizer = load_tokenizer(tok_dir)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_position_embeddings,
        sliding_window=None,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        tie_word_embeddings=False,
        initializer_range=0.02,
    )
    with _seeded(seed):
        model = MistralForCausalLM(config).float()
    stop = [int(i) for i in end_of_turn_ids(tokenizer)]
    model.generation_config = GenerationConfig(
        bos_token_id=bos,
        eos_token_id=stop[0] if len(stop) == 1 else stop,
        pad_token_id=pad,
    )
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_for(out)
    tmp.mkdir()
    try:
        with quiet_transformers():
            model.save_pretrained(tmp)
        for name in TOKENIZER_FILES:
            if (tok_dir / name).is_file():
                shutil.copy2(tok_dir / name, tmp / name)
        (tmp / "sftgate-tiny-model.json").write_text(json.dumps({
            "builder": "sftgate.runners.demo.tiny_model.build_tiny_model",
            "hidden_size": hidden_size, "layers": layers, "heads": heads, "seed": seed,
            "parameters": parameter_count(model),
        }, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def parameter_count(model: Any, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class _seeded:
    """Seed torch's CPU generator for model init, then restore the previous state."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        import torch

        self.state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.random.set_rng_state(self.state)


class quiet_transformers:
    """Silence transformers' warnings and progress bars (sftgate's stderr is for its own lines)."""

    def __init__(self, progress: bool = False) -> None:
        self.progress = progress

    def __enter__(self) -> None:
        import warnings

        from transformers.utils import logging as hf_logging

        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore", FutureWarning)  # library deprecation notices, not the user's business
        self.level = hf_logging.get_verbosity()
        self.bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        if not self.progress:
            hf_logging.disable_progress_bar()

    def __exit__(self, *exc: object) -> None:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(self.level)
        if self.bars:
            hf_logging.enable_progress_bar()
        self.warnings.__exit__(None, None, None)


def require_model_dir(path: str | os.PathLike[str], what: str = "model") -> Path:
    """A local model folder with ``config.json``, else :class:`InputError` naming it."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise InputError(f"{p}: {what} folder does not exist",
                         hint="pass a local folder with config.json and safetensors weights; sftgate never downloads")
    if not (p / "config.json").is_file():
        raise InputError(f"{p}: no config.json, not a transformers {what} folder",
                         hint="save the model with `model.save_pretrained(DIR)`")
    return p
