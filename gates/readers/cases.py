"""Fixed evaluation cases: the prompts a fine-tune is judged on, one JSON object per line.

A case is ``{"id": "c1", "prompt": "..."}`` or ``{"id": "c1", "messages": [{"role": "user",
"content": "..."}]}``, with an optional ``"expected"`` value the parsed output must equal
(``value_mismatch`` otherwise; ``"expected": null`` expects ``null``). Blank lines are skipped.

Bad input is an :class:`~sftgate.gates.frame.core.InputError` naming ``FILE:LINE``: a missing file, a line
that is not a JSON object, a case without an id or with both or neither of prompt and
messages, a duplicate id, a role the role policy does not accept (:mod:`sftgate.gates.readers.roles`:
the standard roles plus the chat template's own, the same policy as for training data).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers import textfile
from sftgate.gates.readers.roles import accepted_roles, unknown_role_hint

__all__ = ["MISSING", "FixedCase", "load_cases", "read_jsonl_lines"]


class _Missing:
    """The sentinel for "no expected value" (``None`` is a legitimate expected value: null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_EXAMPLE = '{"id": "c1", "prompt": "Extract the name", "expected": {"name": "Ada"}}'


@dataclass
class FixedCase:
    id: str
    prompt: str | None
    messages: list[dict[str, Any]] | None
    expected: Any = MISSING
    line: int = 0

    @property
    def has_expected(self) -> bool:
        return self.expected is not MISSING

    def as_example(self) -> dict[str, Any]:
        """The case as a dataset example for prompt rendering: ``{"prompt": ...}`` or ``{"messages": [...]}``."""
        if self.messages is not None:
            return {"messages": [dict(m) for m in self.messages]}
        return {"prompt": self.prompt}


def read_jsonl_lines(path: str | Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of every non-blank line; InputError when the file cannot be read."""
    p = Path(path)
    text = textfile.read_text(p, display=str(path), expected="a JSONL file (one JSON object per line)")
    return [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]


def iter_jsonl_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """:func:`read_jsonl_lines`, streamed: one line in memory at a time (a file of a million outputs
    stays out of memory); invalid UTF-8 raises :class:`InputError` naming the line."""
    shown = str(path)
    expected = "a JSONL file (one JSON object per line)"
    try:
        with textfile.open_input(path, display=shown, expected=expected) as handle:
            for n, raw in enumerate(handle, start=1):
                if n == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM, as utf-8-sig drops it
                    raw = raw[3:]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(f"{shown}:{n}: not UTF-8 text ({exc.reason})", hint="save the file as UTF-8") from None
                if line.strip():
                    yield n, line[:-1] if line.endswith("\n") else line
    except OSError as exc:
        raise textfile.os_problem(exc, shown, expected) from None


def count_jsonl_lines(path: str | Path) -> int:
    """How many lines :func:`iter_jsonl_lines` gives (a pass over the file, nothing kept)."""
    return sum(1 for _ in iter_jsonl_lines(path))


def load_cases(path: str | Path, *, roles: Iterable[str] | None = None) -> list[FixedCase]:
    """Read and validate a fixed-cases JSONL file (see the module docstring).

    ``roles``: the accepted roles (:func:`~sftgate.gates.readers.roles.accepted_roles` of the chat
    template that renders the cases); default: the standard roles.
    """
    accepted = frozenset(roles) if roles is not None else accepted_roles()
    cases: list[FixedCase] = []
    first_line: dict[str, int] = {}
    for n, text in read_jsonl_lines(path):
        case = _parse_case(path, n, text, accepted)
        if case.id in first_line:
            raise InputError(
                f"{path}:{n}: duplicate case id {case.id!r} (first on line {first_line[case.id]})",
                hint="give every case a unique id: results are reported per id",
            )
        first_line[case.id] = n
        cases.append(case)
    if not cases:
        raise InputError(f"{path}: no cases (the file is empty)", hint=f"one case per line, e.g. {_EXAMPLE}")
    return cases


def _parse_case(path: str | Path, n: int, text: str, accepted: frozenset[str]) -> FixedCase:
    where = f"{path}:{n}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where}: not valid JSON ({exc.msg}, column {exc.colno})",
            hint=f"one JSON object per line, e.g. {_EXAMPLE}",
        ) from None
    except RecursionError:
        raise InputError(f"{where}: not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise InputError(f"{where}: not valid JSON ({exc})", hint="write such a number as a string") from None
    if "\\u" in text and _lone_surrogate(record):
        raise InputError(f"{where}: a lone UTF-16 surrogate escape (\\udXXX) is not valid Unicode",
                         hint="escape the character as a pair (\\ud83d\\ude00), or write it as UTF-8")
    if not isinstance(record, dict):
        raise InputError(
            f"{where}: a case must be a JSON object, found {type(record).__name__}", hint=f"e.g. {_EXAMPLE}"
        )
    case_id = record.get("id")
    if isinstance(case_id, bool) or not isinstance(case_id, str | int) or str(case_id).strip() == "":
        raise InputError(
            f"{where}: the case has no id (found {json.dumps(case_id)})",
            hint='add a unique "id" string to every case',
        )
    has_prompt, has_messages = "prompt" in record, "messages" in record
    if has_prompt == has_messages:
        which = "both" if has_prompt else "neither"
        raise InputError(
            f"{where}: case {case_id!r} has {which} of 'prompt' and 'messages'",
            hint="give exactly one: a prompt string, or a list of chat messages",
        )
    prompt = messages = None
    if has_prompt:
        prompt = record["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(
                f"{where}: case {case_id!r}: 'prompt' must be a non-empty string", hint=f"e.g. {_EXAMPLE}"
            )
    else:
        messages = _messages(where, case_id, record["messages"], accepted)
    return FixedCase(
        id=str(case_id),
        prompt=prompt,
        messages=messages,
        expected=record.get("expected", MISSING),
        line=n,
    )


def _messages(where: str, case_id: Any, value: Any, accepted: frozenset[str]) -> list[dict[str, Any]]:
    hint = 'e.g. "messages": [{"role": "user", "content": "Extract the name"}]'
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: case {case_id!r}: 'messages' must be a non-empty list", hint=hint)
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise InputError(f"{where}: case {case_id!r}: messages[{i}] is not an object", hint=hint)
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or role not in accepted:
            raise InputError(
                f"{where}: case {case_id!r}: messages[{i}].role is {json.dumps(role)}",
                hint=unknown_role_hint(role if isinstance(role, str) else "", accepted),
            )
        if not isinstance(content, str):
            raise InputError(f"{where}: case {case_id!r}: messages[{i}].content must be a string", hint=hint)
    return value


def _lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (keys too) holds a lone surrogate (``"\\ud800"``)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isprintable() and any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
