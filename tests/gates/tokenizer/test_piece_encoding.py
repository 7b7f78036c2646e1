"""The word-cache encoder of SentencePiece-style BPE gives exactly the Rust backend's ids and offsets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.tokenizers import TokenizerFolders
from sftgate.gates.readers.tokenizer_io import load_tokenizer
from sftgate.gates.tokenizer import token_encoding
from sftgate.gates.tokenizer.piece_encoding import PieceEncoder, piece_encoder

# text made of what moves token boundaries: spaces (single, double, leading, trailing), newlines,
# tabs, the literal "▁", characters outside the vocabulary (byte fallback), special-token strings
PIECES = st.sampled_from(["a", "b", " ", "  ", "\n", "\t", "▁", "é", "🙂", "日本", " the", "ing", "{\"k\": 1}",
                          "<s>", "</s>", "[INST]", "[/INST]", "[control_12]", "<unk>", "[INST", "</s"])
TEXTS = st.lists(PIECES, max_size=24).map("".join)


@pytest.fixture(scope="session")
def mistral(folders: TokenizerFolders) -> Any:
    return load_tokenizer(folders.base("mistral_v3"))


@pytest.fixture(scope="session")
def encoder(mistral: Any) -> PieceEncoder:
    built = PieceEncoder.build(mistral._tokenizer)
    assert built is not None
    return built


def backend_ids(tok: Any, texts: list[str], special: bool) -> list[list[int]]:
    return [e.ids for e in tok._tokenizer.encode_batch(texts, add_special_tokens=special)]


def test_mistral_v3_gets_the_encoder(mistral):
    assert piece_encoder(mistral, mistral._tokenizer) is not None


@pytest.mark.parametrize("family", ["llama3", "tiny"])
def test_other_pre_tokenizers_keep_the_backend(folders, family):
    tok = load_tokenizer(folders.base(family))
    assert PieceEncoder.build(tok._tokenizer) is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXTS, min_size=1, max_size=8), special=st.booleans())
def test_ids_are_the_backends(mistral, encoder, texts, special):
    assert encoder.encode_batch(texts, special) == backend_ids(mistral, texts, special)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS)
def test_offsets_are_the_backends(mistral, encoder, text):
    encoding = mistral._tokenizer.encode(text, add_special_tokens=False)
    found = encoder._offsets(text)
    assert found is None or found == (encoding.ids, [tuple(o) for o in encoding.offsets])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(full=TEXTS, cuts=st.lists(st.integers(0, 200), max_size=5), others=st.lists(TEXTS, max_size=2))
def test_a_group_is_its_texts_encoded_one_by_one(mistral, encoder, full, cuts, others):
    """Prefixes of the first text (cut anywhere: at a segment end they come from its ids) and other texts."""
    group = [full, *(full[:cut] for cut in cuts), *others]
    assert encoder.encode_group(group) == backend_ids(mistral, group, False)


def test_encode_texts_and_groups_use_it_and_agree(mistral):
    texts = ["<s>[INST] What is 2 + 2?[/INST] 4</s>", "<s>[INST] What is 2 + 2?[/INST]", "<s>[INST]  x[/INST]"]
    assert token_encoding.encode_texts(mistral, texts, False) == backend_ids(mistral, texts, False)
    assert token_encoding.encode_groups(mistral, [texts], False) == [backend_ids(mistral, texts, False)]
    ids, offsets = token_encoding.encode_offsets(mistral, texts[0])
    encoding = mistral._tokenizer.encode(texts[0], add_special_tokens=False)
    assert (ids, offsets) == (encoding.ids, [tuple(o) for o in encoding.offsets])
    # while verifying, a difference falls back to the backend and marks the encoder broken: it is not
    used = piece_encoder(mistral, mistral._tokenizer)
    assert used is not None and not used.broken and not used.offsets_broken


@pytest.mark.parametrize("text", ["hello world", " leading and trailing ", "a\n\nb", "é 🙂 日本語", "<s>[INST] Hi[/INST] Yo</s>"])
def test_offsets_of_plain_texts_are_walked(encoder, mistral, text):
    """Texts of vocabulary tokens and byte fallbacks: the walked offsets exist and are the backend's."""
    encoding = mistral._tokenizer.encode(text, add_special_tokens=False)
    assert encoder._offsets(text) == (encoding.ids, [tuple(o) for o in encoding.offsets])


def _variant(folder: Path, change: Any) -> Any:
    """The folder's Rust tokenizer with ``change`` applied to its ``tokenizer.json``."""
    from tokenizers import Tokenizer

    spec = json.loads((folder / "tokenizer.json").read_text("utf-8"))
    change(spec)
    return Tokenizer.from_str(json.dumps(spec))


def _cross_merge(spec: dict[str, Any]) -> None:
    """A merge that joins the end of one piece to the start of the next: "a" + "▁b"."""
    vocab = spec["model"]["vocab"]
    vocab.setdefault("▁b", len(vocab))
    vocab["a▁b"] = len(vocab)
    spec["model"]["merges"].insert(0, ["a", "▁b"])


@pytest.mark.parametrize("change", [
    _cross_merge,
    lambda spec: spec.update(normalizer={"type": "NFKC"}),
    lambda spec: spec["pre_tokenizer"].update(split=True),
    lambda spec: spec["added_tokens"][3].update(lstrip=True),
    lambda spec: spec["model"].update(dropout=0.1),
], ids=["merge_across_pieces", "normalizer", "split_pre_tokenizer", "lstrip_token", "dropout"])
def test_what_the_proof_does_not_cover_keeps_the_backend(folders, change):
    assert PieceEncoder.build(_variant(folders.base("mistral_v3"), change)) is None


def test_an_unknown_post_processor_keeps_the_backend_with_special_tokens(folders):
    bert = {"type": "BertProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1]}
    backend = _variant(folders.base("mistral_v3"), lambda spec: spec.update(post_processor=bert))
    encoder = PieceEncoder.build(backend)
    assert encoder is not None and encoder.affixes is None
    assert encoder.encode_checked(backend, ["a b"], True) is None
    assert encoder.encode_checked(backend, ["a b"], False) == [backend.encode("a b", add_special_tokens=False).ids]


def test_a_merge_across_pieces_changes_the_ids(folders):
    """The case the structural check exists for: with "a" + "▁b" merged, "a b" is one token whole."""
    backend = _variant(folders.base("mistral_v3"), _cross_merge)
    merged = backend.token_to_id("a▁b")
    assert merged in backend.encode("xa b", add_special_tokens=False).ids


def test_a_difference_on_real_text_switches_to_the_backend(mistral):
    """The first texts of real data are compared too: one difference and the backend takes over."""
    encoder = PieceEncoder.build(mistral._tokenizer)
    assert encoder is not None
    encoder.stretches[(" rigged", False)] = [0]  # as if the encoder were wrong about this stretch
    texts = ["<s>[INST] rigged[/INST] x</s>"]
    assert encoder.encode_checked(mistral._tokenizer, texts, False) is None
    assert encoder.broken
