"""`sftgate eval`: batched greedy generation on fixed cases, outputs written, strict-json + EOS gated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fixtures.runner import read_jsonl, tiny_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    return tiny_project(tmp_path_factory.mktemp("eval"))


def _adapter(model_dir: Path, out: Path) -> Path:
    """A LoRA adapter saved with peft for ``model_dir`` (random B so it changes something)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(model_dir)),
                           LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    for cfg in model.peft_config.values():
        cfg.base_model_name_or_path = str(model_dir.resolve())
    model.save_pretrained(str(out), save_embedding_layers=False)
    return out


def _args(project, *extra: str) -> list[str]:
    return ["eval", "--model", str(project.model), "--cases", str(project.cases), "--schema", str(project.schema),
            "--max-new-tokens", "4", *extra, "--format", "json"]


def test_untrained_model_fails_strict_json_and_writes_outputs(cli, project, tmp_path: Path) -> None:
    out = tmp_path / "outputs.jsonl"
    result = cli(*_args(project, "--out", str(out)))
    assert result.code == 1
    assert result.statuses() == {"strict-json": "fail", "eos-behaviour": "fail"}
    assert "pass_rate_below_min" in result.rules() and "eos_rate_below_min" in result.rules()
    rows = read_jsonl(out)
    assert len(rows) == 4 and {r["stop_reason"] for r in rows} <= {"eos", "length"}
    assert result.report["artifacts"]["outputs"] == str(out)
    # json-check re-runs on the written outputs with the same verdict
    again = cli("json-check", str(out), "--schema", str(project.schema), "--format", "json")
    assert again.code == 1


def test_thresholds_at_zero_pass(cli, project, tmp_path: Path) -> None:
    result = cli(*_args(project, "--out", str(tmp_path / "o.jsonl"), "--min-pass-rate", "0", "--min-eos-rate", "0"))
    assert result.code == 0, result.err
    assert result.statuses() == {"strict-json": "pass", "eos-behaviour": "pass"}


def test_adapter_on_its_base(cli, project, tmp_path: Path) -> None:
    adapter = _adapter(project.model, tmp_path / "adapter")
    result = cli(*_args(project, "--adapter", str(adapter), "--out", str(tmp_path / "o.jsonl"),
                        "--min-pass-rate", "0", "--min-eos-rate", "0"))
    assert result.code == 0, result.err
    assert result.statuses() == {"provenance": "pass", "strict-json": "pass", "eos-behaviour": "pass"}


def test_adapter_for_another_base(cli, project, tmp_path: Path) -> None:
    other = tmp_path / "other-base"
    shutil.copytree(project.model, other)
    adapter = _adapter(other, tmp_path / "adapter")
    result = cli(*_args(project, "--adapter", str(adapter), "--out", str(tmp_path / "o.jsonl")))
    assert result.code == 1
    assert result.rules() == ["adapter_base_mismatch"]
    assert not (tmp_path / "o.jsonl").exists()  # nothing generated on the wrong base


@pytest.mark.parametrize(("change", "reason"), [
    ({"--model": "missing-model"}, "a missing model folder"),
    ({"--cases": "missing.jsonl"}, "a missing cases file"),
    ({"--schema": "missing.json"}, "a missing schema"),
])
def test_bad_input_exits_2(cli, project, tmp_path: Path, change: dict, reason: str) -> None:
    argv = _args(project)
    for flag, value in change.items():
        argv[argv.index(flag) + 1] = str(tmp_path / value)
    result = cli(*argv)
    assert result.code == 2, reason
    assert "Traceback" not in result.err


def test_help_has_examples(cli) -> None:
    result = cli("eval", "--help")
    assert result.code == 0 and "sftgate eval --model" in result.out
