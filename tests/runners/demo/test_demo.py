"""`sftgate demo`: the --break cases stop at their gate before training; the full demo learns (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

BREAKS = [
    # (case, owning gate, stage, rule, reason)
    ("model-id", "model-id", "config", "dash_separated_id", "mistralai-Mistral-7B-Instruct-v0.3 in the config"),
    ("leak", "split-isolation", "data", "eval_leak_exact", "eval rows copied into train"),
    ("eos", "eos", "tokenizer", "eos_masked", "pad == eos with train.collator: mask_pad"),
    ("template", "prompt-alignment", "tokenizer", "template_mismatch", "serving renders with another template"),
]


@pytest.mark.parametrize(("case", "gate", "stage", "rule", "reason"), BREAKS, ids=[b[0] for b in BREAKS])
def test_break_stops_at_its_gate_before_training(cli, tmp_path: Path, case: str, gate: str, stage: str, rule: str,
                                                 reason: str) -> None:
    result = cli("demo", "--break", case, "--out", str(tmp_path), "--format", "json")
    assert result.code == 1, reason
    report = result.report
    failed = [g for g in report["gates"] if g["status"] != "pass"]
    assert [(g["gate"], g["stage"]) for g in failed] == [(gate, stage)], reason
    assert rule in [f["rule"] for f in failed[0]["findings"]], reason
    assert {g["stage"] for g in report["gates"]} <= {"config", "data", "tokenizer"}  # nothing trained
    assert not (tmp_path / "run" / "adapter").exists()
    assert not (tmp_path / "base").exists()  # not even the base-training step


def test_break_rejects_unknown_case(cli, tmp_path: Path) -> None:
    result = cli("demo", "--break", "everything", "--out", str(tmp_path))
    assert result.code == 2


@pytest.mark.slow
def test_full_demo_learns_and_promotes(cli, tmp_path: Path) -> None:
    """The README's command: offline, CPU, a few minutes; the adapter and the merged model really learned."""
    result = cli("demo", "--out", str(tmp_path), "--format", "json")
    assert result.code == 0, result.err
    report = result.report
    assert [g["stage"] for g in report["gates"]][-1] == "release"
    metrics = {(g["gate"], g["stage"]): g.get("metrics", {}) for g in report["gates"]}
    for stage in ("adapter", "merge"):
        assert metrics[("strict-json", stage)]["pass_rate"] >= 0.95, stage
        assert metrics[("eos-behaviour", stage)]["eos_rate"] >= 0.95, stage
    assert "base-training step" in result.err  # the demo says it trained the base first
    run = tmp_path / "run"
    assert (run / "loss.png").stat().st_size > 1000
    assert (run / "demo-report.md").is_file() and (run / "release" / "sftgate-manifest.json").is_file()
    assert str(run / "loss.png") in result.err and str(run / "demo-report.md") in result.err
