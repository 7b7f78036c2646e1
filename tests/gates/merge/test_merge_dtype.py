"""The merge-dtype gate: merged tensors keep the base's dtype and tensor set (LlamaFactory #7998, peft #906)."""

from __future__ import annotations

import pytest

from fixtures.embeddings import copy_with, embedding_folder
from sftgate.gates.frame.core import Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.registry import get
from sftgate.gates.merge import merge_dtype

VOCAB = 300


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge-dtype")
    return {
        "base": embedding_folder(root / "base", vocab_size=VOCAB, dtype="bfloat16"),
        "bf16": embedding_folder(root / "bf16", vocab_size=VOCAB, dtype="bfloat16", seed=1),
        "fp32": embedding_folder(root / "fp32", vocab_size=VOCAB, dtype="float32", seed=1),
        "tied-base": embedding_folder(root / "tied-base", vocab_size=VOCAB, dtype="bfloat16", tied=True),
        "tied-split": embedding_folder(root / "tied-split", vocab_size=VOCAB, dtype="bfloat16", tied=True, head="differs"),
        "root": root,
    }


def run(base, merged, **kwargs):
    result = run_gate("merge-dtype", get("merge-dtype").stage, merge_dtype.check, base=base, merged=merged, **kwargs)
    assert result.status is not Status.ERROR, result.reason
    return result


def test_a_merge_in_the_base_dtype_passes(folders):
    result = run(folders["base"], folders["bf16"])
    assert (result.status, result.findings) == (Status.PASS, [])
    assert result.metrics["size_ratio"] == 1.0 and result.metrics["merged_dtype"] == "bfloat16"


def test_an_fp32_merge_of_a_bf16_base_drifts(folders):
    result = run(folders["base"], folders["fp32"])
    assert result.status is Status.FAIL and [f.rule for f in result.findings] == ["merge_dtype_drift"]
    assert result.metrics["size_ratio"] == 2.0
    assert result.findings[0].suggestion == "--dtype bfloat16"


def test_a_dtype_asked_for_is_not_drift(folders):
    assert run(folders["base"], folders["fp32"], expected_dtype="float32").findings == []
    assert [f.rule for f in run(folders["base"], folders["bf16"], expected_dtype="float32").findings] == ["merge_dtype_drift"]


def test_a_config_dtype_that_is_not_the_weights(folders, tmp_path):
    merged = copy_with(folders["bf16"], tmp_path / "merged", "config.json", dtype="float32")
    (finding,) = run(folders["base"], merged).findings
    assert finding.rule == "merge_dtype_drift" and finding.location.endswith("config.json:dtype")


def test_added_tensors_change_the_size(folders):
    """A tied base merged with its head saved apart: one more tensor, and the tie broken."""
    result = run(folders["tied-base"], folders["tied-split"])
    assert sorted(f.rule for f in result.findings) == ["merge_dtype_drift", "tied_embeddings_broken"]
    drift = next(f for f in result.findings if f.rule == "merge_dtype_drift")
    assert drift.evidence["added"] == ["lm_head.weight"]
