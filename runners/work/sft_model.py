"""The model side of LoRA SFT: the device, loading the base, the peft wrap and the smoke test.

Before training the wrapped model generates a few tokens (:func:`smoke_generate`), so a PEFT or
generation incompatibility fails in seconds (:class:`SmokeTestFailed`), not after training.
torch, transformers and peft are imported inside the functions.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sftgate.gates.frame.core import InputError, SftgateError
from sftgate.runners.work.sft_settings import DEFAULT_TARGETS, TrainSettings


class TrainError(SftgateError):
    """Training could not start or run (a PEFT/generation incompatibility, a failed step)."""

    exit_code = 3


class SmokeTestFailed(TrainError):
    """The PEFT-wrapped model could not generate a few tokens before training."""


def pick_device() -> tuple[str, str]:
    """(device, dtype): bf16 on a GPU that supports it (else fp32), fp32 on CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda", "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "cpu", "float32"


def load_model(model_dir: str | os.PathLike[str], dtype: str, *, revision: str | None = None) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from sftgate.runners.demo.tiny_model import quiet_transformers

    try:
        with quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(
                str(model_dir), dtype=getattr(torch, dtype), revision=revision, trust_remote_code=False,
            )
    except Exception as exc:  # OSError for a missing folder, ValueError for an unknown architecture, ...
        detail = " ".join(str(exc).split())[:300]
        raise InputError(f"{model_dir}: cannot load the model: {type(exc).__name__}: {detail}",
                         hint="model.id must be a local model folder (config.json + safetensors) "
                              "or a Hub ID in the local cache") from None


def wrap_lora(model: Any, settings: TrainSettings, *, base_id: str | None = None) -> Any:
    """``get_peft_model`` with the settings' LoRA hyperparameters (``all-linear`` by default).

    ``modules_to_save``, ``trainable_token_indices`` and ``target_parameters`` pass through to peft
    (copies: peft edits them); on a model with tied embeddings peft keeps the trained embedding and
    lm_head one tensor (``ensure_weight_tying``, peft >= 0.18)."""
    import copy
    import dataclasses

    from peft import LoraConfig, get_peft_model

    targets: Any = settings.target_modules if settings.target_modules is not None else DEFAULT_TARGETS
    extra: dict[str, Any] = {key: copy.deepcopy(getattr(settings, key)) for key in
                             ("modules_to_save", "trainable_token_indices", "target_parameters")
                             if getattr(settings, key) is not None}
    tied = bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))
    if tied and "ensure_weight_tying" in {f.name for f in dataclasses.fields(LoraConfig)}:
        extra["ensure_weight_tying"] = True
    config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,  # type: ignore[arg-type]  # peft takes a float too
        lora_dropout=settings.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        **extra,
    )
    from sftgate.runners.demo.tiny_model import quiet_transformers

    try:
        with quiet_transformers():
            peft_model = get_peft_model(model, config)
    except ValueError as exc:  # "Target modules {...} not found in the base model"
        raise InputError(f"LoRA cannot wrap the model: {' '.join(str(exc).split())[:300]}",
                         hint="`sftgate rules unknown_target_module`; fix lora.target_modules") from None
    if base_id is not None:
        for cfg in peft_model.peft_config.values():
            cfg.base_model_name_or_path = base_id
    return peft_model


def smoke_generate(model: Any, tokenizer: Any, prompt_ids: list[int], *, pad_id: int, new_tokens: int = 4) -> dict[str, Any]:
    """Generate a few tokens with the wrapped model: fail in seconds, not after training."""
    import torch

    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=False, pad_token_id=pad_id)
    except Exception as exc:
        raise SmokeTestFailed(
            f"the PEFT-wrapped model cannot generate ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})",
            hint="a peft/transformers incompatibility for this architecture (e.g. prepare_inputs_for_generation); "
                 "upgrade peft/transformers or pin versions that work together",
        ) from None
    finally:
        model.train(was_training)
    new = out[0, ids.shape[1]:].tolist()
    if len(new) != new_tokens:
        raise SmokeTestFailed(f"the PEFT-wrapped model generated {len(new)} tokens instead of {new_tokens}")
    return {"new_tokens": len(new), "seconds": round(time.perf_counter() - start, 3)}
