"""Gate adapter-completeness: a real PEFT adapter passes; each way a sharded save breaks it fails."""

from __future__ import annotations

import pytest

from fixtures.adapters import BREAKS, broken_adapter, save_adapter
from sftgate.gates.adapter import completeness
from sftgate.gates.frame.core import Stage, Status
from sftgate.gates.frame.execute import run_gate

# break -> the problem the finding names (None: the file itself)
PROBLEMS = {
    "no_tensors": None,
    "no_weights": None,
    "empty_tensors": "empty_tensors",
    "missing_lora_b": "half_modules",
    "missing_layer_module": "missing_modules",
    "wrong_rank": "rank_mismatch",
}


@pytest.fixture(scope="module")
def clean(sftgate_tiny_model, tmp_path_factory):
    return save_adapter(tmp_path_factory.mktemp("adapter") / "clean", sftgate_tiny_model)


def run(folder, **kwargs):
    return run_gate(completeness.GATE, Stage.ADAPTER, completeness.check, adapter_dir=folder, **kwargs)


@pytest.mark.parametrize("with_base", [False, True])
def test_a_saved_peft_adapter_is_complete(clean, sftgate_tiny_model, with_base):
    result = run(clean, base_dir=sftgate_tiny_model if with_base else None)
    assert (result.status, result.findings) == (Status.PASS, [])
    assert result.metrics["lora_modules"] == 4


@pytest.mark.parametrize("with_base", [False, True])
@pytest.mark.parametrize("how", BREAKS)
def test_each_break_is_adapter_incomplete(clean, sftgate_tiny_model, tmp_path, how, with_base):
    result = run(broken_adapter(clean, tmp_path / how, how), base_dir=sftgate_tiny_model if with_base else None)
    assert result.status is Status.FAIL
    assert {f.rule for f in result.findings} == {"adapter_incomplete"}
    assert [f.evidence.get("problem") for f in result.findings] == [PROBLEMS[how]]


def test_shapes_are_checked_against_the_base(clean, tmp_path):
    shapes = {f"model.layers.{i}.self_attn.{m}": (99, 64) for i in range(2) for m in ("q_proj", "v_proj")}
    result = run(clean, base_shapes=shapes)
    assert [f.evidence["problem"] for f in result.findings] == ["shape_mismatch"]


def test_a_folder_without_adapter_config_is_an_input_error(tmp_path):
    result = run(tmp_path)
    assert (result.status, result.error_exit_code) == (Status.ERROR, 2)


def test_release_checks_an_adapter_folder(cli, clean, tmp_path):
    folder = broken_adapter(clean, tmp_path / "zero3", "no_tensors")
    result = cli("release", str(folder), "--allow-unpinned", "--format", "json")
    assert result.statuses()["adapter-completeness"] == "fail" and "adapter_incomplete" in result.rules()
    assert result.code == 1


def test_rule_code():
    assert [(r.code, r.name) for r in completeness.RULES] == [("ADP001", "adapter_incomplete")]
