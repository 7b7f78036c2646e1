"""sftgate.gates.tokenizer.rendering (the one prompt-rendering and label module) and sftgate.gates.readers.tokenizer_io, on real tokenizers."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.tokenizers import TokenizerFolders, build_mistral_v3_raw, template_text
from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.tokenizer_io import generation_eos_ids, load_tokenizer, load_tokenizer_cached
from sftgate.gates.tokenizer import data_scan, end_of_turn, rendering, token_encoding
from sftgate.gates.tokenizer.rendering import IGNORE_INDEX, PromptSpec


def tok(folders: TokenizerFolders, family: str, **variant: object):
    return load_tokenizer_cached(folders.variant(family, **variant) if variant else folders.base(family))


CHAT = {"messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "world"},
    {"role": "user", "content": "again"},
]}


# --------------------------------------------------------------------------- fidelity to the reference tokenizers


@pytest.mark.parametrize(("family", "data_file"), [
    ("mistral_v3", "mistral_instruct_tokenizer_240323.model.v3"),
    ("tekken", "tekken_240718.json"),
], ids=["sentencepiece-v3", "tekken"])
def test_mistral_templates_reproduce_mistral_common(folders, family, data_file):
    """Our Mistral templates + transformers give the exact token ids of mistral-common's own encoder."""
    from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    from fixtures.tokenizers import mistral_data

    reference = MistralTokenizer.from_file(str(mistral_data(data_file)))
    expected = reference.encode_chat_completion(ChatCompletionRequest(messages=[
        SystemMessage(content="Be brief."), UserMessage(content="hello"),
        AssistantMessage(content="world"), UserMessage(content="again"),
    ])).tokens
    assert rendering.encode_prompt(tok(folders, family), CHAT, PromptSpec()) == expected


def test_llama3_template_reproduces_llama_models(folders):
    """The Llama 3 template + the converted tiktoken file give llama-models' ChatFormat ids."""
    pytest.importorskip("PIL")
    from llama_models.datatypes import RawMessage
    from llama_models.llama3.chat_format import ChatFormat
    from llama_models.llama3.tokenizer import Tokenizer

    fmt = ChatFormat(Tokenizer.get_instance())
    messages = [("system", "Be brief."), ("user", "hello"), ("assistant", "world"), ("user", "again")]
    expected = fmt.encode_dialog_prompt([RawMessage(role=r, content=c) for r, c in messages]).tokens
    assert rendering.encode_prompt(tok(folders, "llama3"), CHAT, PromptSpec()) == expected


def test_sentencepiece_folder_loads_like_the_saved_tokenizer(folders, tmp_path):
    """A folder with only tokenizer.model (SentencePiece) converts to the same ids as tokenizer.json."""
    raw = load_tokenizer(build_mistral_v3_raw(tmp_path / "raw"))
    text = "Bonjour, wörld! 12345 🙂\n\n  spaces"
    assert raw(text)["input_ids"] == tok(folders, "mistral_v3")(text)["input_ids"]


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(("family", "end_token"), [
    ("tiny", "<|im_end|>"),
    ("mistral_v3", "</s>"),
    ("tekken", "</s>"),
    ("llama3", "<|eot_id|>"),
])
def test_messages_labels_mask_prompt_and_train_completion_and_end_of_turn(folders, family, end_token):
    """Prompt -100; completion + end-of-turn trained; ids are exactly apply_chat_template's."""
    t = tok(folders, family)
    example = {"messages": CHAT["messages"][:3]}
    enc = rendering.encode_example(t, example, PromptSpec())
    reference = t.apply_chat_template(example["messages"], tokenize=True, return_dict=True)["input_ids"]
    assert enc.input_ids == list(reference)
    assert enc.labels[:enc.prompt_len] == [IGNORE_INDEX] * enc.prompt_len
    assert enc.input_ids[:enc.prompt_len] == rendering.encode_prompt(t, example, PromptSpec())
    assert enc.ends_with_eos
    assert t.convert_ids_to_tokens(enc.input_ids[enc.last_supervised]) == end_token
    assert not enc.truncated


def test_chatml_newline_after_end_of_turn_is_masked(folders):
    """ChatML writes '\\n' after <|im_end|>: it is not trained, so the last trained token is <|im_end|>."""
    t = tok(folders, "tiny")
    enc = rendering.encode_example(t, {"messages": CHAT["messages"][1:3]}, PromptSpec())
    assert enc.labels[-1] == IGNORE_INDEX
    assert t.decode(enc.input_ids[-1:]) == "\n"
    assert enc.eos_position == enc.last_supervised == len(enc.input_ids) - 2


