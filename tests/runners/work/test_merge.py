"""The merge runner and `sftgate merge`: a real merge is proven, a tampered or empty one is caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sftgate.gates.frame.core import InputError, Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.merge import artifacts, merge_equivalence
from sftgate.gates.readers.tokenizer_io import load_tokenizer
from sftgate.runners.work import merge as merge_mod
from sftgate.runners.work.merge import merge_adapter
from tests.conftest import FIXTURES
from tests.runners.work.tiny_merge import build_adapter, build_base, edit_weight

CASES = FIXTURES / "merge" / "cases.jsonl"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(one_thread, tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    base = build_base(root / "base")
    adapter = build_adapter(root / "run" / "adapter", base)
    zero = build_adapter(root / "zero" / "adapter", base, zero=True)
    merged = merge_adapter(base, adapter, root / "run" / "merged")
    return {"root": root, "base": base, "adapter": adapter, "zero": zero, "merged": merged}


def equivalence(tiny, merged, adapter=None):
    from sftgate.gates.tokenizer.rendering import PromptSpec

    result = run_gate(merge_equivalence.GATE, Stage.MERGE, merge_equivalence.check, base=tiny["base"],
                      adapter=adapter or tiny["adapter"], merged=merged, cases=CASES, spec=PromptSpec())
    return result, sorted({f.rule for f in result.findings if f.is_error})


# --------------------------------------------------------------------------- merge_adapter


def test_merged_folder_is_complete_and_safe(tiny):
    merged = tiny["merged"]
    assert list(artifacts.check(model_dir=merged)) == []
    assert not list(merged.glob("*.bin"))
    assert sorted(p.name for p in merged.parent.iterdir()) == ["adapter", "merged"]  # no temp folder left


def test_generation_config_stops_on_the_end_of_turn_token(tiny):
    tok = load_tokenizer(tiny["merged"])
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    gen = json.loads((tiny["merged"] / "generation_config.json").read_text())
    assert eot in gen["eos_token_id"] and tok.eos_token_id in gen["eos_token_id"]
    assert gen["pad_token_id"] == tok.pad_token_id != tok.eos_token_id
    base_gen = json.loads((tiny["base"] / "generation_config.json").read_text())
    assert base_gen["eos_token_id"] == tok.eos_token_id  # the base alone would not stop at <|im_end|>


def test_chat_template_travels_with_the_merge(tiny):
    assert (tiny["merged"] / "chat_template.jinja").read_text() == (tiny["base"] / "chat_template.jinja").read_text()


def test_equivalence_passes_on_the_real_merge(tiny):
    result, rules = equivalence(tiny, tiny["merged"])
    assert (result.status, rules) == (Status.PASS, [])
    assert result.metrics["max_abs_diff"] <= 1e-4


def test_equivalence_fails_on_a_tampered_merge(tiny):
    tampered = tiny["root"] / "tampered"
    shutil.copytree(tiny["merged"], tampered)
    edit_weight(tampered, "layers.0.self_attn.q_proj", lambda w: w * 1.5)
    result, rules = equivalence(tiny, tampered)
    assert result.status is Status.FAIL and rules == ["merge_mismatch"]


def test_zero_adapter_merge_has_no_effect(tiny):
    merged = merge_adapter(tiny["base"], tiny["zero"], tiny["root"] / "zero" / "merged")
    _, rules = equivalence(tiny, merged, adapter=tiny["zero"])
    assert rules == ["merge_no_effect"]


def test_bf16_merge_passes_with_the_bf16_bound(tiny):
    merged = merge_adapter(tiny["base"], tiny["adapter"], tiny["root"] / "bf16", dtype="bfloat16")
    assert json.loads((merged / "config.json").read_text())["dtype"] == "bfloat16"
    result, rules = equivalence(tiny, merged)
    assert rules == [] and result.metrics["dtype"] == "bfloat16"


def test_quantized_base_is_refused(tiny):
    base = tiny["root"] / "quantized-base"
    shutil.copytree(tiny["base"], base)
    cfg = json.loads((base / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (base / "config.json").write_text(json.dumps(cfg))
    out = tiny["root"] / "never"
    with pytest.raises(InputError):
        merge_adapter(base, tiny["adapter"], out)
    assert not out.exists()


def truncated_base(t):
    base = t["root"] / "truncated-base"
    if not base.exists():
        shutil.copytree(t["base"], base)
        data = (base / "model.safetensors").read_bytes()
        (base / "model.safetensors").write_bytes(data[:-100])
    return base, t["adapter"]


BAD_INPUTS = [
    ("missing base", lambda t: (t["root"] / "nope", t["adapter"])),
    ("corrupted base safetensors", truncated_base),
    ("missing adapter", lambda t: (t["base"], t["root"] / "nope")),
    ("a model folder is not an adapter", lambda t: (t["base"], t["base"])),
]


@pytest.mark.parametrize(("reason", "pick"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_are_input_errors(tiny, reason, pick):
    base, adapter = pick(tiny)
    with pytest.raises(InputError):
        merge_adapter(base, adapter, tiny["root"] / "bad")
    assert not (tiny["root"] / "bad").exists(), reason


def test_adapter_for_another_base_is_refused(tiny):
    from transformers import MistralConfig, MistralForCausalLM

    other = tiny["root"] / "other-base"
    cfg = json.loads((tiny["base"] / "config.json").read_text())
    cfg.update(hidden_size=16, intermediate_size=32)
    keep = {k: v for k, v in cfg.items() if k not in ("architectures", "transformers_version", "dtype")}
    MistralForCausalLM(MistralConfig(**keep)).save_pretrained(other)
    with pytest.raises(InputError):
        merge_adapter(other, tiny["adapter"], tiny["root"] / "bad")


def test_failed_merge_leaves_the_previous_merge_intact(tiny, monkeypatch):
    out = tiny["root"] / "keep"
    shutil.copytree(tiny["merged"], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(merge_mod, "_write_generation_config", disk_full)
    with pytest.raises(OSError):
        merge_adapter(tiny["base"], tiny["adapter"], out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".keep")]


# --------------------------------------------------------------------------- sftgate merge


def write_config(folder: Path, tiny, *, adapter_run: Path, extra: str = "") -> Path:
    shutil.copy(CASES, folder / "cases.jsonl")
    text = f"""\
