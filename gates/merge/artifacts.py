"""Gate ``artifacts``: a model folder holds what the serving path needs, and nothing unsafe.

Profiles (what "complete" means):

- ``transformers``: ``config.json``; ``model.safetensors`` or ``model.safetensors.index.json`` with
  every shard it names; tokenizer files (``tokenizer.json``, ``tokenizer.model`` or ``tekken.json``,
  plus ``tokenizer_config.json``); a chat template (``chat_template.jinja``, ``chat_template.json``
  or ``chat_template`` in ``tokenizer_config.json``); ``generation_config.json``.
- ``mistral``: ``params.json``; ``tekken.json`` or ``tokenizer.model*``; ``consolidated*.safetensors``.
- adapter folders (``adapter_config.json`` present) need ``adapter_config.json`` and
  ``adapter_model.safetensors``.

Everywhere: pickle weights (``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.pkl``) are ``unsafe_weights``
(loading them runs arbitrary code); an ``auto_map`` in any JSON file or a ``.py`` file is
``remote_code``; a safetensors file whose header does not parse, whose tensors do not fit the file,
or a shard index naming tensors the shard lacks is ``corrupt_artifact``: a finding, never a crash.

Stdlib only: safetensors headers are read with ``struct`` and ``json`` (only the header, so a
15 GB shard costs one small read).

Examples::

    check(model_dir="out/merged")                      # transformers profile
    check(model_dir="out/consolidated", profile="mistral")
    check(model_dir="out/adapter")                     # detected as an adapter folder
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, InputError, Rule, Severity

GATE = "artifacts"
PROFILES = ("transformers", "mistral")
KINDS = ("auto", "model", "adapter")

MISSING_ARTIFACT = Rule(
    "ART001", "missing_artifact", Severity.ERROR, GATE,
    "a file the serving path needs is missing from the model folder",
    "A merged model shipped without its tokenizer, chat template or generation_config loads, "
    "then formats prompts differently or never stops: the failure shows up in production, not here.",
    "Save the missing file next to the weights: tokenizer.save_pretrained(DIR) writes the tokenizer "
    "files and chat_template.jinja; model.generation_config.save_pretrained(DIR) the generation config. "
    "`sftgate merge` writes them all.",
    "out/merged/generation_config.json is missing",
)
UNSAFE_WEIGHTS = Rule(
    "ART002", "unsafe_weights", Severity.ERROR, GATE,
    "pickle weights (.bin, .pt, .pth, .ckpt, .pkl) in a model folder",
    "Loading a pickle file runs arbitrary code; safetensors cannot. A release must be loadable with "
    "safetensors only.",
    "Re-save with safetensors (model.save_pretrained(DIR) does by default) and delete the pickle files, "
    "training_args.bin included.",
    "out/merged/pytorch_model.bin",
)
REMOTE_CODE = Rule(
    "ART003", "remote_code", Severity.ERROR, GATE,
    "the folder needs trust_remote_code: an auto_map entry or Python files",
    "auto_map makes transformers import code from the folder (or another repo) at load time; a release "
    "that needs trust_remote_code=True runs whatever that code does.",
    "Use an architecture transformers ships (save from the built-in class), drop auto_map from the JSON "
    "files and remove the .py files.",
    'config.json: "auto_map": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}',
)
CORRUPT_ARTIFACT = Rule(
    "ART004", "corrupt_artifact", Severity.ERROR, GATE,
    "a weights or config file is present but unreadable (bad safetensors header, truncated data, bad JSON)",
    "A truncated upload or an interrupted save leaves a file that exists but fails to load, or loads "
    "partly: the folder looks complete and is not.",
    "Save the model again (atomically: `sftgate merge` writes to a temp folder, then renames) and "
    "re-run the gate.",
    "model.safetensors: header length 18446744073709551615 exceeds the file size 1024",
)

RULES = (MISSING_ARTIFACT, UNSAFE_WEIGHTS, REMOTE_CODE, CORRUPT_ARTIFACT)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tekken.json")
SKIP_DIRS = {".git", ".cache", "__pycache__", ".huggingface"}
MAX_HEADER = 100 * 1024 * 1024  # the safetensors library refuses larger headers too

# Bytes per element of each safetensors dtype (sub-byte float formats are checked loosely).
DTYPE_BYTES: dict[str, float] = {
    "F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
    "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F4": 0.5,
}


class CorruptSafetensors(ValueError):
    """A safetensors file whose header or layout is invalid; ``str()`` says what is wrong."""


def read_safetensors_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The tensors of a safetensors file, ``{name: {"dtype", "shape", "data_offsets"}}``.

    Reads only the header. Raises :class:`CorruptSafetensors` when the header length, JSON, dtypes,
    shapes or offsets do not describe the file exactly (truncated or padded data included).
    ``__metadata__`` is left out of the result.
    """
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise CorruptSafetensors(f"{size} bytes, shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or n > size - 8:
            raise CorruptSafetensors(f"header length {n} exceeds the file size {size}")
        raw = handle.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptSafetensors(f"header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise CorruptSafetensors("header is not a JSON object")
    data_len = size - 8 - n
    tensors: dict[str, Any] = {}
    end_max = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise CorruptSafetensors(f"tensor {name!r}: entry lacks dtype, shape or data_offsets")
        offsets, shape, dtype = info["data_offsets"], info["shape"], info["dtype"]
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]
        ):
            raise CorruptSafetensors(f"tensor {name!r}: bad data_offsets {offsets!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise CorruptSafetensors(f"tensor {name!r}: bad shape {shape!r}")
        if offsets[1] > data_len:
            raise CorruptSafetensors(
                f"tensor {name!r} ends at byte {offsets[1]} of a {data_len}-byte data section (truncated file)"
            )
        width = DTYPE_BYTES.get(str(dtype))
        if width is not None:
            count = 1
            for d in shape:
                count *= d
            if int(count * width + 0.5) != offsets[1] - offsets[0]:
                raise CorruptSafetensors(
                    f"tensor {name!r}: {dtype} {shape} needs {int(count * width + 0.5)} bytes, "
                    f"offsets span {offsets[1] - offsets[0]}"
                )
        end_max = max(end_max, offsets[1])
        tensors[name] = info
    if end_max != data_len:
        raise CorruptSafetensors(f"tensors end at byte {end_max} but the data section has {data_len} bytes")
    return tensors


def detect_kind(model_dir: str | os.PathLike[str]) -> str:
    """``adapter`` when the folder holds ``adapter_config.json``, else ``model``."""
    return "adapter" if (Path(model_dir) / "adapter_config.json").is_file() else "model"


def check(
    *,
    model_dir: str | os.PathLike[str],
    profile: str = "transformers",
    kind: str = "auto",
    require_chat_template: bool = True,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Yield every missing, unsafe, remote-code or corrupt artifact of ``model_dir``."""
    root = Path(model_dir)
    if not root.is_dir():
        raise InputError(f"{root}: model folder not found", hint="pass the folder that holds config.json")
    if profile not in PROFILES:
        raise InputError(f"unknown artifacts profile {profile!r}", hint=f"one of: {', '.join(PROFILES)}")
    if kind not in KINDS:
        raise InputError(f"unknown folder kind {kind!r}", hint=f"one of: {', '.join(KINDS)}")
    kind = detect_kind(root) if kind == "auto" else kind
    files = _walk(root)
    names = {f.relative_to(root).as_posix() for f in files}
    if metrics is not None:
        metrics.update(profile=profile, kind=kind, files=len(files), bytes=sum(f.stat().st_size for f in files))

    if kind == "adapter":
        yield from _require(root, names, "adapter_config.json", "the adapter's LoRA config")
        yield from _require(root, names, "adapter_model.safetensors", "the adapter weights (safetensors)")
        if "adapter_config.json" in names:
            yield from _json_problems(root, "adapter_config.json")
    elif profile == "mistral":
        yield from _require(root, names, "params.json", "the model's parameters (mistral format)")
        if not any(n == "tekken.json" or n.startswith("tokenizer.model") for n in names):
            yield _missing(root, "tekken.json", "a tokenizer: tekken.json or tokenizer.model*")
        if not any(n.startswith("consolidated") and n.endswith(".safetensors") for n in names):
            yield _missing(root, "consolidated.safetensors", "the weights: consolidated*.safetensors")
        if "params.json" in names:
            yield from _json_problems(root, "params.json")
    else:
        yield from _transformers_profile(root, names, require_chat_template)

    tensors = 0
    for f in files:
        rel = f.relative_to(root).as_posix()
        if f.suffix.lower() in PICKLE_SUFFIXES:
            yield UNSAFE_WEIGHTS.finding(
                f"pickle file {rel!r} ({f.stat().st_size} bytes): loading it can run arbitrary code",
                str(f),
                suggestion="re-save with safetensors and delete it",
            )
        elif f.suffix == ".py":
            yield REMOTE_CODE.finding(
                f"Python file {rel!r} in the model folder: code that trust_remote_code would run",
                str(f),
                suggestion="remove it and use an architecture transformers ships",
            )
        elif f.suffix == ".safetensors":
            try:
                tensors += len(read_safetensors_header(f))
            except CorruptSafetensors as exc:
                yield CORRUPT_ARTIFACT.finding(f"{rel}: {exc}", str(f), evidence={"bytes": f.stat().st_size})
            except OSError as exc:
                yield CORRUPT_ARTIFACT.finding(f"{rel}: unreadable ({exc.strerror})", str(f))
        elif f.suffix == ".json" and f.parent == root:
            yield from _auto_map(root, rel)
    if metrics is not None:
        metrics["tensors"] = tensors


# --------------------------------------------------------------------------- profiles


def _transformers_profile(root: Path, names: set[str], require_chat_template: bool) -> Iterator[Finding]:
    yield from _require(root, names, "config.json", "the model config")
    if "config.json" in names:
        yield from _json_problems(root, "config.json")
    if "model.safetensors.index.json" in names:
        yield from _index_problems(root, "model.safetensors.index.json")
    elif "model.safetensors" not in names:
        pickles = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES))
        yield MISSING_ARTIFACT.finding(
            "no safetensors weights: neither model.safetensors nor model.safetensors.index.json"
            + (f" (only pickle weights: {', '.join(pickles[:3])})" if pickles else ""),
            str(root / "model.safetensors"),
            suggestion="model.save_pretrained(DIR) writes safetensors",
            evidence={"pickle_files": pickles},
        )
    if not any(n in names for n in TOKENIZER_FILES):
        yield _missing(root, "tokenizer.json", "a tokenizer: tokenizer.json, tokenizer.model or tekken.json")
    yield from _require(root, names, "tokenizer_config.json", "the tokenizer config (special tokens)")
    tok_cfg = _load_json(root / "tokenizer_config.json") if "tokenizer_config.json" in names else None
    if "tokenizer_config.json" in names and tok_cfg is None:
        yield from _json_problems(root, "tokenizer_config.json")
    has_template = (
        "chat_template.jinja" in names
        or "chat_template.json" in names
        or any(n.startswith("additional_chat_templates/") for n in names)
        or (isinstance(tok_cfg, dict) and bool(tok_cfg.get("chat_template")))
    )
    if require_chat_template and not has_template:
        yield _missing(root, "chat_template.jinja", "the chat template the model was trained with")
    yield from _require(root, names, "generation_config.json", "the generation config (stop ids)")
    if "generation_config.json" in names:
        yield from _json_problems(root, "generation_config.json")


def _require(root: Path, names: set[str], name: str, what: str) -> Iterator[Finding]:
    if name not in names:
        yield _missing(root, name, what)


def _missing(root: Path, name: str, what: str) -> Finding:
    return MISSING_ARTIFACT.finding(f"{name} is missing: {what}", str(root / name), evidence={"folder": str(root)})


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _json_problems(root: Path, name: str) -> Iterator[Finding]:
    path = root / name
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        yield CORRUPT_ARTIFACT.finding(f"{name}: unreadable ({exc})", str(path))
        return
    except json.JSONDecodeError as exc:
        yield CORRUPT_ARTIFACT.finding(f"{name}: not JSON ({exc.msg} at line {exc.lineno})", f"{path}:{exc.lineno}")
        return
    if not isinstance(value, dict):
        yield CORRUPT_ARTIFACT.finding(f"{name}: expected a JSON object, got {type(value).__name__}", str(path))


def _index_problems(root: Path, name: str) -> Iterator[Finding]:
    index = _load_json(root / name)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        yield CORRUPT_ARTIFACT.finding(f"{name}: no weight_map", f"{root / name}:weight_map")
        return
    by_shard: dict[str, list[str]] = {}
    for tensor, shard in weight_map.items():
        by_shard.setdefault(str(shard), []).append(str(tensor))
    for shard, wanted in sorted(by_shard.items()):
        path = root / shard
        if not path.is_file():
            yield MISSING_ARTIFACT.finding(
                f"shard {shard!r} named by {name} is missing ({len(wanted)} tensors)",
                str(path),
                evidence={"tensors": wanted},
            )
            continue
        try:
            present = read_safetensors_header(path)
        except (CorruptSafetensors, OSError):
            continue  # reported once, by the per-file scan
        absent = [t for t in wanted if t not in present]
        if absent:
            yield CORRUPT_ARTIFACT.finding(
                f"{shard}: {len(absent)} tensors named by {name} are not in the shard, e.g. {absent[0]!r}",
                str(path),
                evidence={"absent": absent, "count": len(absent)},
            )


def _auto_map(root: Path, rel: str) -> Iterator[Finding]:
    value = _load_json(root / rel)
    if isinstance(value, dict) and value.get("auto_map"):
        auto_map = value["auto_map"]
        sample = json.dumps(auto_map)[:120]
        yield REMOTE_CODE.finding(
            f"{rel} has auto_map {sample}: loading needs trust_remote_code=True",
            f"{root / rel}:auto_map",
            suggestion="remove auto_map and save with a built-in transformers class",
            evidence={"auto_map": auto_map},
        )


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        out.extend(Path(dirpath) / name for name in sorted(filenames))
    return out
