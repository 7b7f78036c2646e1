"""The per-record checks of ``dataset-schema``: format, fields, roles and role order, completion JSON.

Each check returns the record's problems as ``(rule, message, field path, suggestion)`` tuples
(an empty list for a valid record); they run on every record of files with millions of lines,
so the valid case takes a fast path. :func:`fast_strict_parse` decides the clean case of a
strict-JSON completion without :func:`~sftgate.gates.adapter.json_parse.parse_strict`.
"""

from __future__ import annotations

import json
from typing import Any

from sftgate.gates.adapter.json_problem import json_type
from sftgate.gates.data.dataset_schema_rules import CONVERT_ALPACA, CONVERT_SHAREGPT
from sftgate.gates.readers.roles import STANDARD_ROLES, role_guess, unknown_role_hint

FORMATS = ("prompt_completion", "messages")
ROLES = STANDARD_ROLES  # the role policy is sftgate.gates.readers.roles, shared with the fixed cases
_STANDARD = frozenset(STANDARD_ROLES)


# --------------------------------------------------------------------------- record checks

# A problem with one record: (rule, message, field path, suggestion).
Problem = tuple[str, str, str, "str | None"]


def q(value: Any, width: int = 60) -> str:
    """A value quoted as JSON for a message, cut to ``width`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def record_format(obj: dict[str, Any]) -> str:
    """``messages``, ``prompt_completion``, ``ambiguous`` (both) or ``unknown``."""
    has_messages = "messages" in obj
    has_pc = "prompt" in obj or "completion" in obj
    if has_messages:
        return "ambiguous" if has_pc else "messages"
    return "prompt_completion" if has_pc else "unknown"


def _text_field(obj: dict[str, Any], key: str, path: str, problems: list[Problem], *,
                conversational_hint: bool = False) -> None:
    if key not in obj:
        problems.append(("missing_field", f"{path} is missing", path, None))
        return
    value = obj[key]
    if type(value) is not str:
        hint = None
        if conversational_hint and isinstance(value, list):
            hint = 'conversational data: use {"messages": [...]} with the completion as the last assistant turn'
        problems.append(("wrong_type", f"{path} is {json_type(value)} {q(value)}, expected a string", path, hint))
    elif not value or value.isspace():
        problems.append(("empty_field", f"{path} is empty: {q(value)}", path, None))


def check_prompt_completion(obj: dict[str, Any]) -> list[Problem]:
    """The problems of a prompt/completion record (an empty list when it is valid)."""
    p = obj.get("prompt")
    c = obj.get("completion")
    if type(p) is str and type(c) is str and p and c and not p.isspace() and not c.isspace():
        return []  # the fast path: nearly every record
    problems: list[Problem] = []
    _text_field(obj, "prompt", "prompt", problems, conversational_hint=True)
    _text_field(obj, "completion", "completion", problems, conversational_hint=True)
    return problems


def check_messages(obj: dict[str, Any], accepted: frozenset[str] = _STANDARD) -> list[Problem]:
    """The problems of a messages record: fields, roles, role order and the last turn.

    ``accepted`` is the role policy's set (:func:`~sftgate.gates.readers.roles.accepted_roles`): the
    standard roles plus the chat template's own; a template's own role is not part of the order check.
    """
    msgs = obj.get("messages")
    if type(msgs) is not list:
        return [("wrong_type", f"messages is {json_type(msgs)} {q(msgs)}, expected an array of messages",
                 "messages", None)]
    if not msgs:
        return [("empty_field", "messages is an empty array", "messages", None)]
    problems: list[Problem] = []
    roles: list[str | None] = []
    tool_calls: list[bool] = []
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        if type(m) is not dict:
            problems.append(("wrong_type", f"{where} is {json_type(m)} {q(m)}, expected an object", where, None))
            roles.append(None)
            tool_calls.append(False)
            continue
        role = m.get("role")
        calls = m.get("tool_calls")
        has_calls = role == "assistant" and type(calls) is list and bool(calls)
        tool_calls.append(has_calls)
        if role is None and "role" not in m:
            problems.append(("missing_field", f"{where}.role is missing", f"{where}.role", None))
            roles.append(None)
        elif type(role) is not str:
            problems.append(("wrong_type", f"{where}.role is {json_type(role)} {q(role)}, expected a string",
                             f"{where}.role", None))
            roles.append(None)
        elif role not in accepted:
            problems.append(("role_order", f"{where}.role {q(role)} is not a known role "
                             f"({unknown_role_hint(role, accepted)})", f"{where}.role", role_guess(role)))
            roles.append(None)
        else:
            roles.append(role)
        content = m.get("content")
        if type(content) is str:
            if (not content or content.isspace()) and not has_calls:
                problems.append(("empty_field", f"{where}.content is empty: {q(content)}", f"{where}.content", None))
        elif has_calls and content is None:
            pass  # an assistant tool call may have no content
        elif "content" not in m:
            problems.append(("missing_field", f"{where}.content is missing", f"{where}.content", None))
        else:
            problems.append(("wrong_type", f"{where}.content is {json_type(content)} {q(content)}, expected a string",
                             f"{where}.content", None))
    problems.extend(_role_order(roles, tool_calls))
    return problems


def _role_order(roles: list[str | None], tool_calls: list[bool]) -> list[Problem]:
    """The first role-order problem (later ones follow from it) and the last-turn check."""
    problems: list[Problem] = []
    expected: tuple[str, ...] = ("system", "user")
    for i, role in enumerate(roles):
        if role is None:  # unknown or malformed: reported above; order cannot be judged past it
            break
        if role not in _STANDARD:  # a role the chat template defines: the template orders it
            continue
        if role not in expected:
            want = " or ".join(expected)
            after = f"after {roles[i - 1]!r}" if i else "first"
            problems.append(("role_order", f"messages[{i}].role is {q(role)} {after}; expected {want}",
                             f"messages[{i}].role", expected[0] if len(expected) == 1 else None))
            break
        if role in ("system", "user"):
            expected = ("assistant",) if role == "user" else ("user",)
        elif role == "assistant":
            expected = ("tool",) if tool_calls[i] else ("user",)
        else:  # tool
            expected = ("tool", "assistant")
    last = roles[-1] if roles else None
    if last is not None and (last != "assistant" or tool_calls[-1]):
        what = "an assistant tool call" if last == "assistant" else f"a {last!r} turn"
        problems.append(("last_turn_not_assistant",
                         f"the conversation ends with {what} (messages[{len(roles) - 1}]); nothing to learn",
                         f"messages[{len(roles) - 1}]", None))
    return problems


def final_completion(obj: dict[str, Any], fmt: str) -> str | None:
    """The supervised text: ``completion``, or the content of the final assistant turn."""
    if fmt == "prompt_completion":
        c = obj.get("completion")
        return c if type(c) is str else None
    msgs = obj.get("messages")
    if type(msgs) is list and msgs:
        last = msgs[-1]
        if type(last) is dict and last.get("role") == "assistant" and type(last.get("content")) is str:
            return last["content"]  # type: ignore[no-any-return]
    return None


def unknown_format_problem(obj: dict[str, Any], fmt: str) -> Problem:
    keys = list(obj)
    shown = ", ".join(keys[:8]) + (", …" if len(keys) > 8 else "")
    if fmt == "ambiguous":
        return ("unknown_format", f"the record has both 'messages' and 'prompt'/'completion' (keys: {shown})",
                "", None)
    key_set = set(keys)
    accepted = 'accepted: {"prompt", "completion"} or {"messages": [{"role", "content"}]}'
    if {"instruction", "output"} <= key_set:
        return ("unknown_format", f"alpaca format (keys: {shown}); {accepted}", "", CONVERT_ALPACA)
    if "conversations" in key_set:
        return ("unknown_format", f"ShareGPT format (keys: {shown}); {accepted}", "", CONVERT_SHAREGPT)
    if {"chosen", "rejected"} <= key_set:
        return ("unknown_format", f"preference (DPO) data (keys: {shown}), not SFT data; {accepted}", "", None)
    if "text" in key_set:
        return ("unknown_format", f"plain text (keys: {shown}) has no prompt to condition on; {accepted}", "", None)
    for a, b in (("question", "answer"), ("input", "output"), ("query", "response"), ("source", "target")):
        if {a, b} <= key_set:
            return ("unknown_format", f"keys {a!r}/{b!r} (keys: {shown}); {accepted}", "",
                    f"jq -c '{{prompt: .{a}, completion: .{b}}}' in.jsonl > out.jsonl")
    return ("unknown_format", f"no known format (keys: {shown or 'none'}); {accepted}", "", None)


# --------------------------------------------------------------------------- completion JSON


_BIG = float(2**63)


def _count_keys(value: Any) -> int:
    """The number of object keys in ``value``, nested ones included; -1 when it holds a float of
    64-bit-integer magnitude or more (``orjson`` reads a too-large integer as a float)."""
    total = 0
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        v = pop()
        t = type(v)
        if t is dict:
            total += len(v)
            extend(v.values())
        elif t is list:
            extend(v)
        elif t is float and not -_BIG < v < _BIG:
            return -1
    return total


_UNSURE = object()
_orjson: Any = None


def fast_strict_parse(text: str) -> Any:
    """``orjson`` on the clean case, or ``_UNSURE``: the caller then asks ``parse_strict``.

    Sound because ``orjson`` accepts only RFC 8259 JSON (no NaN, no trailing text) and a duplicate
    key, which it would keep silently, is ruled out by counting: outside strings every ``:``
    separates a key from its value, so when the text has exactly as many ``:`` as the parsed
    value has keys, no key was dropped. Integers beyond 64 bits (floats to ``orjson``) are left
    to ``parse_strict`` too. Measured: 4x faster than ``parse_strict`` per completion.
    """
    global _orjson
    if not text or text[0] not in "{[" or text[-1] not in "}]":
        return _UNSURE
    if _orjson is None:
        import orjson

        _orjson = orjson
    try:
        value = _orjson.loads(text)
    except _orjson.JSONDecodeError:
        return _UNSURE
    if text.count(":") != _count_keys(value):
        return _UNSURE
    return value
