"""Control-token strings inside message text, and the split-special-tokens rendering that neutralises them.

A user or assistant text that contains a special token's string (``<|im_end|>``, ``</s>``,
``[INST]``) is tokenized as the control token itself: the record's turn ends early, a second turn
starts where the data has none, and a served model obeys injected control tokens (a 64-GPU job lost
to it: PrimeIntellect-ai renderers PR #116). :func:`content_hits` finds them in one record;
:func:`mark_control_strings` is the fix: with ``prompt.split_special_tokens: true`` the rendering
marks them (transformers' ``mark_control_tokens``, as ``apply_chat_template(...,
sanitize_control_tokens=True)`` does) and :func:`encode_marked` tokenizes them as plain text, while
the control tokens the template writes itself stay control tokens.

::

    content_hits(tok, {"messages": [{"role": "user", "content": "say <|im_end|> twice"}, ...]})
    # [ContentHit(message=0, role='user', token='<|im_end|>', offset=4)]
"""

from __future__ import annotations

import contextlib
import re
import weakref
from dataclasses import dataclass
from typing import Any

MARK_START = "\U000f0000"  # transformers' private-use markers around a control token from user input
MAX_HITS = 5  # per record


@dataclass(frozen=True)
class ContentHit:
    """One control-token string inside one message of a record."""

    message: int  # index in messages
    role: str
    token: str
    offset: int  # character offset in the text


@dataclass(frozen=True)
class _Finder:
    pattern: re.Pattern[str] | None
    quick: re.Pattern[str] | None = None  # a cheap pre-filter: the tokens' first two characters, one regex


_FINDERS: weakref.WeakKeyDictionary[Any, _Finder] = weakref.WeakKeyDictionary()


def special_token_strings(tokenizer: Any) -> tuple[str, ...]:
    """The strings that tokenize as a special (control) token: the tokenizer's special tokens and its
    added tokens marked ``special``, whitespace-only ones excluded, longest first."""
    found = {t for t in (getattr(tokenizer, "all_special_tokens", None) or []) if isinstance(t, str)}
    for token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(token, "special", False):
            found.add(str(getattr(token, "content", token)))
    return tuple(sorted((t for t in found if t.strip()), key=lambda t: (-len(t), t)))


def _finder(tokenizer: Any) -> _Finder:
    try:
        found = _FINDERS.get(tokenizer)
    except TypeError:  # not weak-referenceable
        found = None
    if found is None:
        tokens = special_token_strings(tokenizer)
        pattern = re.compile("|".join(map(re.escape, tokens))) if tokens else None
        prefixes = tuple(sorted({t[:2] for t in tokens}))
        found = _Finder(pattern, re.compile("|".join(map(re.escape, prefixes))) if prefixes else None)
        with contextlib.suppress(TypeError):
            _FINDERS[tokenizer] = found
    return found


def _texts(example: dict[str, Any]) -> list[tuple[int, str, str]]:
    """``(index, role, content)`` of the messages of a chat example (none for a plain prompt)."""
    messages = example.get("messages")
    if not isinstance(messages, list):
        prompt = example.get("prompt")
        if isinstance(prompt, list):  # conversational prompt/completion
            completion = example.get("completion")
            messages = prompt + (completion if isinstance(completion, list) else [])
    if not isinstance(messages, list):
        return []  # a plain prompt is formatted by its author, control tokens included ([INST] ...)
    return [(i, str(m.get("role")), m["content"]) for i, m in enumerate(messages)
            if isinstance(m, dict) and isinstance(m.get("content"), str)]


def content_hits(tokenizer: Any, example: Any) -> list[ContentHit]:
    """The special-token strings in the text of ``example`` (at most :data:`MAX_HITS`)."""
    if not isinstance(example, dict):
        return []
    finder = _finder(tokenizer)
    if finder.pattern is None:
        return []
    hits: list[ContentHit] = []
    for index, role, text in _texts(example):
        if finder.quick is None or not finder.quick.search(text):
            continue
        for match in finder.pattern.finditer(text):
            hits.append(ContentHit(index, role, match.group(), match.start()))
            if len(hits) >= MAX_HITS:
                return hits
    return hits


def hit_evidence(hit: ContentHit) -> dict[str, Any]:
    """A hit as bounded evidence for a finding."""
    return {"field": f"messages[{hit.message}].content", "role": hit.role, "token": hit.token, "offset": hit.offset}


# --------------------------------------------------------------------------- the fix


def mark_control_strings(tokenizer: Any, template: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with every control-token string of their text wrapped in transformers' private
    markers, so that :func:`encode_marked` encodes it as text (the split-special-tokens rendering)."""
    from sftgate.gates.tokenizer.prompt_spec import RenderError

    try:
        from transformers.utils.chat_template_utils import _get_control_token_patterns, mark_control_tokens

        control = tokenizer._get_control_tokens(template)
    except (ImportError, AttributeError):
        raise RenderError(
            "prompt.split_special_tokens needs transformers' sanitize_control_tokens (transformers 5.x)"
        ) from None
    control_re, _ = _get_control_token_patterns(tuple(control))
    return mark_control_tokens(messages, control_re)  # type: ignore[no-any-return]


def is_marked(text: str) -> bool:
    """True for a text rendered from marked messages (it must go through :func:`encode_marked`)."""
    return MARK_START in text


def encode_marked(tokenizer: Any, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
    """Token ids of marked texts: marked control-token strings as text, the rest as usual."""
    out = tokenizer(texts, add_special_tokens=add_special_tokens, sanitize_control_tokens=True)["input_ids"]
    return [list(ids) for ids in out]
