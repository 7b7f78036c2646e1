"""Which tokens end an assistant turn under a chat template, found by rendering probe conversations.

:func:`turn_probe` renders user/assistant probes (:data:`~sftgate.gates.tokenizer.prompt_spec.PROBE_USER`
and friends) and records what the template writes around the assistant's text;
:func:`end_of_turn_ids` is the special tokens after the final assistant turn, plus EOS.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from sftgate.gates.tokenizer.prompt_spec import (
    PROBE_ASSISTANT,
    PROBE_SYSTEM,
    PROBE_USER,
    PROBE_USER_2,
    PromptSpec,
    RenderError,
    chat_template_text,
    template_hash,
)
from sftgate.gates.tokenizer.template_rendering import apply_template
from sftgate.gates.tokenizer.token_encoding import encode_texts


@dataclass(frozen=True)
class TurnProbe:
    """What a chat template does around an assistant turn, found by rendering probe conversations."""

    final_tail: str  # text after the final assistant content ([user, assistant])
    final_tail_ids: tuple[int, ...]  # special/added token ids in final_tail
    closing_ids: tuple[int, ...]  # special/added ids between an assistant turn and the next user turn
    generation_header: str  # text between the prompt and the assistant content in the full rendering
    prompt_is_prefix: bool  # the rendered prompt is a prefix of the rendered full conversation
    prompt_is_prefix_with_system: bool
    error: str | None = None


_PROBES: weakref.WeakKeyDictionary[Any, dict[str | None, TurnProbe]] = weakref.WeakKeyDictionary()


def turn_probe(tokenizer: Any, spec: PromptSpec | None = None) -> TurnProbe | None:
    """Probe the chat template of ``spec`` (or the tokenizer's); ``None`` when there is none."""
    spec = spec or PromptSpec()
    template = chat_template_text(tokenizer, spec)
    if template is None:
        return None
    try:
        cache = _PROBES.setdefault(tokenizer, {})
    except TypeError:  # not weak-referenceable: no cache
        cache = {}
    key = f"{template_hash(template)}:{spec.template_kwargs}:{spec.split_special_tokens}"
    if key not in cache:
        probe_spec = PromptSpec(chat_template=template, template_kwargs=spec.template_kwargs,
                                split_special_tokens=spec.split_special_tokens)
        cache[key] = _probe(tokenizer, probe_spec)
    return cache[key]


def special_ids(tokenizer: Any) -> set[int]:
    """Ids of special and added tokens (control tokens), whitespace-only tokens excluded."""
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for index, token in decoder.items():
        content = getattr(token, "content", str(token))
        if content.strip():
            ids.add(int(index))
    return ids


def _specials_in(tokenizer: Any, text: str, specials: set[int]) -> tuple[int, ...]:
    if not text:
        return ()
    ids = encode_texts(tokenizer, [text], False)[0]
    return tuple(i for i in ids if i in specials)


def _probe(tokenizer: Any, spec: PromptSpec) -> TurnProbe:
    user = {"role": "user", "content": PROBE_USER}
    assistant = {"role": "assistant", "content": PROBE_ASSISTANT}
    user2 = {"role": "user", "content": PROBE_USER_2}
    system = {"role": "system", "content": PROBE_SYSTEM}
    try:
        prompt = apply_template(tokenizer, [user], spec, add_generation_prompt=True)
        full = apply_template(tokenizer, [user, assistant], spec, add_generation_prompt=False)
        convo = apply_template(tokenizer, [user, assistant, user2], spec, add_generation_prompt=False)
    except RenderError as exc:
        return TurnProbe("", (), (), "", True, True, error=str(exc))
    try:  # some templates (Gemma's) refuse a system role: then there is nothing to compare
        prompt_sys = apply_template(tokenizer, [system, user], spec, add_generation_prompt=True)
        full_sys = apply_template(tokenizer, [system, user, assistant], spec, add_generation_prompt=False)
    except RenderError:
        prompt_sys = full_sys = ""
    specials = special_ids(tokenizer)
    end = full.rfind(PROBE_ASSISTANT)
    final_tail = full[end + len(PROBE_ASSISTANT):] if end >= 0 else ""
    a_end = convo.find(PROBE_ASSISTANT)
    u2 = convo.find(PROBE_USER_2)
    gap = convo[a_end + len(PROBE_ASSISTANT):u2] if 0 <= a_end < u2 else ""
    # Decided on tokens, as training sees them: a special token with rstrip=True (Phi-3's) absorbs the
    # whitespace after it, so a prompt that differs from the full text only there is still a prefix.
    is_prefix = _token_prefix(tokenizer, prompt, full)
    header = ""
    if is_prefix:
        shared = len(prompt) if full.startswith(prompt) else _common_prefix(prompt, full)
        header = full[shared:end] if end >= shared else ""
    return TurnProbe(
        final_tail=final_tail,
        final_tail_ids=_specials_in(tokenizer, final_tail, specials),
        closing_ids=_specials_in(tokenizer, gap, specials),
        generation_header=header,
        prompt_is_prefix=is_prefix,
        prompt_is_prefix_with_system=not full_sys or _token_prefix(tokenizer, prompt_sys, full_sys),
    )


def _token_prefix(tokenizer: Any, prompt: str, full: str) -> bool:
    """True when the tokens of ``prompt`` are a prefix of the tokens of ``full`` (chat texts: no special tokens added)."""
    prompt_ids, full_ids = encode_texts(tokenizer, [prompt, full], False)
    return full_ids[:len(prompt_ids)] == prompt_ids


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def template_end_of_turn_ids(tokenizer: Any, spec: PromptSpec | None = None) -> list[int]:
    """The special tokens the chat template writes after the final assistant turn (no EOS added)."""
    probe = turn_probe(tokenizer, spec)
    if probe is None or probe.error:
        return []
    return list(dict.fromkeys(probe.final_tail_ids))


def end_of_turn_ids(tokenizer: Any, spec: PromptSpec | None = None) -> list[int]:
    """The token ids that end an assistant turn under the chat template, plus EOS.

    Found by rendering a user/assistant probe with the template of ``spec`` (or the
    tokenizer's) and keeping the special tokens after the assistant's text; the tokenizer's
    EOS is always included. The stop ids of ``generation_config.json`` must hold one of them.
    """
    ids = template_end_of_turn_ids(tokenizer, spec)
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int) and eos not in ids:
        ids.append(eos)
    return ids
