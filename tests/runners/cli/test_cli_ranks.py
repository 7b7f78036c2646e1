"""Under torchrun / accelerate launch only rank 0 of `sftgate run` / `sftgate train` prints its report and
writes --junit-xml / --report-json; the other ranks give the same exit code and write nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sftgate.gates.frame.core import GateResult, Stage, Status
from sftgate.gates.frame.report import Report
from sftgate.runners.cli.main import main


@pytest.mark.parametrize("command", ["train", "run"])
@pytest.mark.parametrize("rank", ["0", "1"])
def test_only_rank_0_reports(command: str, rank: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sftgate.runners.pipeline import run as pipeline_run

    failed = Report(command=command, gates=[GateResult(gate="sft", stage=Stage.TRAIN, status=Status.FAIL, seconds=0.0)])
    monkeypatch.setattr(pipeline_run, "run_pipeline", lambda *a, **k: failed)
    monkeypatch.setenv("RANK", rank)
    junit = tmp_path / "junit.xml"
    out = io.StringIO()
    code = main([command, "sftgate.yaml", "--junit-xml", str(junit), "--format", "json"], stdout=out,
                stderr=io.StringIO(), env={})
    assert code == 1
    assert junit.exists() is (rank == "0")
    assert bool(out.getvalue().strip()) is (rank == "0")
