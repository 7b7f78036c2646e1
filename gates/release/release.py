"""Gate ``release``: a model folder is fit to publish.

It checks, for any model or adapter folder (a promoted release or one built elsewhere):

- the manifest ``sftgate-manifest.json`` lists every file with its size and sha256, and the files
  on disk match it exactly (``manifest_mismatch``: missing, changed or unlisted files, or no manifest);
- the gate results recorded in the manifest passed: a failed or errored gate is ``gate_failed``,
  a required gate that was skipped (or never ran) is ``gate_skipped`` (a skip is never a pass);
- the artifacts are complete, safetensors only, and need no remote code (the ``artifacts`` gate's
  rules ``missing_artifact``, ``unsafe_weights``, ``remote_code``, ``corrupt_artifact``);
- the base model revision is pinned to a 40-hex commit when the base is a Hub ID
  (``unpinned_base_revision``).

The manifest format (written by ``sftgate.runners.pipeline.release.promote``)::

    {"sftgate_manifest": 1, "tool": "sftgate", "version": "0.1.0", "created_utc": "...",
     "passed": true,
     "files": {"config.json": {"bytes": 612, "sha256": "9f2c..."}, ...},
     "gates": [{"gate": "merge-equivalence", "stage": "merge", "status": "pass", ...}, ...],
     "base_model": {"id": "mistralai/Mistral-7B-v0.3", "revision": "<40 hex>"},
     ...  # any extra keys the runner adds (provenance)}
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.config import hub_id_grammar, model_id_diagnosis
from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.merge import artifacts
from sftgate.gates.readers.model_folder import list_model_folder
from sftgate.gates.release.manifest import MANIFEST_NAME, read_manifest

GATE = "release"
MANIFEST_VERSION = 1
CHUNK = 1 << 20

MANIFEST_MISMATCH = Rule(
    "REL001", "manifest_mismatch", Severity.ERROR, GATE,
    "the files differ from the release manifest (missing, changed, unlisted, or no manifest)",
    "The manifest is the proof of what was gated. A file changed or added after the gates ran "
    "(a hand-edited config, a stray pickle, a half-copied shard) ships unchecked.",
    "Promote again from the gated source (`sftgate run` or sftgate.runners.pipeline.release.promote) instead of "
    "editing a release folder; never copy files into it by hand.",
    "config.json: sha256 3b1f… differs from the manifest's 9f2c…",
)
GATE_SKIPPED = Rule(
    "REL002", "gate_skipped", Severity.ERROR, GATE,
    "a required gate was skipped or never ran, so nothing proves what it checks",
    "A skip is never a pass: a release whose merge-equivalence or strict-JSON gate did not run is "
    "unverified, however green the rest of the report looks.",
    "Provide what the gate needs (fixed cases, output schema, tokenizer) and run it; remove a gate "
    "from gates.skip only knowingly (a skip listed there is optional and does not block).",
    "merge-equivalence [merge]: skipped (no fixed cases)",
)
GATE_FAILED = Rule(
    "REL003", "gate_failed", Severity.ERROR, GATE,
    "a gate recorded for this model failed or could not run",
    "Promotion and publishing follow the gates: a model whose gates failed is not released.",
    "Fix what the failing gate reports (`sftgate rules RULE` explains each rule) and run the pipeline again.",
    "strict-json [merge]: fail (code_fence x3)",
)
UNPINNED_BASE_REVISION = Rule(
    "REL004", "unpinned_base_revision", Severity.ERROR, GATE,
    "the base model is a Hub ID whose revision is not a 40-hex commit",
    "A branch or tag (main, v0.3) moves: the same release rebuilt later starts from other weights, "
    "and the adapter no longer matches its base.",
    "Record the resolved commit: model.revision in the config, or huggingface_hub.model_info(ID).sha.",
    'base_model: {"id": "mistralai/Mistral-7B-v0.3", "revision": "main"}',
)

RULES = (MANIFEST_MISMATCH, GATE_SKIPPED, GATE_FAILED, UNPINNED_BASE_REVISION)

def is_pinned(revision: str | None) -> bool:
    """True for a full 40-hex commit; branches, tags, short SHAs and None are not pinned."""
    return isinstance(revision, str) and hub_id_grammar.is_commit(revision)


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def release_files(root: str | os.PathLike[str]) -> list[str]:
    """Every regular file of a release folder, as sorted POSIX paths relative to it, manifest excluded.

    The one walk of :mod:`sftgate.gates.readers.model_folder`: dot-folders included, symlinks and
    special files never listed (the artifacts gate reports them as ``not_a_regular_file``).
    """
    return [rel for rel in list_model_folder(root).files if rel != MANIFEST_NAME]


def check(
    *,
    model_dir: str | os.PathLike[str],
    profile: str = "transformers",
    require_pinned_revision: bool = True,
    required_gates: Iterable[str] = (),
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Yield every reason ``model_dir`` must not be published (see the module docstring)."""
    root = Path(model_dir)
    if not root.is_dir():
        raise InputError(f"{root}: release folder not found", hint="pass the folder `sftgate run` promoted")
    metrics = metrics if metrics is not None else {}
    manifest: dict[str, Any] | None = None
    try:
        manifest = read_manifest(root)
    except InputError as exc:
        yield MANIFEST_MISMATCH.finding(exc.message, str(root / MANIFEST_NAME), suggestion=exc.hint)
    if manifest is not None:
        yield from _verify_files(root, manifest, metrics)
        yield from _verify_gates(root, manifest, set(required_gates), metrics)
    yield from artifacts.check(model_dir=root, profile=profile, verified_elsewhere=(MANIFEST_NAME,))
    yield from _verify_revision(root, manifest, require_pinned_revision)


