"""Gate ``peer-config``: a trainer's job config read as that trainer reads it.

It reports the format taken and why (metrics ``format``, ``why``, ``key_table``: the tool
version the key table was made from), every key the tool does not document (with a did-you-mean),
values of the wrong type, keys that need each other, datasets that do not exist, and, as info,
what cannot be checked offline (a Hub dataset, a tool's built-in template). A file that is no job
config (accelerate, DeepSpeed, FSDP, a launcher) passes with ``not_a_job_config``.

Run by :func:`sftgate.gates.config.peer.run.run_peer` inside ``sftgate check``; the other gates
(model-id, dataset-schema, ...) then run on what the config names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sftgate.gates.config.peer import tables
from sftgate.gates.config.peer.detect import NOT_A_JOB, Detection
from sftgate.gates.config.peer.jobs import PeerJob
from sftgate.gates.config.peer.keys import check_keys
from sftgate.gates.config.peer.rules import DATASET_MISSING, GATE, NOT_A_JOB_CONFIG, NOT_CHECKED, RULES
from sftgate.gates.config.peer.tables import KeyTable
from sftgate.gates.frame.core import Finding
from sftgate.gates.readers.document import Document, dotted

__all__ = ["GATE", "RULES", "check"]


def check(
    *,
    doc: Document,
    detection: Detection,
    table: KeyTable | None = None,
    job: PeerJob | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """The format finding(s), key findings and dataset findings of one peer config."""
    metrics = metrics if metrics is not None else {}
    metrics.update(detection.metrics())
    if detection.format == NOT_A_JOB:
        yield NOT_A_JOB_CONFIG.finding(
            f"{doc.path} is {detection.what}, not a training job config: nothing to gate here; run `sftgate check` "
            "on the job config that names the base model and the data", str(doc.path),
            evidence={"what": detection.what})
        return
    if table is None or job is None:
        return
    keys = list(doc.data) if isinstance(doc.data, dict) else []
    metrics["keys"] = len(keys)
    metrics["inputs"] = inputs(job)
    yield from check_keys(doc, table)
    yield from job.findings
    yield from dataset_findings(job)
    yield from not_checked(job)


def inputs(job: PeerJob) -> dict[str, Any]:
    """What the config gives the other gates, for the report."""
    out: dict[str, Any] = {"datasets": [f"{d.role}: {d.path or d.value}" for d in job.datasets]}
    for name in ("model", "tokenizer", "chat_template", "builtin_template", "max_seq_len", "lora_targets",
                 "train_on_inputs", "packing", "special_tokens", "prepared"):
        value = getattr(job, name)
        if value is not None:
            shown = value.value if name != "chat_template" or len(str(value.value)) < 80 else "(inline jinja)"
            out[name] = {"value": shown, "key": dotted(value.key_path) if value.key_path else "(default)"}
    return out


def dataset_findings(job: PeerJob) -> Iterator[Finding]:
    for ref in job.datasets:
        if ref.missing:
            tried = f" (tried {', '.join(ref.tried[:4])})" if ref.tried else ""
            yield DATASET_MISSING.finding(f"{ref.role} dataset {ref.value!r} does not exist{tried}", ref.location,
                                          line=ref.line, evidence={"value": ref.value, "tried": ref.tried})
        elif ref.note is not None:
            yield NOT_CHECKED.finding(f"{ref.note}: dataset-schema and split-isolation do not read it", ref.location,
                                      line=ref.line, evidence={"value": ref.value})


def not_checked(job: PeerJob) -> Iterator[Finding]:
    """Info findings for what the config sets that no gate can check here."""
    if job.builtin_template is not None:
        key = job.builtin_template.key_path
        label = tables.table(job.tool).label
        yield NOT_CHECKED.finding(
            f"{dotted(key)} {job.builtin_template.value!r} is a template of {label} itself, not a file sftgate "
            "reads: prompt-alignment and eos check the tokenizer's own chat template (give the template as a "
            ".jinja file to check the one training uses)", job.location(key), line=job.line(key),
            evidence={"value": job.builtin_template.value})
    for name, what in (("train_on_inputs", "prompt_trained"), ("packing", "packing_leak")):
        value = getattr(job, name)
        if value is not None and value.value and job.prepared is None:
            yield NOT_CHECKED.finding(
                f"{dotted(value.key_path)} is set: the label rules ({what}) need the tokenized data the trainer "
                "writes (axolotl dataset_prepared_path, LLaMA-Factory tokenized_path), and this config names none; "
                "`sftgate labels DATA --tokenizer DIR` checks it", job.location(value.key_path),
                line=job.line(value.key_path), evidence={"key": dotted(value.key_path)})
    if job.special_tokens is not None:
        key = job.special_tokens.key_path
        yield NOT_CHECKED.finding(
            f"{dotted(key)} adds or changes tokens: the embedding rules (untrained_token, new_tokens_not_trained) "
            "read the base model's weights; run `sftgate check` on an sftgate.yaml for that model, or check the "
            "tokenized data with `sftgate labels`", job.location(key), line=job.line(key),
            evidence={"key": dotted(key)})
