"""What a LoRA config trains, per module type, on the meta-device model lora-targets builds; MoE experts.

Parameters are grouped by the kind of module they sit in (``attention``, ``mlp``, ``experts``,
``shared_experts``, ``router``, ``embeddings``, ``norm``, ``other``), and each kind gets the LoRA
parameters the config adds there: ``r x (in + out)`` per targeted linear or embedding module,
``r x experts x (in + out)`` per targeted expert parameter (``lora.target_parameters``: in
transformers 5 the experts of Mixtral, Qwen3-MoE and others are fused 3-D parameters, not
``nn.Linear``, so ``target_modules`` and ``all-linear`` never reach them), and the full size of
every ``modules_to_save`` module.

``LORA005 experts_not_adapted`` (a warning): on a mixture-of-experts model nothing in the experts
is adapted: the fine-tune trains the attention (and maybe a dense MLP) only, a sliver of the
model (mlx-lm #571: 0.022% trainable).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from sftgate.gates.frame.core import Finding, Rule, Severity

EXPERTS_NOT_ADAPTED = Rule(
    "LORA005", "experts_not_adapted", Severity.WARNING, "lora-targets",
    "on a mixture-of-experts model, the LoRA targets adapt no expert (attention only, say)",
    "In an MoE model the experts hold most parameters. target_modules that name only attention "
    "projections, or all-linear where the experts are fused 3-D parameters (transformers 5: Mixtral, "
    "Qwen3-MoE), leave every expert frozen: the run trains a sliver of the model and learns little "
    "(mlx-lm #571: 0.022% of the parameters trainable).",
    "Adapt the experts: lora.target_parameters for fused expert parameters (the suggestion, e.g. "
    "[mlp.experts.gate_up_proj, mlp.experts.down_proj]), or their linear layers in lora.target_modules; "
    "the report's trainable share per module type shows the result.",
    "lora.target_modules: [q_proj, k_proj, v_proj, o_proj] on Mixtral-8x7B",
)
MOE_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
LAYER_INDEX = re.compile(r"^.*?\.\d+\.")


def kind_of(name: str) -> str:
    """The module type a parameter or module name belongs to."""
    parts = name.lower().split(".")
    if any("expert" in p for p in parts):
        return "shared_experts" if any("shared" in p for p in parts) else "experts"
    if any(p in ("router", "gate") or p.endswith("router") for p in parts[:-1]) or parts[-1] == "router":
        return "router"
    if any(p.startswith(("embed", "wte", "wpe", "lm_head")) for p in parts):
        return "embeddings"
    if any(p in ("self_attn", "attention", "attn", "cross_attn") or p.endswith("attention") for p in parts):
        return "attention"
    if any("norm" in p for p in parts):
        return "norm"
    if any(p in ("mlp", "feed_forward", "ffn", "block_sparse_moe") for p in parts):
        return "mlp"
    return "other"


def experts_per_layer(config: Any) -> int:
    for source in (config, _text(config)):
        for key in MOE_KEYS:
            value = getattr(source, key, None)
            if isinstance(value, int) and value > 1:
                return value
    return 0


def _text(config: Any) -> Any:
    try:
        return config.get_text_config()
    except Exception:
        return config


def _lora_size(shape: tuple[int, ...], rank: int) -> int:
    if len(shape) < 2:
        return 0
    lead = 1
    for d in shape[:-2]:
        lead *= d
    return rank * lead * (shape[-2] + shape[-1])


def matched_parameters(model: Any, entries: list[str]) -> dict[str, list[str]]:
    """``lora.target_parameters`` entries -> the parameter names they match (peft: equal or suffix)."""
    names = [n for n, _ in model.named_parameters()]
    return {e: [n for n in names if n == e or n.endswith("." + e)] for e in entries}


def share(model: Any, modules: dict[str, Any], targeted: set[str], rank: int,
          parameters: list[str], saved: set[str]) -> dict[str, dict[str, Any]]:
    """Per module kind: base parameters, trainable parameters, and the kind's share of the trainable."""
    base: Counter[str] = Counter()
    trainable: Counter[str] = Counter()
    shapes = {}
    for name, param in model.named_parameters():
        base[kind_of(name)] += param.numel()
        shapes[name] = tuple(param.shape)
        if any(name.startswith(m + ".") for m in saved):
            trainable[kind_of(name)] += param.numel()
    for name in targeted:
        weight = getattr(modules[name], "weight", None)
        if weight is not None:
            shape = tuple(weight.shape)
            if type(modules[name]).__name__ == "Conv1D":
                shape = shape[::-1]
            trainable[kind_of(name)] += _lora_size(shape, rank)
    for name in parameters:
        trainable[kind_of(name)] += _lora_size(shapes[name], rank)
    total = sum(trainable.values())
    return {kind: {"params": base[kind], "trainable": trainable[kind],
                   "share_of_trainable": round(trainable[kind] / total, 6) if total else 0.0}
            for kind in sorted(base, key=lambda k: -base[k])}


def moe_findings(config: Any, model: Any, modules: dict[str, Any], targeted: set[str], rank: int,
                 parameters: list[str], saved: set[str], location: str,
                 metrics: dict[str, Any] | None) -> Iterator[Finding]:
    """The trainable share per module type (in ``metrics``) and ``experts_not_adapted``."""
    table = share(model, modules, targeted, rank, parameters, saved)
    total = sum(row["params"] for row in table.values())
    trained = sum(row["trainable"] for row in table.values())
    experts = experts_per_layer(config)
    if metrics is not None:
        metrics.update(trainable_share=table, trainable_params=trained, total_params=total,
                       trainable_percent=round(100 * trained / total, 6) if total else 0.0, experts_per_layer=experts)
    expert_params = table.get("experts", {}).get("params", 0)
    if not experts or not expert_params or table["experts"]["trainable"]:
        return
    adapted = sorted(k for k, row in table.items() if row["trainable"])
    yield EXPERTS_NOT_ADAPTED.finding(
        f"mixture of {experts} experts per layer ({getattr(config, 'model_type', '?')}): the LoRA config adapts "
        f"{', '.join(adapted) or 'nothing'} and no expert; {100 * trained / total:.3f}% of the parameters are "
        f"trainable while the frozen experts hold {expert_params / total:.0%}",
        location, suggestion=_suggestion(model, modules),
        evidence={"trainable_share": table, "trainable_percent": round(100 * trained / total, 6),
                  "experts_per_layer": experts},
    )


def _suggestion(model: Any, modules: dict[str, Any]) -> str:
    fused = sorted({LAYER_INDEX.sub("", n) for n, p in model.named_parameters()
                    if kind_of(n) == "experts" and p.dim() >= 3})
    if fused:
        return f"lora.target_parameters: [{', '.join(fused[:6])}]"
    leaves = sorted({n.split(".")[-1] for n, m in modules.items()
                     if kind_of(n) == "experts" and type(m).__name__ in ("Linear", "Conv1D")})
    return f"add to lora.target_modules: [{', '.join(leaves[:6])}]"
