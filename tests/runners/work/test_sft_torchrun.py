"""`sftgate train` under `torchrun --nproc_per_node 2` (gloo on CPU) on the tiny project.

Both ranks train (a DDP step cannot finish without both: the report says 2 processes and every
step done); only rank 0 prints the report and writes the adapter, the report files, the loss
curve and the ledger; the gates run once in the report; and the adapter is the one a single
process trains on the same global batch (2 ranks x 4 = 8): its tensors within 1e-5 of it (float
sums in another order), the loss curve within 1e-4.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.runner import tiny_config, tiny_project

pytestmark = pytest.mark.slow

STEPS = 30
WEIGHT_TOLERANCE = 1e-5
LOSS_TOLERANCE = 1e-4


def config(batch_size: int) -> str:
    return tiny_config(steps=STEPS).replace("  batch_size: 4\n  seed: 0", f"  batch_size: {batch_size}\n  seed: 0")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="")
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("torchrun is not installed next to this Python")
    single = tiny_project(tmp_path_factory.mktemp("single"), config=config(8))
    ddp = tiny_project(tmp_path_factory.mktemp("ddp"), config=config(4))
    one = subprocess.run([sys.executable, "-m", "sftgate.runners.cli.main", "train", "sftgate.yaml", "--format",
                          "json", "--quiet"], cwd=single.root, env=_env(), capture_output=True, text=True, timeout=600)
    logs = ddp.root / "logs"
    two = subprocess.run([str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", "--log-dir",
                          str(logs), "--redirects", "3", "-m", "sftgate.runners.work.sft", "sftgate.yaml",
                          "--format", "json", "--quiet"],
                         cwd=ddp.root, env=_env(), capture_output=True, text=True, timeout=600)
    ranks = {int(p.parent.name): p.read_text() for p in logs.glob("*/attempt_0/*/stdout.log")}
    return {"single": single, "ddp": ddp, "one": one, "two": two, "ranks": ranks}


def test_both_ranks_train_and_only_rank_0_reports(runs):
    assert runs["one"].returncode == 0, runs["one"].stdout[-2000:]
    assert runs["two"].returncode == 0, runs["two"].stderr[-3000:]
    assert sorted(runs["ranks"]) == [0, 1]
    assert runs["ranks"][1].strip() == "", "rank 1 prints no report"
    report = json.loads(runs["ranks"][0])
    sft = next(g for g in report["gates"] if g["gate"] == "sft")
    assert (sft["status"], sft["metrics"]["processes"], sft["metrics"]["steps"]) == ("pass", 2, STEPS)


def test_the_gates_run_once_and_rank_0_writes_everything(runs):
    root: Path = runs["ddp"].root
    report = json.loads((root / "run" / "report.json").read_text())
    assert [g["gate"] for g in report["gates"]] == ["lora-targets", "sft", "provenance"]
    assert all(g["status"] == "pass" for g in report["gates"])
    for name in ("adapter/adapter_model.safetensors", "adapter/adapter_config.json", "loss.png", "report.md",
                 "provenance.json"):
        assert (root / "run" / name).is_file(), name
    ledger = [json.loads(line) for path in root.rglob("*.jsonl") if "logs" not in path.parts
              for line in path.read_text().splitlines() if line.strip() and '"event"' in line]
    assert sorted(entry["event"] for entry in ledger) == ["end", "start", "trained"]


def test_the_adapter_equals_the_single_process_one(runs):
    import numpy as np
    from safetensors.numpy import load_file

    one = load_file(runs["single"].root / "run" / "adapter" / "adapter_model.safetensors")
    two = load_file(runs["ddp"].root / "run" / "adapter" / "adapter_model.safetensors")
    assert sorted(one) == sorted(two)
    assert max(float(np.abs(one[k] - two[k]).max()) for k in one) <= WEIGHT_TOLERANCE
    trained = max(float(np.abs(one[k]).max()) for k in one if "lora_B" in k)
    assert trained > 100 * WEIGHT_TOLERANCE, "LoRA B moved away from zero: the comparison is not of untrained weights"
    curves = [json.loads((p.root / "run" / "report.json").read_text())["gates"][1]["metrics"]
              for p in (runs["single"], runs["ddp"])]
    for key in ("first_loss", "final_loss"):
        assert abs(curves[0][key] - curves[1][key]) <= LOSS_TOLERANCE, key
