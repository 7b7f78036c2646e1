"""`sftgate run`: stages in order, each behind its gates, one report, --until, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.runner import read_jsonl, tiny_config, tiny_project

STAGES = ["config", "data", "tokenizer", "train", "adapter", "merge", "release"]


def _stages(report: dict) -> list[str]:
    return list(dict.fromkeys(g["stage"] for g in report["gates"]))


def _gates(report: dict) -> list[tuple[str, str]]:
    return [(g["stage"], g["gate"]) for g in report["gates"]]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory):
    from tests.conftest import run_cli

    project = tiny_project(tmp_path_factory.mktemp("pipeline"))
    first = run_cli("run", str(project.config), "--format", "json")
    return project, first


def test_every_stage_runs_in_order_and_promotes(full_run) -> None:
    project, result = full_run
    assert result.code == 0, result.err
    report = result.report
    assert _stages(report) == STAGES
    assert _gates(report) == [
        ("config", "model-id"), ("data", "dataset-schema"), ("data", "split-isolation"),
        ("tokenizer", "prompt-alignment"), ("tokenizer", "eos"), ("tokenizer", "embeddings"),
        ("tokenizer", "model-config"),
        ("train", "lora-targets"), ("train", "sft"), ("train", "provenance"),
        ("adapter", "strict-json"), ("adapter", "eos-behaviour"),
        ("merge", "merge-equivalence"), ("merge", "artifacts"), ("merge", "merge-dtype"), ("merge", "strict-json"),
        ("merge", "eos-behaviour"),
        ("release", "release"),
    ]
    run = project.root / "run"
    release = run / "release"
    assert (release / "sftgate-manifest.json").is_file() and (release / "model.safetensors").is_file()
    for name in ("adapter/adapter_model.safetensors", "merged/model.safetensors", "outputs-adapter.jsonl",
                 "outputs-merged.jsonl", "provenance.json", "report.json", "report.md", "loss.png"):
        assert (run / name).exists(), name
    assert json.loads((run / "report.json").read_text())["passed"] is True


def test_release_manifest_verifies(cli, full_run) -> None:
    project, _ = full_run
    manifest = json.loads((project.root / "run" / "release" / "sftgate-manifest.json").read_text())
    assert manifest["provenance"]["job_id"] == manifest["job_id"]
    assert manifest["provenance"]["datasets"]["train"]["records"] == 24
    from sftgate.gates.release import release

    assert not [f for f in release.check(model_dir=project.root / "run" / "release") if f.is_error]


def test_provenance_and_ledger(full_run) -> None:
    project, _ = full_run
    prov = json.loads((project.root / "run" / "provenance.json").read_text())
    assert prov["lora"]["r"] == 4 and prov["train"]["max_seq_len"] == 160 and prov["train"]["seed"] == 0
    assert prov["template"]["sha256"] and prov["versions"]["torch"]
    entries = read_jsonl(project.root / "runs" / "submissions.jsonl")
    job = prov["job_id"]
    assert [e["event"] for e in entries if e["job_id"] == job] == ["start", "trained", "end"]
    adapter_cfg = json.loads((project.root / "run" / "adapter" / "adapter_config.json").read_text())
    assert Path(adapter_cfg["base_model_name_or_path"]) == project.model.resolve()


def test_rerun_resumes_and_a_changed_input_reruns_from_its_stage(cli, full_run) -> None:
    project, _ = full_run
    adapter = project.root / "run" / "adapter" / "adapter_model.safetensors"
    mtime = adapter.stat().st_mtime_ns
    again = cli("run", str(project.config), "--format", "json")
    assert again.code == 0
    assert all("resumed" in (g.get("reason") or "") for g in again.report["gates"])
    assert adapter.stat().st_mtime_ns == mtime  # not retrained
    # an eval setting changed: training is reused, the adapter stage and later run again
    project.config.write_text(project.config.read_text().replace("max_new_tokens: 6", "max_new_tokens: 5"))
    changed = cli("run", str(project.config), "--format", "json")
    assert changed.code == 0, changed.err
    resumed = {g["stage"] for g in changed.report["gates"] if "resumed" in (g.get("reason") or "")}
    assert resumed == {"config", "data", "tokenizer", "train"}
    assert adapter.stat().st_mtime_ns == mtime


def test_until_tokenizer_runs_preflight_only(cli, tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    result = cli("run", str(project.config), "--until", "tokenizer", "--format", "json")
    assert result.code == 0, result.err
    assert _stages(result.report) == ["config", "data", "tokenizer"]
    assert not (tmp_path / "run" / "adapter").exists()


@pytest.mark.parametrize(("config", "code", "stage", "rule", "reason"), [
    (tiny_config(min_pass_rate=1.0, steps=1), 1, "adapter", "pass_rate_below_min",
     "an untrained adapter fails strict-json: no merge, no release"),
    (tiny_config(extra="gates:\n  skip: []\n").replace("target_modules: [q_proj, v_proj]",
                                                      "target_modules: [query_key_value]"),
     1, "train", "unknown_target_module", "lora-targets stops the run before any weights load"),
    (tiny_config(model="./no-such-model"), 1, "config", "local_path_missing", "a missing model folder"),
    (tiny_config().replace("data/train.jsonl", "data/missing.jsonl"), 2, "data", None,
     "a config naming a dataset that does not exist"),
])
def test_a_blocking_gate_stops_the_run(cli, tmp_path: Path, config: str, code: int, stage: str, rule: str | None,
                                       reason: str) -> None:
    project = tiny_project(tmp_path, config=config)
    result = cli("run", str(project.config), "--format", "json")
    assert result.code == code, reason
    assert _stages(result.report)[-1] == stage, reason
    if rule is not None:
        assert rule in result.rules(), reason
    assert not (tmp_path / "run" / "release").exists(), reason  # nothing promoted
    if STAGES.index(stage) < STAGES.index("train"):
        assert not (tmp_path / "run" / "adapter").exists(), reason  # nothing trained


def test_required_gate_skipped_blocks(cli, tmp_path: Path) -> None:
    """No fixed cases: strict-json cannot run; a required skip is never a pass, nothing is promoted."""
    config = tiny_config().replace("  cases: data/cases.jsonl\n", "")
    project = tiny_project(tmp_path, config=config)
    result = cli("run", str(project.config), "--format", "json")
    assert result.code == 1
    assert result.statuses()["strict-json"] == "skip"
    assert _stages(result.report)[-1] == "adapter"
    assert not (tmp_path / "run" / "release").exists()


def test_invalid_config_exits_2(cli, tmp_path: Path) -> None:
    project = tiny_project(tmp_path, config=tiny_config(extra="trian:\n  steps: 3\n"))
    result = cli("run", str(project.config), "--format", "json")
    assert result.code == 2 and "trian" in result.err


def test_train_command_runs_one_stage(cli, tmp_path: Path) -> None:
    project = tiny_project(tmp_path, config=tiny_config(steps=1))
    result = cli("train", str(project.config), "--format", "json")
    assert result.code == 0, result.err
    assert _gates(result.report) == [("train", "lora-targets"), ("train", "sft"), ("train", "provenance")]
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()


def test_corrupted_base_weights_exit_2(cli, tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    (project.model / "model.safetensors").write_bytes(b"\x00garbage, not a safetensors file")
    result = cli("run", str(project.config), "--format", "json")
    assert result.code == 2
    # the embeddings gate reads the base's safetensors headers in preflight: it stops the run before training
    assert result.statuses()["embeddings"] == "error" and "sft" not in result.statuses()
    assert "Traceback" not in result.err
    assert not (tmp_path / "run" / "adapter").exists() and not (tmp_path / "run" / "release").exists()


def test_train_then_run_reuses_the_adapter(cli, tmp_path: Path) -> None:
    """`sftgate train` records its stage under the same key a full run computes: `run` does not retrain."""
    project = tiny_project(tmp_path, config=tiny_config(steps=1))
    assert cli("train", str(project.config)).code == 0
    adapter = tmp_path / "run" / "adapter" / "adapter_model.safetensors"
    mtime = adapter.stat().st_mtime_ns
    result = cli("run", str(project.config), "--until", "adapter", "--format", "json")
    assert result.code == 0, result.err
    sft = next(g for g in result.report["gates"] if g["gate"] == "sft")
    assert "resumed" in sft["reason"]
    assert adapter.stat().st_mtime_ns == mtime


# --------------------------------------------------------------------------- the job ledger


def test_ledger_append_and_read(tmp_path: Path) -> None:
    from sftgate.runners.pipeline import ledger

    path = ledger.default_ledger(tmp_path)
    job = ledger.new_job_id()
    assert job.startswith("sft-") and len(job.split("-")) == 4
    ledger.append(path, {"job_id": job, "event": "start"})
    ledger.append(path, {"job_id": "other", "event": "start"})
    with open(path, "ab") as handle:  # a torn last line (disk full, a kill): skipped by readers
        handle.write(b'{"job_id": "torn", "ev')
    assert [e["job_id"] for e in ledger.read(path)] == [job, "other"]
    assert ledger.find(path, job)[0]["event"] == "start" and "time" in ledger.find(path, job)[0]
    assert ledger.read(tmp_path / "missing.jsonl") == []


def test_ledger_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    import multiprocessing

    path = tmp_path / "submissions.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 50
    assert all(json.loads(line)["pad"] == "x" * 3000 for line in lines)  # every line whole


def _append_many(path: str, n: int) -> None:
    from sftgate.runners.pipeline import ledger

    for i in range(50):
        ledger.append(path, {"job_id": f"p{n}-{i}", "pad": "x" * 3000})
