"""Learn each chat template's turn markers from probe renderings, through the tokenizer's own template.

:func:`learn_markers` renders probe conversations (user / assistant / user / assistant, with a
system turn, with a tool turn) through the chat template, tokenizes them exactly as a trainer does
(``add_special_tokens=False``, offsets to find each message's text), and keeps the ids written
before each message: the user header is what the two user turns have in common at their end, the
assistant header is the generation prompt (else what both assistant turns share), the system and
tool headers are what is left of their prefix once the conversation start or the assistant's
closing tokens are removed. The markers are then checked on another conversation: found where the
roles really are, or not used at all (:attr:`TurnMarkers.problem` says why).

Without a chat template there are no roles, and EOS ends each example (plain prompt/completion).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from sftgate.gates.tokenizer.end_of_turn import end_of_turn_ids
from sftgate.gates.tokenizer.prompt_spec import PromptSpec, RenderError, chat_template_text, template_hash
from sftgate.gates.tokenizer.template_rendering import apply_template
from sftgate.gates.tokenizer.turn_regions import (
    ASSISTANT,
    ASSISTANT_TEXT,
    PROMPT_HEADER,
    PROMPT_TEXT,
    TurnMarkers,
    classify,
)

PROBES = {
    "system": "Qzvprobe system kilo",
    "user": "Qzvprobe user lima",
    "user2": "Qzvprobe user mike",
    "assistant": "Qzvprobe assistant november",
    "assistant2": "Qzvprobe assistant oscar",
    "tool": "Qzvprobe tool papa",
}
# The check conversation: other words, digits, punctuation and a newline inside the texts.
CHECK = (
    ("user", "What is 2 + 2? Answer briefly."),
    ("assistant", "4, of course.\nAnything else?"),
    ("user", "Yes: name three colours!"),
    ("assistant", "Red, green and blue."),
)

_CACHE: weakref.WeakKeyDictionary[Any, dict[Any, TurnMarkers]] = weakref.WeakKeyDictionary()


def learn_markers(tokenizer: Any, spec: PromptSpec | None = None) -> TurnMarkers:
    """The turn markers of the chat template of ``spec`` (or the tokenizer's); memoised per tokenizer."""
    spec = spec or PromptSpec()
    template = chat_template_text(tokenizer, spec)
    key = (template_hash(template), spec.template_kwargs if hasattr(spec, "template_kwargs") else ())
    try:
        cache = _CACHE.setdefault(tokenizer, {})
    except TypeError:  # not weak-referenceable: no memo
        cache = {}
    if key not in cache:
        cache[key] = _learn(tokenizer, spec, template)
    return cache[key]


def _learn(tokenizer: Any, spec: PromptSpec, template: str | None) -> TurnMarkers:
    eos = _int(getattr(tokenizer, "eos_token_id", None))
    bos = _int(getattr(tokenizer, "bos_token_id", None))
    eot = tuple(end_of_turn_ids(tokenizer, spec))
    if template is None:
        return TurnMarkers(end_of_turn=eot, bos_id=bos, eos_id=eos, problem="the tokenizer has no chat template")
    spec = PromptSpec(chat_template=template, template_kwargs=getattr(spec, "template_kwargs", ()))
    base = [("user", PROBES["user"]), ("assistant", PROBES["assistant"]),
            ("user", PROBES["user2"]), ("assistant", PROBES["assistant2"])]
    try:
        gaps, ids = _gaps(tokenizer, spec, base)
    except (RenderError, _NoOffsets) as exc:
        return TurnMarkers(end_of_turn=eot, problem=f"the probe conversation cannot be read: {exc}")
    user = _common_suffix(gaps[0], gaps[2])
    prefix = gaps[0][: len(gaps[0]) - len(user)]
    closer = gaps[2][: len(gaps[2]) - len(user)]
    user = _strip_spaces(tokenizer, user)
    assistant = _strip_spaces(tokenizer, _assistant_header(tokenizer, spec, gaps[1], gaps[3]))
    headers: dict[str, tuple[int, ...]] = {"user": user, ASSISTANT: assistant}
    system = _single_header(tokenizer, spec, [("system", PROBES["system"]), *base[:2]], 0, prefix)
    tool = _single_header(tokenizer, spec, [*base[:2], ("tool", PROBES["tool"]), base[3]], 2, closer)
    for role, found in (("system", system), ("tool", tool)):
        if found and found not in headers.values():
            headers[role] = found
    end_set = set(eot)
    cut = next((i + 1 for i, t in enumerate(closer) if t in end_set), len(closer))
    after = tuple(t for t in closer[cut:] if t not in end_set)
    markers = TurnMarkers(
        headers=tuple(headers.items()),
        end_of_turn=eot,
        after_end=tuple(dict.fromkeys(after)),
        bos_id=bos if bos is not None and bos != eos and (bos not in ids or (ids.count(bos) == 1 and ids[0] == bos)) else None,
        eos_id=eos if eos is not None and (eos not in ids or (ids.count(eos) == 1 and eos in ids[-3:])) else None,
    )
    if not user or not assistant:
        return _without_roles(markers, "the template writes no header before the user or the assistant turns")
    problem = _check(tokenizer, spec, markers)
    return _without_roles(markers, problem) if problem else markers


def _without_roles(markers: TurnMarkers, problem: str) -> TurnMarkers:
    return TurnMarkers(end_of_turn=markers.end_of_turn, after_end=markers.after_end, bos_id=markers.bos_id,
                       eos_id=markers.eos_id, problem=problem)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _NoOffsets(Exception):
    """The tokenizer gives no character offsets (a slow tokenizer)."""


def _encode_with_offsets(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise _NoOffsets(f"no character offsets from this tokenizer ({type(exc).__name__})") from None
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def _render(tokenizer: Any, spec: PromptSpec, turns: list[tuple[str, str]], generation: bool = False) -> str:
    return apply_template(tokenizer, [{"role": r, "content": c} for r, c in turns], spec, add_generation_prompt=generation)


def _gaps(tokenizer: Any, spec: PromptSpec, turns: list[tuple[str, str]]) -> tuple[list[tuple[int, ...]], list[int]]:
    """For each message, the ids written between the previous message's text and its own."""
    text = _render(tokenizer, spec, turns)
    ids, offsets = _encode_with_offsets(tokenizer, text)
    gaps: list[tuple[int, ...]] = []
    char = tok = 0
    for role, content in turns:
        start = text.find(content, char)
        if start < 0:
            raise RenderError(f"the template does not write the {role} message's text")
        end = start + len(content)
        first = tok
        while tok < len(ids) and offsets[tok][1] <= start:
            tok += 1
        gaps.append(tuple(ids[first:tok]))
        while tok < len(ids) and offsets[tok][0] < end:
            tok += 1
        char = end
    return gaps, ids


def _common_suffix(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    return a[len(a) - n:] if n else ()


def _assistant_header(tokenizer: Any, spec: PromptSpec, gap1: tuple[int, ...], gap2: tuple[int, ...]) -> tuple[int, ...]:
    """The generation prompt's ids when both assistant gaps end with them, else their common suffix."""
    shared = _common_suffix(gap1, gap2)
    turns = [("user", PROBES["user"])]
    try:
        with_prompt = _render(tokenizer, spec, turns, generation=True)
        without = _render(tokenizer, spec, turns, generation=False)
    except RenderError:
        return shared
    if with_prompt.startswith(without) and len(with_prompt) > len(without):
        ids, _ = _encode_with_offsets(tokenizer, with_prompt[len(without):])
        header = _strip_spaces(tokenizer, tuple(ids))
        # A template may write more after the header in one of the turns (an empty <think></think>).
        ends_one = any(g[len(g) - len(header):] == header for g in (gap1, gap2))
        if header and ends_one and all(_contains(g, header) for g in (gap1, gap2)):
            return header
    return shared


def _contains(seq: tuple[int, ...], part: tuple[int, ...]) -> bool:
    return any(seq[i:i + len(part)] == part for i in range(len(seq) - len(part) + 1))


def _strip_spaces(tokenizer: Any, header: tuple[int, ...]) -> tuple[int, ...]:
    """Drop trailing space-only tokens: the space before a message's text joins its first word."""
    while header:
        text = tokenizer.decode([header[-1]])
        if text.strip(" \t") or "\n" in text or (not text and tokenizer.convert_ids_to_tokens(header[-1]) != "▁"):
            break
        header = header[:-1]
    return header


def _single_header(tokenizer: Any, spec: PromptSpec, turns: list[tuple[str, str]], index: int,
                   before: tuple[int, ...]) -> tuple[int, ...]:
    """The header of the one ``index``-th message of ``turns``: its gap without ``before``."""
    try:
        gaps, _ = _gaps(tokenizer, spec, turns)
    except (RenderError, _NoOffsets):
        return ()  # the template refuses this role, or does not write its text
    gap = gaps[index]
    return _strip_spaces(tokenizer, gap[len(before):] if gap[: len(before)] == before else gap)


def _check(tokenizer: Any, spec: PromptSpec, markers: TurnMarkers) -> str | None:
    """None when the markers find the roles of :data:`CHECK` exactly, else what went wrong."""
    try:
        text = _render(tokenizer, spec, list(CHECK))
        ids, offsets = _encode_with_offsets(tokenizer, text)
    except (RenderError, _NoOffsets) as exc:
        return f"the check conversation cannot be read: {exc}"
    zero = np.zeros(1, dtype=np.int64)
    region = classify(np.asarray(ids, dtype=np.int64), zero, zero, markers)
    char = 0
    for role, content in CHECK:
        start = text.find(content, char)
        end = start + len(content)
        char = end
        inside = [i for i, (a, b) in enumerate(offsets) if a < end and b > start and b > a]
        want = (ASSISTANT_TEXT,) if role == ASSISTANT else (PROMPT_TEXT, PROMPT_HEADER)
        if not inside or any(int(region[i]) not in want for i in inside):
            return f"the learned turn markers do not find the {role} turn of a check conversation"
    return None
