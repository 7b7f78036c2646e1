"""The model-config gate: generation configs validated as save_pretrained does, and the context window."""

from __future__ import annotations

import json
import shutil

import pytest

from fixtures.embeddings import embedding_folder
from sftgate.gates.frame.core import Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.registry import get
from sftgate.gates.tokenizer import model_config
from sftgate.gates.tokenizer.generation_validity import generation_config_problems
from tests.conftest import FIXTURES

INVALID = FIXTURES / "model_config" / "invalid_generation_config.json"
CLEAN = FIXTURES / "model_config" / "clean_generation_config.json"


def run(**kwargs):
    result = run_gate("model-config", get("model-config").stage, model_config.check, **kwargs)
    assert result.status is not Status.ERROR, result.reason
    return result


def rules(result):
    return [f.rule for f in result.findings]


# --------------------------------------------------------------------------- invalid_generation_config


def saves_after_a_change(path, tmp_path) -> bool:
    """What the trainer and the merge do with the base's file: load it, change the stop ids, save it."""
    from transformers import GenerationConfig

    folder = tmp_path / path.stem
    folder.mkdir()
    shutil.copyfile(path, folder / "generation_config.json")
    config = GenerationConfig.from_pretrained(folder)
    config.eos_token_id = [2, 3]
    try:
        config.save_pretrained(tmp_path / f"{path.stem}-saved")
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("path", "expected"), [(INVALID, ["temperature", "top_p"]), (CLEAN, [])])
def test_the_verdict_is_what_save_pretrained_does(path, expected, tmp_path):
    """transformers #29988: do_sample false with temperature/top_p loads, then crashes the save."""
    result = run(generation_configs=[path])
    assert [f.evidence["attribute"] for f in result.findings] == expected
    assert set(rules(result)) <= {"invalid_generation_config"}
    assert saves_after_a_change(path, tmp_path) is (not expected)


def test_findings_point_at_the_key_and_its_line():
    findings = list(model_config.check(generation_configs=[INVALID]))
    assert [f.location for f in findings] == [f"{INVALID}:temperature", f"{INVALID}:top_p"]
    assert [f.line for f in findings] == [5, 6]
    assert all(f.suggestion and '"do_sample": true' in f.suggestion for f in findings)


@pytest.mark.parametrize(("config", "attribute"), [
    ({"early_stopping": "yes"}, "early_stopping"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"num_return_sequences": 3}, "num_return_sequences"),
    ({"num_beams": 1, "length_penalty": 2.0}, "length_penalty"),
])
def test_hard_errors_and_beam_flags(tmp_path, config, attribute):
    path = tmp_path / "generation_config.json"
    path.write_text(json.dumps(config))
    assert [p.attribute for p in generation_config_problems(path)] == [attribute]


def test_a_file_that_is_not_json_is_a_finding_with_its_line(tmp_path):
    path = tmp_path / "generation_config.json"
    path.write_text('{\n  "eos_token_id": 2,\n}\n')
    (finding,) = model_config.check(generation_configs=[path])
    assert finding.rule == "invalid_generation_config" and finding.line == 3


# --------------------------------------------------------------------------- beyond_context_window


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny tokenizer, a base with a 64-token window, and data with 3 of 10 examples beyond it."""
    from sftgate.runners.demo.tiny_tokenizer import build_tiny_tokenizer

    root = tmp_path_factory.mktemp("window")
    tok = build_tiny_tokenizer(root / "tok")
    short = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    long = {"messages": [{"role": "user", "content": "the quick brown fox " * 30},
                         {"role": "assistant", "content": "jumps"}]}
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [short] * 7 + [long] * 3))
    short_data = root / "short.jsonl"
    short_data.write_text(json.dumps(short) + "\n")
    folders = {
        "base": embedding_folder(root / "base", tokenizer_dir=tok, config={"max_position_embeddings": 64}),
        "rope": embedding_folder(root / "rope", tokenizer_dir=tok, config={
            "max_position_embeddings": 64,
            "rope_scaling": {"rope_type": "linear", "factor": 8.0, "rope_theta": 10000.0}}),
        "sliding": embedding_folder(root / "sliding", tokenizer_dir=tok, config={
            "max_position_embeddings": 1024, "sliding_window": 32}),
    }
    return {"tok": tok, "data": data, "short": short_data, **folders}


@pytest.mark.parametrize(("model", "max_seq_len", "data", "expected"), [
    ("base", None, "data", [("beyond_context_window", "error")]),      # 3 examples longer than the window
    ("base", 48, "data", []),                                          # truncation keeps them inside it
    ("base", 128, "data", [("beyond_context_window", "error")]),       # truncation at 128 does not
    ("base", 128, "short", [("beyond_context_window", "warning")]),    # a limit no example reaches today
    ("base", 128, None, [("beyond_context_window", "error")]),         # a limit, and nothing says it is not used
    ("base", 64, None, []),
    ("rope", 256, "data", []),                                         # linear RoPE x8: a 512-token window
    ("sliding", 256, "data", [("beyond_context_window", "warning")]),  # attention sees the last 32 only
    ("sliding", 24, "data", []),
])
def test_context_window(project, model, max_seq_len, data, expected):
    result = run(model_dir=project[model], tokenizer=project["tok"], data=project[data] if data else None,
                 max_seq_len=max_seq_len)
    assert [(f.rule, f.severity.value) for f in result.findings] == expected
    if data == "data":
        assert result.metrics["examples"] == 10 and result.metrics["max_tokens"] > 64


def test_beyond_the_window_names_the_long_examples(project):
    (finding,) = run(model_dir=project["base"], tokenizer=project["tok"], data=project["data"]).findings
    assert [s["line"] for s in finding.evidence["samples"]] == [8, 9, 10]
    assert finding.location == f"{project['data']}:8" and finding.suggestion == "train.max_seq_len: 64"


def test_check_runs_the_gate_from_the_config(cli, project, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(project["base"], base)
    shutil.copyfile(INVALID, base / "generation_config.json")
    config = tmp_path / "sftgate.yaml"
    config.write_text(f"sftgate: 1\nmodel:\n  id: ./base\ndata:\n  train: {project['data']}\ntrain:\n  max_seq_len: 48\n")
    result = cli("check", str(config), "--format", "json")
    assert result.code == 1 and result.statuses()["model-config"] == "fail"
    found = [f for g in result.report["gates"] if g["gate"] == "model-config" for f in g["findings"]]
    assert [f["rule"] for f in found] == ["invalid_generation_config"] * 2
