"""``sftgate check`` on each tool's job configs: the format, every model field, the planted fault where it is.

Table-driven per tool: each broken config under ``fixtures/peer_configs/<tool>/`` is named after
the rule it triggers; the test asserts the gate, rule and location (``FILE:key.path`` or
``DATA:LINE``, relative to the project) and, for the clean config, that every gate that runs passes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sftgate.gates.frame.preflight import run_preflight

# (tool, config, exit code, expected {(gate, rule, location, suggestion or None)})
CASES = [
    ("axolotl", "clean.yml", 0, set()),
    ("axolotl", "unknown_config_key.yml", 1, {
        ("peer-config", "unknown_config_key", "unknown_config_key.yml:lora_taget_modules", "lora_target_modules"),
        ("peer-config", "unknown_config_key", "unknown_config_key.yml:datasets[0].feild_messages", "field_messages"),
        ("peer-config", "unknown_config_key", "unknown_config_key.yml:max_seq_length", "sequence_len")}),
    ("axolotl", "missing_config_key.yml", 1, {("peer-config", "missing_config_key", "missing_config_key.yml:adapter", None)}),
    ("axolotl", "wrong_config_type.yml", 1, {
        ("peer-config", "wrong_config_type", "wrong_config_type.yml:micro_batch_size", None),
        ("peer-config", "wrong_config_type", "wrong_config_type.yml:chat_template", "chatml")}),
    ("axolotl", "dash_separated_id.yml", 1, {
        ("model-id", "dash_separated_id", "dash_separated_id.yml:base_model", "mistralai/Mistral-7B-Instruct-v0.3"),
        ("model-id", "dash_separated_id", "dash_separated_id.yml:lora_model_dir", "hugging-quants/my-adapter")}),
    ("axolotl", "dataset_missing.yml", 1, {
        ("peer-config", "dataset_missing", "dataset_missing.yml:datasets[0].path", None),
        ("peer-config", "not_checked_offline", "dataset_missing.yml:datasets[1].path", None)}),
    ("axolotl", "missing_field.yml", 1, {("dataset-schema", "missing_field", "data/missing_field.jsonl:3", None)}),
    ("axolotl", "role_order.yml", 1, {("dataset-schema", "role_order", "data/role_order.jsonl:2", "assistant")}),
    ("axolotl", "eval_leak_exact.yml", 1, {("split-isolation", "eval_leak_exact", "data/eval_leak_exact.jsonl:2", None)}),
    ("axolotl", "too_long.yml", 1, {("dataset-schema", "too_long", "data/alpaca_train.jsonl:1", None),
                                    ("eos", "eos_truncated", "data/alpaca_train.jsonl:1", None)}),
    ("axolotl", "unknown_target.yml", 1, {("lora-targets", "unknown_target_module", "unknown_target.yml:lora_target_modules",
                                           "v_proj, q_proj, o_proj")}),
    ("llamafactory", "clean.yaml", 0, set()),
    ("llamafactory", "comma_adapters.yaml", 0, {("peer-config", "not_checked_offline", "comma_adapters.yaml:template", None)}),
    ("llamafactory", "dash_separated_id.yaml", 1, {
        ("model-id", "dash_separated_id", "dash_separated_id.yaml:adapter_name_or_path", "mistral-community/my-lora"),
        ("model-id", "dash_separated_id", "dash_separated_id.yaml:ref_model", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")}),
    ("llamafactory", "local_path_missing.yaml", 1, {
        ("model-id", "local_path_missing", "local_path_missing.yaml:model_name_or_path", None),
        ("model-id", "local_path_missing", "local_path_missing.yaml:adapter_name_or_path", None)}),
    ("llamafactory", "unknown_config_key.yaml", 1, {
        ("peer-config", "unknown_config_key", "unknown_config_key.yaml:lora_rnak", "lora_rank"),
        ("peer-config", "unknown_config_key", "unknown_config_key.yaml:sequence_len", "cutoff_len"),
        ("peer-config", "unknown_config_key", "data/dataset_info.json:unknown_entry_key.colums", "columns")}),
    ("llamafactory", "wrong_config_type.yaml", 1, {
        ("peer-config", "wrong_config_type", "wrong_config_type.yaml:stage", None),
        ("peer-config", "wrong_config_type", "wrong_config_type.yaml:learning_rate", None)}),
    ("llamafactory", "missing_config_key.yaml", 1, {
        ("peer-config", "missing_config_key", "missing_config_key.yaml:do_train", None),
        ("peer-config", "conflicting_config_keys", "missing_config_key.yaml:adapter_name_or_path", None)}),
    ("llamafactory", "dataset_missing.yaml", 1, {
        ("peer-config", "dataset_missing", "dataset_missing.yaml:dataset", None),
        ("peer-config", "not_checked_offline", "dataset_missing.yaml:dataset", None)}),
    ("llamafactory", "missing_field.yaml", 1, {("dataset-schema", "missing_field", "data/missing_field.jsonl:2", None)}),
    ("llamafactory", "eval_leak_exact.yaml", 1, {("split-isolation", "eval_leak_exact", "data/eval_leak_exact.json:2", None)}),
    ("trl", "clean.yaml", 0, set()),
    ("trl", "unknown_config_key.yaml", 1, {
        ("peer-config", "unknown_config_key", "unknown_config_key.yaml:max_seq_length", "max_length"),
        ("peer-config", "unknown_config_key", "unknown_config_key.yaml:lora_dropuot", "lora_dropout")}),
    ("trl", "missing_config_key.yaml", 1, {("peer-config", "missing_config_key", "missing_config_key.yaml:dataset_name", None)}),
    ("trl", "empty_field.yaml", 1, {("dataset-schema", "empty_field", "data/empty_field.jsonl:2", None)}),
    ("trl", "eval_leak_exact.yaml", 1, {("split-isolation", "eval_leak_exact", "data/eval_leak_exact.jsonl:1", None)}),
    ("trl", "dash_separated_id.yaml", 1, {
        ("model-id", "dash_separated_id", "dash_separated_id.yaml:model_name_or_path", "Qwen/Qwen2.5-0.5B-Instruct"),
        ("peer-config", "not_checked_offline", "dash_separated_id.yaml:dataset_name", None)}),
    ("mistral-finetune", "clean.yaml", 0, set()),
    ("mistral-finetune", "dash_separated_id.yaml", 1, {
        ("model-id", "dash_separated_id", "dash_separated_id.yaml:model_id_or_path", "mistralai/Mistral-7B-v0.3")}),
    ("mistral-finetune", "last_turn_not_assistant.yaml", 1, {
        ("dataset-schema", "last_turn_not_assistant", "data/last_turn_not_assistant.jsonl:2", None)}),
    ("mistral-finetune", "unknown_config_key.yaml", 1, {
        ("peer-config", "unknown_config_key", "unknown_config_key.yaml:learning_rate", None),
        ("peer-config", "unknown_config_key", "unknown_config_key.yaml:lora.rnak", "rank")}),
    ("mistral-finetune", "missing_config_key.yaml", 1, {
        ("peer-config", "missing_config_key", "missing_config_key.yaml:model_id_or_path", None),
        ("peer-config", "missing_config_key", "missing_config_key.yaml:run_dir", None),
        ("peer-config", "missing_config_key", "missing_config_key.yaml:data.instruct_data", None)}),
]


def _findings(report, root: Path) -> set[tuple[str, str, str, str | None]]:
    prefix = f"{root}/"
    return {(g.gate, f.rule, f.location.replace(prefix, ""), f.suggestion) for g in report.gates for f in g.findings}


@pytest.mark.parametrize(("tool", "config", "code", "expected"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_each_planted_fault_is_found_where_it_is(projects, tool, config, code, expected):
    root = projects[tool]
    report = run_preflight(root / config)
    assert report.exit_code == code, [(g.gate, g.status.value, g.reason) for g in report.gates]
    found = _findings(report, root)
    assert expected <= found, sorted(found)
    peer = report.gates[0]
    assert (peer.gate, peer.metrics["format"]) == ("peer-config", tool), "the format is recognised, and said"
    assert peer.metrics["why"] and peer.metrics["key_table"]
    if not expected:
        assert not found, "a clean config: no finding"
        statuses = {g.gate: g.status.value for g in report.gates}
        assert {s for gate, s in statuses.items() if gate != "embeddings"} == {"pass"}, statuses
        assert statuses.get("embeddings") in (None, "skip"), "the tiny model has no weights to read"


# (tool, config, ids_checked, [(location, kind)]): every model field of each tool is found
MODEL_FIELDS = [
    ("axolotl", "dash_separated_id.yml", ["base_model", "tokenizer_config", "lora_model_dir", "hub_model_id"]),
    ("axolotl", "clean.yml", ["base_model", "tokenizer_config", "hub_model_id"]),
    ("llamafactory", "comma_adapters.yaml", ["model_name_or_path", "adapter_name_or_path", "adapter_name_or_path",
                                             "ref_model", "ref_model_adapters", "reward_model", "export_hub_model_id"]),
    ("trl", "dash_separated_id.yaml", ["model_name_or_path", "hub_model_id"]),
    ("mistral-finetune", "dash_separated_id.yaml", ["model_id_or_path"]),
]


@pytest.mark.parametrize(("tool", "config", "keys"), MODEL_FIELDS, ids=[f"{c[0]}-{c[1]}" for c in MODEL_FIELDS])
def test_every_model_field_is_found(projects, tool, config, keys):
    from sftgate.gates.config import model_id
    from sftgate.gates.config.peer.fields import peer_fields
    from sftgate.gates.readers import document

    doc = document.load(projects[tool] / config)
    refs = model_id.from_document(doc, fields=peer_fields(doc.data, tool))["ids"]
    assert [r.location.rsplit(":", 1)[1] for r in refs] == keys
    report = run_preflight(projects[tool] / config)
    [mid] = [g for g in report.gates if g.gate == "model-id"]
    assert mid.metrics["ids_checked"] == len(keys)


def test_revisions_pair_with_their_model(projects):
    from sftgate.gates.config.peer.fields import peer_fields
    from sftgate.gates.readers import document

    doc = document.load(projects["axolotl"] / "dash_separated_id.yml")
    [base] = [f for f in peer_fields(doc.data, "axolotl") if f.path == ("base_model",)]
    assert (base.revision, base.revision_path) == ("main", ("revision_of_model",))


def test_not_a_job_config_passes_with_a_note():
    from tests.conftest import FIXTURES

    for name in ("accelerate_config.yaml", "deepspeed_zero3.json", "skypilot_task.yaml"):
        report = run_preflight(FIXTURES / "peer_configs" / "not_a_job" / name)
        assert report.exit_code == 0, name
        assert [(g.gate, [f.rule for f in g.findings]) for g in report.gates] == [("peer-config", ["not_a_job_config"])]


def test_format_of_forces_the_format(projects, tmp_path):
    from sftgate.gates.frame.core import ConfigError

    config = tmp_path / "job.yaml"
    config.write_text("model_name_or_path: Qwen/Qwen2.5-0.5B\nlearning_rate: 1.0e-4\n")
    assert [g.gate for g in run_preflight(config).gates] == ["model-id"], "too few keys to tell: generic"
    forced = run_preflight(config, format_of="trl")
    assert forced.gates[0].metrics["format"] == "trl" and forced.gates[0].metrics["forced"] is True
    assert ("peer-config", "missing_config_key") in {(g.gate, f.rule) for g in forced.gates for f in g.findings}
    with pytest.raises(ConfigError):
        run_preflight(config, format_of="sftgate")  # read as an sftgate config: model.id is missing


def test_fail_fast_stops_at_the_first_failing_gate(projects):
    report = run_preflight(projects["axolotl"] / "missing_config_key.yml", fail_fast=True)
    assert [g.gate for g in report.gates] == ["peer-config"]


@pytest.mark.parametrize(("rows", "train_on_inputs", "rule"), [
    ("clean", False, None), ("prompt_trained", False, "prompt_trained"), ("prompt_trained", True, None),
    ("eos_masked", False, "eos_masked"),
], ids=["clean", "prompt trained", "prompt trained on purpose", "eos masked"])
def test_the_label_gate_reads_the_prepared_dataset(projects, tmp_path, rows, train_on_inputs, rule):
    """axolotl's dataset_prepared_path/<hash>/ (a save_to_disk folder) goes through the label gate."""
    from fixtures.tokenized import broken_rows, clean_rows, write_rows
    from sftgate.gates.readers.tokenizer_io import load_tokenizer

    root = projects["axolotl"]
    tok = load_tokenizer(root / "model")
    data = clean_rows(tok) if rows == "clean" else broken_rows(rows, tok)
    write_rows(data, tmp_path / "prepared" / "0a1b2c")
    config = tmp_path / "job.yml"
    config.write_text(f"base_model: {root / 'model'}\ndatasets:\n  - path: {root / 'data' / 'chat.jsonl'}\n"
                      f"    type: chat_template\n    field_messages: conversations\nsequence_len: 512\n"
                      f"dataset_prepared_path: prepared\ntrain_on_inputs: {str(train_on_inputs).lower()}\n")
    report = run_preflight(config)
    [labels] = [g for g in report.gates if g.gate == "labels"]
    errors = {f.rule for f in labels.findings if f.severity.value == "error"}
    assert errors == ({rule} if rule else set()), [(f.rule, f.message) for f in labels.findings]


def test_a_prepared_path_not_written_yet_is_a_skip_with_the_reason(projects, tmp_path):
    root = projects["axolotl"]
    config = tmp_path / "job.yml"
    config.write_text(f"base_model: {root / 'model'}\ndataset_prepared_path: last_run_prepared\n")
    [labels] = [g for g in run_preflight(config).gates if g.gate == "labels"]
    assert (labels.status.value, labels.required) == ("skip", False) and "dataset_prepared_path" in labels.reason
