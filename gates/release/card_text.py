"""The model card sftgate writes for a release: Hub metadata from the manifest, and what was gated.

:func:`card_facts` gathers the metadata of a release folder (base model from the manifest, license
from the config or the base's own card, datasets from the config, ``library_name`` ``peft`` for an
adapter, else ``transformers``; ``pipeline_tag: text-generation``); :func:`card_text` renders it
with huggingface_hub's ``ModelCardData`` (the YAML the Hub reads) and a body listing the gates the
manifest records. Pure functions: the runners write the file atomically.

::

    facts = card_facts(Path("runs/x/release"), license="apache-2.0", datasets=["my-org/tickets"])
    text = card_text(facts)
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError
from sftgate.gates.release.manifest import read_manifest
from sftgate.gates.release.model_card import base_in_manifest, is_hub_id, read_card_metadata


@dataclass
class CardFacts:
    """What the card says."""

    name: str
    base_model: str | None
    library_name: str
    license: str | None
    datasets: list[str] = field(default_factory=list)
    relation: str = "finetune"
    gates: list[dict[str, Any]] = field(default_factory=list)
    job_id: str | None = None


def card_facts(
    root: Path,
    *,
    base_model: str | None = None,
    license: str | None = None,
    datasets: list[str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> CardFacts:
    """The facts of the release folder ``root``; ``license`` defaults to the license in the card of
    ``base_dir`` (the base model's local folder or cache snapshot), when there is one; ``name``
    (the card's title) to the folder's name."""
    manifest: dict[str, Any] = {}
    with contextlib.suppress(InputError):
        manifest = read_manifest(root)  # every field of the type it should have
    base = base_model if is_hub_id(base_model) else base_in_manifest(manifest) or _adapter_base(root)
    if license is None:
        base_card = read_card_metadata(base_dir) or {}
        license = base_card.get("license") if isinstance(base_card.get("license"), str) else None
    adapter = (root / "adapter_config.json").is_file()
    gates = [g for g in manifest.get("gates", []) if isinstance(g, dict)]
    return CardFacts(
        name=name or root.resolve().name, base_model=base, library_name="peft" if adapter else "transformers",
        license=license, datasets=[d for d in (datasets or []) if isinstance(d, str)],
        relation="adapter" if adapter else "finetune", gates=gates,
        job_id=manifest.get("job_id") if isinstance(manifest.get("job_id"), str) else None,
    )


def _adapter_base(root: Path) -> str | None:
    """An adapter's ``base_model_name_or_path`` when it is a Hub ID."""
    try:
        value = json.loads((root / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = value.get("base_model_name_or_path") if isinstance(value, dict) else None
    return base if is_hub_id(base) else None


def card_text(facts: CardFacts) -> str:
    """The README.md text: ``---`` YAML metadata (huggingface_hub's format), then a short body."""
    from huggingface_hub import ModelCardData

    tags = ["sftgate", "lora" if facts.library_name == "peft" else "fine-tuned"]
    data = ModelCardData(
        base_model=facts.base_model, library_name=facts.library_name, license=facts.license,
        datasets=facts.datasets or None, pipeline_tag="text-generation", tags=tags,
        base_model_relation=facts.relation if facts.base_model else None,
    )
    kind = "LoRA adapter" if facts.library_name == "peft" else "fine-tuned model"
    base = f"[{facts.base_model}](https://huggingface.co/{facts.base_model})" if facts.base_model else "its base model"
    lines = [f"---\n{data.to_yaml()}\n---", "", f"# {facts.name}", "",
             f"A {kind} of {base}, trained and released through sftgate's gates"
             + (f" (job {facts.job_id})." if facts.job_id else "."), ""]
    if facts.gates:
        lines += ["| gate | stage | status |", "|---|---|---|"]
        lines += [f"| {g.get('gate', '?')} | {g.get('stage', '?')} | {g.get('status', '?')} |" for g in facts.gates]
        lines.append("")
    if facts.library_name == "peft":
        lines += ["```python", "from peft import AutoPeftModelForCausalLM",
                  f'model = AutoPeftModelForCausalLM.from_pretrained("{facts.name}")', "```", ""]
    return "\n".join(lines)
