"""Gate labels: one broken tokenized dataset per rule (built as trainers break them), clean ones, the readers."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import tokenized
from sftgate.gates.frame.core import InputError, Severity, Stage, Status
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached
from sftgate.gates.tokenizer import labels


def gate(folder, data, **kwargs):
    return run_gate("labels", Stage.TOKENIZER, labels.check, data=data, tokenizer=folder, **kwargs)


def rules_of(result):
    return sorted(f.rule for f in result.findings)


RULES = sorted(tokenized.BROKEN)


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_fires_on_its_broken_dataset(folders, tmp_path, rule):
    folder = folders.base("tiny")
    data = tokenized.write_rows(tokenized.broken_rows(rule, load_tokenizer_cached(folder)), tmp_path / f"{rule}.jsonl")
    result = gate(folder, data)
    assert result.status is Status.FAIL
    assert rules_of(result) == [rule]
    finding = result.findings[0]
    assert finding.evidence["rows"] >= 1 and finding.evidence["first_rows"]
    assert finding.location == f"{data}:{finding.evidence['first_rows'][0]}"
    assert finding.evidence["samples"][0]["tokens"], "the tokens around the problem are decoded"


@pytest.mark.parametrize("family", ["mistral_v3", "llama3"])
@pytest.mark.parametrize("rule", ["prompt_trained", "eos_masked", "eos_not_appended", "packing_leak", "completion_truncated"])
def test_rules_on_real_tokenizers(folders, tmp_path, family, rule):
    folder = folders.base(family)
    data = tokenized.write_rows(tokenized.broken_rows(rule, load_tokenizer_cached(folder)), tmp_path / "d.jsonl")
    assert rules_of(gate(folder, data)) == [rule]


@pytest.mark.parametrize("family", ["tiny", "mistral_v3", "llama3"])
@pytest.mark.parametrize("kind", ["messages", "prompt_completion", "packed_with_positions", "packed_with_segment_ids"])
def test_clean_datasets_pass(folders, tmp_path, family, kind):
    folder = folders.base(family)
    tok = load_tokenizer_cached(folder)
    rows = getattr(tokenized, kind)(tok) if kind.startswith("packed") else tokenized.clean_rows(tok, kind)
    result = gate(folder, tokenized.write_rows(rows, tmp_path / "clean.jsonl"))
    assert (result.status, result.findings) == (Status.PASS, [])
    assert result.metrics["roles_checked"] is True


def test_eos_masked_on_an_earlier_assistant_turn_only(folders, tmp_path):
    folder = folders.base("tiny")
    rows = tokenized.eos_masked_first_turn(load_tokenizer_cached(folder))
    result = gate(folder, tokenized.write_rows(rows, tmp_path / "d.jsonl"))
    assert rules_of(result) == ["eos_masked"]
    assert result.findings[0].code == "EOS003"  # the eos gate's rule, not a new one


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", "folder"])
def test_every_format_reads_the_same(folders, tmp_path, suffix):
    folder = folders.base("tiny")
    rows = tokenized.broken_rows("pad_trained", load_tokenizer_cached(folder))
    data = tokenized.write_rows(rows, tmp_path / f"d{suffix if suffix != 'folder' else ''}")
    result = gate(folder, data)
    assert rules_of(result) == ["pad_trained"] and result.findings[0].evidence["rows"] == len(rows)


def test_dataset_dict_folder_uses_its_train_split_or_the_one_named(folders, tmp_path):
    import datasets

    folder = folders.base("tiny")
    tok = load_tokenizer_cached(folder)
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(tokenized.clean_rows(tok)),
                               "validation": datasets.Dataset.from_list(tokenized.prompt_trained(tok))})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert gate(folder, tmp_path / "dd").status is Status.PASS
    assert rules_of(gate(folder, tmp_path / "dd", split="validation")) == ["prompt_trained"]


def test_labels_are_built_from_the_masks_when_absent(folders, tmp_path):
    """TRL's names: assistant_masks / completion_mask, folded into labels as TRL folds them."""
    folder = folders.base("tiny")
    tok = load_tokenizer_cached(folder)
    rows = [{"input_ids": r["input_ids"], "assistant_masks": [int(x != -100) for x in r["labels"]]}
            for r in tokenized.clean_rows(tok)]
    result = gate(folder, tokenized.write_rows(rows, tmp_path / "masks.jsonl"))
    assert result.status is Status.PASS and result.metrics["labels_source"] == "assistant_masks"
    all_ones = [{**r, "assistant_masks": [1] * len(r["input_ids"])} for r in rows]  # no {% generation %}
    assert rules_of(gate(folder, tokenized.write_rows(all_ones, tmp_path / "ones.jsonl"))) == ["prompt_trained"]