sftgate: 1
model:
  id: {tiny['base']}
data:
  cases: cases.jsonl
train:
  output_dir: {adapter_run}
{extra}"""
    path = folder / "sftgate.yaml"
    path.write_text(text)
    return path


def test_merge_command_passes_and_writes_the_merged_folder(cli, tiny, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny["adapter"], run_dir / "adapter")
    config = write_config(tmp_path, tiny, adapter_run=run_dir)
    result = cli("merge", str(config), "--format", "json")
    assert result.code == 0, result.err
    assert result.statuses() == {"merge-equivalence": "pass", "artifacts": "pass", "merge-dtype": "pass"}
    assert result.report["artifacts"]["merged"] == str(run_dir / "merged")
    assert (run_dir / "merged" / "model.safetensors").is_file()


def test_merge_command_fails_on_a_zero_adapter(cli, tiny, tmp_path):
    config = write_config(tmp_path, tiny, adapter_run=tiny["zero"].parent)
    result = cli("merge", str(config), "--out", str(tmp_path / "m"), "--format", "json")
    assert result.code == 1
    assert "merge_no_effect" in result.rules()


def test_merge_command_skip_is_reported(cli, tiny, tmp_path):
    config = write_config(tmp_path, tiny, adapter_run=tiny["adapter"].parent,
                          extra="gates:\n  skip: [merge-equivalence]\n")
    result = cli("merge", str(config), "--out", str(tmp_path / "m"), "--format", "json")
    assert result.code == 0
    assert result.statuses() == {"merge-equivalence": "skip", "artifacts": "pass", "merge-dtype": "pass"}


def test_merge_command_without_adapter_exits_2(cli, tiny, tmp_path):
    config = write_config(tmp_path, tiny, adapter_run=tmp_path / "no-run")
    result = cli("merge", str(config), "--format", "json")
    assert result.code == 2 and result.report["gates"] == []
