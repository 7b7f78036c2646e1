"""Gate ``merge-equivalence`` on a tiny Mistral: a real merge passes, tampered ones do not."""

from __future__ import annotations

import shutil

import pytest

from sftgate.gates.frame.core import InputError, Severity, Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.merge import merge_equivalence as me
from tests.conftest import FIXTURES
from tests.runners.work.tiny_merge import build_adapter, build_base, edit_weight, merge_by_hand

PROMPTS = ["hello world", '{"name": "Ada"}', "Extract the city: Paris is nice."]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(one_thread, tmp_path_factory):
    """base, adapter (random lora_B), zero adapter, their merges, and prompt ids."""
    from sftgate.gates.readers.tokenizer_io import load_tokenizer

    root = tmp_path_factory.mktemp("merge-eq")
    base = build_base(root / "base")
    adapter = build_adapter(root / "adapter", base)
    zero = build_adapter(root / "zero", base, zero=True)
    tok = load_tokenizer(base)
    return {
        "root": root, "base": base, "adapter": adapter, "zero": zero,
        "merged": merge_by_hand(base, adapter, root / "merged"),
        "merged_zero": merge_by_hand(base, zero, root / "merged-zero"),
        "ids": [tok(p).input_ids for p in PROMPTS],
    }


def copy(tiny, name, new):
    dst = tiny["root"] / new
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(tiny[name], dst)
    return dst


def run(tiny, merged, adapter=None, **kwargs):
    result = run_gate(me.GATE, Stage.MERGE, me.check, base=tiny["base"], adapter=adapter or tiny["adapter"],
                      merged=merged, prompt_ids=tiny["ids"], **kwargs)
    return result, sorted({f.rule for f in result.findings if f.is_error})


def test_real_merge_passes_within_fp32_tolerance(tiny):
    result, rules = run(tiny, tiny["merged"])
    assert (result.status, rules) == (Status.PASS, [])
    assert result.metrics["max_abs_diff"] <= 1e-4 < result.metrics["max_abs_diff_vs_base"]
    assert result.metrics["greedy_identical"] == len(PROMPTS)
    assert (result.metrics["dtype"], result.metrics["atol"]) == ("float32", 1e-4)


def test_fixed_cases_are_encoded_like_training(tiny):
    from sftgate.gates.tokenizer.rendering import PromptSpec

    result = run_gate(me.GATE, Stage.MERGE, me.check, base=tiny["base"], adapter=tiny["adapter"],
                      merged=tiny["merged"], cases=FIXTURES / "merge" / "cases.jsonl", spec=PromptSpec())
    assert result.status is Status.PASS, result.findings
    assert result.metrics["cases"] == 3 and result.metrics["greedy_identical"] == 3


def test_tampered_merge_is_a_mismatch(tiny):
    merged = copy(tiny, "merged", "tampered")
    edit_weight(merged, "layers.1.self_attn.o_proj", lambda w: w + 0.05)
    result, rules = run(tiny, merged)
    assert result.status is Status.FAIL and rules == ["merge_mismatch"]
    assert {f.location for f in result.findings} <= {f"prompt[{i}]" for i in range(len(PROMPTS))}


def test_zero_adapter_is_no_effect(tiny):
    result, rules = run(tiny, tiny["merged_zero"], adapter=tiny["zero"])
    assert rules == ["merge_no_effect"]
    assert result.findings[0].code == "MRG002"


def test_base_saved_as_merged_is_mismatch_and_no_effect(tiny):
    _, rules = run(tiny, tiny["base"])
    assert rules == ["merge_mismatch", "merge_no_effect"]


def test_nan_in_merged_weights(tiny):
    merged = copy(tiny, "merged", "nan-merged")
    name = edit_weight(merged, "layers.0.mlp.up_proj", lambda w: w.index_fill_(0, w.new_tensor([0], dtype=int), float("nan")))
    result, rules = run(tiny, merged)
    assert "nan_weights" in rules
    nan = next(f for f in result.findings if f.rule == "nan_weights")
    assert nan.location.endswith(name) and nan.evidence["values"] == 32


def test_inf_in_adapter(tiny):
    adapter = copy(tiny, "adapter", "inf-adapter")
    edit_weight(adapter, "lora_B", lambda w: w.fill_(float("inf")))
    _, rules = run(tiny, tiny["merged"], adapter=adapter)
    assert "nan_weights" in rules