def test_prompt_trained_by_completion_mask_on_plain_text(folders, tmp_path):
    """Plain prompt/completion text has no turn markers: TRL's completion_mask says where the prompt is."""
    folder = folders.base("tiny")
    tok = load_tokenizer_cached(folder)
    rows = [{"input_ids": r["input_ids"], "labels": r["input_ids"],
             "completion_mask": [int(x != -100) for x in r["labels"]]} for r in tokenized.clean_rows(tok, "prompt_completion")]
    assert rules_of(gate(folder, tokenized.write_rows(rows, tmp_path / "d.jsonl"))) == ["prompt_trained"]


def test_prompt_training_can_be_intended(folders, tmp_path):
    folder = folders.base("tiny")
    data = tokenized.write_rows(tokenized.prompt_trained(load_tokenizer_cached(folder)), tmp_path / "d.jsonl")
    result = gate(folder, data, allow_prompt_training=True)
    assert result.status is Status.PASS and [f.severity for f in result.findings] == [Severity.WARNING]


def test_max_seq_len_decides_truncation(folders, tmp_path):
    folder = folders.base("tiny")
    rows = tokenized.broken_rows("completion_truncated", load_tokenizer_cached(folder))
    data = tokenized.write_rows(rows, tmp_path / "d.jsonl")
    longest = max(len(r["input_ids"]) for r in rows)
    assert rules_of(gate(folder, data, max_seq_len=longest)) == ["completion_truncated"]
    assert rules_of(gate(folder, data, max_seq_len=longest + 10)) == ["eos_not_appended"]  # never cut: not closed
    assert gate(folder, data, max_truncated_share=0.5).status is Status.PASS  # 3 of 15 tolerated as a warning


def test_model_vocab_bounds_the_ids(folders, tmp_path):
    folder = folders.base("tiny")
    rows = tokenized.clean_rows(load_tokenizer_cached(folder))
    data = tokenized.write_rows(rows, tmp_path / "d.jsonl")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"vocab_size": 100}))  # smaller than the tokenizer
    result = gate(folder, data, model=model)
    assert rules_of(result) == ["token_out_of_range"] and result.metrics["vocab_limit"] == 100


@pytest.mark.parametrize(("rows", "why"), [
    ([{"text": "hello"}], "text data: no input_ids column"),
    ([{"input_ids": [1, 2, 3], "labels": [1, 2]}], "labels and input_ids lengths differ"),
    ([{"input_ids": [[1, 2], [3]], "labels": [[1, 2], [3]]}], "pre-batched rows"),
])
def test_bad_inputs_are_input_errors(folders, tmp_path, rows, why):
    data = tmp_path / "bad.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = gate(folders.base("tiny"), data)
    assert (result.status, result.error_exit_code) == (Status.ERROR, 2), why


def test_a_json_array_and_an_unknown_folder_are_refused(tmp_path):
    from sftgate.gates.readers.tokenized_io import open_tokenized

    (tmp_path / "a.json").write_text("[{}]")
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "a.json", tmp_path / "empty", tmp_path / "missing.jsonl"):
        with pytest.raises(InputError):
            open_tokenized(path)


