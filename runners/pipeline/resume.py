"""Resume for ``sftgate run``: what each stage reads, its input key, and the saved state.

Each stage's inputs are hashed (the config sections it reads, the files and folders it reads, and
the previous stage's key) into its key. ``sftgate-state.json`` in the run folder records, per
stage, the key, whether it passed, its gate results and its outputs with their hashes; a rerun
reuses a stage that passed with the same key and whose outputs are unchanged.

Paths in the state are relative to the run folder when they lie inside the project (the config's
folder): a copied or moved project (``cp -r d d2``) re-runs or reuses its own outputs, never the
original's. Folders are fingerprinted by the one walk of
:func:`sftgate.gates.train.provenance_manifest.model_fingerprint` (subfolders and dot-files included).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, GateResult, Severity, Stage, Status
from sftgate.gates.readers import atomic
from sftgate.gates.readers import config as config_mod

STATE_NAME = "sftgate-state.json"
STATE_VERSION = 2  # 2: paths relative to the run folder

# The config sections (dotted keys) and files each stage reads: its inputs for resume.
STAGE_KEYS: dict[Stage, tuple[str, ...]] = {
    Stage.CONFIG: ("sftgate", "model", "release.repo_id", "release.require_pinned_revision", "gates"),
    Stage.DATA: ("data", "train.max_seq_len", "model.tokenizer", "gates"),
    Stage.TOKENIZER: ("model", "prompt", "data.train", "data.cases", "train.max_seq_len", "train.collator", "lora", "gates"),
    Stage.TRAIN: ("model", "prompt", "lora", "train", "data.train", "data.format", "gates"),
    Stage.ADAPTER: ("eval", "prompt", "data.cases", "data.output_schema", "data.exact_keys", "gates"),
    Stage.MERGE: ("model.dtype", "eval", "prompt", "data.cases", "data.output_schema", "data.exact_keys", "gates"),
    Stage.RELEASE: ("release", "gates"),
}
STAGE_FILES: dict[Stage, tuple[str, ...]] = {
    Stage.CONFIG: ("model.id",),
    Stage.DATA: ("data.train", "data.eval", "data.cases", "data.output_schema", "model.tokenizer"),
    Stage.TOKENIZER: ("model.id", "model.tokenizer", "prompt.chat_template", "prompt.inference_chat_template",
                      "data.train", "data.cases"),
    Stage.TRAIN: ("model.id", "model.tokenizer", "prompt.chat_template", "data.train"),
    Stage.ADAPTER: ("data.cases", "data.output_schema"),
    Stage.MERGE: ("data.cases", "data.output_schema"),
    Stage.RELEASE: (),
}


# --------------------------------------------------------------------------- input hashing


def hash_path(path: Path) -> str:
    """A file's sha256 and size, a model folder's fingerprint, another folder's content hash."""
    from sftgate.gates.train.provenance_manifest import file_info, model_fingerprint

    if not path.exists():
        return "missing"
    if path.is_dir():
        return model_fingerprint(path)["sha256"]
    st = path.stat()
    return f"{file_info(path, records=False)['sha256']}:{st.st_size}"


def stage_key(stage: Stage, config: config_mod.Config, previous: str, outputs: dict[str, str]) -> str:
    """The hash of everything ``stage`` reads: config sections, files, and the previous stage's key."""
    digest = hashlib.sha256()
    digest.update(f"{STATE_VERSION}:{stage.value}:{previous}".encode())
    sections = {key: config.get(key) for key in STAGE_KEYS[stage]}
    digest.update(json.dumps(sections, sort_keys=True, default=str).encode())
    for key in STAGE_FILES[stage]:
        path = config.path_of(key)
        if path is not None:
            digest.update(f"{key}={hash_path(path)}".encode())
    for name in _consumes(stage):
        if name in outputs:
            digest.update(f"{name}={hash_path(Path(outputs[name]))}".encode())
    return digest.hexdigest()


def _consumes(stage: Stage) -> tuple[str, ...]:
    return {Stage.ADAPTER: ("adapter",), Stage.MERGE: ("adapter",), Stage.RELEASE: ("merged",)}.get(stage, ())


def produces(stage: Stage) -> tuple[str, ...]:
    return {Stage.TRAIN: ("adapter",), Stage.MERGE: ("merged",), Stage.RELEASE: ("release",)}.get(stage, ())


# --------------------------------------------------------------------------- state


def load_state(run_dir: Path) -> dict[str, Any]:
    try:
        value = json.loads((run_dir / STATE_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) and value.get("version") == STATE_VERSION else {}


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    atomic.write_text(run_dir / STATE_NAME, json.dumps(state, indent=2, default=str) + "\n")


def result_from_dict(data: dict[str, Any]) -> GateResult:
    """A :class:`GateResult` back from its report dict (for resumed stages)."""
    findings = [
        Finding(code=f["code"], rule=f["rule"], severity=Severity(f["severity"]), message=f["message"],
                location=f["location"], suggestion=f.get("suggestion"), evidence=f.get("evidence") or {},
                line=f.get("line"))
        for f in data.get("findings", [])
    ]
    return GateResult(gate=data["gate"], stage=Stage(data["stage"]), status=Status(data["status"]),
                      seconds=float(data.get("seconds", 0.0)), findings=findings,
                      required=bool(data.get("required", True)), reason=data.get("reason"),
                      metrics=data.get("metrics") or {})


def to_state_path(path: str | os.PathLike[str], run_dir: Path, project: Path) -> str:
    """``path`` as the state records it: relative to ``run_dir`` when inside ``project``, else absolute."""
    p, proj = Path(os.path.abspath(path)), Path(os.path.abspath(project))
    if p == proj or proj in p.parents:
        return Path(os.path.relpath(p, os.path.abspath(run_dir))).as_posix()
    return str(p)


def from_state_path(text: str, run_dir: Path) -> Path:
    """A path recorded by :func:`to_state_path`, back against this run folder."""
    p = Path(text)
    return p if p.is_absolute() else Path(os.path.normpath(run_dir / p))


def outputs_intact(record: dict[str, Any], run_dir: Path) -> bool:
    """A reused stage's outputs must still be there, unchanged."""
    for name, digest in (record.get("output_hashes") or {}).items():
        path = (record.get("outputs") or {}).get(name)
        if not isinstance(path, str) or hash_path(from_state_path(path, run_dir)) != digest:
            return False
    return True
