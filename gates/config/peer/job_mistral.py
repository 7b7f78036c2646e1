"""Read a mistral-finetune config into a :class:`~sftgate.gates.config.peer.jobs.PeerJob`.

``model_id_or_path`` is the model folder (mistral-finetune loads local folders: params.json,
consolidated.safetensors, tokenizer.model.v3 or tekken.json). ``data.instruct_data`` and
``data.eval_instruct_data`` are ``path:weight`` lists (comma-separated; a path is a JSONL file or
a folder of them) in the ``{"messages": [...]}`` format sftgate reads as it is; ``data.data``
is pre-training text, not checked. LoRA covers every linear layer of mistral-finetune's own
model, so there are no target modules to check; ``seq_len`` is a packing length (samples are
concatenated and cut into chunks of it), not a per-example limit.
"""

from __future__ import annotations

import re
from typing import Any

from sftgate.gates.config.peer.jobs import DatasetRef, PeerJob, local_dataset, setting

_WEIGHT = re.compile(r"\A(?P<path>.+?):(?P<weight>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\Z")


def sources(value: str) -> list[str]:
    """The paths of a ``path:weight,path:weight`` string (weights dropped)."""
    out = []
    for part in value.split(","):
        part = part.strip()
        if part:
            match = _WEIGHT.match(part)
            out.append(match.group("path") if match else part)
    return out


def _instruct(job: PeerJob, section: dict[str, Any], key: str, role: str) -> None:
    value = section.get(key)
    if not isinstance(value, str) or not value.strip():
        return
    for path in sources(value):
        ref = local_dataset(job, role, path, ("data", key), hub_ok=False, what="instruct data")
        if ref.path is not None and ref.path.is_dir():
            files = sorted(ref.path.glob("*.jsonl"))
            if files:
                job.datasets.extend(DatasetRef(role, path, ref.key_path, ref.location, ref.line, path=f) for f in files)
                continue
        job.datasets.append(ref)


def read(job: PeerJob, data: dict[str, Any]) -> None:
    job.model = setting(data, "model_id_or_path")
    job.tokenizer = job.model
    raw = data.get("data")
    section: dict[str, Any] = raw if isinstance(raw, dict) else {}
    _instruct(job, section, "instruct_data", "train")
    _instruct(job, section, "eval_instruct_data", "eval")
    if isinstance(section.get("data"), str) and section["data"].strip():
        job.datasets.append(DatasetRef("train", section["data"], ("data", "data"), job.location(("data", "data")),
                                       job.line(("data", "data")), note="data.data is pre-training text: not checked"))
