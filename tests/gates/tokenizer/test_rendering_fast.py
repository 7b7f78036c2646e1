"""The fast chat renderer and scan of sftgate.gates.tokenizer.rendering give exactly what apply_chat_template + tokenizer(...) give."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.tokenizers import TEMPLATES, TokenizerFolders, template_text
from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached
from sftgate.gates.tokenizer import data_scan, fast_render, rendering, template_rendering, token_encoding
from sftgate.gates.tokenizer.rendering import IGNORE_INDEX, PromptSpec

# family -> the templates of fixtures/templates/ rendered with that family's real tokenizer
FAMILY_TEMPLATES = {
    "tiny": sorted(p.name for p in TEMPLATES.glob("chatml*.jinja")),
    "mistral_v3": sorted(p.name for p in TEMPLATES.glob("mistral_v3*.jinja")),
    "tekken": ["mistral_tekken.jinja"],
    "llama3": sorted(p.name for p in TEMPLATES.glob("llama3*.jinja")),
    "qwen3": ["qwen3_thinking.jinja"],
    "phi3": sorted(p.name for p in TEMPLATES.glob("phi3*.jinja")),
    "gemma": sorted(p.name for p in TEMPLATES.glob("gemma*.jinja")),
}
PAIRS = [(family, name) for family, names in FAMILY_TEMPLATES.items() for name in names]


def tok(folders: TokenizerFolders, family: str) -> Any:
    return load_tokenizer_cached(folders.base(family))


@contextlib.contextmanager
def slow_path() -> Iterator[None]:
    """Every render through ``tokenizer.apply_chat_template`` (the reference)."""
    with mock.patch.object(template_rendering, "chat_renderer", return_value=None):
        yield


def reference(t: Any, messages: list[dict[str, Any]], template: str, generation: bool) -> str | None:
    try:
        return t.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=generation)  # type: ignore[no-any-return]
    except Exception:
        return None


def test_every_fixture_template_is_covered():
    assert sorted(n for _, n in PAIRS) == sorted(p.name for p in TEMPLATES.glob("*.jinja"))


@pytest.mark.parametrize(("family", "name"), PAIRS)
def test_fixture_templates_get_the_fast_renderer(folders, family, name):
    """Each template of fixtures/templates/ is taken by the fast path (it agrees on the probes)."""
    assert fast_render.chat_renderer(tok(folders, family), template_text(name)) is not None


TEXT = st.text(max_size=40) | st.sampled_from(["", " ", "\n\n", " x ", "</s>", "<|im_end|>", "[INST]", "<|eot_id|>", "🙂", "e\u0301"])
ROLE = st.sampled_from(["user", "assistant", "system", "tool"])
MESSAGE = st.fixed_dictionaries({"role": ROLE, "content": TEXT})
CONVERSATION = st.lists(MESSAGE, min_size=1, max_size=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=CONVERSATION, generation=st.booleans())
@pytest.mark.parametrize(("family", "name"), PAIRS)
def test_fast_render_equals_apply_chat_template(folders, family, name, messages, generation):
    """Random conversations (any roles, control-token look-alikes): the same text, or both fail."""
    t = tok(folders, family)
    template = template_text(name)
    expected = reference(t, messages, template, generation)
    spec = PromptSpec(chat_template=template)
    try:
        got: str | None = rendering.apply_template(t, messages, spec, add_generation_prompt=generation)
    except rendering.RenderError:
        got = None
    assert got == expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    turns=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=3),
    system=st.none() | TEXT,
    spec_system=st.none() | TEXT,
    max_seq_len=st.none() | st.integers(1, 80),
)
@pytest.mark.parametrize("family", ["tiny", "mistral_v3", "tekken", "llama3"])
def test_encode_many_equals_the_slow_path(folders, family, turns, system, spec_system, max_seq_len):
    """Token ids and labels through the fast path are the slow path's; ids are the reference's."""
    t = tok(folders, family)
    messages = [{"role": "system", "content": system}] if system is not None else []
    for user, assistant in turns:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    examples = [{"messages": messages}, {"prompt": turns[0][0], "completion": turns[0][1]}]
    spec = PromptSpec(system=spec_system)
    fast = rendering.encode_many(t, examples, spec, max_seq_len=max_seq_len)
    with slow_path():
        slow = rendering.encode_many(t, examples, spec, max_seq_len=max_seq_len)
        slow_prompt = rendering.encode_prompt(t, examples[0], spec)
    assert fast == slow
    assert fast[0][0] == slow_prompt == rendering.encode_prompt(t, examples[0], spec)
    full = t.apply_chat_template(template_rendering._with_system(messages, spec_system), tokenize=False)
    ids = t(full, add_special_tokens=False)["input_ids"]
    assert fast[0][1].input_ids == ids[:max_seq_len]


@pytest.mark.parametrize(("messages", "reason"), [
    ([{"role": "user", "content": "hi", "name": None}, {"role": "assistant", "content": "yo"}], "None values are dropped"),
    ([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "content blocks: transformers' conversion"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "reasoning": "think"}], "reasoning aliases"),
    ([{"role": "user", "content": 3}], "a number as content"),
    ([{"role": "user", "content": "hi"}, "not a dict"], "a message that is not a dict"),
])
@pytest.mark.parametrize("family", ["tiny", "llama3"])
def test_unusual_messages_render_as_apply_chat_template(folders, family, messages, reason):
    t = tok(folders, family)
    template = rendering.chat_template_text(t, PromptSpec())
    for generation in (False, True):
        expected = reference(t, messages, template, generation)
        try:
            got: str | None = rendering.apply_template(t, messages, PromptSpec(), add_generation_prompt=generation)
        except rendering.RenderError:
            got = None
        assert got == expected, reason


@pytest.mark.parametrize(("template", "reason"), [
    ("{{ raise_exception('no') }}", "raise_exception"),
    ("{% for %}", "a syntax error"),
    ("{{ messages[0].content.__class__ }}", "the sandbox refuses internals"),
    ("{{ messages.append(1) }}", "the immutable sandbox refuses mutation"),
])
def test_template_errors_are_the_slow_paths_errors(folders, template, reason):
    """Errors come from apply_chat_template itself: the same RenderError message."""
    t = tok(folders, "tiny")
    example = {"messages": [{"role": "user", "content": "x"}]}
    spec = PromptSpec(chat_template=template)
    with slow_path():
        try:
            expected = rendering.render_texts(t, example, spec).prompt
        except rendering.RenderError as exc:
            expected = str(exc)
    try:
        got = rendering.render_texts(t, example, spec).prompt
    except rendering.RenderError as exc:
        got = str(exc)
    assert got == expected, reason


@pytest.mark.parametrize(("template", "reason"), [
    ("{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}", "the generation tag"),
    ("{{ messages | tojson }}{{ strftime_now('%Y') | length }}", "tojson and strftime_now"),
    ("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}{{ dict(a=1) }}", "namespace and dict"),
    ("{{ messages[0]['content'] | trim }}\n  {% if add_generation_prompt %}GEN{% endif %}\n", "trim_blocks / lstrip_blocks"),
])
def test_transformers_template_features_render_identically(folders, template, reason):
    t = tok(folders, "tiny")
    messages = [{"role": "user", "content": " <b>hi</b> "}]
    assert fast_render.chat_renderer(t, template) is not None, reason
    for generation in (False, True):
        got = rendering.apply_template(t, messages, PromptSpec(chat_template=template), add_generation_prompt=generation)
        assert got == reference(t, messages, template, generation), reason


def test_a_tokenizer_with_its_own_apply_chat_template_takes_the_slow_path(folders):
    t = tok(folders, "tiny")

    class Custom(type(t)):  # type: ignore[misc]
        def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
            return "CUSTOM"

    custom = Custom.__new__(Custom)
    custom.__dict__.update(t.__dict__)
    assert fast_render.chat_renderer(custom, rendering.chat_template_text(t, PromptSpec())) is None
    assert rendering.render_prompt(custom, {"messages": [{"role": "user", "content": "x"}]}, PromptSpec()) == "CUSTOM"


def test_a_template_that_disagrees_on_the_probes_takes_the_slow_path(folders):
    t = tok(folders, "tiny")
    template = template_text("chatml.jinja")
    renderer = fast_render.ChatRenderer.build(template)
    assert renderer is not None and fast_render._renderer_agrees(t, renderer, template)
    assert not fast_render._renderer_agrees(t, fast_render.ChatRenderer.build("{{ messages | length }}"), template)


def test_special_tokens_follow_the_tokenizer(folders):
    """A changed special token is seen by the next render (the variables are not frozen)."""
    t = tok(folders, "mistral_v3")
    renderer = fast_render.chat_renderer(t, rendering.chat_template_text(t, PromptSpec()))
    assert renderer is not None
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    specials = dict(t.special_tokens_map)
    assert renderer.render(messages, False, specials).endswith("y</s>")
    assert renderer.render(messages, False, {**specials, "eos_token": "<END>"}).endswith("y<END>")


@pytest.mark.parametrize("data", ["clean_messages.jsonl", "prompt_not_prefix.jsonl", "double_bos.jsonl"])
@pytest.mark.parametrize("family", ["mistral_v3", "tiny"])
def test_scan_equals_the_slow_scan_and_collate(folders, fixtures_dir: Path, data, family):
    """The scan's records are the slow path's; its EOS-masked flags are collate()'s (pad == eos for
    mistral_v3, a distinct pad token for tiny)."""
    from sftgate.gates.readers.tokenizer_io import iter_records

    t = tok(folders, family)
    path = fixtures_dir / "tokenizer" / data
    fast = data_scan.scan_data(t, path, PromptSpec(), max_seq_len=64, workers=1)
    data_scan._SCANS.clear()
    with slow_path():
        slow = data_scan.scan_data(t, path, PromptSpec(), max_seq_len=64, workers=1)
    data_scan._SCANS.clear()
    assert fast.records == slow.records and fast.details == slow.details
    examples = dict(iter_records(path))
    checked = 0
    for record in fast.records:
        enc = rendering.encode_example(t, examples[record.line], PromptSpec(), max_seq_len=64)
        last = enc.last_supervised
        if not enc.ends_with_eos or last is None:
            continue
        for mask, flag in ((True, record.eos_masked_mask_pad), (False, record.eos_masked_default)):
            assert (rendering.collate([enc], fast.pad_id, mask_pad_labels=mask)["labels"][0][last] == IGNORE_INDEX) is flag
        checked += 1
    assert checked


def test_first_difference_table():
    cases = [
        ([], [], None, "empty is a prefix"),
        ([1, 2], [1, 2, 3], None, "a prefix"),
        ([1, 2, 3], [1, 2], 2, "longer than the sequence"),
        ([1, 9, 3], [1, 2, 3, 4], 1, "differs inside"),
        ((1, 2), [1, 2], None, "a tuple against a list"),
    ]
    for a, b, expected, reason in cases:
        assert token_encoding.first_difference(a, b) == expected, reason
