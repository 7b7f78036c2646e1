"""Key validation: unknown keys with a did-you-mean, wrong types, keys that need each other."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.config.peer import tables
from sftgate.gates.config.peer.keys import check_keys, did_you_mean, type_problem
from sftgate.gates.readers import document


def findings(tmp_path: Path, tool: str, data: dict, *, quoted: bool = False) -> list:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_style='"' if quoted else None))
    return list(check_keys(document.load(path), tables.table(tool)))


# (tool, unknown key, the suggestion)
TYPOS = [
    ("axolotl", "lora_taget_modules", "lora_target_modules"),
    ("axolotl", "sequence_length", "sequence_len"),
    ("axolotl", "cutoff_len", "sequence_len"),
    ("axolotl", "Base_Model", "base_model"),
    ("llamafactory", "lora_rnak", "lora_rank"),
    ("llamafactory", "max_seq_length", "cutoff_len"),
    ("llamafactory", "num_epochs", "num_train_epochs"),
    ("trl", "max_seq_length", "max_length"),
    ("trl", "torch_dtype", "dtype"),
    ("trl", "sequence_len", "max_length"),
    ("mistral-finetune", "seq_length", "seq_len"),
    ("mistral-finetune", "model_name_or_path", "model_id_or_path"),
]


@pytest.mark.parametrize(("tool", "key", "suggestion"), TYPOS, ids=[f"{t}-{k}" for t, k, _ in TYPOS])
def test_unknown_keys_are_named_with_their_suggestion(tmp_path, tool, key, suggestion):
    [finding] = [f for f in findings(tmp_path, tool, {key: 1}) if f.rule == "unknown_config_key"]
    assert (finding.code, finding.location.rsplit(":", 1)[1], finding.suggestion) == ("CFG001", key, suggestion)
    assert finding.severity.value == "error" and finding.line == 1


def test_nested_and_dataset_keys_are_checked(tmp_path):
    data = {"base_model": "org/m", "datasets": [{"path": "d.jsonl", "type": "alpaca", "feild": "x"}],
            "special_tokens": {"pad_tokn": "<pad>"}, "fsdp_config": {"fsdp_sharding_strategy": "FULL_SHARD"}}
    got = {(f.rule, f.location.rsplit(":", 1)[1], f.suggestion) for f in findings(tmp_path, "axolotl", data)}
    assert ("unknown_config_key", "datasets[0].feild", "field") in got
    assert ("unknown_config_key", "special_tokens.pad_tokn", "pad_token") in got
    assert not any("fsdp_config" in loc for _, loc, _ in got), "fsdp_config is passed on to accelerate: open"


def test_a_plugin_key_without_its_plugin_is_a_warning(tmp_path):
    base = {"base_model": "org/m", "liger_rope": True}
    [f] = findings(tmp_path, "axolotl", base)
    assert (f.rule, f.severity.value, f.evidence["plugin"]) == ("unknown_config_key", "warning", "liger")
    assert findings(tmp_path, "axolotl", {**base, "plugins": ["axolotl.integrations.liger.LigerPlugin"]}) == []


# (tool, data, location) of a wrong type
WRONG_TYPES = [
    ("axolotl", {"base_model": "m", "micro_batch_size": [2]}, "micro_batch_size"),
    ("axolotl", {"base_model": "m", "chat_template": "chatmll"}, "chat_template"),
    ("axolotl", {"base_model": "m", "warmup_steps": 0.1}, "warmup_steps"),
    ("axolotl", {"base_model": "m", "sequence_len": None}, "sequence_len"),
    ("llamafactory", {"model_name_or_path": "m", "learning_rate": "2e-4"}, "learning_rate"),  # quoted: a string
    ("llamafactory", {"model_name_or_path": "m", "finetuning_type": "qlora"}, "finetuning_type"),
    ("trl", {"model_name_or_path": "m", "dataset_name": "d", "max_length": [512]}, "max_length"),
    ("mistral-finetune", {"model_id_or_path": "m", "run_dir": "r", "data": {"instruct_data": 3}}, "data.instruct_data"),
]


@pytest.mark.parametrize(("tool", "data", "where"), WRONG_TYPES, ids=[f"{t}-{w}" for t, _, w in WRONG_TYPES])
def test_wrong_types(tmp_path, tool, data, where):
    got = [f for f in findings(tmp_path, tool, data, quoted=where == "learning_rate") if f.rule == "wrong_config_type"]
    assert [f.location.rsplit(":", 1)[1] for f in got] == [where]


# values each tool reads as it should: no finding
RIGHT_TYPES = [
    ("axolotl", {"base_model": "m", "learning_rate": "2e-4", "micro_batch_size": "2", "load_in_8bit": "true",
                 "lora_target_modules": "q_proj", "bf16": "auto", "chat_template": "tokenizer_default_fallback_chatml"}),
    ("llamafactory", {"model_name_or_path": "m", "learning_rate": 1, "lora_target": ["q_proj", "v_proj"],
                      "num_train_epochs": 3}),
    ("trl", {"model_name_or_path": "m", "dataset_name": "d", "learning_rate": "1e-4", "lora_target_modules": "all-linear",
             "report_to": "none"}),
]


@pytest.mark.parametrize(("tool", "data"), RIGHT_TYPES, ids=[t for t, _ in RIGHT_TYPES])
def test_what_the_tool_converts_is_no_finding(tmp_path, tool, data):
    assert findings(tmp_path, tool, data) == []


def test_secret_values_are_never_quoted(tmp_path):
    [f] = findings(tmp_path, "llamafactory", {"model_name_or_path": "m", "hf_hub_token": {"t": "hf_SECRETsecret"}})
    assert f.rule == "wrong_config_type" and "SECRET" not in f.message and "SECRET" not in str(f.evidence)


# (tool, data, rule, location)
CONSTRAINTS = [
    ("axolotl", {"base_model": "m", "adapter": "lora", "lora_alpha": 16}, "missing_config_key", "adapter"),
    ("axolotl", {"base_model": "m", "adapter": "qlora", "lora_r": 8, "lora_alpha": 16}, "missing_config_key", "adapter"),
    ("axolotl", {"base_model": "m", "load_in_8bit": True}, "missing_config_key", "load_in_8bit"),
    ("axolotl", {"base_model": "m", "sample_packing": True, "rl": "dpo"}, "conflicting_config_keys", "rl"),
    ("axolotl", {"sequence_len": 512}, "missing_config_key", "base_model"),
    ("llamafactory", {"model_name_or_path": "m", "do_train": True}, "missing_config_key", "do_train"),
    ("llamafactory", {"model_name_or_path": "m", "finetuning_type": "full", "adapter_name_or_path": "a"},
     "conflicting_config_keys", "adapter_name_or_path"),
    ("llamafactory", {"model_name_or_path": "m", "stage": "dpo", "train_on_prompt": True}, "conflicting_config_keys",
     "train_on_prompt"),
    ("trl", {"model_name_or_path": "m"}, "missing_config_key", "dataset_name"),
    ("mistral-finetune", {"model_id_or_path": "m", "run_dir": "r", "data": {"instruct_data": ""}},
     "missing_config_key", "data.instruct_data"),
]


@pytest.mark.parametrize(("tool", "data", "rule", "where"), CONSTRAINTS, ids=[f"{c[0]}-{c[3]}" for c in CONSTRAINTS])
def test_keys_that_need_each_other(tmp_path, tool, data, rule, where):
    got = [(f.rule, f.location.rsplit(":", 1)[1]) for f in findings(tmp_path, tool, data)
           if f.rule in ("missing_config_key", "conflicting_config_keys")]
    assert got == [(rule, where)]


def test_complete_configs_need_nothing_more(tmp_path):
    assert findings(tmp_path, "axolotl", {"base_model": "m", "adapter": "lora", "lora_r": 8, "lora_alpha": 16}) == []
    assert findings(tmp_path, "axolotl", {"base_model": "m", "adapter": "qlora", "lora_r": 8, "lora_alpha": 16,
                                          "load_in_4bit": True}) == []


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(tables.TOOLS), st.text(max_size=30), st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=10),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)))
def test_any_key_and_value_is_judged_without_error(tool, key, value):
    table = tables.table(tool)
    assert isinstance(did_you_mean(key, table, table.keys), list)
    spec = table.keys.get(key) or next(iter(table.keys.values()))
    assert type_problem(key, value, spec, tool) is None or isinstance(type_problem(key, value, spec, tool), str)
