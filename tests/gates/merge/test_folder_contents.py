"""The release allow-list: every name gets exactly one kind, and the unsafe kinds win over the allowed ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.merge import folder_contents as fc

KINDS = {"weights", "json", "template", "tokenizer", "text", "image", "unsafe_weights", "remote_code", "unexpected"}
_part = st.text(st.characters(blacklist_characters="/\0"), min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(_part, min_size=1, max_size=4), suffix=st.sampled_from(
    ["", ".json", ".safetensors", ".bin", ".py", ".so", ".txt", ".jinja", ".npy", ".gguf", ".bin.1", ".tar.gz"]))
def test_every_name_has_one_kind_and_unsafe_suffixes_always_win(parts, suffix):
    rel = "/".join(parts) + suffix
    kind = fc.classify(rel)
    assert kind in KINDS
    suffixes = {s.lower() for s in fc.PurePosixPath(rel).suffixes}
    if suffixes & fc.UNSAFE_SUFFIXES:
        assert kind == "unsafe_weights"
    elif suffixes & fc.CODE_SUFFIXES:
        assert kind == "remote_code"
    elif not rel.isprintable() or any(p.startswith(".") for p in fc.PurePosixPath(rel).parts):
        assert kind == "unexpected"


@pytest.mark.parametrize(("rel", "kind"), [
    ("model-00001-of-00002.safetensors", "weights"), ("config.json", "json"), ("chat_template.jinja", "template"),
    ("tokenizer.model", "tokenizer"), ("tokenizer.model.v3", "tokenizer"), ("README.md", "text"), ("LICENSE", "text"),
    ("pytorch_model.bin", "unsafe_weights"), ("model.bin.1", "unsafe_weights"), ("x.tar.gz", "unsafe_weights"),
    ("Model.PT", "unsafe_weights"), ("lib.so.1", "remote_code"), (".cache/x.json", "unexpected"),
    ("notes\r.md", "unexpected"), ("model.onnx", "unexpected"), ("dir\\x.json", "unexpected"),
])
def test_known_names(rel, kind):
    assert fc.classify(rel) == kind


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=5)),
                    lambda children: st.one_of(st.lists(children, max_size=3),
                                               st.dictionaries(st.sampled_from(["a", "auto_map", "custom_pipelines", "b"]),
                                                               children, max_size=3)),
                    max_leaves=20))
def test_remote_code_keys_finds_every_non_empty_hook_at_any_depth(doc):
    found = {path for path, _ in fc.remote_code_keys(doc)}
    expected = set()

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                path = f"{where}.{k}" if where else k
                if k in fc.REMOTE_CODE_KEYS and v:
                    expected.add(path)
                else:
                    walk(v, path)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    walk(doc, "")
    assert found == expected
