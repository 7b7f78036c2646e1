"""The lora-targets gate: target_modules checked against the model built on the meta device."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sftgate.gates.frame.core import GateSkipped, InputError, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.registry import get
from sftgate.gates.train import lora_targets
from tests.conftest import FIXTURES, REPO

MISTRAL = FIXTURES / "lora" / "mistral"
LLAVA = FIXTURES / "lora" / "llava"

CASES = [
    # (model, target_modules, expected rules, reason)
    (MISTRAL, ["q_proj", "k_proj", "v_proj", "o_proj"], [], "the attention projections exist"),
    (MISTRAL, "all-linear", [], "all-linear on a text model"),
    (MISTRAL, None, [], "peft's default for mistral (q_proj, v_proj)"),
    (MISTRAL, r".*\.layers\.0\..*\.(q_proj|v_proj)", [], "a regular expression matched on full names"),
    (MISTRAL, ["q_proj", "query_key_value"], ["unknown_target_module"], "a Falcon name on a Mistral"),
    (MISTRAL, ["c_attn"], ["unknown_target_module"], "a GPT-2 name on a Mistral"),
    (MISTRAL, r".*\.attention\.wq", ["unknown_target_module"], "a regex matching nothing"),
    (MISTRAL, ["self_attn"], ["target_not_adaptable"], "a container module"),
    (MISTRAL, ["input_layernorm"], ["target_not_adaptable"], "a norm"),
    (LLAVA, "all-linear", ["lora_on_vision_tower"], "all-linear adapts the CLIP tower too"),
    (LLAVA, ["q_proj", "v_proj"], ["lora_on_vision_tower"], "bare names match the vision encoder"),
    (LLAVA, r"model\.language_model\..*\.(q_proj|v_proj)", [], "restricted to the language model"),
]


@pytest.mark.parametrize(("model", "targets", "rules", "reason"), CASES, ids=[c[3] for c in CASES])
def test_rules(model: Path, targets, rules: list[str], reason: str) -> None:
    result = run_gate("lora-targets", get("lora-targets").stage, lora_targets.check, model_dir=model,
                      target_modules=targets)
    assert [f.rule for f in result.findings] == rules, reason
    assert result.status is (Status.FAIL if rules else Status.PASS), reason


def test_suggestions_are_usable() -> None:
    """The unknown-name suggestion names real modules; the vision-tower one is a regex that passes."""
    unknown = list(lora_targets.check(model_dir=MISTRAL, target_modules=["qproj"]))
    assert unknown[0].suggestion is not None and "q_proj" in unknown[0].suggestion
    tower = list(lora_targets.check(model_dir=LLAVA, target_modules="all-linear"))
    fixed = tower[0].suggestion
    assert fixed is not None
    assert not list(lora_targets.check(model_dir=LLAVA, target_modules=fixed))


def test_metrics() -> None:
    metrics: dict = {}
    list(lora_targets.check(model_dir=LLAVA, target_modules=["q_proj"], metrics=metrics))
    assert metrics["multimodal"] is True and metrics["language_model"] == "model.language_model"
    assert "q_proj" in metrics["linear_names"]


def test_missing_config_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list(lora_targets.check(model_dir=tmp_path, target_modules=["q_proj"]))
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    result = run_gate("lora-targets", get("lora-targets").stage, lora_targets.check, model_dir=tmp_path,
                      target_modules=["q_proj"])
    assert result.status is Status.ERROR and result.error_exit_code == 2


def test_from_config(tmp_path: Path) -> None:
    from sftgate.gates.readers import config as config_mod

    (tmp_path / "sftgate.yaml").write_text(f"model:\n  id: {MISTRAL}\nlora:\n  target_modules: [q_proj]\n")
    kwargs = lora_targets.from_config(config_mod.load(tmp_path / "sftgate.yaml"))
    assert kwargs is not None and kwargs["target_modules"] == ["q_proj"]
    assert kwargs["location"].endswith("sftgate.yaml:lora.target_modules")
    (tmp_path / "sftgate.yaml").write_text("model:\n  id: someorg/not-cached-anywhere\n")
    with pytest.raises(GateSkipped):
        lora_targets.from_config(config_mod.load(tmp_path / "sftgate.yaml"))


def test_reads_no_weights() -> None:
    """The model is built on the meta device: no parameter holds real memory."""
    _, model = lora_targets.meta_model(MISTRAL)
    assert all(p.is_meta for p in model.parameters())


def test_module_import_is_light() -> None:
    code = "import sys, sftgate.gates.train.lora_targets; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_rule_catalogue() -> None:
    assert [r.code for r in lora_targets.RULES] == ["LORA001", "LORA002", "LORA003", "LORA004", "LORA005"]
