"""Gate ``merge-equivalence``: the merged model behaves like base + adapter.

"Merge changes packaging, not learned behaviour." On each fixed case the gate

1. generates greedily with base + adapter (peft, unmerged) and with the merged folder as saved;
2. runs both (and the base with the adapter disabled) on the prompt plus the reference continuation
   and compares the logits at every position.

Findings:

- ``merge_mismatch``: merged logits differ from base + adapter beyond the tolerance, or the greedy
  outputs differ (except at a near tie: where the reference's top-2 logits are within the tolerance,
  rounding may legitimately flip the choice; the first divergence is reported as info then);
- ``merge_no_effect``: the merged model's logits equal the base model's within the tolerance on every
  case (the adapter was zero, or the merge wrote the base back);
- ``nan_weights``: NaN or Inf in the merged weights or in the adapter.

Tolerance, per element: ``|merged - ref| <= atol + rtol * |ref|``, by the merged weights' dtype:

=========  ======  ======  =====================================================================
dtype      atol    rtol    why
=========  ======  ======  =====================================================================
float32    1e-4    0       merge adds B·A·scale into W; fp32 re-association error is ~1e-6
bfloat16   5e-2    1.6e-2  8-bit mantissa: W + ΔW rounds to bf16 (relative step 2^-8), and that
                           error grows through the layers; rtol is torch.testing's bf16 default
float16    1e-2    1e-3    11-bit mantissa, torch.testing's fp16 rtol
=========  ======  ======  =====================================================================

``atol`` / ``rtol`` override the table. Models are loaded one after the other (base + adapter, then
the merged folder), so peak memory is one model plus the reference logits.

Example::

    check(base="models/base", adapter="runs/x/adapter", merged="runs/x/merged",
          cases="data/cases.jsonl")
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, GateSkipped, InputError, Rule, Severity

GATE = "merge-equivalence"

MERGE_MISMATCH = Rule(
    "MRG001", "merge_mismatch", Severity.ERROR, GATE,
    "the merged model's logits or greedy outputs differ from base + adapter",
    "A merge is a packaging step: served merged weights must answer exactly like the adapter that "
    "passed the gates. A merge onto the wrong base, a quantized base, a dropped module or a bad "
    "scaling changes behaviour silently.",
    "Merge onto the exact full-precision base the adapter was trained on (same revision, fp32 or "
    "bf16, never 4-bit): `sftgate merge CONFIG`. For bf16, compare in the dtype you serve.",
    "case 3: max |merged - ref| = 0.41 > 1e-4; greedy output differs at token 2",
)
MERGE_NO_EFFECT = Rule(
    "MRG002", "merge_no_effect", Severity.ERROR, GATE,
    "the merged model behaves exactly like the base model",
    "A zero adapter (lora_B never trained, a learning rate of 0, a save before training) or a merge "
    "that wrote the base back ships the base model under a fine-tuned name.",
    "Check the training loss moved and the adapter's lora_B weights are not all zero; merge the "
    "adapter the training run saved.",
    "max |merged - base| = 0.0 on 8 cases",
)
NAN_WEIGHTS = Rule(
    "MRG003", "nan_weights", Severity.ERROR, GATE,
    "NaN or Inf in the merged weights or in the adapter",
    "A diverged run (fp16 overflow, a learning rate too high) saves NaNs; the model then emits garbage "
    "or a single token.",
    "Retrain with a lower learning rate or bf16/fp32, and check the loss for NaN before saving.",
    "model.layers.0.self_attn.q_proj.weight: 12 NaN",
)

RULES = (MERGE_MISMATCH, MERGE_NO_EFFECT, NAN_WEIGHTS)

# dtype -> (atol, rtol); see the module docstring.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float32": (1e-4, 0.0),
    "bfloat16": (5e-2, 1.6e-2),
    "float16": (1e-2, 1e-3),
}


def tolerance(dtype: str) -> tuple[float, float]:
    """``(atol, rtol)`` for weights of ``dtype`` (``float32``, ``bfloat16``, ``float16``)."""
    return TOLERANCES.get(dtype.replace("torch.", ""), TOLERANCES["float32"])


def check(
    *,
    base: str | os.PathLike[str],
    adapter: str | os.PathLike[str],
    merged: str | os.PathLike[str],
    cases: Any = None,
    prompt_ids: Sequence[Sequence[int]] | None = None,
    spec: Any = None,
    tokenizer: Any = None,
    atol: float | None = None,
    rtol: float | None = None,
    max_new_tokens: int = 8,
    max_cases: int = 16,
    device: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Compare the merged folder with base + adapter on the fixed cases (or ``prompt_ids``).

    ``cases`` is a cases JSONL path or a list of ``FixedCase``; their prompts are encoded with
    ``sftgate.gates.tokenizer.rendering.encode_prompt`` (the training tokenization) using ``tokenizer`` (a folder or a
    tokenizer; default: the merged folder) and ``spec`` (a ``PromptSpec``).
    """
    import torch

    base_dir, adapter_dir, merged_dir = Path(base), Path(adapter), Path(merged)
    for path, what in ((base_dir, "base model"), (adapter_dir, "adapter"), (merged_dir, "merged model")):
        if not path.is_dir():
            raise InputError(f"{path}: {what} folder not found", hint="check the paths given to the merge stage")
    inputs = _inputs(cases, prompt_ids, spec, tokenizer, merged_dir, max_cases)
    if not inputs:
        raise GateSkipped("no fixed cases to compare on (data.cases)")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    metrics = metrics if metrics is not None else {}

    # Phase 1: base + adapter (reference) and base alone.
    yield from _adapter_nan(adapter_dir)
    dtype = _saved_dtype(merged_dir)
    a_tol, r_tol = tolerance(str(dtype).replace("torch.", ""))
    a_tol = a_tol if atol is None else atol
    r_tol = r_tol if rtol is None else rtol
    ref_model = _load_reference(base_dir, adapter_dir, dtype, dev)
    refs = []
    with torch.no_grad():
        for case_id, ids in inputs:
            seq = _greedy(ref_model, ids, max_new_tokens, dev)
            full = torch.tensor([seq], device=dev)
            ref_logits = ref_model(input_ids=full).logits[0].float().cpu()
            with ref_model.disable_adapter():
                base_logits = ref_model(input_ids=full).logits[0].float().cpu()
            refs.append((case_id, ids, seq, ref_logits, base_logits))
    del ref_model
    _free(dev)

    # Phase 2: the merged folder as saved.
    merged_model = _load_model(merged_dir, dtype, dev)
    yield from _model_nan(merged_model, merged_dir)
    worst = worst_base = worst_adapter = 0.0
    identical = 0
    differs_from_base = adapter_has_effect = False
    with torch.no_grad():
        for case_id, ids, seq, ref_logits, base_logits in refs:
            full = torch.tensor([seq], device=dev)
            logits = merged_model(input_ids=full).logits[0].float().cpu()
            diff, excess = _compare(logits, ref_logits, a_tol, r_tol)
            worst = max(worst, diff)
            vs_base, excess_base = _compare(logits, base_logits, a_tol, r_tol)
            worst_base = max(worst_base, vs_base)
            differs_from_base |= excess_base > 0
            effect, excess_effect = _compare(ref_logits, base_logits, a_tol, r_tol)
            worst_adapter = max(worst_adapter, effect)
            adapter_has_effect |= excess_effect > 0
            if excess > 0:
                yield MERGE_MISMATCH.finding(
                    f"case {case_id}: merged logits differ from base + adapter by up to {_fmt(diff)} "
                    f"(tolerance {a_tol:g} + {r_tol:g}·|ref|) over {len(seq)} positions",
                    case_id,
                    evidence={"max_abs_diff": diff, "atol": a_tol, "rtol": r_tol, "positions": len(seq)},
                )
            out = _greedy(merged_model, ids, max_new_tokens, dev)
            if out == seq:
                identical += 1
                continue
            k, margin, tie = divergence(out, seq, ref_logits, a_tol, r_tol)
            yield MERGE_MISMATCH.finding(
                f"case {case_id}: greedy output differs from base + adapter at generated token {k - len(ids) + 1}"
                f" (merged {out[k:k + 1]} vs reference {seq[k:k + 1]})"
                + (f"; a near tie (top-2 margin {_fmt(margin)})" if tie else ""),
                case_id,
                severity=Severity.INFO if tie else None,
                evidence={"position": k, "merged": out[len(ids):][:20], "reference": seq[len(ids):][:20],
                          "top2_margin": margin},
            )
    del merged_model
    _free(dev)
    if not differs_from_base:
        cause = "the merge did not apply the adapter" if adapter_has_effect else "the adapter itself has no effect"
        yield MERGE_NO_EFFECT.finding(
            f"merged model equals the base within {a_tol:g} on all {len(refs)} cases "
            f"(max |merged - base| = {_fmt(worst_base)}): {cause}",
            str(merged_dir),
            evidence={"max_abs_diff_vs_base": worst_base, "max_abs_adapter_effect": worst_adapter},
        )
    metrics.update(
        cases=len(refs), dtype=str(dtype).replace("torch.", ""), atol=a_tol, rtol=r_tol,
        max_abs_diff=worst, max_abs_diff_vs_base=worst_base, greedy_identical=identical,
    )


