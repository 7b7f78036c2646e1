"""Gate ``provenance``: a training run records what makes it reproducible, and it matches.

The runner writes a provenance manifest (``provenance.json`` in the run folder, and
``sftgate-provenance.json`` next to the adapter) built by
:func:`~sftgate.gates.train.provenance_manifest.build_manifest`:

- ``base_model``: the exact ID (a Hub ID, or a local folder), the configured revision, the resolved
  revision (the commit of a Hub cache snapshot; for a local folder a content fingerprint);
- ``datasets``: sha256, bytes and record count of train, eval, the fixed cases and the output schema;
- ``template``: the sha256 of the chat template training rendered with;
- ``lora``: r, alpha, dropout, target_modules; ``train``: max_seq_len, seed, lr, batch size,
  gradient accumulation, epochs/steps, collator;
- ``versions``: Python, sftgate, torch, transformers, peft, datasets, accelerate, tokenizers;
- ``job_id``: the id in the job ledger (``runs/submissions.jsonl``).

Rules:

- ``PROV001 missing_provenance``: a field above is missing or empty;
- ``PROV002 adapter_base_mismatch``: the adapter's ``base_model_name_or_path`` is not the config's
  model (an adapter trained on another base: merging or serving it on this one is wrong);
- ``PROV003 dataset_changed``: a data file's sha256 differs from the one recorded (the adapter
  was trained on other data than the config now names);
- ``PROV004 unresolved_revision`` (warning): a Hub base whose revision could not be resolved to
  a commit (not in the local cache and not pinned);
- ``PROV005 not_in_ledger`` (warning): the job id is not in the ledger.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, InputError, Severity, rule_maker
from sftgate.gates.train.provenance_manifest import (
    ADAPTER_MANIFEST,
    MANIFEST_NAME,
    file_info,
    load_manifest,
    read_ledger,
)

GATE = "provenance"


_rule = rule_maker(GATE)


MISSING = _rule(
    "PROV001", "missing_provenance", "the provenance manifest lacks a field that makes the run reproducible",
    "Without the base revision, the data hash, the template hash, the LoRA hyperparameters, the "
    "sequence length, the seed and the library versions, nobody can rebuild or audit the model.",
    "Train with `sftgate train`/`sftgate run`, which records all of them; do not hand-edit the manifest.",
    "provenance.json: datasets.train.sha256 is missing",
)
BASE_MISMATCH = _rule(
    "PROV002", "adapter_base_mismatch", "the adapter was trained on another base model than the config names",
    "A LoRA adapter is a delta to one specific set of weights: applied to another base (another size, "
    "another revision, the instruct instead of the base) it produces garbage or fails to load.",
    "Point model.id at the base the adapter was trained on, or retrain the adapter on this base.",
    "adapter_config.json: base_model_name_or_path 'Qwen/Qwen2.5-1.5B' but model.id is 'Qwen/Qwen2.5-0.5B'",
)
DATASET_CHANGED = _rule(
    "PROV003", "dataset_changed", "a data file differs from the one the run recorded",
    "The adapter was trained (or evaluated) on other bytes than the config names now: its gates "
    "and metrics do not describe this data.",
    "Retrain on the current data, or restore the data the run recorded (sha256 in the evidence).",
    "data/train.jsonl: sha256 9f2c… but the run recorded 3b1f…",
)
UNRESOLVED = _rule(
    "PROV004", "unresolved_revision", "the base model's revision is not resolved to a commit",
    "A branch such as main moves; the exact weights the run used are then unknown.",
    "Pin model.revision to a 40-hex commit (huggingface_hub.model_info(ID).sha), or keep the snapshot "
    "in the local cache so the run can resolve it.",
    "base_model: {id: mistralai/Mistral-7B-v0.3, revision: main, resolved_revision: null}",
    severity=Severity.WARNING,
)
NOT_IN_LEDGER = _rule(
    "PROV005", "not_in_ledger", "the run's job id is not in the job ledger",
    "The ledger (runs/submissions.jsonl) is the list of runs a team can audit; a run missing from it "
    "was made outside the pipeline or its ledger was lost.",
    "Run through `sftgate run`/`sftgate train`, which append to the ledger.",
    severity=Severity.WARNING,
)
RULES = (MISSING, BASE_MISMATCH, DATASET_CHANGED, UNRESOLVED, NOT_IN_LEDGER)

REQUIRED = (
    "job_id", "base_model.id", "datasets.train.sha256", "datasets.train.records", "template.sha256",
    "lora.r", "lora.alpha", "lora.dropout", "lora.target_modules", "train.max_seq_len", "train.seed",
    "versions.python", "versions.torch", "versions.transformers", "versions.peft",
)


# --------------------------------------------------------------------------- the gate


def _get(data: Any, dotted: str) -> Any:
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node



def base_relation(adapter_base: str | None, model_id: str, config_dir: Path | None = None) -> str:
    """``same``, ``different`` or ``unknown``: does an adapter's ``base_model_name_or_path`` name the model?

    Local paths compare resolved (relative ones from the config's folder, then the current one);
    a Hub cache snapshot path compares as its repo ID; Hub IDs compare case-insensitively. A Hub
    ID against a local folder that is not a cache snapshot cannot be decided: ``unknown``.
    """
    from sftgate.gates.readers.hf_cache import snapshot_revision

    if not adapter_base:
        return "unknown"
    if adapter_base == model_id:
        return "same"

    def canon(value: str) -> tuple[str, str]:
        candidates = [Path(value).expanduser()]
        if config_dir is not None and not candidates[0].is_absolute():
            candidates.insert(0, config_dir / value)
        for p in candidates:
            if p.exists():
                found = snapshot_revision(p.resolve())
                return ("hub", found[0].casefold()) if found else ("path", str(p.resolve()))
        if value.startswith(("/", ".", "~")) or value.count("/") > 1:
            return ("path", str(Path(value).expanduser()))
        return ("hub", value.strip().rstrip("/").casefold())

    a, b = canon(adapter_base), canon(model_id)
    if a == b:
        return "same"
    return "different" if a[0] == b[0] else "unknown"


def check(
    *,
    manifest: str | os.PathLike[str] | Mapping[str, Any],
    model_id: str | None = None,
    adapter_dir: str | os.PathLike[str] | None = None,
    config_dir: str | os.PathLike[str] | None = None,
    data_files: Mapping[str, str | os.PathLike[str]] | None = None,
    ledger: str | os.PathLike[str] | None = None,
    location: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Check a provenance manifest: complete, its adapter on the config's base, its data unchanged.

    ``data_files`` maps a dataset key (``train``, ``eval``...) to the file the config names now.
    """
    if isinstance(manifest, Mapping):
        data, where = dict(manifest), location or MANIFEST_NAME
    else:
        data = load_manifest(manifest)
        p = Path(manifest)
        where = location or str(p / (ADAPTER_MANIFEST if (p / ADAPTER_MANIFEST).is_file() else MANIFEST_NAME)
                                if p.is_dir() else p)
    missing = [key for key in REQUIRED if _get(data, key) in (None, "", [], {})]
    template_kind = _get(data, "template.source")
    if template_kind == "none" and "template.sha256" in missing:  # prompt/completion data, no chat template
        missing.remove("template.sha256")
    for key in missing:
        yield MISSING.finding(f"provenance field {key} is missing or empty", f"{where}:{key}", evidence={"field": key})
    if metrics is not None:
        metrics.update(fields_checked=len(REQUIRED), fields_missing=len(missing), job_id=data.get("job_id"))

    base = _get(data, "base_model") or {}
    if isinstance(base, dict) and base.get("id") and not base.get("local_path") and not base.get("resolved_revision"):
        yield UNRESOLVED.finding(
            f"base model {base.get('id')!r} at revision {base.get('revision') or 'main'!r} is not resolved to a commit",
            f"{where}:base_model", evidence={"id": base.get("id"), "revision": base.get("revision")},
        )

    if adapter_dir is not None and model_id is not None:
        yield from adapter_base_findings(adapter_dir, model_id, config_dir=config_dir, metrics=metrics)

    for key, path in (data_files or {}).items():
        recorded = _get(data, f"datasets.{key}.sha256")
        if not recorded or path is None or not Path(path).exists():
            continue
        now = file_info(path, records=False)["sha256"]
        if now != recorded:
            yield DATASET_CHANGED.finding(
                f"{path}: sha256 {now[:12]}… differs from the recorded {recorded[:12]}…",
                f"{where}:datasets.{key}.sha256",
                evidence={"dataset": key, "now": now, "recorded": recorded},
            )

    if ledger is not None and data.get("job_id"):
        entries = read_ledger(Path(ledger))
        if not any(e.get("job_id") == data["job_id"] for e in entries):
            yield NOT_IN_LEDGER.finding(
                f"job {data['job_id']!r} is not in the ledger {ledger}", str(ledger),
                evidence={"job_id": data["job_id"], "ledger_entries": len(entries)},
            )


def adapter_base_findings(
    adapter_dir: str | os.PathLike[str],
    model_id: str,
    *,
    config_dir: str | os.PathLike[str] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """``adapter_base_mismatch`` when the adapter's ``base_model_name_or_path`` is not ``model_id``."""
    adapter_cfg = Path(adapter_dir) / "adapter_config.json"
    try:
        adapter = json.loads(adapter_cfg.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{adapter_cfg}: no adapter config", hint="pass the folder the trainer saved") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{adapter_cfg}: unreadable adapter config ({exc})") from None
    adapter_base = adapter.get("base_model_name_or_path") if isinstance(adapter, dict) else None
    if metrics is not None:
        metrics["adapter_base"] = adapter_base
    relation = base_relation(adapter_base, model_id, Path(config_dir) if config_dir is not None else None)
    if relation == "same":
        return
    unknown = relation == "unknown"
    yield BASE_MISMATCH.finding(
        f"adapter base_model_name_or_path {adapter_base!r} "
        + ("cannot be matched to" if unknown else "is not") + f" the model {model_id!r}",
        f"{adapter_cfg}:base_model_name_or_path",
        suggestion=adapter_base if adapter_base else None,
        evidence={"adapter_base": adapter_base, "model_id": model_id, "relation": relation},
        severity=Severity.WARNING if unknown and adapter_base else None,
    )



def from_config(config: Any) -> dict[str, Any] | None:
    """Check the provenance the last run of ``config`` recorded (``train.output_dir``), if any."""
    out = config.path_of("train.output_dir")
    if out is None or not (out / MANIFEST_NAME).is_file():
        return None
    adapter = out / "adapter"
    files = {k: config.path_of(f"data.{k}") for k in ("train", "eval", "cases", "output_schema")}
    return {
        "manifest": out / MANIFEST_NAME,
        "model_id": str(config.get("model.id")),
        "adapter_dir": adapter if (adapter / "adapter_config.json").is_file() else None,
        "config_dir": config.base_dir,
        "data_files": {k: v for k, v in files.items() if v is not None},
        "ledger": config.base_dir / "runs" / "submissions.jsonl",
    }