@pytest.mark.parametrize(("completion", "reason"), [
    (" Paris", "EOS is appended to a plain completion"),
    (" Paris</s>", "a completion already ending in EOS is not given a second one"),
])
def test_prompt_completion_gets_exactly_one_eos(folders, completion, reason):
    t = tok(folders, "mistral_v3")
    enc = rendering.encode_example(t, {"prompt": "Capital of France?", "completion": completion}, PromptSpec())
    assert enc.input_ids[-1] == t.eos_token_id, reason
    assert enc.input_ids.count(t.eos_token_id) == 1, reason
    assert enc.input_ids[0] == t.bos_token_id  # add_special_tokens=True: the tokenizer adds BOS
    assert enc.ends_with_eos


def test_truncation_cuts_from_the_right_and_flags_it(folders):
    t = tok(folders, "tiny")
    full = rendering.encode_example(t, {"messages": CHAT["messages"][:3]}, PromptSpec())
    cut = rendering.encode_example(t, {"messages": CHAT["messages"][:3]}, PromptSpec(), max_seq_len=len(full.input_ids) - 3)
    assert cut.truncated and not full.truncated
    assert cut.input_ids == full.input_ids[:-3] and cut.labels == full.labels[:-3]
    assert not cut.ends_with_eos


@pytest.mark.parametrize(("mask_pad", "pad_is_eos", "eos_label_masked", "reason"), [
    (False, True, False, "completion_only never masks a real label"),
    (True, False, False, "mask_pad with a distinct pad token leaves EOS alone"),
    (True, True, True, "mask_pad with pad == eos masks EOS: the classic bug"),
])
def test_collate(folders, mask_pad, pad_is_eos, eos_label_masked, reason):
    t = tok(folders, "mistral_v3")
    a = rendering.encode_example(t, {"prompt": "Hi", "completion": " there"}, PromptSpec())
    b = rendering.encode_example(t, {"prompt": "Capital of France?", "completion": " Paris, of course."}, PromptSpec())
    pad = t.eos_token_id if pad_is_eos else 0
    batch = rendering.collate([a, b], pad, mask_pad_labels=mask_pad)
    width = max(len(a.input_ids), len(b.input_ids))
    assert all(len(row) == width for key in batch for row in batch[key])
    assert batch["attention_mask"][0] == [1] * len(a.input_ids) + [0] * (width - len(a.input_ids))
    assert batch["input_ids"][0][len(a.input_ids):] == [pad] * (width - len(a.input_ids))
    assert batch["labels"][0][len(a.input_ids):] == [IGNORE_INDEX] * (width - len(a.input_ids))
    assert (batch["labels"][0][a.last_supervised] == IGNORE_INDEX) is eos_label_masked, reason


def test_pad_id_defaults_to_eos_when_the_tokenizer_has_no_pad(folders):
    assert rendering.pad_id_for(tok(folders, "mistral_v3")) == 2
    assert rendering.pad_id_for(tok(folders, "tiny")) == tok(folders, "tiny").pad_token_id != 2


@pytest.mark.parametrize(("family", "expected", "reason"), [
    ("tiny", ["<|im_end|>", "</s>"], "ChatML ends turns with <|im_end|>; EOS is added"),
    ("mistral_v3", ["</s>"], "Mistral ends turns with EOS itself"),
    ("tekken", ["</s>"], "Tekken ends turns with EOS itself"),
    ("llama3", ["<|eot_id|>", "<|end_of_text|>"], "Llama 3 ends turns with <|eot_id|>, not EOS"),
])
def test_end_of_turn_ids(folders, family, expected, reason):
    t = tok(folders, family)
    assert t.convert_ids_to_tokens(rendering.end_of_turn_ids(t)) == expected, reason


def test_end_of_turn_ids_follow_the_spec_template(folders):
    t = tok(folders, "llama3")
    broken = PromptSpec(chat_template=template_text("llama3_no_eot.jinja"))
    assert end_of_turn.template_end_of_turn_ids(t, broken) == []
    assert rendering.end_of_turn_ids(t, broken) == [t.eos_token_id]


