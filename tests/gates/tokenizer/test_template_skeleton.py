"""Skeleton rendering: a template proved to only paste contents renders each shape once, and the text is
exactly ``apply_chat_template``'s for every conversation; any other template renders in full."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.tokenizers import TEMPLATES, build_tiny
from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached
from sftgate.gates.tokenizer import fast_render, template_skeleton
from sftgate.gates.tokenizer.content_flow import content_is_pasted
from sftgate.gates.tokenizer.template_skeleton import Skeletons, Slot, fill, parse

PASTED = {
    "message content": "{{ messages[0]['content'] }}",
    "trim filter": "{% for m in messages %}{{ m.content|trim }}|{% endfor %}",
    "get with default": "{% for m in messages %}{{ m.get('content', '') }}{% endfor %}",
    "namespace accumulator": ("{% set ns = namespace(s='') %}{% for m in messages %}{% set ns.s = ns.s + m['content'] %}"
                              "{% endfor %}{{ ns.s }}"),
    "selected by role, rstrip": ("{% for m in messages|selectattr('role', 'equalto', 'user') %}"
                                 "{{ m['content'].rstrip() }}{% endfor %}"),
    "generation block": "{% generation %}{{ messages[-1]['content'] }}{% endgeneration %}",
    "conditional on the shape": "{{ (messages[0]['content'] if messages|length > 1 else 'one') ~ '!' }}",
    "set block": "{% set x %}[{{ messages[0]['content'] }}]{% endset %}{{ x }}",
    "type test and string filter": "{% if messages[0]['content'] is string %}{{ messages[0]['content']|string }}{% endif %}",
    "strip of a strip": "{% for m in messages %}{{ m['content'].lstrip()|trim }}{{ m['content'].rstrip() }}{% endfor %}",
    "keys present": "{% for m in messages %}{% if 'content' in m %}{{ m.role }}: {{ m.content }}{% endif %}{% endfor %}",
}

NOT_PASTED = {  # each one's text depends on the content beyond pasting it: never from a skeleton
    "truth test": "{% for m in messages %}{% if m['content'] %}{{ m['content'] }}{% else %}EMPTY{% endif %}{% endfor %}",
    "comparison": "{% if messages[0]['content'] == 'a' %}A{% endif %}{{ messages[0]['content'] }}",
    "length": "{{ messages[0]['content']|length }}{{ messages[0]['content'] }}",
    "replace": "{{ messages[0]['content']|replace('a', 'b') }}",
    "trim of a concatenation": "{{ ('x ' + messages[0]['content'] + ' ')|trim }}",
    "index": "{{ messages[0]['content'][0] }}{{ messages[0]['content'] }}",
    "split": "{{ messages[0]['content'].split('a')[-1] }}",
    "in content": "{% if 'a' in messages[0]['content'] %}HAS{% endif %}{{ messages[0]['content'] }}",
    "loop over a content": "{% for c in messages[0]['content'] %}{{ c }}.{% endfor %}",
    "tojson of a message": "{{ messages[0]|tojson }}",
    "tojson of a content": "{{ messages[0]['content']|tojson }}",
    "items": "{% for k, v in messages[0].items() %}{{ v }}{% endfor %}",
    "messages printed": "{{ messages }}",
    "map to content": "{{ messages|map(attribute='content')|join(' ') }}",
    "key from a variable": "{% set k = 'content' %}{{ messages[0][k] }}",
    "previous item compared": ("{% for m in messages %}{% if loop.previtem and loop.previtem['content'] == m['content'] %}"
                               "DUP{% endif %}{{ m['content'] }}{% endfor %}"),
    "namespace then upper": "{% set ns = namespace(x='') %}{% set ns.x = messages[0]['content'] %}{{ ns.x|upper }}",
    "percent format": "{{ '%.1s!' % messages[0]['content'] }}",
    "macro": "{% macro r(c) %}{{ c|upper }}{% endmacro %}{{ r(messages[0]['content']) }}",
    "time": "{{ strftime_now('%Y') }}{{ messages[0]['content'] }}",
    "strip of given characters": "{{ messages[0]['content'].strip('a') }}",
    "or": "{{ messages[0]['content'] or 'none' }}",
    "list holding a content": "{% set l = [messages[0]['content'], 'b'] %}{{ l|first }}",
    "boolean default": "{{ messages[0]['content']|default('empty', true) }}",
    "case test": "{% if messages[0]['content'] is lower %}low{% endif %}{{ messages[0]['content'] }}",
    "a list method": "{{ messages.index(messages[-1]) }}",
    "a dict method": "{{ messages[0].keys()|list }}{{ messages[0].values()|list }}",
    "content in a loop filter": "{% for m in messages if m['content'] %}{{ m['content'] }}{% endfor %}",
    "content as a dict key": "{% set d = {'a': 'A'} %}{{ d[messages[0]['content']] }}",
}

CONTENTS = ["a", "", " a ", "A", "aa", "x\n", "\ue000 0\ue001", "\ue0007s\ue001", "b a", "🙂", "ab", "  "]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_tokenizer_cached(build_tiny(tmp_path_factory.mktemp("tiny") / "tok"))


def reference(tokenizer: Any, messages: list[dict[str, Any]], template: str, generation: bool) -> str | None:
    try:
        return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,  # type: ignore[no-any-return]
                                             add_generation_prompt=generation)
    except Exception:
        return None


def fast(tokenizer: Any, template: str) -> fast_render.ChatRenderer:
    renderer = fast_render.ChatRenderer.build(template)
    assert renderer is not None
    return renderer


def environment(template: str) -> Any:
    from transformers.utils import chat_template_utils

    return chat_template_utils._compile_jinja_template(template).environment


@pytest.mark.parametrize("name", sorted(PASTED))
def test_pasting_templates_are_proved(name):
    assert content_is_pasted(environment(PASTED[name]), PASTED[name])


@pytest.mark.parametrize("name", sorted(NOT_PASTED))
def test_content_dependent_templates_are_refused(name):
    assert not content_is_pasted(environment(NOT_PASTED[name]), NOT_PASTED[name])


@pytest.mark.parametrize(("name", "pasted"), [("chatml.jinja", True), ("llama3.jinja", True), ("gemma.jinja", True),
                                              ("mistral_v3.jinja", True), ("mistral_tekken.jinja", True),
                                              ("chatml_generation.jinja", True), ("phi3.jinja", False),
                                              ("qwen3_thinking.jinja", False)])
def test_fixture_templates(name, pasted):
    """Phi-3's template tests a content's truth, Qwen3's splits it at </think>: both render in full."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    assert content_is_pasted(environment(text), text) is pasted


