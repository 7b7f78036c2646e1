"""The LoRA runner on a tiny model in a few steps: LoRA weights change, base weights do not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.runner import tiny_project
from sftgate.gates.frame.core import InputError
from sftgate.gates.tokenizer.rendering import IGNORE_INDEX, PromptSpec, encode_example
from sftgate.runners.work import sft, sft_data, sft_model, sft_record, sft_settings


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    return tiny_project(tmp_path_factory.mktemp("sft"))


@pytest.fixture(scope="module")
def trained(project, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sft-out") / "adapter"
    lines: list[str] = []
    settings = sft_settings.TrainSettings(max_steps=3, lr=5e-2, batch_size=4, lora_r=4, lora_alpha=8,
                                 target_modules=["q_proj", "v_proj"], logging_steps=1, max_seq_len=160)
    result = sft.train(project.model, project.train, out, settings=settings, spec=PromptSpec(system="x"),
                       base_id="my-org/base", cache_dir=out.parent / "cache", say=lines.append)
    return out, result, lines


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_lora_weights_changed_base_weights_did_not(project, trained) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out, result, _ = trained
    base_before = _tensors(project.model / "model.safetensors")
    adapter = _tensors(out / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: it was trained
    # the base on disk is untouched, and the base layers inside base + adapter equal it
    assert all(torch.equal(v, _tensors(project.model / "model.safetensors")[k]) for k, v in base_before.items())
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(project.model)), str(out))
    for name, param in model.named_parameters():
        if "lora_" in name:
            continue
        key = name.replace("base_model.model.", "").replace(".base_layer", "")
        assert torch.equal(param, base_before[key]), name
    assert result.trainable_params < result.total_params


def test_adapter_folder_is_the_artifact(trained) -> None:
    out, result, _ = trained
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
            "sftgate-train.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]  # no temp folder left
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "my-org/base"
    assert result.steps == 3 and result.tokens > 0 and result.tokens_per_second > 0


def test_loss_and_progress_logged(trained) -> None:
    out, result, lines = trained
    assert [p["step"] for p in result.losses] == [1, 2, 3]
    assert sft_record.read_losses(out) == result.losses
    assert any("smoke test" in line for line in lines)  # the PEFT smoke test ran before training
    assert any("step 3/3" in line for line in lines)


@pytest.mark.parametrize(("collator", "pad_equals_eos", "eos_trained", "reason"), [
    ("completion_only", False, True, "the default: EOS is trained"),
    ("completion_only", True, True, "pad == eos but the runner pads with another id"),
    ("mask_pad", True, False, "the classic bug: pad == eos and pad labels masked"),
])
def test_collator_and_pad(tmp_path: Path, collator: str, pad_equals_eos: bool, eos_trained: bool, reason: str) -> None:
    from sftgate.gates.readers.tokenizer_io import load_tokenizer
    from sftgate.runners.demo.tiny_tokenizer import build_tiny_tokenizer

    tok = load_tokenizer(build_tiny_tokenizer(tmp_path / "tok", template="mistral", pad_equals_eos=pad_equals_eos))
    pad = sft_data.choose_pad_id(tok, collator)
    assert (pad == tok.eos_token_id) is (collator == "mask_pad" and pad_equals_eos), reason
    example = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "{}"}]}
    enc = encode_example(tok, example, PromptSpec())
    row = {"input_ids": enc.input_ids, "labels": enc.labels, "truncated": False}
    batch = sft_data.Collator(pad, mask_pad_labels=collator == "mask_pad")([row, {**row, "input_ids": enc.input_ids[:3],
                                                                           "labels": enc.labels[:3]}])
    last = len(enc.input_ids) - 1
    assert enc.input_ids[last] == tok.eos_token_id
    assert (batch["labels"][0, last].item() != IGNORE_INDEX) is eos_trained, reason
    assert batch["labels"][0, 0].item() == IGNORE_INDEX  # the prompt is never trained
    assert batch["attention_mask"][1].tolist()[3:] == [0] * (len(enc.input_ids) - 3)


def test_smoke_test_fails_fast() -> None:
    class Broken:
        training = False

        def parameters(self):
            import torch

            yield torch.zeros(1)

        def eval(self):
            return self

        def train(self, mode=True):
            return self

        def generate(self, **kwargs):
            raise AttributeError("'MyModel' object has no attribute 'prepare_inputs_for_generation'")

    with pytest.raises(sft_model.SmokeTestFailed):
        sft_model.smoke_generate(Broken(), None, [1, 2, 3], pad_id=0)


@pytest.mark.parametrize(("what", "reason"), [("model", "missing base folder"), ("data", "missing training file")])
def test_bad_input(project, tmp_path: Path, what: str, reason: str) -> None:
    model = tmp_path / "nope" if what == "model" else project.model
    data = tmp_path / "nope.jsonl" if what == "data" else project.train
    with pytest.raises(InputError):
        sft.train(model, data, tmp_path / "out", settings=sft_settings.TrainSettings(max_steps=1))
    assert not (tmp_path / "out").exists()


def test_reads_parquet_and_save_to_disk(project, tmp_path: Path) -> None:
    import datasets

    rows = [json.loads(line) for line in project.train.read_text().splitlines()]
    ds = datasets.Dataset.from_list(rows)
    ds.to_parquet(str(tmp_path / "train.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    for path in (tmp_path / "train.parquet", tmp_path / "saved", project.train):
        loaded = sft_data.load_train_dataset(path, cache_dir=tmp_path / "cache")
        assert len(loaded) == len(rows)
    with pytest.raises(InputError):
        sft_data.load_train_dataset(tmp_path)  # a folder that is not a save_to_disk folder


def test_settings_from_config(project) -> None:
    from sftgate.gates.readers import config as config_mod

    s = sft_settings.TrainSettings.from_config(config_mod.load(project.config))
    assert (s.max_steps, s.batch_size, s.lora_r, s.target_modules, s.max_seq_len) == (3, 4, 4, ["q_proj", "v_proj"], 160)
    assert s.lora_dict()["target_modules"] == ["q_proj", "v_proj"]
    assert sft_settings.TrainSettings().lora_dict()["target_modules"] == "all-linear"
