"""experts_not_adapted: LoRA targets that leave every expert of an MoE model frozen (mlx-lm #571),
and the trainable share per module type the lora-targets gate reports."""

from __future__ import annotations

import pytest

from sftgate.gates.frame.core import Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.registry import get
from sftgate.gates.train import lora_targets
from sftgate.gates.train.trainable_share import kind_of
from tests.conftest import FIXTURES

MIXTRAL = FIXTURES / "lora" / "mixtral"  # 8 experts per layer, fused 3-D expert parameters (transformers 5)
MISTRAL = FIXTURES / "lora" / "mistral"
EXPERTS = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]

CASES = [
    # (model, target_modules, target_parameters, rules, reason)
    (MIXTRAL, ATTENTION, None, ["experts_not_adapted"], "attention only on an MoE model (mlx-lm #571)"),
    (MIXTRAL, "all-linear", None, ["experts_not_adapted"], "all-linear never reaches fused expert parameters"),
    (MIXTRAL, ["q_proj"], EXPERTS, [], "the experts adapted through target_parameters"),
    (MIXTRAL, ["q_proj"], ["mlp.experts.nope"], ["unknown_target_module", "experts_not_adapted"],
     "a target_parameters entry that matches nothing"),
    (MISTRAL, ATTENTION, None, [], "a dense model has no experts to leave out"),
]


def gate(model, targets, parameters, **kwargs):
    return run_gate("lora-targets", get("lora-targets").stage, lora_targets.check, model_dir=model,
                    target_modules=targets, target_parameters=parameters, **kwargs)


@pytest.mark.parametrize(("model", "targets", "parameters", "rules", "reason"), CASES, ids=[c[4] for c in CASES])
def test_rules(model, targets, parameters, rules, reason):
    result = gate(model, targets, parameters)
    assert [f.rule for f in result.findings] == rules, reason


def test_experts_not_adapted_is_a_warning_with_a_suggestion_that_passes():
    result = gate(MIXTRAL, ATTENTION, None)
    assert result.status is Status.PASS  # a warning: the run can go on, knowingly
    (finding,) = result.findings
    assert finding.severity.value == "warning"
    assert finding.suggestion is not None and finding.suggestion.startswith("lora.target_parameters: [")
    suggested = finding.suggestion.split("[", 1)[1].rstrip("]").split(", ")
    assert gate(MIXTRAL, ATTENTION, suggested).findings == []


def test_trainable_share_per_module_type():
    frozen = gate(MIXTRAL, ATTENTION, None, rank=8).metrics
    assert frozen["trainable_share"]["experts"]["trainable"] == 0
    assert frozen["trainable_share"]["attention"]["trainable"] == 2 * 4 * 8 * (32 + 32)  # layers x projections x r(in+out)
    assert frozen["trainable_share"]["experts"]["params"] > 0.8 * frozen["total_params"]
    adapted = gate(MIXTRAL, ["q_proj"], EXPERTS, rank=8).metrics
    # what peft's LoRA on the fused parameters adds: r x experts x (in + out) for each, per layer
    assert adapted["trainable_params"] == 2 * 8 * (32 + 32) + 2 * 8 * 8 * ((128 + 32) + (32 + 64))
    assert adapted["trainable_share"]["experts"]["share_of_trainable"] > 0.9


def test_trainable_share_counts_modules_to_save_in_full():
    saved = gate(MISTRAL, ["q_proj"], None, modules_to_save=["embed_tokens"]).metrics
    assert saved["trainable_share"]["embeddings"]["trainable"] == saved["trainable_share"]["embeddings"]["params"] // 2


@pytest.mark.parametrize(("name", "kind"), [
    ("model.layers.0.self_attn.q_proj.weight", "attention"),
    ("model.layers.0.mlp.gate_proj.weight", "mlp"),
    ("model.layers.0.mlp.gate.weight", "router"),
    ("model.layers.0.mlp.experts.gate_up_proj", "experts"),
    ("model.layers.0.block_sparse_moe.experts.3.w1.weight", "experts"),
    ("model.layers.0.mlp.shared_expert.up_proj.weight", "shared_experts"),
    ("model.embed_tokens.weight", "embeddings"),
    ("lm_head.weight", "embeddings"),
    ("model.layers.0.input_layernorm.weight", "norm"),
])
def test_module_kinds(name, kind):
    assert kind_of(name) == kind


def test_from_config_passes_the_lora_settings(tmp_path):
    from sftgate.gates.readers import config as config_mod

    path = tmp_path / "sftgate.yaml"
    path.write_text(f"sftgate: 1\nmodel:\n  id: {MIXTRAL}\nlora:\n  r: 4\n  target_modules: [q_proj]\n"
                    f"  target_parameters: [{', '.join(EXPERTS)}]\n  modules_to_save: [lm_head]\n")
    kwargs = lora_targets.from_config(config_mod.load(path))
    assert (kwargs["rank"], kwargs["target_parameters"], kwargs["modules_to_save"]) == (4, EXPERTS, ["lm_head"])
    assert gate(kwargs["model_dir"], kwargs["target_modules"], kwargs["target_parameters"]).findings == []
