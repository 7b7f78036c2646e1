"""Gate ``artifacts``: a model folder holds what the serving path needs, and nothing unsafe.

Profiles (what "complete" means):

- ``transformers``: ``config.json``; ``model.safetensors`` or ``model.safetensors.index.json`` with
  every shard it names; tokenizer files (``tokenizer.json``, ``tokenizer.model`` or ``tekken.json``,
  plus ``tokenizer_config.json``); a chat template (``chat_template.jinja``, ``chat_template.json``
  or ``chat_template`` in ``tokenizer_config.json``); ``generation_config.json``.
- ``mistral``: ``params.json``; ``tekken.json`` or ``tokenizer.model*``; ``consolidated*.safetensors``.
- ``vllm``, ``tgi``: ``transformers`` plus what that server needs (:mod:`sftgate.gates.merge.serving_profiles`).
- adapter folders (``adapter_config.json`` present) need ``adapter_config.json`` and
  ``adapter_model.safetensors``.

A transformers folder's ``generation_config.json`` must be one transformers saves
(``invalid_generation_config``), and an adapter's embeddings must fit the rows of the base it
names (``vocab_mismatch``): rules of the model-config and embeddings gates, checked here too
because this is the check ``sftgate release`` runs on what ships.

Everywhere, for every file of the one walk of the folder
(:func:`sftgate.gates.readers.model_folder.list_model_folder`: dot-folders and ``__pycache__``
included, symlinks never followed) and the allow-list of
:mod:`sftgate.gates.merge.folder_contents`: pickle-ish weights (``.bin``, ``.pt``, ``.pkl``,
``.joblib``, ``.npy``, ``.tar``, ``model.bin.1``, ``.msgpack``, ``.h5``... or a pickle or zip under
another name) are ``unsafe_weights`` (loading them runs arbitrary code); code files (``.py``,
``.pyc``, ``.so``...) and ``auto_map`` / ``custom_pipelines`` at any depth of any JSON file are
``remote_code``; a hidden file, a name that is not printable UTF-8, or a kind not on the allow-list
is ``unexpected_file``; a symlink, FIFO, socket or device node is ``not_a_regular_file``; a
safetensors file whose header fails the field-by-field check of
:mod:`sftgate.gates.readers.safetensors_header`, a JSON file that does not parse, or a shard index
naming tensors the shard lacks is ``corrupt_artifact``: a finding, never a crash.

Stdlib only: safetensors headers are read with ``struct`` and ``json``
(:mod:`sftgate.gates.readers.safetensors_header`; only the header, so a 15 GB shard costs one small read).

Examples::

    check(model_dir="out/merged")                      # transformers profile
    check(model_dir="out/consolidated", profile="mistral")
    check(model_dir="out/adapter")                     # detected as an adapter folder
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.merge import folder_contents, serving_profiles
from sftgate.gates.merge.serving_profiles import SERVING_PROFILES
from sftgate.gates.readers.model_folder import FolderListing, list_model_folder
from sftgate.gates.readers.safetensors_header import (  # noqa: F401 - re-exported: artifacts.read_safetensors_header
    DTYPE_BYTES,
    MAX_HEADER,
    CorruptSafetensors,
    read_safetensors_header,
)

GATE = "artifacts"
PROFILES = ("transformers", "mistral", *SERVING_PROFILES)  # vllm, tgi: transformers + the server's needs
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
    "pickle-ish weights (.bin, .pt, .pth, .ckpt, .pkl, .joblib, .npy, .tar, .msgpack, .h5...) in a model folder",
    "Loading a pickle file runs arbitrary code; safetensors cannot. A release must be loadable with "
    "safetensors only.",
    "Re-save with safetensors (model.save_pretrained(DIR) does by default) and delete the pickle files, "
    "training_args.bin included.",
    "out/merged/pytorch_model.bin",
)
REMOTE_CODE = Rule(
    "ART003", "remote_code", Severity.ERROR, GATE,
    "the folder needs trust_remote_code: auto_map or custom_pipelines in a JSON file, or code files (.py, .pyc, .so)",
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

UNEXPECTED_FILE = Rule(
    "ART005", "unexpected_file", Severity.ERROR, GATE,
    "a file a release may not hold: a hidden file or folder, a name that is not printable UTF-8, or a kind "
    "not on the allow-list",
    "A release is exactly what was gated and what serving loads. A file outside the allow-list "
    "(safetensors, JSON, tokenizer files, templates, text, the model card) is checked by nothing and "
    "ships to everyone who downloads the model: a cache folder, an archive, a binary, a name that "
    "forges a CI log line.",
    "Delete the file from the model folder, or keep it outside the folder that is released; "
    "`sftgate rules unexpected_file` and docs/security.md list what a release may hold.",
    "out/merged/.cache/notes.dat: '.cache' is hidden (a dot-file or dot-folder)",
)
NOT_A_REGULAR_FILE = Rule(
    "ART006", "not_a_regular_file", Severity.ERROR, GATE,
    "a symlink (to anywhere, dangling, or a loop), FIFO, socket or device node in a model folder",
    "sftgate never follows a link: a link to /etc/shadow would otherwise be copied into the release and "
    "uploaded, a link to a mutable file changes the release after it was gated, a FIFO hangs every "
    "reader, and a dangling link or a loop breaks the loader.",
    "Replace the link with the file itself (`cp --dereference`), or remove it; keep special files out "
    "of model folders.",
    "out/merged/.notes -> /etc/shadow",
)

RULES = (MISSING_ARTIFACT, UNSAFE_WEIGHTS, REMOTE_CODE, CORRUPT_ARTIFACT, UNEXPECTED_FILE, NOT_A_REGULAR_FILE,
         *serving_profiles.RULES)

PICKLE_SUFFIXES = tuple(sorted(folder_contents.UNSAFE_SUFFIXES))
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tekken.json")


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
    verified_elsewhere: tuple[str, ...] = (),
) -> Iterator[Finding]:
    """Yield every missing, unsafe, remote-code, unexpected or corrupt artifact of ``model_dir``.

    ``verified_elsewhere``: files another gate owns (the release gate's manifest), not scanned here.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise InputError(f"{root}: model folder not found", hint="pass the folder that holds config.json")
    if profile not in PROFILES:
        raise InputError(f"unknown artifacts profile {profile!r}", hint=f"one of: {', '.join(PROFILES)}")
    if kind not in KINDS:
        raise InputError(f"unknown folder kind {kind!r}", hint=f"one of: {', '.join(KINDS)}")
    kind = detect_kind(root) if kind == "auto" else kind
    listing = list_model_folder(root)
    names = set(listing.files)
    if metrics is not None:
        metrics.update(profile=profile, kind=kind, files=len(names),
                       bytes=sum(_size(listing.path(n)) for n in listing.files))

    if kind == "adapter":
        yield from _require(root, names, "adapter_config.json", "the adapter's LoRA config")
        yield from _require(root, names, "adapter_model.safetensors", "the adapter weights (safetensors)")
        if "adapter_config.json" in names:
            yield from _json_problems(root, "adapter_config.json")
        if {"adapter_config.json", "adapter_model.safetensors"} <= names:
            from sftgate.gates.tokenizer.adapter_vocab import adapter_vocab_findings

            yield from adapter_vocab_findings(root)  # vocab_mismatch: embeddings sized for another vocabulary
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
        if "generation_config.json" in names:
            from sftgate.gates.tokenizer.model_config import generation_findings

            yield from generation_findings(root / "generation_config.json")  # invalid_generation_config

    yield from serving_profiles.serving_findings(root, names, profile, kind)  # --profile vllm / tgi
    yield from content_findings(listing, metrics=metrics, skip=verified_elsewhere)


def content_findings(listing: FolderListing, *, metrics: dict[str, Any] | None = None,
                     skip: tuple[str, ...] = ()) -> Iterator[Finding]:
    """What the allow-list says about each entry of ``listing``: unsafe, code, unexpected, odd, corrupt.

    Promotion runs this on the source folder before it copies anything.
    """
    for odd in listing.odd:
        where = listing.path(odd.rel)
        shown = f"{odd.rel!r} -> {odd.target!r}" if odd.target is not None else repr(odd.rel)
        yield NOT_A_REGULAR_FILE.finding(
            f"{shown} is a {odd.what}, not a regular file: sftgate never follows or copies it",
            str(where), suggestion="replace it with the file itself, or remove it",
            evidence={"what": odd.what, "target": odd.target},
        )
    tensors = 0
    for rel in listing.files:
        if rel in skip:
            continue
        path = listing.path(rel)
        kind = folder_contents.classify(rel)
        if kind in ("json", "text", "template", "tokenizer", "image") and folder_contents.sniff(path):
            kind = "disguised"
        if kind in ("unsafe_weights", "disguised"):
            what = f"a {folder_contents.sniff(path)} archive named {rel!r}" if kind == "disguised" else repr(rel)
            yield UNSAFE_WEIGHTS.finding(
                f"{what} ({_size(path)} bytes): loading it can run arbitrary code",
                str(path), suggestion="re-save with safetensors and delete it",
            )
        elif kind == "remote_code":
            yield REMOTE_CODE.finding(
                f"code file {rel!r} in the model folder: code that trust_remote_code would run",
                str(path), suggestion="remove it and use an architecture transformers ships",
            )
        elif kind == "unexpected":
            yield UNEXPECTED_FILE.finding(
                f"{rel!r} may not be in a release: {folder_contents.why_unexpected(rel)}",
                str(path), suggestion="delete it or keep it outside the model folder",
            )
        elif kind == "weights":
            try:
                tensors += len(read_safetensors_header(path))
            except CorruptSafetensors as exc:
                yield CORRUPT_ARTIFACT.finding(f"{rel}: {exc}", str(path), evidence={"bytes": _size(path)})
            except OSError as exc:
                yield CORRUPT_ARTIFACT.finding(f"{rel}: unreadable ({exc.strerror})", str(path))
        elif kind == "json":
            yield from _json_content(listing.root, rel)
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
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def _json_problems(root: Path, name: str) -> Iterator[Finding]:
    path = root / name
    value = _load_json(path)
    if value is None:
        return  # unreadable or not JSON: reported once, by the per-file scan (_json_content)
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


def _json_content(root: Path, rel: str) -> Iterator[Finding]:
    """A JSON file anywhere in the folder: it parses, and names no remote code at any depth."""
    path = root / rel
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        yield CORRUPT_ARTIFACT.finding(f"{rel}: not JSON ({exc.msg} at line {exc.lineno})", f"{path}:{exc.lineno}")
        return
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:200]
        yield CORRUPT_ARTIFACT.finding(f"{rel}: not readable JSON ({reason})", str(path))
        return
    for where, found in sorted(folder_contents.remote_code_keys(value), key=lambda kv: kv[0]):
        sample = json.dumps(found, default=str)[:120]
        yield REMOTE_CODE.finding(
            f"{rel} has {where} {sample}: loading needs trust_remote_code=True",
            f"{path}:{where}",
            suggestion="remove it and save with a built-in transformers class",
            evidence={"key": where, "value": found if len(sample) < 120 else sample},
        )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