# --------------------------------------------------------------------------- manifest


def _verify_files(root: Path, manifest: dict[str, Any], metrics: dict[str, Any]) -> Iterator[Finding]:
    where = root / MANIFEST_NAME
    listed: dict[str, Any] = manifest["files"]
    present = set(release_files(root))
    hashed = 0
    for rel, entry in sorted(listed.items()):
        path = root / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            yield MANIFEST_MISMATCH.finding(f"manifest lists {rel!r}, a path outside the release folder", f"{where}:files")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            yield MANIFEST_MISMATCH.finding(f"manifest entry for {rel!r} has no sha256", f"{where}:files")
            continue
        if rel not in present:
            yield MANIFEST_MISMATCH.finding(f"{rel!r} is in the manifest but missing from the folder", str(path))
            continue
        size = path.stat().st_size
        if isinstance(entry.get("bytes"), int) and entry["bytes"] != size:
            yield MANIFEST_MISMATCH.finding(
                f"{rel!r} has {size} bytes, the manifest says {entry['bytes']}",
                str(path),
                evidence={"bytes": size, "manifest_bytes": entry["bytes"]},
            )
            continue
        actual = sha256_file(path)
        hashed += size
        if actual != entry["sha256"]:
            yield MANIFEST_MISMATCH.finding(
                f"{rel!r}: sha256 {actual[:12]}… differs from the manifest's {entry['sha256'][:12]}…",
                str(path),
                evidence={"sha256": actual, "manifest_sha256": entry["sha256"]},
            )
    for rel in sorted(present - set(listed)):
        yield MANIFEST_MISMATCH.finding(f"{rel!r} is in the folder but not in the manifest", str(root / rel))
    metrics.update(files=len(present), files_listed=len(listed), bytes_hashed=hashed)


def _verify_gates(root: Path, manifest: dict[str, Any], required: set[str], metrics: dict[str, Any]) -> Iterator[Finding]:
    where = f"{root / MANIFEST_NAME}:gates"
    recorded = manifest.get("gates")
    if not isinstance(recorded, list) or not recorded:
        yield GATE_SKIPPED.finding("the manifest records no gate results: nothing proves this model was gated", where)
        return
    seen = set()
    for g in recorded:
        if not isinstance(g, dict):
            continue
        name, stage, status = g.get("gate", "?"), g.get("stage", "?"), g.get("status")
        seen.add(name)
        reason = f": {g['reason']}" if g.get("reason") else ""
        rules = sorted({f.get("rule", "?") for f in g.get("findings", []) if isinstance(f, dict) and f.get("severity") == "error"})
        if status in ("fail", "error"):
            yield GATE_FAILED.finding(
                f"gate {name} [{stage}] recorded status {status}{reason}",
                f"{where}.{name}",
                evidence={"gate": name, "stage": stage, "status": status, "rules": rules},
            )
        elif status == "skip" and (g.get("required", True) or name in required):
            yield GATE_SKIPPED.finding(
                f"required gate {name} [{stage}] was skipped{reason}",
                f"{where}.{name}",
                evidence={"gate": name, "stage": stage},
            )
        elif status not in ("pass", "skip"):
            yield GATE_FAILED.finding(f"gate {name} [{stage}] has unknown status {status!r}", f"{where}.{name}")
    for name in sorted(required - seen):
        yield GATE_SKIPPED.finding(f"required gate {name} never ran for this model", where, evidence={"gate": name})
    metrics["gates_recorded"] = len(recorded)


# --------------------------------------------------------------------------- revision


def _looks_local(value: str) -> bool:
    return model_id_diagnosis.looks_local(value) or os.path.isdir(os.path.expanduser(value))


def _verify_revision(root: Path, manifest: dict[str, Any] | None, required: bool) -> Iterator[Finding]:
    base: dict[str, Any] = {}
    where = f"{root / MANIFEST_NAME}:base_model"
    if manifest is not None and isinstance(manifest.get("base_model"), dict):
        base = manifest["base_model"]
    adapter_cfg = root / "adapter_config.json"
    if not base and adapter_cfg.is_file():
        try:
            cfg = json.loads(adapter_cfg.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cfg = {}
        if isinstance(cfg, dict):
            base = {"id": cfg.get("base_model_name_or_path"), "revision": cfg.get("revision")}
            where = f"{adapter_cfg}:revision"
    base_id, revision = base.get("id"), base.get("revision")
    if not base_id:
        if required and manifest is not None:
            yield UNPINNED_BASE_REVISION.finding(
                "the manifest records no base model (base_model.id and revision)",
                where,
                severity=Severity.WARNING,
            )
        return
    if _looks_local(str(base_id)) or is_pinned(revision):
        return
    yield UNPINNED_BASE_REVISION.finding(
        f"base model {base_id!r} is at revision {revision!r}, not a 40-hex commit",
        where,
        severity=None if required else Severity.WARNING,
        suggestion=f"pin it: huggingface_hub.model_info({str(base_id)!r}, revision={revision or 'main'!r}).sha",
        evidence={"id": base_id, "revision": revision},
    )
