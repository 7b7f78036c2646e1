"""Recognising a config's format from its keys; the key tables and the version they name."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.config.peer import detect, tables
from sftgate.gates.config.peer.fields import recognise
from sftgate.gates.readers import document
from tests.conftest import FIXTURES

PEER = FIXTURES / "peer_configs"


@pytest.mark.parametrize("tool", tables.TOOLS)
def test_every_fixture_config_of_a_tool_is_recognised_as_that_tool(tool):
    configs = sorted(p for p in (PEER / tool).iterdir() if p.suffix in (".yml", ".yaml"))
    assert configs
    for path in configs:
        detection = recognise(document.load(path))
        assert detection.format == tool, (path.name, detection.why)
        assert detection.why


# (data, format, reason)
CASES = [
    ({"model": {"name": "mistralai-Mistral-7B-Instruct"}}, "generic", "a job.json of one's own"),
    ({"epochs": 3}, "generic", "nothing to go on"),
    ({"model_name_or_path": "org/m", "learning_rate": 1e-4}, "generic", "keys every HF trainer shares"),
    ({"lora": {"r": 8}, "model": "org/m"}, "generic", "one mistral-finetune key is not enough"),
    ({"base_model": "org/m", "datasets": [], "sequence_len": 512}, "axolotl", "axolotl's own keys"),
    ({"model_name_or_path": "org/m", "stage": "sft", "finetuning_type": "lora", "cutoff_len": 512}, "llamafactory",
     "LLaMA-Factory's own keys"),
    ({"model_name_or_path": "org/m", "dataset_name": "d", "use_peft": True}, "trl", "TRL's own keys"),
    ({"model_id_or_path": "/m", "run_dir": "r", "data": {"instruct_data": "x"}}, "mistral-finetune", "mistral-finetune"),
    ({"model": "Qwen/Qwen3-0.6B", "train_dataset": "d.yaml", "cutoff_len": 2048, "flash_attn": "fa2"}, "generic",
     "LLaMA-Factory's v1 format is not the one the table describes"),
    ({"compute_environment": "LOCAL_MACHINE", "distributed_type": "MULTI_GPU"}, "not_a_job", "accelerate"),
    ({"zero_optimization": {"stage": 3}}, "not_a_job", "DeepSpeed"),
    ({"fsdp_sharding_strategy": "FULL_SHARD", "fsdp_offload_params": False}, "not_a_job", "FSDP"),
    ({"apiVersion": "batch/v1", "kind": "Job"}, "not_a_job", "Kubernetes"),
    ({"provider": "modal", "gpu": "h100"}, "not_a_job", "axolotl's cloud launcher"),
    ({"apiVersion": "v1", "kind": "Job", "model_name_or_path": "org/m"}, "generic", "a model field: a job after all"),
]


@pytest.mark.parametrize(("data", "fmt", "reason"), CASES, ids=[c[2] for c in CASES])
def test_detect(tmp_path, data, fmt, reason):
    path = tmp_path / "job.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    detection = recognise(document.load(path))
    assert detection.format == fmt, (reason, detection.why)


def test_sftgate_configs_and_forced_formats():
    assert detect.detect({"model": {"id": "x"}}, is_sftgate=True).format == "sftgate"
    forced = detect.detect({"anything": 1}, forced="axolotl")
    assert (forced.format, forced.forced, forced.is_peer) == ("axolotl", True, True)


@pytest.mark.parametrize("tool", tables.TOOLS)
def test_key_tables_name_their_source_and_version(tool):
    table = tables.table(tool)
    assert table.version and table.version != "?" and table.source
    assert len(table.keys) >= 15
    assert all(spec.types <= tables.JSON_TYPES for spec in table.keys.values())
    for spec in table.keys.values():  # every nested table a key points at exists
        for section in (spec.section, spec.items):
            assert section is None or section in table.sections, (tool, spec.name, section)


def test_tables_know_each_tools_documented_options():
    expected = {
        "axolotl": {"base_model", "lora_model_dir", "revision_of_model", "model_revision", "sequence_len",
                    "sample_packing", "train_on_inputs", "dataset_prepared_path", "special_tokens", "chat_template"},
        "llamafactory": {"model_name_or_path", "ref_model", "reward_model", "ref_model_adapters",
                         "export_hub_model_id", "cutoff_len", "template", "tokenized_path", "warmup_ratio"},
        "trl": {"model_name_or_path", "max_length", "packing", "completion_only_loss", "assistant_only_loss",
                "dataset_name", "use_peft", "lora_target_modules"},
        "mistral-finetune": {"model_id_or_path", "run_dir", "seq_len", "data", "lora", "optim"},
    }
    for tool, keys in expected.items():
        assert keys <= set(tables.table(tool).keys), (tool, keys - set(tables.table(tool).keys))
    assert "instruct_data" in tables.table("mistral-finetune").sections["DataArgs"]
    assert "field_messages" in tables.table("axolotl").sections["dataset"]


_value = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                      lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                      max_leaves=25)
_keys = st.sampled_from(["base_model", "datasets", "dataset", "dataset_name", "data", "model_id_or_path", "lora_r",
                         "adapter", "sequence_len", "cutoff_len", "template", "chat_template", "lora_target",
                         "lora_target_modules", "dataset_info", "test_datasets", "eval_dataset", "tokenized_path",
                         "dataset_prepared_path", "reward_model", "adapter_name_or_path", "x"]) | st.text(max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_keys, _value, max_size=8), st.sampled_from(tables.TOOLS))
def test_any_document_is_recognised_read_and_checked_without_error(tmp_path_factory, data, tool):
    from sftgate.gates.config.peer import gate
    from sftgate.gates.config.peer.job_reader import read_job

    doc = document.Document(tmp_path_factory.getbasetemp() / "job.yaml", data)
    assert detect.detect(data).format in (*tables.TOOLS, "generic", "not_a_job")
    job = read_job(doc, tool)
    found = list(gate.check(doc=doc, detection=detect.detect(data, forced=tool), table=tables.table(tool), job=job))
    assert all(f.code.startswith(("CFG", "DATA")) for f in found)
