"""The provenance gate: a complete manifest, the adapter on the config's base, unchanged data, the ledger."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sftgate.gates.frame.core import InputError, Severity, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.registry import get
from sftgate.gates.train import provenance, provenance_manifest
from tests.conftest import FIXTURES

DIR = FIXTURES / "provenance"
MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


def _run(**kwargs):
    return run_gate("provenance", get("provenance").stage, provenance.check, **kwargs)


CASES = [
    # (manifest, extra kwargs, expected rules, reason)
    ("provenance.json", {"adapter_dir": DIR / "adapter", "data_files": {"train": DIR / "train.jsonl"},
                         "ledger": DIR / "submissions.jsonl"}, [], "complete, matching, in the ledger"),
    ("missing_provenance.json", {}, ["missing_provenance"] * 3, "train sha256, lora.r and the torch version missing"),
    ("provenance.json", {"adapter_dir": DIR / "adapter_base_mismatch"}, ["adapter_base_mismatch"],
     "adapter trained on the 1.5B, config names the 0.5B"),
    ("dataset_changed.json", {"data_files": {"train": DIR / "train.jsonl"}}, ["dataset_changed"],
     "the recorded sha256 is not the file's"),
    ("unresolved_revision.json", {}, ["unresolved_revision"], "a branch that was never resolved to a commit"),
    ("provenance.json", {"ledger": DIR / "not_in_ledger.jsonl"}, ["not_in_ledger"], "the ledger has another job"),
]


@pytest.mark.parametrize(("manifest", "extra", "rules", "reason"), CASES, ids=[c[3] for c in CASES])
def test_rules(manifest: str, extra: dict, rules: list[str], reason: str) -> None:
    result = _run(manifest=DIR / manifest, model_id=MODEL, **extra)
    assert [f.rule for f in result.findings] == rules, reason
    errors = [f for f in result.findings if f.severity is Severity.ERROR]
    assert result.status is (Status.FAIL if errors else Status.PASS), reason


def test_missing_fields_are_named() -> None:
    findings = list(provenance.check(manifest=DIR / "missing_provenance.json"))
    assert sorted(f.evidence["field"] for f in findings) == ["datasets.train.sha256", "lora.r", "versions.torch"]


def test_missing_manifest_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list(provenance.check(manifest=tmp_path / "provenance.json"))
    result = _run(manifest=tmp_path / "provenance.json")
    assert result.status is Status.ERROR and result.error_exit_code == 2


@pytest.mark.parametrize(("adapter_base", "model", "relation", "reason"), [
    ("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B", "same", "identical"),
    ("qwen/qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B", "same", "Hub IDs are case-insensitive"),
    ("Qwen/Qwen2.5-1.5B", "Qwen/Qwen2.5-0.5B", "different", "another size"),
    ("/nonexistent/base", "/nonexistent/other", "different", "two local paths"),
    ("/nonexistent/base", "Qwen/Qwen2.5-0.5B", "unknown", "a local folder against a Hub ID"),
    (None, "Qwen/Qwen2.5-0.5B", "unknown", "no base recorded"),
])
def test_base_relation(adapter_base: str | None, model: str, relation: str, reason: str) -> None:
    assert provenance.base_relation(adapter_base, model) == relation, reason


def test_relative_local_paths_resolve_from_the_config(tmp_path: Path) -> None:
    (tmp_path / "models" / "base").mkdir(parents=True)
    assert provenance.base_relation(str((tmp_path / "models" / "base").resolve()), "./models/base", tmp_path) == "same"


def test_hf_cache_snapshot_matches_its_hub_id(tmp_path: Path) -> None:
    snap = tmp_path / "models--Qwen--Qwen2.5-0.5B" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    assert provenance.base_relation(str(snap), "Qwen/Qwen2.5-0.5B") == "same"


def test_unknown_base_is_a_warning(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    shutil.copytree(DIR / "adapter", adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "/some/local/folder"
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    findings = list(provenance.adapter_base_findings(adapter, MODEL))
    assert [(f.rule, f.severity) for f in findings] == [("adapter_base_mismatch", Severity.WARNING)]


def test_build_manifest_is_complete(tmp_path: Path) -> None:
    from sftgate.gates.readers import config as config_mod

    (tmp_path / "data").mkdir()
    shutil.copy(DIR / "train.jsonl", tmp_path / "data" / "train.jsonl")
    (tmp_path / "sftgate.yaml").write_text(f"model:\n  id: {MODEL}\n  revision: {'b' * 40}\ndata:\n  train: data/train.jsonl\n")
    cfg = config_mod.load(tmp_path / "sftgate.yaml")
    manifest = provenance_manifest.build_manifest(
        cfg, job_id="sft-1", lora={"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"},
        train={"max_seq_len": 512, "seed": 3}, template_sha256="c" * 64, template_source="tokenizer")
    assert not list(provenance.check(manifest=manifest, data_files={"train": tmp_path / "data" / "train.jsonl"}))
    assert manifest["datasets"]["train"]["records"] == 2
    assert manifest["base_model"]["resolved_revision"] == "b" * 40


def test_local_base_gets_a_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    first = provenance_manifest.resolve_base("./m", None, tmp_path)
    assert first["resolved_revision"].startswith("local:")
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}     x")
    assert provenance_manifest.resolve_base("./m", None, tmp_path)["resolved_revision"] != first["resolved_revision"]


def test_rule_catalogue() -> None:
    assert [r.code for r in provenance.RULES] == [f"PROV00{i}" for i in range(1, 6)]
    assert len({r.name for r in provenance.RULES}) == len(provenance.RULES)