def _same_shape(messages: list[dict[str, str]], contents: list[str]) -> list[dict[str, str]]:
    return [{**m, "content": c} if "content" in m else dict(m) for m, c in zip(messages, contents, strict=True)]


ROLES = st.sampled_from(["user", "assistant", "system", "tool"])
TEXT = st.text(max_size=12) | st.sampled_from(CONTENTS)
MESSAGE = st.fixed_dictionaries({"role": ROLES, "content": TEXT})
TEMPLATE_FILES = sorted(p.name for p in TEMPLATES.glob("*.jinja"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(MESSAGE, min_size=1, max_size=4), data=st.data(), generation=st.booleans())
@pytest.mark.parametrize("name", [*sorted(PASTED), *sorted(NOT_PASTED), *TEMPLATE_FILES])
def test_second_conversation_of_a_shape_equals_apply_chat_template(tokenizer, name, first, data, generation):
    """Render one conversation, then others of the same shape with other contents (the skeleton's
    fill, where the template is pasted): each is exactly apply_chat_template's text, or both fail."""
    template = PASTED.get(name) or NOT_PASTED.get(name) or (TEMPLATES / name).read_text(encoding="utf-8")
    renderer = fast(tokenizer, template)
    specials = tokenizer.special_tokens_map
    later = [_same_shape(first, data.draw(st.lists(TEXT, min_size=len(first), max_size=len(first)))) for _ in range(2)]
    for messages in (first, *later):
        got = renderer.render(messages, generation, specials)
        expected = reference(tokenizer, messages, template, generation)
        if got is not None or expected is None:  # None: the caller's slow path (which then gives `expected`)
            assert got == expected


def test_a_shape_renders_once(tokenizer):
    calls: list[int] = []
    renderer = fast(tokenizer, (TEMPLATES / "llama3.jinja").read_text(encoding="utf-8"))
    real = renderer._render_compiled

    def counting(chat, generation):
        calls.append(1)
        return real(chat, generation)

    renderer._skeletons = Skeletons(counting)
    specials = tokenizer.special_tokens_map
    for content in ("one", " two ", "three\n"):
        renderer.render([{"role": "user", "content": content}, {"role": "assistant", "content": "ok "}], False, specials)
    assert len(calls) == 2  # the first conversation and its slotted copy; the others are filled in
    renderer.render([{"role": "user", "content": "x"}], True, specials)  # another shape
    assert len(calls) == 4


def test_a_template_that_is_not_pasted_renders_every_conversation(tokenizer):
    renderer = fast(tokenizer, NOT_PASTED["truth test"])
    assert renderer._skeletons is None


def test_messages_with_other_keys_render_in_full(tokenizer):
    template = PASTED["message content"]
    renderer = fast(tokenizer, template)
    messages = [{"role": "user", "content": "hi", "name": "bob"}]
    assert template_skeleton.shape_of(messages, False) is None
    assert renderer.render(messages, False, tokenizer.special_tokens_map) == reference(tokenizer, messages, template, False)


def test_slots_record_strips_and_fill_applies_them():
    marked = f"[{Slot(0).strip()}|{Slot(1).lstrip().rstrip()}|{Slot(0)}]"
    parts = parse(marked)
    assert parts == ("[", (0, "s"), "|", (1, "lr"), "|", (0, ""), "]")
    assert fill(parts, ["  a  ", "\tb\t"]) == "[a|b|  a  ]"
    with pytest.raises(ValueError):
        Slot(0).strip("x")


def test_a_stray_marker_in_the_template_text_is_refused():
    assert parse("\ue000 literal" + Slot(0)) is None


def test_skeletons_follow_the_special_tokens(tokenizer, tmp_path: Path):
    """A skeleton holds the special tokens it was made with: new ones give a new skeleton."""
    template = "{{ bos_token }}{{ messages[0]['content'] }}{{ eos_token }}"
    renderer = fast(tokenizer, template)
    messages = [{"role": "user", "content": "x"}]
    assert renderer.render(messages, False, {"bos_token": "<a>", "eos_token": "</a>"}) == "<a>x</a>"
    assert renderer.render(messages, False, {"bos_token": "<b>", "eos_token": "</b>"}) == "<b>x</b>"