def test_sftgate_check_runs_the_gate_when_the_config_names_prepared_data(folders, tmp_path, cli):
    folder = folders.base("tiny")
    tokenized.write_rows(tokenized.eos_masked(load_tokenizer_cached(folder)), tmp_path / "prepared.jsonl")
    (tmp_path / "train.jsonl").write_text('{"prompt": "Say hi.", "completion": " hi"}\n')
    config = tmp_path / "sftgate.yaml"
    config.write_text(f"sftgate: 1\nmodel:\n  id: {folder}\ndata:\n  train: train.jsonl\n  prepared: prepared.jsonl\n")
    result = cli("check", str(config), "--format", "json")
    assert result.statuses()["labels"] == "fail" and "eos_masked" in result.rules()


CHATTY = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N", "P", "Zs")), min_size=1, max_size=24)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=st.lists(st.tuples(CHATTY, CHATTY), min_size=1, max_size=3), system=st.none() | CHATTY)
def test_sftgate_own_labels_always_pass_and_full_training_is_always_caught(folders, turns, system):
    """Property: whatever the conversation, the labels sftgate builds pass the gate, and training
    every token (an all-ones assistant mask) is prompt_trained."""
    from sftgate.gates.tokenizer.label_input import from_padded
    from sftgate.gates.tokenizer.rendering import PromptSpec, encode_example

    tok = load_tokenizer_cached(folders.base("tiny"))
    messages = ([{"role": "system", "content": system}] if system else []) + [
        m for user, reply in turns for m in ({"role": "user", "content": user}, {"role": "assistant", "content": reply})]
    enc = encode_example(tok, {"messages": messages}, PromptSpec())
    clean = list(labels.check_batches([from_padded({"input_ids": [enc.input_ids], "labels": [enc.labels]})], tok, source="x"))
    assert clean == []
    full = list(labels.check_batches([from_padded({"input_ids": [enc.input_ids], "labels": [enc.input_ids]})], tok, source="x"))
    assert "prompt_trained" in {f.rule for f in full}


def test_rule_codes_are_stable():
    assert [(r.code, r.name) for r in labels.RULES] == [
        ("LBL001", "nothing_trained"), ("LBL002", "prompt_trained"), ("LBL003", "labels_shifted"),
        ("LBL004", "pad_trained"), ("LBL005", "packing_leak"), ("LBL006", "completion_truncated"),
        ("LBL007", "token_out_of_range"),
    ]
    assert all(r.gate == "labels" and r.why and r.fix for r in labels.RULES)


ROW = st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=0, max_size=30)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=8), positions=st.booleans(), attention=st.booleans())
def test_the_scanner_takes_any_batch(rows, positions, attention):
    """Any ragged batch: no crash, every position inside the batch and sorted, counts consistent."""
    import numpy as np

    from sftgate.gates.tokenizer.label_scan import TokenBatch, scan_batch
    from sftgate.gates.tokenizer.label_tally import LabelTally
    from sftgate.gates.tokenizer.turn_regions import TurnMarkers

    markers = TurnMarkers(headers=(("user", (10,)), ("assistant", (11, 3))), end_of_turn=(12, 2), after_end=(3,),
                          bos_id=1, eos_id=2)
    ids = np.array([t for row in rows for t, _ in row], dtype=np.int64)
    labels = np.array([t if trained else -100 for row in rows for t, trained in row], dtype=np.int64)
    offsets = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    batch = TokenBatch(ids, offsets, labels,
                       attention_mask=(ids != 0).astype(np.int64) if attention else None,
                       position_ids=np.concatenate([np.arange(len(r)) for r in rows]).astype(np.int64) if positions else None)
    hits = scan_batch(batch, markers, pad_id=0, vocab_limit=12)
    for name, found in hits.hits.items():
        assert ((found >= 0) & (found < max(len(ids), 1))).all() and (np.diff(found) >= 0).all(), name
    tally = LabelTally()
    tally.add(batch, hits)
    summary = tally.finish()
    assert all(t.rows <= len(rows) for t in summary["rules"].values())
    assert summary["figures"]["trained_tokens"] <= summary["figures"]["tokens"] <= len(ids)
