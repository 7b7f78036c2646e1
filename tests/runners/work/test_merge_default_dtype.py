"""The merge runs in the base's dtype by default: a bf16 base merges to bf16 and passes merge-equivalence
(LlamaFactory #7998: a bf16 run, an fp32 merge twice the size)."""

from __future__ import annotations

import json
import shutil

import pytest

from sftgate.gates.frame.core import InputError, Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.merge import merge_dtype, merge_equivalence
from sftgate.gates.readers.safetensors_rows import WeightFiles
from sftgate.runners.work.merge import base_dtype, merge_adapter
from tests.conftest import FIXTURES
from tests.runners.work.tiny_merge import build_adapter, build_base

CASES = FIXTURES / "merge" / "cases.jsonl"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bf16(one_thread, tmp_path_factory):
    root = tmp_path_factory.mktemp("merge-bf16")
    base = build_base(root / "base", dtype="bfloat16")
    adapter = build_adapter(root / "adapter", base)
    return {"root": root, "base": base, "adapter": adapter, "merged": merge_adapter(base, adapter, root / "merged")}


def test_the_base_dtype_is_read_from_its_config(bf16):
    assert base_dtype(bf16["base"]) == "bfloat16"


def test_a_bf16_base_merges_to_bf16(bf16):
    merged = bf16["merged"]
    assert json.loads((merged / "config.json").read_text())["dtype"] == "bfloat16"
    assert WeightFiles.open(merged).float_dtype() == "BF16"
    assert WeightFiles.open(merged).total_bytes == WeightFiles.open(bf16["base"]).total_bytes


def test_the_bf16_merge_passes_merge_equivalence_and_merge_dtype(bf16):
    from sftgate.gates.tokenizer.rendering import PromptSpec

    result = run_gate(merge_equivalence.GATE, Stage.MERGE, merge_equivalence.check, base=bf16["base"],
                      adapter=bf16["adapter"], merged=bf16["merged"], cases=CASES, spec=PromptSpec())
    assert result.status is Status.PASS and not [f for f in result.findings if f.is_error]
    assert result.metrics["dtype"] == "bfloat16"  # compared with the bf16 tolerances
    assert list(merge_dtype.check(base=bf16["base"], merged=bf16["merged"])) == []


def test_an_fp32_merge_of_the_bf16_base_is_caught(bf16):
    """What the old fp32 default did: asked for, it is no drift; unasked, it is."""
    merged = merge_adapter(bf16["base"], bf16["adapter"], bf16["root"] / "fp32", dtype="float32")
    assert list(merge_dtype.check(base=bf16["base"], merged=merged, expected_dtype="float32")) == []
    assert [f.rule for f in merge_dtype.check(base=bf16["base"], merged=merged)] == ["merge_dtype_drift"]


def test_a_base_generation_config_transformers_refuses_is_an_input_error(bf16):
    base = bf16["root"] / "base-bad-generation"
    shutil.copytree(bf16["base"], base)
    (base / "generation_config.json").write_text(
        (FIXTURES / "model_config" / "invalid_generation_config.json").read_text())
    out = bf16["root"] / "never"
    with pytest.raises(InputError):
        merge_adapter(base, bf16["adapter"], out)
    assert not out.exists()