# --------------------------------------------------------------------------- inputs


def _inputs(cases: Any, prompt_ids: Any, spec: Any, tokenizer: Any, merged_dir: Path, limit: int) -> list[tuple[str, list[int]]]:
    if prompt_ids is not None:
        return [(f"prompt[{i}]", [int(t) for t in ids]) for i, ids in enumerate(prompt_ids) if len(ids)][:limit]
    if cases is None:
        return []
    from sftgate.gates.tokenizer import rendering

    if isinstance(cases, str | os.PathLike):
        from sftgate.gates.readers.cases import load_cases

        cases = load_cases(Path(cases))
    if tokenizer is None or isinstance(tokenizer, str | os.PathLike):
        from sftgate.gates.readers.tokenizer_io import load_tokenizer

        tokenizer = load_tokenizer(tokenizer or merged_dir)
    spec = spec if spec is not None else rendering.PromptSpec()
    out = []
    for case in list(cases)[:limit]:
        ids = rendering.encode_prompt(tokenizer, case.as_example(), spec)
        out.append((str(case.id), list(ids)))
    return out


# --------------------------------------------------------------------------- models


def _saved_dtype(folder: Path) -> Any:
    """The dtype the merged folder was saved in (config ``dtype`` / ``torch_dtype``), default fp32."""
    import json

    import torch

    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"{folder / 'config.json'}: missing or not JSON", hint="save the merged model again") from None
    name = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    return getattr(torch, str(name), torch.float32) if str(name) in TOLERANCES else torch.float32


