"""Gate ``lora-targets``: every LoRA ``target_modules`` entry names modules that exist in the model.

The model is built from its ``config.json`` on the ``meta`` device: no weights are read, so a 70B
config is checked in seconds on a CPU runner. Entries are matched as peft matches them: a list
entry matches a module whose name equals it or ends with ``.<entry>``; a string is a regular
expression matched against the full module name; ``all-linear`` is every linear layer but the
output head.

Rules:

- ``LORA001 unknown_target_module``: an entry matches no module (``query_key_value`` on a Llama,
  ``q_proj`` on a GPT-2); peft would stop with "Target modules not found" after loading the weights;
  the suggestion names the closest module names that exist;
- ``LORA002 target_not_adaptable``: an entry matches only modules LoRA cannot wrap (a norm, an
  activation, a container such as ``self_attn``);
- ``LORA003 lora_on_vision_tower``: on a multimodal model an entry (or ``all-linear``) also adapts
  the vision/audio tower or the projector; LoRA for text SFT goes on the language model only, and
  the suggestion is a regular expression restricted to it;
- ``LORA004 no_target_modules``: no ``lora.target_modules`` and peft has no default for this
  architecture;
- ``LORA005 experts_not_adapted`` (warning): on a mixture-of-experts model nothing adapts an expert;
  the metrics give the trainable share per module type (:mod:`sftgate.gates.train.trainable_share`).
  ``lora.target_parameters`` entries (peft's LoRA on fused expert parameters) are checked to exist.

::

    sftgate run sftgate.yaml          # the train stage runs it before any weights are loaded
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, GateSkipped, InputError, rule_maker
from sftgate.gates.train.trainable_share import EXPERTS_NOT_ADAPTED, matched_parameters, moe_findings

GATE = "lora-targets"
ALL_LINEAR = "all-linear"
# Module path parts that belong to a non-language tower of a multimodal model.
TOWER_WORDS = ("vision", "visual", "image", "audio", "speech", "multi_modal_projector", "mm_projector",
               "projector", "patch_embed", "vpm", "resampler")
LANGUAGE_PARTS = ("language_model", "text_model", "llm")


_rule = rule_maker(GATE)


UNKNOWN_TARGET = _rule(
    "LORA001", "unknown_target_module", "a LoRA target_modules entry matches no module of the model",
    "peft raises 'Target modules ... not found in the base model' only after the weights are loaded "
    "(minutes on a GPU runner); module names differ between families (q_proj vs query_key_value vs c_attn).",
    "Use names that exist (the suggestion lists the closest), or 'all-linear'.",
    "lora.target_modules: [query_key_value] on a Mistral model (it has q_proj, k_proj, v_proj, o_proj)",
)
NOT_ADAPTABLE = _rule(
    "LORA002", "target_not_adaptable", "a LoRA target_modules entry matches only modules LoRA cannot wrap",
    "LoRA wraps linear, embedding and convolution layers; a norm, an activation or a container module "
    "(self_attn, mlp) makes peft fail with 'Target module ... is not supported'.",
    "Name the linear layers inside it (q_proj, v_proj, ...) instead of the container.",
    "lora.target_modules: [self_attn] (a container: use q_proj, k_proj, v_proj, o_proj)",
)
VISION_TOWER = _rule(
    "LORA003", "lora_on_vision_tower", "LoRA would adapt the vision/audio tower or projector of a multimodal model",
    "Text SFT data never exercises the vision tower: LoRA there adds parameters that only drift, "
    "changes image behaviour unchecked, and bloats the adapter. 'all-linear' and bare names like q_proj "
    "match the vision encoder's layers too.",
    "Restrict target_modules to the language model with a regular expression (the suggestion).",
    "lora.target_modules: all-linear on a Llava model adapts vision_tower.*.q_proj",
)
NO_TARGETS = _rule(
    "LORA004", "no_target_modules", "no lora.target_modules and peft has no default for this architecture",
    "peft falls back to a per-architecture table; a model type missing from it fails at wrap time.",
    "Set lora.target_modules (e.g. all-linear, or the attention projections).",
    "lora.target_modules unset for model_type 'my_arch'",
)
RULES = (UNKNOWN_TARGET, NOT_ADAPTABLE, VISION_TOWER, NO_TARGETS, EXPERTS_NOT_ADAPTED)


# --------------------------------------------------------------------------- model on meta


def _linear_kinds() -> tuple[type, ...]:
    import torch
    from transformers.pytorch_utils import Conv1D

    return (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
            torch.nn.MultiheadAttention, Conv1D)


def meta_model(model_dir: str | os.PathLike[str]) -> tuple[Any, Any]:
    """(config, model) built on the meta device from ``model_dir/config.json``: no weights read.

    Memoised per ``config.json`` content (the gate only reads the model): checking several target
    lists, or the train stage after ``sftgate check``, builds it once.
    """
    folder = Path(model_dir)
    try:
        key = (str(folder.resolve()), (folder / "config.json").read_bytes())
    except OSError:
        key = (str(folder), b"")
    return _meta_model(*key)


@functools.lru_cache(maxsize=4)
def _meta_model(folder_name: str, _config_bytes: bytes) -> tuple[Any, Any]:
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    folder = Path(folder_name)
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder}: no config.json, not a model folder",
                         hint="model.id must be a local model folder or a Hub ID in the local cache")
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False, local_files_only=True)
    except Exception as exc:  # unknown model_type, remote code, invalid JSON
        detail = " ".join(str(exc).split())[:300]
        raise InputError(f"{folder}/config.json: cannot read the model config: {type(exc).__name__}: {detail}",
                         hint="sftgate never runs remote code; the architecture must be in transformers") from None
    autos: list[Any] = [AutoModelForCausalLM]
    try:
        from transformers import AutoModelForImageTextToText

        autos.append(AutoModelForImageTextToText)
    except ImportError:  # pragma: no cover - older transformers
        pass
    autos.append(AutoModel)
    errors = []
    for auto in autos:
        try:
            with torch.device("meta"):
                return config, auto.from_config(config, trust_remote_code=False)
        except (ValueError, KeyError, TypeError) as exc:
            errors.append(f"{auto.__name__}: {exc}")
    raise InputError(f"{folder}: cannot build the model from its config ({'; '.join(errors)[:300]})",
                     hint="the architecture must be supported by the installed transformers")


def is_multimodal(config: Any) -> bool:
    try:
        text = config.get_text_config()
    except Exception:
        text = config
    return text is not config or any(hasattr(config, k) for k in ("vision_config", "audio_config"))


def _output_head(model: Any) -> str | None:
    try:
        head = model.get_output_embeddings()
    except Exception:
        return None
    if head is None:
        return None
    return next((name for name, module in model.named_modules() if module is head), None)


def _language_prefix(names: list[str]) -> str | None:
    """The module path of the language model inside a multimodal model (shortest match)."""
    found = [n for n in names if n.split(".")[-1] in LANGUAGE_PARTS]
    return min(found, key=len) if found else None


def _is_tower(name: str, language: str | None, head: str | None) -> bool:
    if name == head:
        return False
    if language is not None:
        return not (name == language or name.startswith(language + "."))
    parts = name.lower().split(".")
    return any(word in part for part in parts for word in TOWER_WORDS)


def _matches(entry: str, name: str, regex: bool) -> bool:
    if regex:
        return re.fullmatch(entry, name) is not None
    return name == entry or name.endswith("." + entry)


# --------------------------------------------------------------------------- the gate


def check(
    *,
    model_dir: str | os.PathLike[str],
    target_modules: list[str] | str | None,
    location: str = "lora.target_modules",
    rank: int = 8,
    target_parameters: list[str] | None = None,
    modules_to_save: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Check ``target_modules`` (and ``target_parameters``) against the model in ``model_dir``
    (meta device); ``rank`` and ``modules_to_save`` size the trainable share per module type."""
    config, model = meta_model(model_dir)
    kinds = _linear_kinds()
    modules = dict(model.named_modules())
    names = [n for n in modules if n]
    adaptable = {n for n in names if isinstance(modules[n], kinds)}
    linear_leaves = sorted({n.split(".")[-1] for n in adaptable if not isinstance(modules[n], _embedding_kinds())})
    head = _output_head(model)
    multimodal = is_multimodal(config)
    language = _language_prefix(names) if multimodal else None
    if metrics is not None:
        metrics.update(model_type=getattr(config, "model_type", None), modules=len(names),
                       adaptable=len(adaptable), linear_names=linear_leaves[:40], multimodal=multimodal)
        if language:
            metrics["language_model"] = language

    if target_modules is None:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as defaults

        text_type = getattr(config.get_text_config(), "model_type", None) if multimodal else None
        default = defaults.get(str(text_type)) or defaults.get(str(config.model_type))
        if not default:
            yield NO_TARGETS.finding(
                f"lora.target_modules is not set and peft has no default for model_type {config.model_type!r}",
                location, suggestion=ALL_LINEAR, evidence={"linear_names": linear_leaves[:20]},
            )
            return
        target_modules = [str(t) for t in default]
        if metrics is not None:
            metrics["peft_default_targets"] = list(target_modules)

    regex = isinstance(target_modules, str) and target_modules != ALL_LINEAR
    if target_modules == ALL_LINEAR:
        matched_all = {n for n in adaptable if isinstance(modules[n], _linear_only()) and n != head}
        per_entry = {ALL_LINEAR: matched_all}
    elif isinstance(target_modules, str):
        per_entry = {target_modules: {n for n in names if _matches(target_modules, n, True)}}
    else:
        per_entry = {str(e): {n for n in names if _matches(str(e), n, False)} for e in target_modules}

    targeted: set[str] = set()
    for entry, matched in per_entry.items():
        where = location
        if not matched:
            close = difflib.get_close_matches(entry.split(".")[-1], linear_leaves, n=3, cutoff=0.4)
            yield UNKNOWN_TARGET.finding(
                f"target_modules entry {entry!r} matches no module of the model "
                f"({getattr(config, 'model_type', '?')}; linear layers: {', '.join(linear_leaves[:8])})",
                where,
                suggestion=", ".join(close) if close else ALL_LINEAR,
                evidence={"entry": entry, "regex": regex, "linear_names": linear_leaves[:20]},
            )
            continue
        ok = {n for n in matched if n in adaptable}
        if not ok:
            kinds_found = sorted({type(modules[n]).__name__ for n in matched})
            inner = sorted({n.split(".")[-1] for n in adaptable
                            if any(n.startswith(m + ".") for m in matched)})
            yield NOT_ADAPTABLE.finding(
                f"target_modules entry {entry!r} matches only {', '.join(kinds_found[:5])} modules, "
                "which LoRA cannot wrap",
                where,
                suggestion=", ".join(inner[:8]) if inner else None,
                evidence={"entry": entry, "module_types": kinds_found, "examples": sorted(matched)[:5]},
            )
            continue
        targeted |= ok

    if multimodal and targeted:
        towers = sorted(n for n in targeted if _is_tower(n, language, head))
        if towers:
            leaves = sorted({n.split(".")[-1] for n in targeted if not _is_tower(n, language, head)}) or linear_leaves
            prefix = re.escape(language) if language else r"(?!.*(vision|visual|audio|projector))"
            suggestion = rf"{prefix}\..*\.({'|'.join(leaves)})" if language else rf"{prefix}.*\.({'|'.join(leaves)})"
            yield VISION_TOWER.finding(
                f"target_modules {_show(target_modules)} also adapts {len(towers)} module(s) outside the "
                f"language model, e.g. {towers[0]!r}",
                location,
                suggestion=suggestion,
                evidence={"tower_modules": towers[:10], "tower_count": len(towers), "language_model": language},
            )
    if metrics is not None:
        metrics["targeted_modules"] = len(targeted)
    parameters = []
    for entry, found in matched_parameters(model, list(target_parameters or [])).items():
        if not found:
            yield UNKNOWN_TARGET.finding(f"target_parameters entry {entry!r} matches no parameter of the model",
                                         location, evidence={"entry": entry})
        parameters.extend(found)
    saved = {n for n in names if any(_matches(str(e), n, False) for e in modules_to_save or [])}
    yield from moe_findings(config, model, modules, targeted, rank, parameters, saved, location, metrics)


def _embedding_kinds() -> tuple[type, ...]:
    import torch

    return (torch.nn.Embedding,)


def _linear_only() -> tuple[type, ...]:
    import torch
    from transformers.pytorch_utils import Conv1D

    return (torch.nn.Linear, Conv1D)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else "[" + ", ".join(map(str, value))[:80] + "]"


def from_config(config: Any) -> dict[str, Any] | None:
    """The kwargs for :func:`check`: the model folder (local or in the HF cache) and the targets."""
    from sftgate.gates.readers.tokenizer_io import model_dir_from_config

    folder = model_dir_from_config(config)
    if folder is None or not (Path(folder) / "config.json").is_file():
        raise GateSkipped(
            f"no model config available offline for '{config.get('model.id')}' "
            "(model.id is not a local folder and not in the Hugging Face cache)"
        )
    return {
        "model_dir": folder,
        "target_modules": config.get("lora.target_modules"),
        "rank": int(config.get("lora.r") or 8),
        "target_parameters": config.get("lora.target_parameters"),
        "modules_to_save": config.get("lora.modules_to_save"),
        "location": config.location("lora.target_modules") if config.get("lora.target_modules") is not None
        else config.location("lora"),
    }
