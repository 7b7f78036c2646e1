"""run_gate leaves a gate that caps its own findings (max_per_rule) alone: no second cap over its inputs."""

from __future__ import annotations

from pathlib import Path

from sftgate.gates.data import dataset_schema
from sftgate.gates.frame.core import Stage
from sftgate.gates.frame.execute import run_gate


def test_each_file_keeps_its_findings_and_its_count(tmp_path: Path) -> None:
    train, eval_ = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    for path in (train, eval_):
        path.write_text("not json\n" * 150, encoding="utf-8")
    result = run_gate("dataset-schema", Stage.DATA, dataset_schema.check, train=train, eval=eval_)
    invalid = [f for f in result.findings if f.rule == "invalid_json_line"]
    listed = [f for f in invalid if "total" not in f.evidence]
    summaries = [f for f in invalid if "total" in f.evidence]
    assert {Path(f.location.rpartition(":")[0]).name for f in listed} == {"train.jsonl", "eval.jsonl"}
    assert sorted(f.evidence["total"] for f in summaries) == [150, 150]  # one per file, each its own count