@contextlib.contextmanager
def quiet_loading(progress: bool = False) -> Iterator[None]:
    """transformers' and peft's load-time progress bars and deprecation chatter stay off stderr
    (sftgate's stderr is for its own lines); the previous settings come back afterwards."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    if not progress:
        hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_model(folder: Path, dtype: Any, dev: Any) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        with quiet_loading():
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, trust_remote_code=False)
    except Exception as exc:  # transformers/safetensors raise OSError, ValueError, SafetensorError...
        raise InputError(f"{folder}: cannot load the model ({str(exc).splitlines()[0]})",
                         hint="the folder needs config.json and safetensors weights") from None
    return model.to(dev).eval()


def _load_reference(base_dir: Path, adapter_dir: Path, dtype: Any, dev: Any) -> Any:
    from peft import PeftModel

    model = _load_model(base_dir, dtype, dev)
    try:
        with quiet_loading():
            ref = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    except Exception as exc:  # shape mismatches, missing keys, a corrupt adapter file
        raise InputError(f"{adapter_dir}: cannot load the adapter onto {base_dir} ({str(exc).splitlines()[0]})",
                         hint="the adapter must be trained on this base model") from None
    return ref.to(dev).eval()


def _greedy(model: Any, ids: list[int], max_new_tokens: int, dev: Any) -> list[int]:
    import torch

    x = torch.tensor([ids], device=dev)
    cfg = getattr(model, "generation_config", None)
    pad = getattr(cfg, "pad_token_id", None)
    eos = getattr(cfg, "eos_token_id", None)
    if pad is None:
        pad = eos[0] if isinstance(eos, list) and eos else (eos if eos is not None else 0)
    with quiet_loading():
        out = model.generate(
            input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens, do_sample=False,
            num_beams=1, pad_token_id=pad, temperature=None, top_p=None, top_k=None,
        )
    return [int(t) for t in out[0].tolist()]


def _compare(a: Any, b: Any, atol: float, rtol: float) -> tuple[float, float]:
    """(max |a - b|, max excess over the tolerance); non-finite differences count as infinite."""
    import torch

    n = min(a.shape[0], b.shape[0])
    a, b = a[:n], b[:n]
    diff = (a - b).abs()
    diff = torch.where(torch.isfinite(diff), diff, torch.full_like(diff, math.inf))
    excess = diff - (atol + rtol * b.abs())
    return float(diff.max()), float(excess.max())


def divergence(out: list[int], ref: list[int], ref_logits: Any, atol: float, rtol: float) -> tuple[int, float, bool]:
    """Where two greedy sequences first differ, the reference's top-2 logit margin there, and
    whether that is a near tie (margin within twice the tolerance: rounding may flip the argmax)."""
    k = next((i for i, (x, y) in enumerate(zip(out, ref, strict=False)) if x != y), min(len(out), len(ref)))
    if not 1 <= k <= ref_logits.shape[0]:
        return k, math.inf, False
    margin = _margin(ref_logits, k - 1)
    return k, margin, margin <= 2 * (atol + rtol * float(ref_logits[k - 1].abs().max()))


def _margin(logits: Any, pos: int) -> float:
    top = logits[pos].topk(2).values
    return float(top[0] - top[1])


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _free(dev: Any) -> None:
    """Release the first model's GPU memory before the second loads (on CPU, ``del`` suffices)."""
    if getattr(dev, "type", "cpu") == "cuda":
        import torch

        gc.collect()
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- NaN / Inf


