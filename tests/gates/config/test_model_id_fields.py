"""Finding model-ID fields in foreign JSON/YAML configs and in sftgate configs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.config.model_id_fields import find_id_fields, sftgate_fields

# (document, expected [(dotted path, kind, revision)], reason)
CASES = [
    ({"model": {"name": "mistralai-Mistral-7B-Instruct"}}, [("model.name", "model", None)], "the postmortem's job.json"),
    ({"model": {"id": "org/m", "revision": "main"}}, [("model.id", "model", "main")], "revision beside it"),
    ({"model_name_or_path": "org/m", "model_revision": "v1"}, [("model_name_or_path", "model", "v1")],
     "TRL: model_revision pairs with model_name_or_path"),
    ({"base_model": "org/m", "tokenizer_config": "org/t"},
     [("base_model", "model", None), ("tokenizer_config", "tokenizer", None)], "axolotl"),
    ({"pretrained_model_name_or_path": "org/m"}, [("pretrained_model_name_or_path", "model", None)], "diffusers-style"),
    ({"Model-Name-Or-Path": "org/m"}, [("Model-Name-Or-Path", "model", None)], "keys match case- and dash-insensitively"),
    ({"tokenizer_name": None, "tokenizer_name_or_path": ""}, [], "null and empty mean 'same as the model'"),
    ({"slices": [{"sources": [{"model": "org/a"}, {"model": "org/b"}]}]},
     [("slices[0].sources[0].model", "model", None), ("slices[0].sources[1].model", "model", None)], "mergekit lists"),
    ({"hub_model_id": "org/out", "revision": "main"}, [("hub_model_id", "publish", None)],
     "a publish target has no revision"),
    ({"release": {"repo_id": "org/out"}}, [("release.repo_id", "publish", None)], "release.repo_id"),
    ({"tokenizer": {"name": "org/t"}}, [("tokenizer.name", "tokenizer", None)], "tokenizer.name"),
    ({"adapter_name_or_path": "./out/adapter"}, [("adapter_name_or_path", "adapter", None)], "a PEFT adapter"),
    ({"model": {"dtype": "bfloat16", "hidden_size": 64}}, [], "no ID fields under model"),
    ({"datasets": [{"path": "data/train.jsonl"}]}, [], "a dataset path is not a model ID"),
    ({"model_type": "llama", "epochs": 3}, [], "model_type is not an ID"),
    ({"model": 3}, [], "non-strings are ignored"),
    (["org/m"], [], "a bare list has no keys"),
    ("org/m", [], "a scalar document"),
]


@pytest.mark.parametrize(("data", "expected", "reason"), CASES, ids=[c[2] for c in CASES])
def test_find_id_fields(data, expected, reason):
    got = [(f.dotted, f.kind, f.revision) for f in find_id_fields(data)]
    assert got == expected, reason


def test_revision_path_is_reported():
    [field] = find_id_fields({"model": {"name": "org/m", "revision": "main"}})
    assert field.revision_path == ("model", "revision")


def test_sftgate_fields():
    data = {"model": {"id": "org/m", "revision": "abc", "tokenizer": "./tok"}, "release": {"repo_id": "org/out"},
            "data": {"train": "t.jsonl"}}
    got = [(f.dotted, f.kind, f.revision) for f in sftgate_fields(data)]
    assert got == [("model.id", "model", "abc"), ("model.tokenizer", "tokenizer", None),
                   ("release.repo_id", "publish", None)]
    assert sftgate_fields(None) == []


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["model", "name", "id", "base_model", "x", "revision", "tokenizer"]) | st.text(max_size=8),
                      children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=100, deadline=None)
@given(_json)
def test_any_document_is_walked_without_error(data):
    for field in find_id_fields(data):
        assert isinstance(field.value, str) and field.value
        node = data
        for part in field.path:
            node = node[part]
        assert node == field.value, "the path leads to the value"
