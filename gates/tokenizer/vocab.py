"""Which tokens a fine-tune relies on, and which the base model cannot know: for the embeddings gate.

- :func:`template_tokens`: the control tokens the chat template writes (a system / user /
  assistant probe rendered with the training code path, :func:`~sftgate.gates.tokenizer.rendering.encode_example`),
  plus what a prompt/completion example gets (BOS, EOS);
- :func:`data_tokens`: the special and added tokens whose strings occur in the training data's
  text (one regular expression over every text field: the data is read once, never tokenized);
- :func:`tokens_beyond`: tokenizer ids with no embedding row (``id >= rows``);
- :func:`new_tokens`: tokens of the training tokenizer that the base model's own tokenizer lacks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.tokenizer.end_of_turn import special_ids
from sftgate.gates.tokenizer.prompt_spec import PROBE_ASSISTANT, PROBE_SYSTEM, PROBE_USER, PromptSpec

CHAT_PROBES = (
    [{"role": "system", "content": PROBE_SYSTEM}, {"role": "user", "content": PROBE_USER},
     {"role": "assistant", "content": PROBE_ASSISTANT}],
    [{"role": "user", "content": PROBE_USER}, {"role": "assistant", "content": PROBE_ASSISTANT}],
)


def token_names(tokenizer: Any) -> dict[int, str]:
    """id -> string of every special and added token (the control tokens a template or data can use)."""
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    names = {int(i): str(getattr(t, "content", t)) for i, t in decoder.items()}
    for i in special_ids(tokenizer):
        if i not in names:
            names[i] = str(tokenizer.convert_ids_to_tokens(i))
    return {i: s for i, s in names.items() if s.strip()}


def template_tokens(tokenizer: Any, spec: PromptSpec, *, chat: bool = True, plain: bool = True) -> dict[int, str]:
    """Special tokens a rendered training example holds: the chat template's, and BOS/EOS of
    prompt/completion examples: ``{id: where it comes from}``."""
    from sftgate.gates.tokenizer.rendering import RenderError, chat_template_text, encode_example

    specials = special_ids(tokenizer)
    found: dict[int, str] = {}
    if chat and chat_template_text(tokenizer, spec) is not None:
        for messages in CHAT_PROBES:  # a template may refuse a system message
            try:
                ids = encode_example(tokenizer, {"messages": messages}, spec).input_ids
            except (RenderError, ValueError, TypeError):
                continue
            found.update((i, "the chat template") for i in ids if i in specials)
            break
    if plain:
        try:
            ids = encode_example(tokenizer, {"prompt": PROBE_USER, "completion": PROBE_ASSISTANT}, spec).input_ids
        except (RenderError, ValueError, TypeError):
            ids = []
        for i in ids:
            if i in specials:
                found.setdefault(i, "prompt/completion examples")
    return found


@dataclass
class DataTokens:
    """Special and added tokens found in the training data's text."""

    records: int = 0
    chat: int = 0
    plain: int = 0
    counts: Counter[int] = field(default_factory=Counter)
    first_line: dict[int, int] = field(default_factory=dict)


def data_tokens(tokenizer: Any, data: str | Path, *, max_records: int | None = None) -> DataTokens:
    """Which special/added token strings occur in the records of ``data`` (and where first)."""
    from sftgate.gates.readers.tokenizer_io import iter_records

    names = token_names(tokenizer)
    by_text: dict[str, int] = {}
    for i, text in sorted(names.items()):
        by_text.setdefault(text, i)
    pattern = re.compile("|".join(re.escape(t) for t in sorted(by_text, key=len, reverse=True))) if by_text else None
    out = DataTokens()
    for line, record in iter_records(data):
        if max_records is not None and out.records >= max_records:
            break
        out.records += 1
        if isinstance(record.get("messages"), list) or isinstance(record.get("prompt"), list):
            out.chat += 1
        else:
            out.plain += 1
        if pattern is None:
            continue
        for text in _texts(record):
            for match in pattern.finditer(text):
                token = by_text[match.group(0)]
                out.counts[token] += 1
                out.first_line.setdefault(token, line)
    return out


def _texts(value: Any) -> Iterator[str]:
    """Every string in a record (message contents, prompt, completion), depth-first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def tokens_beyond(tokenizer: Any, rows: int) -> list[tuple[int, str]]:
    """Tokenizer ids that have no embedding row (``id >= rows``), with their strings."""
    size = len(tokenizer)
    if size <= rows:
        return []
    ids = list(range(rows, size))
    return list(zip(ids, [str(t) for t in tokenizer.convert_ids_to_tokens(ids)], strict=True))


def new_tokens(tokenizer: Any, base_tokenizer: Any) -> list[tuple[int, str]]:
    """Tokens of ``tokenizer`` that ``base_tokenizer`` lacks (added for the fine-tune), by string."""
    known = base_tokenizer.get_vocab()
    return sorted((i, t) for t, i in tokenizer.get_vocab().items() if t not in known)