@pytest.mark.parametrize("data", ["clean_messages.jsonl", "prompt_not_prefix.jsonl", "double_bos.jsonl"])
def test_parallel_scan_equals_the_serial_scan(folders, fixtures_dir, data):
    """Forked scan workers give exactly the in-process result (records, details, counts)."""
    t = tok(folders, "mistral_v3")
    path = fixtures_dir / "tokenizer" / data
    serial = data_scan.scan_data(t, path, PromptSpec(), max_seq_len=64, workers=1)
    data_scan._SCANS.clear()
    parallel = data_scan.scan_data(t, path, PromptSpec(), max_seq_len=64, workers=2, batch_size=1)
    data_scan._SCANS.clear()
    assert parallel.workers == 2 and serial.workers == 1
    assert parallel.records == serial.records and parallel.details == serial.details
    assert (parallel.skipped, parallel.unrenderable, parallel.no_completion) == (serial.skipped, serial.unrenderable, serial.no_completion)


def test_max_records_stops_early(folders, fixtures_dir):
    scan = data_scan.scan_data(tok(folders, "tiny"), fixtures_dir / "tokenizer" / "clean_messages.jsonl", PromptSpec(), max_records=2)
    data_scan._SCANS.clear()
    assert [r.line for r in scan.records] == [1, 2]


# --------------------------------------------------------------------------- specs and rendering


@pytest.mark.parametrize(("example", "system", "has_system_message", "reason"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "S", True, "spec.system is prepended when missing"),
    ({"messages": [{"role": "system", "content": "mine"}, {"role": "user", "content": "x"}]}, "S", True, "the data's own system wins"),
    ({"messages": [{"role": "user", "content": "x"}]}, None, False, "no system anywhere"),
])
def test_spec_system(folders, example, system, has_system_message, reason):
    texts = rendering.render_texts(tok(folders, "tiny"), example, PromptSpec(system=system))
    assert texts.has_system is has_system_message, reason
    assert ("<|im_start|>system" in texts.prompt) is has_system_message, reason
    if system and example["messages"][0]["role"] == "system":
        assert "mine" in texts.prompt and "S\n" not in texts.prompt


@pytest.mark.parametrize(("template", "system", "expected", "reason"), [
    (None, None, "Q", "no template: the prompt as given"),
    (None, "S", "S\n\nQ", "a system prompt is prepended with a blank line"),
    ("<<{prompt}>>", None, "<<Q>>", "the {prompt} placeholder"),
    ("[{system}] {prompt}", "S", "[S] Q", "the {system} placeholder"),
    ('{"q": "{prompt}"}', None, '{"q": "Q"}', "other braces are left alone"),
])
def test_format_prompt(template, system, expected, reason):
    assert rendering.format_prompt("Q", PromptSpec(system=system, template=template)) == expected, reason


def test_conversational_prompt_completion_is_rendered_as_messages(folders):
    t = tok(folders, "tiny")
    as_pc = {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "yo"}]}
    as_messages = {"messages": as_pc["prompt"] + as_pc["completion"]}
    assert rendering.encode_example(t, as_pc, PromptSpec()) == rendering.encode_example(t, as_messages, PromptSpec())


def test_a_case_without_completion_renders_with_the_generation_prompt(folders):
    prompt = rendering.render_prompt(tok(folders, "tiny"), {"messages": [{"role": "user", "content": "hi"}]}, PromptSpec())
    assert prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize(("example", "spec", "reason"), [
    ({"text": "plain"}, PromptSpec(), "unknown format"),
    ({"messages": []}, PromptSpec(), "empty conversation"),
    ({"messages": ["not a dict"]}, PromptSpec(), "a message that is not an object"),
    ({"prompt": "p", "completion": 3}, PromptSpec(), "a completion that is not a string"),
    ({"messages": [{"role": "user", "content": "x"}]}, PromptSpec(chat_template="{{ raise_exception('no') }}"), "template error"),
    ({"messages": [{"role": "user", "content": "x"}]}, PromptSpec(chat_template="{% for %}"), "template syntax error"),
])
def test_render_errors_are_render_errors(folders, example, spec, reason):
    with pytest.raises(rendering.RenderError):
        rendering.render_texts(tok(folders, "tiny"), example, spec)


def test_messages_without_a_chat_template_are_a_render_error(folders, tmp_path):
    folder = folders.base("tiny")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "tokenizer.json").write_bytes((folder / "tokenizer.json").read_bytes())
    with pytest.raises(rendering.RenderError):
        rendering.render_texts(load_tokenizer(bare), {"messages": [{"role": "user", "content": "x"}]}, PromptSpec())


def test_template_hash():
    assert rendering.template_hash("a") == rendering.template_hash("a") != rendering.template_hash("b")
    assert rendering.template_hash(None) is None


# --------------------------------------------------------------------------- tokenizer_io