def _model_nan(model: Any, folder: Path) -> Iterator[Finding]:
    import torch

    bad: dict[str, int] = {}
    for name, param in model.named_parameters():
        n = int((~torch.isfinite(param.detach())).sum())
        if n:
            bad[name] = n
    if bad:
        first = next(iter(bad))
        yield NAN_WEIGHTS.finding(
            f"{len(bad)} merged tensors hold NaN/Inf, e.g. {first!r} ({bad[first]} values)",
            f"{folder}:{first}",
            evidence={"tensors": len(bad), "values": sum(bad.values()), "samples": dict(list(bad.items())[:20])},
        )


def _adapter_nan(adapter_dir: Path) -> Iterator[Finding]:
    import torch

    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        return
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except Exception as exc:  # a corrupt file is the artifacts gate's finding; loading will fail clearly
        raise InputError(f"{path}: unreadable adapter weights ({exc})", hint="save the adapter again") from None
    bad = {name: int((~torch.isfinite(t)).sum()) for name, t in tensors.items() if t.is_floating_point()}
    bad = {k: v for k, v in bad.items() if v}
    if bad:
        first = next(iter(bad))
        yield NAN_WEIGHTS.finding(
            f"{len(bad)} adapter tensors hold NaN/Inf, e.g. {first!r} ({bad[first]} values)",
            f"{path}:{first}",
            evidence={"tensors": len(bad), "values": sum(bad.values()), "samples": dict(list(bad.items())[:20])},
        )
