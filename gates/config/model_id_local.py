"""Local model paths: what a path names (:func:`diagnose_local`), and relative paths that do not exist.

A value is a local path when it looks like one (``./x``, ``../x``, ``/x``, ``~/x``, a Windows
drive, a backslash) or exists. Relative paths are tried from each folder of ``base_dirs`` (the
config's folder, then the folders a tool's working-directory convention adds) and then from the
current folder. Two more shapes are paths, not Hub IDs, although they do not look like paths:
``checkpoints/run-1/final`` (a Hub ID has one '/'; :func:`missing_relative`) and
``models/Llama-2-7b`` (one '/', but ``models`` is a folder name: a WARNING, an error when the
folder ``models/`` exists here: :func:`folder_like_missing`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sftgate.gates.config.hub_id_grammar import is_valid_repo_id, quoted
from sftgate.gates.config.model_id_rules import LOCAL_PATH_MISSING, NOT_A_MODEL_FOLDER
from sftgate.gates.config.model_id_verdict import Diagnosis
from sftgate.gates.frame.core import Severity
from sftgate.gates.readers import hf_cache

_WINDOWS_DRIVE = re.compile(r"\A[A-Za-z]:[\\/]")
FILES_BY_KIND = {
    "model": ("config.json",),
    "tokenizer": ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "tekken.json",
                  "vocab.json", "spiece.model", "sentencepiece.bpe.model"),
    "adapter": ("adapter_config.json",),
}
# First segments that name a folder, not a Hub organisation (lower case).
FOLDER_WORDS = frozenset({
    "models", "model", "checkpoints", "checkpoint", "ckpt", "ckpts", "outputs", "output", "out", "saves", "save",
    "runs", "run", "weights", "experiments", "exp", "artifacts", "results", "pretrained", "local", "tmp", "temp",
    "cache", "adapters", "merged", "finetuned", "trained", "workspace", "hf_models", "base_models", "llms",
})


def looks_local(value: str) -> bool:
    """``./x``, ``../x``, ``/x``, ``~/x``, ``.``, a Windows drive or a backslash: a path, not an ID."""
    return (
        value.startswith(("./", "../", "/", "~", ".\\", "..\\"))
        or value in (".", "..")
        or _WINDOWS_DRIVE.match(value) is not None
        or "\\" in value
    )


def exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def candidates(value: str, base_dirs: Sequence[Path] = ()) -> list[Path]:
    """Where a path value may be: itself when absolute, else under each base folder, then here."""
    path = Path(os.path.expanduser(value))  # never raises, unlike Path.expanduser for '~nobody'
    if path.is_absolute():
        return [path]
    out = [base / path for base in base_dirs]
    if path not in out:
        out.append(path)
    return list(dict.fromkeys(out))


def _tried(value: str, tried: list[Path], base_dirs: Sequence[Path]) -> str:
    if len(tried) <= 1:
        return ""
    where = ", ".join(str(b) for b in base_dirs) or str(tried[0].parent)
    return f" (tried from {where} and the current folder)"


def diagnose_local(value: str, kind: str, base_dirs: Sequence[Path] = (),
                   files: Sequence[str] = ()) -> Diagnosis:
    """A value that is a local path: missing, a file, not a model folder, an adapter, or fine."""
    tried = candidates(value, base_dirs)
    found = next((p for p in tried if exists(p)), None)
    if found is None:
        cached = hf_cache.snapshot_revision(Path(value))
        message = f"local model path {quoted(value)} does not exist" + _tried(value, tried, base_dirs)
        evidence: dict[str, Any] = {"tried": [str(p) for p in tried]}
        if cached is not None and is_valid_repo_id(cached[0]):
            message += f"; it is the HF cache of {quoted(cached[0])}"
            return Diagnosis(LOCAL_PATH_MISSING, message, cached[0], False, form="local", revision=cached[1],
                             evidence={**evidence, "revision": cached[1]})
        return Diagnosis(LOCAL_PATH_MISSING, message, form="local", evidence=evidence)
    if not found.is_dir():
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local path {quoted(value)} is a file, not a model folder",
                         form="local", evidence={"path": str(found)})
    try:
        names = sorted(entry.name for entry in os.scandir(found))
    except OSError as exc:
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {quoted(value)} cannot be read ({exc.strerror})", form="local")
    wanted = tuple(files) or FILES_BY_KIND.get(kind, FILES_BY_KIND["model"])
    if any(name in names for name in wanted):
        return Diagnosis(None, form="local")
    evidence = {"files": names[:20], "expected": list(wanted)}
    cache_id = hf_cache.folder_to_repo_id(found.resolve().name) if "snapshots" in names else None
    if cache_id is not None and is_valid_repo_id(cache_id):
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {quoted(value)} is the HF cache folder of {quoted(cache_id)}, "
                         "not a model folder (use the Hub ID or a snapshots/<commit> folder)",
                         cache_id, False, form="local", evidence=evidence)
    if kind == "model" and "adapter_config.json" in names:
        return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {quoted(value)} holds a PEFT adapter (adapter_config.json), "
                         "not a full model: only AutoPeftModel classes load it", form="local",
                         severity=Severity.WARNING, evidence=evidence)
    article = "an" if kind[:1] in "aeiou" else "a"
    return Diagnosis(NOT_A_MODEL_FOLDER, f"local folder {quoted(value)} has no {' / '.join(wanted[:3])}: not {article} {kind} folder",
                     form="local", evidence=evidence)


def missing_relative(value: str, base_dirs: Sequence[Path] = ()) -> Diagnosis:
    """``a/b/c`` that exists nowhere: a Hub ID has one '/', so it is a local path that is missing."""
    tried = candidates(value, base_dirs)
    return Diagnosis(LOCAL_PATH_MISSING, f"{quoted(value)} has {value.count('/')} '/', so it is a local path, not a "
                     f"Hub ID (org/name), and it does not exist{_tried(value, tried, base_dirs)}", form="local",
                     evidence={"tried": [str(p) for p in tried], "slashes": value.count("/")})


def folder_like_missing(value: str, base_dirs: Sequence[Path] = ()) -> Diagnosis | None:
    """``models/Llama-2-7b``: one '/', the first segment a folder name, and no such path: a WARNING (an
    error when the folder of the first segment exists, so the path is surely meant)."""
    head, sep, _ = value.partition("/")
    if not sep or head.lower() not in FOLDER_WORDS:
        return None
    tried = candidates(value, base_dirs)
    parents = [p.parent for p in tried if exists(p.parent)]
    message = (f"{quoted(value)} reads as a Hub ID of the organisation {quoted(head)}, but {quoted(head + '/')} is a "
               f"folder name and the path does not exist{_tried(value, tried, base_dirs)}")
    if parents:
        message += f"; the folder {parents[0]} exists, without it"
    return Diagnosis(LOCAL_PATH_MISSING, message, form="hub", severity=None if parents else Severity.WARNING,
                     repo_id=value, evidence={"tried": [str(p) for p in tried], "folder_word": head})
