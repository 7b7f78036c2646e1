"""Peer dataset formats mapped onto sftgate's, line for line, and findings moved back to the original."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.config.peer.datasets import convert, convert_record, relocate
from sftgate.gates.config.peer.job_axolotl import dataset_mapping
from sftgate.gates.config.peer.job_llamafactory import entry_mapping
from sftgate.gates.config.peer.job_mistral import sources
from sftgate.gates.frame.core import Finding, Severity

AXOLOTL_CHAT = {"path": "d.jsonl", "type": "chat_template", "field_messages": "conversations",
                "message_property_mappings": {"role": "from", "content": "value"}}
SHAREGPT = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

# (mapping, record, converted, lacks)
CASES = [
    (dataset_mapping({"type": "alpaca"})[0], {"instruction": "Do", "input": "x", "output": "y"},
     {"prompt": "Do\n\nx", "completion": "y"}, None),
    (dataset_mapping({"type": "alpaca"})[0], {"instruction": "Do", "output": "y"}, {"prompt": "Do", "completion": "y"}, None),
    (dataset_mapping({"type": "alpaca"})[0], {"instruction": "Do"}, {"prompt": "Do"}, "output"),
    (dataset_mapping({"type": {"field_instruction": "q", "field_output": "a"}})[0], {"q": "1+1", "a": "2"},
     {"prompt": "1+1", "completion": "2"}, None),
    (dataset_mapping(AXOLOTL_CHAT)[0], SHAREGPT,
     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}, None),
    (dataset_mapping(AXOLOTL_CHAT)[0], {"messages": []}, {"messages": []}, "conversations"),
    (dataset_mapping({"type": "chat_template", "roles": {"assistant": ["bot"]}})[0],
     {"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]},
     {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, None),
    (entry_mapping({"file_name": "x.json"})[0], {"instruction": "Do", "input": "x", "output": "y", "history": [["a", "b"]]},
     {"messages": [{"role": "user", "content": "Do\nx"}, {"role": "assistant", "content": "y"}]}, None),
    (entry_mapping({"file_name": "x.json", "columns": {"prompt": "q", "response": "a", "history": "h"}})[0],
     {"q": "Do", "a": "y", "h": [["a", "b"]]},
     {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                   {"role": "user", "content": "Do"}, {"role": "assistant", "content": "y"}]}, None),
    (entry_mapping({"file_name": "x", "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "s"}})[0],
     {**SHAREGPT, "s": "Be brief."},
     {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                   {"role": "assistant", "content": "Hello"}]}, None),
    (entry_mapping({"file_name": "x", "formatting": "sharegpt", "tags": {"role_tag": "role", "content_tag": "content",
                                                                      "user_tag": "user", "assistant_tag": "assistant"}})[0],
     {"conversations": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
     {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, None),
]


@pytest.mark.parametrize(("mapping", "record", "converted", "lacks"), CASES)
def test_records_convert_as_the_tool_reads_them(mapping, record, converted, lacks):
    assert convert_record(record, mapping) == (converted, lacks)


@pytest.mark.parametrize(("entry", "reason"), [
    ({"type": "completion"}, "raw text"), ({"type": "input_output"}, "a format sftgate does not read"), ({}, "no type"),
])
def test_axolotl_types_sftgate_does_not_read_say_why(entry, reason):
    mapping, why = dataset_mapping(entry)
    assert mapping is None and why, reason


def test_llamafactory_preference_and_text_entries_are_not_sft():
    assert entry_mapping({"file_name": "x", "ranking": True})[0] is None
    assert entry_mapping({"file_name": "x", "columns": {"prompt": "text"}})[0] is None


def test_conversion_keeps_every_line_where_it_was(tmp_path):
    original = tmp_path / "train.jsonl"
    lines = [json.dumps({"instruction": "a", "output": "b"}), "", "{not json", "[1, 2]", json.dumps({"instruction": "c"})]
    original.write_text("\n".join(lines) + "\n")
    conv = convert(original, "train.jsonl", dataset_mapping({"type": "alpaca"})[0], tmp_path, 0)
    out = conv.path.read_text().split("\n")[:-1]
    assert len(out) == len(lines)
    assert out[1:4] == lines[1:4], "blank, invalid and non-object lines are copied as they are"
    assert conv.missing == {5: "output"} and conv.line_based


def test_relocate_names_the_original_file_and_the_original_field(tmp_path):
    from sftgate.gates.data.dataset_schema_rules import R

    original = tmp_path / "data.jsonl"
    original.write_text(json.dumps({"instruction": "a"}) + "\n" + json.dumps({"instruction": "b", "output": "c"}) + "\n")
    conv = convert(original, "data.jsonl", dataset_mapping({"type": "alpaca"})[0], tmp_path, 1)
    planted = [R["missing_field"].finding("completion is missing", f"{conv.path}:1", line=1),
               R["duplicate_example"].finding("repeats", f"{conv.path}:2", evidence={"first": f"{conv.path}:1"}, line=2),
               Finding("X001", "other", Severity.ERROR, "elsewhere", "other.jsonl:1")]
    moved = list(relocate(iter(planted), [conv], "axolotl"))
    assert [(f.rule, f.location) for f in moved] == [("missing_field", "data.jsonl:1"), ("duplicate_example", "data.jsonl:2"),
                                                     ("other", "other.jsonl:1")]
    assert moved[0].evidence == {"field": "output"} and str(tmp_path / "dataset") not in str(moved[1].evidence)


def test_mistral_finetune_sources_drop_their_weights():
    assert sources("/d/a.jsonl:5.,b.jsonl:1.0, dir_of_jsonls:1e-1,c.jsonl") == ["/d/a.jsonl", "b.jsonl", "dir_of_jsonls",
                                                                                 "c.jsonl"]


_value = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                      lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                      max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([m for m, *_ in CASES]), st.dictionaries(
    st.sampled_from(["instruction", "input", "output", "conversations", "messages", "q", "a", "h", "s", "x"]),
    _value, max_size=5))
def test_any_record_converts_without_error(mapping, record):
    converted, lacks = convert_record(record, mapping)
    assert isinstance(converted, dict) and (lacks is None or isinstance(lacks, str))
    json.dumps(converted)
