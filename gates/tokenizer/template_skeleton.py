"""Render each conversation *shape* once and paste the contents in: exact where the template only pastes them.

When :func:`~sftgate.gates.tokenizer.content_flow.content_is_pasted` proves that a chat template
only pastes message contents into its output (as they are, or stripped), the text of a
conversation is the text of its shape - the roles and keys of its messages and
``add_generation_prompt`` - with the contents filled in. :class:`Skeletons` renders a shape once
with a :class:`Slot` for every content (a marker string that records strips instead of doing
them), keeps the literal text between the slots, and fills in the contents of every later
conversation of that shape: a dictionary lookup and a join instead of running the template.

Each shape's skeleton is checked once against a full render of the conversation that first
had it; a shape whose check fails (or whose render fails, or whose text holds a marker already)
is rendered in full from then on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

OPEN, CLOSE = "\ue000", "\ue001"  # private-use characters around a slot's index
_MARK = re.compile("\ue000([0-9]+)([slr]*)\ue001")
_STRIPS = {"s": str.strip, "l": str.lstrip, "r": str.rstrip}
_KEYS = frozenset({("role", "content"), ("content", "role"), ("role",), ("content",), ()})
MAX_SHAPES = 4096  # shapes kept (roles and lengths of conversations); the cache is cleared when full

Part = str | tuple[int, str]  # literal text, or (message index, strips to apply to its content)
Render = Callable[[Sequence[dict[str, Any]], bool], "str | None"]


class Slot(str):
    """The stand-in for message ``index``'s content: a marker; ``strip``/``lstrip``/``rstrip`` (the
    only things a pasting template does to a content) give a marker that records them."""

    index: int
    ops: str

    def __new__(cls, index: int, ops: str = "") -> Slot:
        slot = super().__new__(cls, f"{OPEN}{index}{ops}{CLOSE}")
        slot.index, slot.ops = index, ops
        return slot

    def strip(self, chars: str | None = None) -> Slot:  # type: ignore[override]
        return self._then("s", chars)

    def lstrip(self, chars: str | None = None) -> Slot:  # type: ignore[override]
        return self._then("l", chars)

    def rstrip(self, chars: str | None = None) -> Slot:  # type: ignore[override]
        return self._then("r", chars)

    def _then(self, op: str, chars: str | None) -> Slot:
        if chars is not None:
            raise ValueError("a strip of given characters is not recorded")
        return Slot(self.index, self.ops + op)


def shape_of(messages: Sequence[dict[str, Any]], add_generation_prompt: bool) -> tuple[Any, ...] | None:
    """The key of a conversation's skeleton, or ``None`` when a message has keys other than role and content."""
    shape: list[Any] = [add_generation_prompt]
    for message in messages:
        keys = tuple(message)
        if keys not in _KEYS:
            return None
        shape.append((message.get("role"), keys))
    return tuple(shape)


def parse(marked: str) -> tuple[Part, ...] | None:
    """The literal texts and slots of a render with :class:`Slot` contents (``None``: a stray marker)."""
    parts: list[Part] = []
    pos = 0
    for match in _MARK.finditer(marked):
        if match.start() > pos:
            parts.append(marked[pos:match.start()])
        parts.append((int(match.group(1)), match.group(2)))
        pos = match.end()
    parts.append(marked[pos:])
    if any(type(p) is str and (OPEN in p or CLOSE in p) for p in parts):
        return None
    return tuple(parts)


def fill(parts: tuple[Part, ...], contents: Sequence[Any]) -> str:
    """The text of a skeleton with ``contents`` (by message index) pasted in."""
    out: list[str] = []
    for part in parts:
        if type(part) is str:
            out.append(part)
            continue
        index, ops = part  # type: ignore[misc]
        value = contents[index]
        for op in ops:
            value = _STRIPS[op](value)
        out.append(value)
    return "".join(out)


class Skeletons:
    """Skeletons of one template, for one set of template variables (:meth:`clear` when they change)."""

    def __init__(self, render: Render) -> None:
        self._render = render  # the full render of a conversation: text, or None for the slow path
        self._shapes: dict[tuple[Any, ...], tuple[Part, ...] | None] = {}

    def clear(self) -> None:
        self._shapes.clear()

    def render(self, messages: Sequence[dict[str, Any]], add_generation_prompt: bool) -> str | None:
        """The text of ``messages`` (plain dicts of strings), from its shape's skeleton where there is one."""
        shape = shape_of(messages, add_generation_prompt)
        if shape is None:
            return self._render(messages, add_generation_prompt)
        try:
            parts = self._shapes[shape]
        except KeyError:
            return self._learn(shape, messages, add_generation_prompt)
        if parts is None:
            return self._render(messages, add_generation_prompt)
        return fill(parts, [m.get("content") for m in messages])

    def _learn(self, shape: tuple[Any, ...], messages: Sequence[dict[str, Any]], add_generation_prompt: bool) -> str | None:
        text = self._render(messages, add_generation_prompt)
        slotted = [{k: Slot(i) if k == "content" else v for k, v in m.items()} for i, m in enumerate(messages)]
        marked = self._render(slotted, add_generation_prompt) if text is not None else None
        parts = parse(marked) if marked is not None else None
        contents = [m.get("content") for m in messages]
        if parts is not None and fill(parts, contents) != text:
            parts = None
        if len(self._shapes) >= MAX_SHAPES:
            self._shapes.clear()
        self._shapes[shape] = parts
        return text