def test_bf16_merge_passes_with_the_documented_bound(tiny):
    merged = merge_by_hand(tiny["base"], tiny["adapter"], tiny["root"] / "merged-bf16", dtype="bfloat16")
    result, rules = run(tiny, merged)
    assert rules == [], result.findings
    assert (result.metrics["dtype"], result.metrics["atol"], result.metrics["rtol"]) == ("bfloat16", 5e-2, 1.6e-2)
    assert result.metrics["max_abs_diff"] > 0  # bf16 rounding is visible, and tolerated


def test_explicit_tolerance_override(tiny):
    merged = copy(tiny, "merged", "tampered-small")
    edit_weight(merged, "layers.1.self_attn.o_proj", lambda w: w + 1e-3)
    assert run(tiny, merged)[1] == ["merge_mismatch"]
    assert run(tiny, merged, atol=1e-2)[1] == []


TIES = [
    # (merged, reference, logits row predicting the divergent token, expected (k, tie), reason)
    ([1, 2, 3], [1, 2, 4], [0.0, 0.0, 0.0, 1.0, 1.00001], (2, True), "top-2 within 1e-4: rounding may flip it"),
    ([1, 2, 3], [1, 2, 4], [0.0, 0.0, 0.0, 1.0, 3.0], (2, False), "a clear winner: a real mismatch"),
    ([1, 2, 3, 9], [1, 2, 3], [0.0, 0.0, 0.0, 1.0, 3.0], (3, False), "one output is longer (EOS not produced)"),
]


@pytest.mark.parametrize(("out", "ref", "row", "expected", "reason"), TIES, ids=[t[4] for t in TIES])
def test_divergence_near_tie(out, ref, row, expected, reason):
    import torch

    logits = torch.zeros(len(ref), len(row))
    logits[expected[0] - 1] = torch.tensor(row)  # the row that predicts the first differing token
    k, _, tie = me.divergence(out, ref, logits, 1e-4, 0.0)
    assert (k, tie) == expected, reason


def test_no_inputs_is_a_skip_not_a_pass(tiny):
    result = run_gate(me.GATE, Stage.MERGE, me.check, base=tiny["base"], adapter=tiny["adapter"],
                      merged=tiny["merged"], prompt_ids=[])
    assert result.status is Status.SKIP and result.blocks


@pytest.mark.parametrize("which", ["base", "adapter", "merged"])
def test_missing_folder_is_input_error(tiny, which, tmp_path):
    kwargs = {"base": tiny["base"], "adapter": tiny["adapter"], "merged": tiny["merged"], which: tmp_path / "nope"}
    with pytest.raises(InputError):
        list(me.check(prompt_ids=tiny["ids"], **kwargs))


def test_corrupted_merged_weights_are_input_error(tiny):
    merged = copy(tiny, "merged", "truncated")
    data = (merged / "model.safetensors").read_bytes()
    (merged / "model.safetensors").write_bytes(data[: len(data) // 2])
    result = run(tiny, merged)[0]
    assert (result.status, result.error_exit_code) == (Status.ERROR, 2)


def test_adapter_for_another_base_is_input_error(tiny):
    other = build_base(tiny["root"] / "other-base", seed=3)
    import json

    cfg = json.loads((other / "config.json").read_text())
    cfg.update(hidden_size=16, intermediate_size=32)
    shutil.rmtree(other)
    from transformers import MistralConfig, MistralForCausalLM

    MistralForCausalLM(MistralConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "transformers_version")})).save_pretrained(other)
    result = run_gate(me.GATE, Stage.MERGE, me.check, base=other, adapter=tiny["adapter"], merged=tiny["merged"],
                      prompt_ids=tiny["ids"])
    assert (result.status, result.error_exit_code) == (Status.ERROR, 2)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [("float32", (1e-4, 0.0)), ("bfloat16", (5e-2, 1.6e-2)), ("torch.float16", (1e-2, 1e-3)), ("int8", (1e-4, 0.0))],
)
def test_tolerance_table(dtype, expected):
    assert me.tolerance(dtype) == expected


def test_rules_have_stable_codes():
    assert [(r.code, r.name, r.severity) for r in me.RULES] == [
        ("MRG001", "merge_mismatch", Severity.ERROR),
        ("MRG002", "merge_no_effect", Severity.ERROR),
        ("MRG003", "nan_weights", Severity.ERROR),
    ]