def test_chat_template_jinja_wins_over_tokenizer_config(folders, tmp_path):
    folder = tmp_path / "tok"
    folder.mkdir()
    base = folders.base("tiny")
    (folder / "tokenizer.json").write_bytes((base / "tokenizer.json").read_bytes())
    config = json.loads((base / "tokenizer_config.json").read_text())
    config["chat_template"] = "FROM_CONFIG"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert load_tokenizer(folder).chat_template == "FROM_CONFIG"
    (folder / "chat_template.jinja").write_text("FROM_JINJA")
    assert load_tokenizer(folder).chat_template == "FROM_JINJA"
    assert load_tokenizer(folder, chat_template="OVERRIDE").chat_template == "OVERRIDE"


@pytest.mark.parametrize(("make", "reason"), [
    (lambda p: p / "missing", "the folder does not exist"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no tokenizer file in the folder"),
    (lambda p: (p / "file.json").write_text("{}") and p / "file.json", "a file, not a folder"),
    (lambda p: ((p / "bad").mkdir(), (p / "bad" / "tokenizer.json").write_text("{not json"))[0] or p / "bad",
     "a corrupt tokenizer.json"),
])
def test_load_tokenizer_errors_are_input_errors(tmp_path, make, reason):
    with pytest.raises(InputError) as info:
        load_tokenizer(make(tmp_path))
    assert info.value.exit_code == 2, reason
    assert str(tmp_path) in str(info.value), reason


@pytest.mark.parametrize(("content", "expected", "reason"), [
    ('{"eos_token_id": 2}', [2], "an int becomes a list"),
    ('{"eos_token_id": [128001, 128009]}', [128001, 128009], "a list stays a list"),
    ('{"bos_token_id": 1}', None, "no eos_token_id"),
])
def test_generation_eos_ids(tmp_path, content, expected, reason):
    (tmp_path / "generation_config.json").write_text(content)
    assert generation_eos_ids(tmp_path) == expected, reason
    assert generation_eos_ids(tmp_path / "generation_config.json") == expected, reason


@pytest.mark.parametrize(("content", "reason"), [
    ('{\n  "eos_token_id": [1,\n}', "invalid JSON names the line"),
    ('{"eos_token_id": "two"}', "a string is not an id"),
    ('{"eos_token_id": [1, true]}', "a bool is not an id"),
    ("[1, 2]", "not an object"),
])
def test_generation_eos_ids_errors(tmp_path, content, reason):
    (tmp_path / "generation_config.json").write_text(content)
    with pytest.raises(InputError):
        generation_eos_ids(tmp_path)


def test_generation_eos_ids_without_a_file(tmp_path):
    assert generation_eos_ids(tmp_path) is None


# --------------------------------------------------------------------------- properties

TEXT = st.text(max_size=60)
ODD = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co")),
    max_size=40,
) | st.sampled_from(["", " ", "\n\n", "\u200b", "\u202e", "🙂👩‍👩‍👧", "ﷺ", "e\u0301", "\x00", "</s>", "<|im_end|>", "[INST]"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=TEXT, assistant=TEXT, system=st.none() | TEXT)
@pytest.mark.parametrize("family", ["tiny", "mistral_v3"])
def test_correct_templates_keep_the_prompt_a_prefix_and_end_in_eos(folders, family, user, assistant, system):
    """Random texts through a correct template: never prompt_not_prefix, never eos_not_appended."""
    t = tok(folders, family)
    example = {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}
    (prompt_ids, enc), = rendering.encode_many(t, [example], PromptSpec(system=system))
    assert token_encoding.first_difference(prompt_ids, enc.input_ids) is None
    assert enc.ends_with_eos


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=ODD, assistant=ODD, prompt=ODD)
def test_odd_unicode_never_raises(folders, user, assistant, prompt):
    t = tok(folders, "tiny")
    enc = rendering.encode_example(t, {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}, PromptSpec())
    rendering.collate([enc], rendering.pad_id_for(t), mask_pad_labels=True)
    rendering.encode_example(t, {"prompt": prompt, "completion": assistant}, PromptSpec(system=user))
    assert token_encoding.token_strings(t, enc.input_ids)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(ODD, min_size=1, max_size=4), special=st.booleans())
@pytest.mark.parametrize("family", ["tiny", "mistral_v3"])
def test_backend_fast_path_equals_the_transformers_call(folders, family, texts, special):
    """The direct Rust-backend encoding is exactly ``tokenizer(texts)["input_ids"]``."""
    t = tok(folders, family)
    assert token_encoding._backend(t) is not None
    expected = [list(ids) for ids in t(texts, add_special_tokens=special)["input_ids"]]
    assert token_encoding.encode_texts(t, texts, special) == expected
