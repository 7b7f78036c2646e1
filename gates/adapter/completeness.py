"""Gate ``adapter-completeness``: the LoRA adapter on disk holds every tensor it should, with its shapes.

DeepSpeed ZeRO-3 (and other sharded saves) can write an ``adapter_model.safetensors`` of 40 bytes:
a header and no tensors (trl #4416, peft #2892), or tensors of shape ``[0]``; nothing notices until
someone loads it. From the safetensors header alone (no weights are read) and ``adapter_config.json``:

- the weights file exists and holds tensors, none of them empty;
- every LoRA module has both ``lora_A`` and ``lora_B``, with the configured rank
  (``r``, or its ``rank_pattern`` entry), ``lora_A`` ``[r, in]`` and ``lora_B`` ``[out, r]``;
- every target module of every layer is there: against the base model's modules when they are
  known (``base_dir`` with safetensors weights, or ``base_shapes`` from a model in memory), shapes
  included; otherwise every target module name in every layer the adapter has;
- every ``modules_to_save`` module is saved.

::

    check(adapter_dir="out/checkpoint-500")
    check(adapter_dir="out/adapter", base_dir="models/base")
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.readers.safetensors_header import CorruptSafetensors, read_safetensors_header

GATE = "adapter-completeness"
WEIGHTS = "adapter_model.safetensors"
MAX_LISTED = 20

ADAPTER_INCOMPLETE = Rule(
    "ADP001", "adapter_incomplete", Severity.ERROR, GATE,
    "the saved adapter lacks LoRA tensors, holds empty ones, or their shapes or rank do not match",
    "A sharded save (DeepSpeed ZeRO-3, FSDP without a full state dict) can write an adapter file with "
    "no tensors or with zero-size ones; PEFT then loads it without complaint and the model behaves "
    "like the base. Found only when someone serves it.",
    "Save with the full state dict gathered (ZeRO-3: stage3_gather_16bit_weights_on_model_save: true, "
    "or trainer.save_model() after accelerator.get_state_dict); check the saved folder with "
    "`sftgate release DIR`.",
    "adapter_model.safetensors: 40 bytes, no tensors",
)
RULES = (ADAPTER_INCOMPLETE,)

# base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight (or .lora_A.default.weight, lora_embedding_A)
_LORA = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+?)\.lora_(?:embedding_)?(?P<part>[AB])(?:\.[^.]+)?(?:\.weight)?$")
_LAYER = re.compile(r"\.(layers|h|blocks|layer)\.(\d+)\.")


def module_shapes(tensors: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """``{module: (out, in)}`` of the linear weights in a model's safetensors header."""
    shapes = {}
    for name, info in tensors.items():
        shape = info["shape"] if isinstance(info, dict) else info
        if name.endswith(".weight") and len(shape) == 2:
            shapes[name[: -len(".weight")]] = (int(shape[0]), int(shape[1]))
    return shapes


def base_module_shapes(base_dir: str | Path) -> dict[str, tuple[int, int]]:
    """The linear modules of a base model folder, from its safetensors headers (one or sharded)."""
    root = Path(base_dir)
    index = root / "model.safetensors.index.json"
    files = [root / "model.safetensors"]
    if index.is_file():
        weight_map = json.loads(index.read_text("utf-8")).get("weight_map") or {}
        files = [root / f for f in sorted(set(weight_map.values()))]
    tensors: dict[str, Any] = {}
    for file in files:
        if not file.is_file():
            raise InputError(f"{file}: the base model's weights are missing", hint="base_dir holds model.safetensors")
        try:
            tensors.update(read_safetensors_header(file))
        except CorruptSafetensors as exc:
            raise InputError(f"{file}: unreadable safetensors header ({exc})") from None
    return module_shapes(tensors)


def _targets(config: Mapping[str, Any]) -> Any:
    targets = config.get("target_modules")
    return targets if isinstance(targets, str) else list(targets or [])


