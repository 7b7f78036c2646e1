"""The explicit table of gates: name, stage, module and whether ``sftgate check`` runs it.

No import-time decorators: this table is the registry. Modules are imported lazily by path, so
listing gates never imports torch or transformers.

A gate module exposes ``check(**kwargs)`` (a generator of findings) and ``RULES`` (its rule
catalogue). A gate with ``preflight=True`` also exposes ``from_config(config)``, which returns
the keyword arguments for ``check`` or ``None`` when the config does not enable it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from sftgate.gates.frame.core import Stage


@dataclass(frozen=True)
class GateSpec:
    name: str
    stage: Stage
    module: str
    summary: str
    preflight: bool = False
    required: bool = True

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


GATES: tuple[GateSpec, ...] = (
    GateSpec("model-id", Stage.CONFIG, "sftgate.gates.config.model_id", "model IDs are valid Hub IDs or local model folders", preflight=True),
    GateSpec("peer-config", Stage.CONFIG, "sftgate.gates.config.peer.gate", "an axolotl/LLaMA-Factory/TRL/mistral-finetune job config has only documented keys, of the right types"),
    GateSpec("dataset-schema", Stage.DATA, "sftgate.gates.data.dataset_schema", "every record has a known format, fields and roles", preflight=True),
    GateSpec("split-isolation", Stage.DATA, "sftgate.gates.data.split_isolation", "eval and fixed cases do not leak into train", preflight=True),
    GateSpec("prompt-alignment", Stage.TOKENIZER, "sftgate.gates.tokenizer.prompt_alignment", "training and inference prompts tokenize alike", preflight=True),
    GateSpec("eos", Stage.TOKENIZER, "sftgate.gates.tokenizer.eos", "every example ends in a supervised EOS the model stops on", preflight=True),
    GateSpec("labels", Stage.TOKENIZER, "sftgate.gates.tokenizer.labels", "another trainer's tokenized labels train the answers and their EOS", preflight=True),
    GateSpec("embeddings", Stage.TOKENIZER, "sftgate.gates.tokenizer.embeddings", "the tokens training relies on have trained rows the base can serve", preflight=True),
    GateSpec("model-config", Stage.TOKENIZER, "sftgate.gates.tokenizer.model_config", "the base's generation config saves and the data fits its context window", preflight=True),
    GateSpec("lora-targets", Stage.TRAIN, "sftgate.gates.train.lora_targets", "LoRA target modules exist in the model"),
    GateSpec("strict-json", Stage.ADAPTER, "sftgate.gates.adapter.strict_json", "generations are strict JSON valid against the output schema"),
    GateSpec("eos-behaviour", Stage.ADAPTER, "sftgate.gates.adapter.eos_behaviour", "generations stop with EOS before max_new_tokens"),
    GateSpec("adapter-completeness", Stage.ADAPTER, "sftgate.gates.adapter.completeness", "the saved adapter has every LoRA tensor, non-empty, with its shapes"),
    GateSpec("merge-equivalence", Stage.MERGE, "sftgate.gates.merge.merge_equivalence", "the merged model behaves like base + adapter"),
    GateSpec("artifacts", Stage.MERGE, "sftgate.gates.merge.artifacts", "the model folder has what serving needs, safely"),
    GateSpec("merge-dtype", Stage.MERGE, "sftgate.gates.merge.merge_dtype", "the merged model keeps the base's dtype and size"),
    GateSpec("provenance", Stage.TRAIN, "sftgate.gates.train.provenance", "the run records what makes it reproducible"),
    GateSpec("release", Stage.RELEASE, "sftgate.gates.release.release", "a release folder matches its manifest and passed gates"),
    GateSpec("model-card", Stage.RELEASE, "sftgate.gates.release.model_card", "the model card's metadata is what the Hub accepts, with a license and a Hub base"),
)

# Modules that define rules, for the catalogue (``sftgate rules``). Some define rules without
# being a gate of their own (the config loader, for instance).
RULE_MODULES: tuple[str, ...] = (*(spec.module for spec in GATES), "sftgate.gates.data.gx_suite", "sftgate.gates.config.triage")


def get(name: str) -> GateSpec:
    for spec in GATES:
        if spec.name == name:
            return spec
    raise KeyError(name)


def preflight_gates() -> tuple[GateSpec, ...]:
    return tuple(spec for spec in GATES if spec.preflight)
