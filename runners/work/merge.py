"""Merge a LoRA adapter into its full-precision base, and the merge stage with its gates.

``merge_adapter`` loads the base (never a quantized one: merging into 4-bit or 8-bit weights rounds
the update away) in the base's own dtype unless told otherwise (a bf16 base merges and saves as
bf16, not as an fp32 model twice its size), applies the adapter with peft, ``merge_and_unload``s it
and saves, into a hidden temp folder that is then renamed into place (a killed merge never leaves a
half-written model):

- the weights as safetensors, and ``config.json``;
- the tokenizer files and the chat template, as ``chat_template.jinja`` and in
  ``tokenizer_config.json`` (where TGI reads it: :func:`template_in_tokenizer_config`);
- ``generation_config.json`` whose ``eos_token_id`` holds the tokenizer's EOS **and** the chat
  template's end-of-turn token (``<|im_end|>``, ``<|eot_id|>``...), so generation stops there.

``merge_stage`` runs it for a config and adds the merge stage's gates to a report:
``merge-equivalence`` (merged vs base + adapter on the fixed cases), ``artifacts`` and
``merge-dtype`` (the merged tensors keep the base's dtype and size).

Examples::

    sftgate merge sftgate.yaml                        # adapter from train.output_dir
    sftgate merge sftgate.yaml --adapter runs/x/adapter --out runs/x/merged --dtype bfloat16

    from sftgate.runners.work.merge import merge_adapter
    merge_adapter("models/base", "runs/x/adapter", "runs/x/merged")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError, Stage
from sftgate.gates.frame.execute import run_gate, skipped
from sftgate.gates.frame.report import Report
from sftgate.gates.readers.atomic import write_text
from sftgate.runners.pipeline.folder_swap import (
    MERGE_MARKER,
    ensure_replaceable,
    recover,
    replace_dir,
    temp_dir_for,
)

DTYPES = ("float32", "bfloat16", "float16", "auto")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tekken.json")


def merge_adapter(
    base_dir: str | os.PathLike[str],
    adapter_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    dtype: str | None = None,
    revision: str | None = None,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    chat_template: str | None = None,
    progress: bool = False,
) -> Path:
    """Merge ``adapter_dir`` into ``base_dir`` and save a complete model folder at ``out_dir``.

    ``base_dir`` is a local folder (or a Hub ID, with ``revision``). ``dtype`` (``float32``,
    ``bfloat16``, ``float16``) is the dtype of the merge and of the saved weights; ``None`` or
    ``auto``: the base's own (:func:`base_dtype`). The tokenizer comes from
    ``tokenizer_dir``, else the adapter folder when it holds one, else the base. ``chat_template``
    (Jinja text) overrides the tokenizer's, as ``prompt.chat_template`` does in training.
    Raises :class:`InputError` for a missing folder, a quantized base or an adapter that does not fit.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM

    from sftgate.gates.merge.merge_equivalence import quiet_loading

    if dtype is not None and dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}", hint=f"one of: {', '.join(DTYPES)}")
    base = str(base_dir)
    adapter, out = Path(adapter_dir), Path(out_dir)
    if not (adapter / "adapter_config.json").is_file():
        raise InputError(f"{adapter}: no adapter_config.json, not a peft adapter folder",
                         hint="train first (`sftgate train CONFIG`) or pass --adapter DIR")
    local = Path(base).is_dir()
    if not local and (Path(base).is_absolute() or base.startswith((".", "~")) or base.count("/") != 1):
        raise InputError(f"{base}: base model folder not found", hint="model.id names a local folder or org/name")
    ensure_replaceable(out, protected=[(adapter, "the adapter"), *([(Path(base), "the base model")] if local else [])])
    try:
        with quiet_loading(progress):
            config = AutoConfig.from_pretrained(base, revision=revision, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{base}: cannot read the base model config ({_first_line(exc)})",
                         hint="model.id must be a model folder with config.json or a Hub ID") from None
    quant = getattr(config, "quantization_config", None)
    if quant:
        method = quant.get("quant_method", "?") if isinstance(quant, dict) else getattr(quant, "quant_method", "?")
        raise InputError(
            f"{base}: the base model is quantized ({method}); merging a LoRA into quantized weights rounds "
            "the update away and the merged model does not behave like base + adapter",
            hint="merge onto the full-precision (fp32/bf16) base the adapter was trained from; "
                 "keep serving the adapter on the quantized base otherwise",
        )
    torch_dtype: Any = getattr(torch, dtype if dtype not in (None, "auto") else base_dtype(base, config))
    try:
        with quiet_loading(progress):
            model = AutoModelForCausalLM.from_pretrained(base, revision=revision, dtype=torch_dtype,
                                                         trust_remote_code=False)
    except Exception as exc:  # transformers/safetensors raise OSError, ValueError, SafetensorError...
        raise InputError(f"{base}: cannot load the base model ({_first_line(exc)})",
                         hint="the folder needs config.json and safetensors weights") from None
    if getattr(model, "is_quantized", False) or getattr(model, "hf_quantizer", None) is not None:
        raise InputError(f"{base}: the base model loaded quantized; merge needs full-precision weights",
                         hint="load the base without a quantization_config")
    try:
        with quiet_loading(progress):
            peft_model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
    except Exception as exc:  # shape mismatches, missing keys, a corrupt adapter file
        raise InputError(f"{adapter}: the adapter does not fit the base {base} ({_first_line(exc)})",
                         hint="merge onto the base model the adapter was trained on") from None
    with quiet_loading(progress):
        merged = peft_model.merge_and_unload()

    tokenizer = _load_tokenizer(tokenizer_dir or (adapter if _has_tokenizer(adapter) else base), chat_template)
    recover(out)
    tmp = temp_dir_for(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with quiet_loading(progress):
            merged.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        template = getattr(tokenizer, "chat_template", None)
        if isinstance(template, str) and template and not (tmp / "chat_template.jinja").exists():
            write_text(tmp / "chat_template.jinja", template)
        template_in_tokenizer_config(tmp, template)
        _write_generation_config(merged, tokenizer, tmp)
        drop_pickles(tmp)
        _write_marker(tmp)
        replace_dir(tmp, out)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def base_dtype(base: str | os.PathLike[str], config: Any = None) -> str:
    """The base's dtype: ``config.json``'s ``dtype``, else the dtype most of its safetensors bytes
    are in, else ``float32`` (``float32``, ``bfloat16`` or ``float16``)."""
    value = getattr(config, "dtype", None) if config is not None else None
    name = str(value).replace("torch.", "") if value is not None else None
    if name in DTYPES and name != "auto":
        return name
    if Path(base).is_dir():
        from sftgate.gates.readers.safetensors_rows import TORCH_NAMES, WeightFiles

        try:
            found = TORCH_NAMES.get(WeightFiles.open(base).float_dtype() or "")
        except InputError:
            found = None
        if found in DTYPES:
            return str(found)
    return "float32"


def stop_ids(tokenizer: Any, existing: Any = None) -> list[int]:
    """EOS ids for generation: those already configured, the tokenizer's EOS and the template's end of turn."""
    ids: list[int] = []
    for value in (existing, getattr(tokenizer, "eos_token_id", None)):
        for i in value if isinstance(value, list | tuple) else [value]:
            if isinstance(i, int) and i not in ids:
                ids.append(i)
    for i in _end_of_turn_ids(tokenizer):
        if i not in ids:
            ids.append(i)
    return ids


def _write_generation_config(model: Any, tokenizer: Any, folder: Path) -> None:
    from transformers import GenerationConfig

    gen = getattr(model, "generation_config", None) or GenerationConfig.from_model_config(model.config)
    ids = stop_ids(tokenizer, gen.eos_token_id)
    gen.eos_token_id = ids[0] if len(ids) == 1 else ids
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is not None:
        gen.pad_token_id = pad
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and gen.bos_token_id is None:
        gen.bos_token_id = bos
    try:
        gen.save_pretrained(folder)
    except ValueError as exc:  # save_pretrained validates strictly: the base's file holds a conflict
        raise InputError(f"the base's generation_config.json cannot be saved ({' '.join(str(exc).split())[:300]})",
                         hint="`sftgate rules invalid_generation_config` (sftgate check reports it before training)") from None


def template_in_tokenizer_config(folder: Path, template: Any) -> None:
    """Put the chat template in ``tokenizer_config.json`` too (the text of ``chat_template.jinja``).

    transformers 5 saves it only as ``chat_template.jinja``; TGI reads it only from
    ``tokenizer_config.json`` (a string, or ``[{"name": ..., "template": ...}]`` with a ``default``),
    so a folder without the copy is served without its template (``chat_template_not_in_tokenizer_config``).
    transformers, vLLM and sftgate read ``chat_template.jinja`` first: the copy changes nothing for them.
    """
    import json

    path = folder / "tokenizer_config.json"
    if not template or not isinstance(template, str | dict) or not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        return
    config["chat_template"] = template if isinstance(template, str) else [
        {"name": name, "template": text} for name, text in template.items()]
    write_text(path, json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _write_marker(folder: Path) -> None:
    """``sftgate-merge.json``: the mark that sftgate made this folder (so only it is ever replaced)."""
    import json

    from sftgate.gates import __version__

    write_text(folder / MERGE_MARKER, json.dumps({"sftgate_merge": 1, "tool": "sftgate", "version": __version__}) + "\n")


def drop_pickles(folder: Path) -> None:
    """save_pretrained writes safetensors; a stray training_args.bin must not ride along."""
    for name in os.listdir(folder):
        if name.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl")):
            os.unlink(folder / name)


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


def _load_tokenizer(path: str | os.PathLike[str], chat_template: str | None) -> Any:
    from sftgate.gates.readers.tokenizer_io import load_tokenizer

    return load_tokenizer(path, chat_template=chat_template)


def _end_of_turn_ids(tokenizer: Any) -> list[int]:
    from sftgate.gates.tokenizer.rendering import end_of_turn_ids

    return [int(i) for i in end_of_turn_ids(tokenizer)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- the merge stage


def resolve_base(cfg: Any) -> tuple[str, str | None]:
    """The base model of a config: a local folder (relative to the config) or a Hub ID, and its revision."""
    model_id = str(cfg.get("model.id"))
    local = cfg.path_of("model.id")
    if local is not None and local.is_dir():
        return str(local), None
    return model_id, cfg.get("model.revision")


def resolve_adapter(cfg: Any, adapter: str | os.PathLike[str] | None = None) -> Path:
    """``adapter`` if given, else the adapter under ``train.output_dir`` (``adapter/`` or the folder itself)."""
    if adapter is not None:
        path = Path(adapter)
        if not (path / "adapter_config.json").is_file():
            raise InputError(f"{path}: no adapter_config.json, not an adapter folder", hint="pass the folder the trainer saved")
        return path
    from sftgate.runners.pipeline.layout import run_dir_for

    out = run_dir_for(cfg)
    for candidate in (out / "adapter", out):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise InputError(f"{out}: no adapter here (no adapter_config.json in {out}/adapter or {out})",
                     hint="run `sftgate train CONFIG` first")


def default_merged_dir(cfg: Any, adapter: Path) -> Path:
    from sftgate.runners.pipeline.layout import run_dir_for

    out = run_dir_for(cfg)
    if adapter == out / "adapter":
        return out / "merged"
    return adapter.parent / f"{adapter.name}-merged"


def merge_stage(
    cfg: Any,
    report: Report,
    *,
    adapter: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    dtype: str | None = None,
    say: Callable[[str], Any] | None = None,
    progress: bool = False,
) -> Path:
    """Merge for config ``cfg`` and add the merge stage's gates to ``report``; returns the merged folder.

    The gates: ``merge-equivalence`` on the config's fixed cases (``data.cases``), ``artifacts``
    (transformers profile) and ``merge-dtype``. ``dtype`` (else ``model.dtype``, else the base's own)
    is the dtype of the merge. ``gates.skip`` in the config skips a gate (optional skip, reported).
    """
    from sftgate.gates.merge import artifacts, merge_dtype, merge_equivalence

    base, revision = resolve_base(cfg)
    adapter_dir = resolve_adapter(cfg, adapter)
    merged_dir = Path(out) if out is not None else default_merged_dir(cfg, adapter_dir)
    from sftgate.runners.pipeline.layout import protected_paths

    ensure_replaceable(merged_dir, protected=[*protected_paths(cfg), (adapter_dir, "the adapter")],
                       setting="--out" if out is not None else None)
    dtype = dtype or _config_dtype(cfg) or (base_dtype(base) if Path(base).is_dir() else None)
    spec = _prompt_spec(cfg)
    if say:
        say(f"merging {adapter_dir} into {base} ({dtype or 'the base dtype'}) -> {merged_dir}")
    merge_adapter(base, adapter_dir, merged_dir, dtype=dtype, revision=revision,
                  tokenizer_dir=_tokenizer_dir(cfg), chat_template=getattr(spec, "chat_template", None),
                  progress=progress)
    skip = set(cfg.get("gates.skip") or ())
    fail_fast = bool(cfg.get("gates.fail_fast"))

    name = merge_equivalence.GATE
    if name in skip:
        report.add(skipped(name, Stage.MERGE, "skipped by gates.skip in the config", required=False))
    else:
        cases = cfg.require_file("data.cases")
        if say:
            say(f"comparing merged vs base + adapter on {cases or 'no cases'}")
        report.add(run_gate(name, Stage.MERGE, merge_equivalence.check, fail_fast=fail_fast,
                            base=base, adapter=adapter_dir, merged=merged_dir, cases=cases, spec=spec,
                            tokenizer=merged_dir))
    name = artifacts.GATE
    if name in skip:
        report.add(skipped(name, Stage.MERGE, "skipped by gates.skip in the config", required=False))
    else:
        report.add(run_gate(name, Stage.MERGE, artifacts.check, fail_fast=fail_fast, model_dir=merged_dir))
    name = merge_dtype.GATE
    base_weights = Path(base) if Path(base).is_dir() else _cached_base(cfg)
    if name in skip:
        report.add(skipped(name, Stage.MERGE, "skipped by gates.skip in the config", required=False))
    elif base_weights is None:
        report.add(skipped(name, Stage.MERGE, f"the weights of {base} are not in a local folder", required=False))
    else:
        report.add(run_gate(name, Stage.MERGE, merge_dtype.check, fail_fast=fail_fast, base=base_weights,
                            merged=merged_dir, expected_dtype=dtype))
    report.artifacts["merged"] = str(merged_dir)
    return merged_dir


def _config_dtype(cfg: Any) -> str | None:
    """``model.dtype`` when it names one; ``auto`` or unset: the base's own (None)."""
    value = cfg.get("model.dtype")
    return None if value in (None, "auto") else str(value)


def _cached_base(cfg: Any) -> Path | None:
    from sftgate.gates.readers.model_files import weights_dir_from_config

    return weights_dir_from_config(cfg)


def _tokenizer_dir(cfg: Any) -> Path | None:
    path = cfg.path_of("model.tokenizer")
    return path if path is not None and path.is_dir() else None


def _prompt_spec(cfg: Any) -> Any:
    from sftgate.gates.tokenizer.rendering import spec_from_config

    return spec_from_config(cfg)