def is_target(module: str, targets: Any, config: Mapping[str, Any]) -> bool:
    """PEFT's matching: a string is a full-match regex, a list matches a name or a ``.name`` suffix."""
    if isinstance(targets, str):
        hit = re.fullmatch(targets, module) is not None
    else:
        hit = any(module == t or module.endswith(f".{t}") for t in targets)
    if not hit:
        return False
    excluded = config.get("exclude_modules") or []
    if isinstance(excluded, str):
        if re.fullmatch(excluded, module):
            return False
    elif any(module == e or module.endswith(f".{e}") for e in excluded):
        return False
    layers = config.get("layers_to_transform")
    if layers is not None:
        found = _LAYER.search(f".{module}.")
        wanted = [layers] if isinstance(layers, int) else list(layers)
        return found is not None and int(found.group(2)) in wanted
    return True


def expected_rank(module: str, config: Mapping[str, Any]) -> int | None:
    """The rank PEFT gives ``module``: its ``rank_pattern`` entry (a regex / suffix), else ``r``."""
    for pattern, rank in (config.get("rank_pattern") or {}).items():
        if re.fullmatch(f"(.*\\.)?{pattern}", module):
            return int(rank)
    r = config.get("r")
    return int(r) if isinstance(r, int) else None


def _empty_header(path: Path) -> bool:
    """True for a safetensors file whose header lists no tensor at all (the ZeRO-3 40-byte file)."""
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return False
        (n,) = struct.unpack("<Q", head)
        if n > 1 << 20:
            return False
        try:
            header = json.loads(handle.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return False
    return isinstance(header, dict) and not any(k != "__metadata__" for k in header)


def check(
    *,
    adapter_dir: str | Path,
    base_dir: str | Path | None = None,
    base_shapes: Mapping[str, tuple[int, int]] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Yield ``adapter_incomplete`` findings for the adapter folder ``adapter_dir`` (see the module doc)."""
    root = Path(adapter_dir)
    config_path = root / "adapter_config.json"
    if not config_path.is_file():
        raise InputError(f"{root}: no adapter_config.json: not a PEFT adapter folder",
                         hint="pass the folder that adapter.save_pretrained() wrote")
    try:
        config = json.loads(config_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{config_path}: not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise InputError(f"{config_path}: not a JSON object")
    metrics = metrics if metrics is not None else {}
    weights = root / WEIGHTS
    where = str(weights)
    if not weights.is_file():
        yield ADAPTER_INCOMPLETE.finding(f"no {WEIGHTS} in {root}: the adapter has no weights", where)
        return
    size = weights.stat().st_size
    metrics["bytes"] = size
    if _empty_header(weights):
        yield ADAPTER_INCOMPLETE.finding(
            f"{WEIGHTS} holds no tensors ({size} bytes): the save ran before the sharded weights were gathered",
            where, evidence={"bytes": size})
        return
    try:
        tensors = read_safetensors_header(weights)
    except CorruptSafetensors as exc:
        yield ADAPTER_INCOMPLETE.finding(f"{WEIGHTS} is unreadable: {exc}", where, evidence={"bytes": size})
        return
    if base_shapes is None and base_dir is not None:
        base_shapes = base_module_shapes(base_dir)
    yield from _problems(tensors, config, base_shapes, where, metrics)


def _problems(tensors: Mapping[str, Any], config: Mapping[str, Any], base: Mapping[str, tuple[int, int]] | None,
              where: str, metrics: dict[str, Any]) -> Iterator[Finding]:
    empty = sorted(n for n, info in tensors.items() if 0 in info["shape"] or not info["shape"])
    modules: dict[str, dict[str, list[int]]] = {}
    for name, info in tensors.items():
        found = _LORA.match(name)
        if found:
            modules.setdefault(found.group("module"), {})[found.group("part")] = list(info["shape"])
    targets = _targets(config)
    metrics.update(tensors=len(tensors), lora_modules=len(modules), target_modules=targets, rank=config.get("r"))
    if empty:
        yield _finding(f"{len(empty)} of {len(tensors)} tensors are empty (a dimension of 0)", where, "empty_tensors", empty)
    half = sorted(m for m, parts in modules.items() if set(parts) != {"A", "B"})
    if half:
        yield _finding(f"{len(half)} LoRA modules lack lora_A or lora_B", where, "half_modules",
                       [f"{m}: {'lora_A' if 'A' not in modules[m] else 'lora_B'} missing" for m in half])
    wrong_rank = []
    for module, parts in sorted(modules.items()):
        rank = expected_rank(module, config)
        a, b = parts.get("A"), parts.get("B")
        ranks = {int(s[i]) for s, i in ((a, 0), (b, 1)) if s and len(s) == 2} - {0}
        if rank is not None and ranks and ranks != {rank}:
            wrong_rank.append(f"{module}: rank {sorted(ranks)} (config {rank})")
    if wrong_rank:
        yield _finding(f"{len(wrong_rank)} LoRA modules have another rank than adapter_config.json says", where,
                       "rank_mismatch", wrong_rank)
    yield from _coverage(modules, targets, config, base, where, metrics)
    saved = [m for m in config.get("modules_to_save") or [] if not any(f".{m}." in f".{n}" for n in tensors)]
    if saved:
        yield _finding(f"modules_to_save {saved} are not in the saved adapter", where, "modules_to_save_missing", saved)


def _coverage(modules: Mapping[str, Mapping[str, list[int]]], targets: Any, config: Mapping[str, Any],
              base: Mapping[str, tuple[int, int]] | None, where: str, metrics: dict[str, Any]) -> Iterator[Finding]:
    if base is not None:
        expected = {m for m in base if is_target(m, targets, config)}
        metrics["expected_modules"] = len(expected)
        missing = sorted(expected - set(modules))
        if missing:
            yield _finding(f"{len(missing)} of {len(expected)} target modules of the base have no LoRA tensors",
                           where, "missing_modules", missing)
        shapes = []
        for module in sorted(expected & set(modules)):
            out_dim, in_dim = base[module]
            a, b = modules[module].get("A"), modules[module].get("B")
            if (a and len(a) == 2 and a[1] != in_dim) or (b and len(b) == 2 and b[0] != out_dim):
                shapes.append(f"{module}: lora_A {a}, lora_B {b}, base weight [{out_dim}, {in_dim}]")
        if shapes:
            yield _finding(f"{len(shapes)} LoRA modules do not fit the base weights' shapes", where, "shape_mismatch", shapes)
        return
    layers = sorted({int(x.group(2)) for m in modules if (x := _LAYER.search(f".{m}."))})
    names = sorted({_LAYER.sub(r".\1.#.", f".{m}.").strip(".") for m in modules})
    metrics["layers"] = len(layers)
    wanted = list(targets) if isinstance(targets, list) else []
    absent = [t for t in wanted if not any(m == t or m.endswith(f".{t}") for m in modules)]
    if absent and modules:
        yield _finding(f"target modules {absent} have no LoRA tensors at all", where, "missing_targets", absent)
    elif not modules:
        yield _finding("the adapter holds no LoRA tensors", where, "missing_targets", wanted)
    missing = []
    for pattern in names:
        if "#" not in pattern:
            continue
        for layer in layers:
            module = pattern.replace("#", str(layer))
            if module not in modules and is_target(module, targets, config):
                missing.append(module)
    if missing:
        yield _finding(f"{len(missing)} target modules are missing in some layers (the others have them)", where,
                       "missing_modules", missing)


def _finding(message: str, where: str, kind: str, items: list[str]) -> Finding:
    return ADAPTER_INCOMPLETE.finding(
        f"{message}: {', '.join(items[:3])}{' …' if len(items) > 3 else ''}", where,
        evidence={"problem": kind, "count": len(items), "items": items[:MAX_LISTED]})
