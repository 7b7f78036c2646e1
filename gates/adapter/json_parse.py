"""A strict JSON parser that names the failure class instead of echoing ``json``'s message.

Standard library only, and fast on the common case: a model output that is clean JSON costs one
``json`` decode (in C) after a first-character check. Only outputs that fail take the slow path, a
structural scanner (:mod:`sftgate.gates.adapter.json_scanner`; iterative, so deep nesting cannot
blow the stack) that classifies the failure from the text's structure:

==================== ==========================================================================
rule                 the text...
==================== ==========================================================================
no_json_start        starts (after whitespace) with something that cannot start a JSON value:
                     prose, nothing at all, a byte order mark
code_fence           is wrapped in a Markdown fence (```` ``` ```` or ``~~~``, with or without a
                     language tag); reported, never silently stripped
unterminated_json    ends while a string, object, array, number or literal is still open
truncated            is unterminated and the generation hit its token limit
                     (``stop_reason="length"``): raise ``max_new_tokens`` or train EOS
trailing_text        has anything but whitespace after the first complete value
invalid_json         breaks the grammar in any other way: single quotes, trailing commas,
                     comments, unquoted keys, raw control characters in strings, bad escapes
duplicate_key        repeats a key in one object (Python's ``json`` keeps the last one silently)
non_finite_number    holds ``NaN``, ``Infinity`` or ``-Infinity`` (Python's ``json`` accepts them),
                     or a number that overflows to infinity (``1e400``: it re-serialises as
                     ``Infinity``, which is not JSON)
==================== ==========================================================================

Leading and trailing JSON whitespace (space, tab, CR, LF) is valid (RFC 8259) and passes. When
several problems coexist, the structural one wins (an unterminated object with a duplicate key is
``unterminated_json``): it is the one whose fix changes the output most.

Valid: ``{"a": 1}``, ``  [1, 2]\\n``, ``"text"``, ``null``.
Invalid: ``{'a': 1}`` (invalid_json), ``{"a": 1,}`` (invalid_json), ``{"a": 1`` (unterminated_json),
``{"a": 1} ok`` (trailing_text), ````` ```json\\n{}\\n``` ````` (code_fence), ``Sure! {}``
(no_json_start), ``{"a": 1, "a": 2}`` (duplicate_key), ``{"a": NaN}`` and ``{"a": 1e400}`` (non_finite_number).
"""

from __future__ import annotations

import json
import math
from typing import Any

from sftgate.gates.adapter.json_problem import JsonProblem, quote, snippet
from sftgate.gates.adapter.json_scanner import PYTHON_LITERALS, WORD, WS, classify

__all__ = ["RULE_NAMES", "parse_strict"]

# The rules this module can return, in the order of the gate's catalogue.
RULE_NAMES = (
    "no_json_start",
    "code_fence",
    "unterminated_json",
    "truncated",
    "trailing_text",
    "invalid_json",
    "duplicate_key",
    "non_finite_number",
)

# --------------------------------------------------------------------------- fast path

_VALUE_START = frozenset('{["-0123456789tfnNI')  # N and I: NaN / Infinity, classified later
_FENCES = ("```", "~~~")


class _NotClean(Exception):  # an internal signal to leave the fast path
    pass


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _NotClean
    return obj


def _reject_constant(name: str) -> Any:
    raise _NotClean


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: a number JSON can write that no float holds
        raise _NotClean
    return value


# The float hook (1e400 -> non_finite_number) costs about 0.06 us per float: measured 2.1 us per
# typical output before and after, 4.0 -> 4.6 us with 10 floats; a regex pre-check cost 1-3 us more.
_DECODER = json.JSONDecoder(object_pairs_hook=_pairs_hook, parse_constant=_reject_constant, parse_float=_finite_float)
# The C scanner behind ``decode``, called directly: one value from an offset, nothing else.
_scan_once = _DECODER.scan_once  # type: ignore[attr-defined]


def parse_strict(text: str, *, stop_reason: str | None = None) -> tuple[Any, JsonProblem | None]:
    """Parse ``text`` as strict JSON: ``(value, None)`` when it is, else ``(None, problem)``.

    ``stop_reason`` is the generation's stop reason (``"eos"``, ``"length"`` or None); with
    ``"length"``, JSON that is cut off is reported as ``truncated`` rather than
    ``unterminated_json``. Never raises on any ``str``.
    """
    if text and text[0] in _VALUE_START:  # the common case: no leading whitespace
        start = 0
    else:
        start = len(text) - len(text.lstrip(WS))
        if start == len(text) or text[start] not in _VALUE_START:
            return None, _bad_start(text, stop_reason)
    try:
        value, end = _scan_once(text, start)
    except StopIteration as stop:
        return None, classify(text, stop_reason, ValueError(f"Expecting value at {stop.value}"))
    except (_NotClean, ValueError, RecursionError) as exc:
        return None, classify(text, stop_reason, exc)
    if end != len(text) and text[end:].strip(WS):
        if text[end - 1] not in '}]"':  # a number or literal may continue ("01", "1. Item"): scan it
            return None, classify(text, stop_reason, ValueError("Extra data"))
        # A complete, clean container or string (no duplicate key, no NaN): what follows is trailing.
        at = end + len(text[end:]) - len(text[end:].lstrip(WS))
        return None, JsonProblem(
            "trailing_text",
            f"text after the complete JSON value: {quote(text, at)}"
            + (" (a second JSON value)" if text[at] in "{[" else ""),
            at,
            evidence={"trailing_chars": len(text) - at, "found": snippet(text, at)},
        )
    return value, None


# --------------------------------------------------------------------------- bad starts


def _bad_start(text: str, stop_reason: str | None) -> JsonProblem:
    start = len(text) - len(text.lstrip(WS))
    if start == len(text):
        what = "empty output" if not text else "only whitespace"
        return JsonProblem(
            "no_json_start", f"{what}: no JSON value at all", 0, evidence={"length": len(text)}
        )
    rest = text[start:]
    if rest.startswith(_FENCES):
        return _fence_problem(text, start, stop_reason)
    c = rest[0]
    evidence: dict[str, Any] = {"found": snippet(text, start)}
    brace = _first_of(text, "{[", start)
    if brace is not None:
        evidence["json_at"] = brace
    if c == "\ufeff":
        detail = "a byte order mark (U+FEFF) before the JSON"
    elif c == "'":
        detail = f"a single-quoted value {quote(text, start)}: JSON strings use double quotes"
    else:
        detail = f"the text starts with {quote(text, start)}, which cannot start a JSON value"
        word = WORD.match(text, start)
        if word is not None and word.group() in PYTHON_LITERALS:
            detail += f": Python's {word.group()} is JSON's {PYTHON_LITERALS[word.group()]}"
        fence = text.find("```", start)
        if fence >= 0:
            evidence["fence_at"] = fence
            detail += f"; a Markdown fence follows at offset {fence}"
        elif brace is not None:
            detail += f"; JSON starts later, at offset {brace}"
    return JsonProblem("no_json_start", detail, start, evidence=evidence)


def _fence_problem(text: str, start: int, stop_reason: str | None) -> JsonProblem:
    fence = text[start : start + 3]
    eol = text.find("\n", start)
    header = text[start + 3 : eol if eol >= 0 else len(text)].strip()
    body = text[eol + 1 :] if eol >= 0 else ""
    closing = body.rstrip(WS)
    closed = closing.endswith(fence)
    if closed:
        body = closing[: -len(fence)]
    evidence: dict[str, Any] = {"language": header[:40] or None, "closed": closed}
    if not body.strip(WS):
        evidence["inner"] = "empty"
        inner_problem = None
    elif body.lstrip(WS).startswith(_FENCES):
        evidence["inner"] = "code_fence"
        inner_problem = None
    else:
        _, inner_problem = parse_strict(body, stop_reason=stop_reason)
        evidence["inner"] = inner_problem.rule if inner_problem else "valid"
    tag = f" with language tag {header[:40]!r}" if header else ""
    detail = f"the output is wrapped in a Markdown fence {fence!r}{tag}"
    if evidence["inner"] == "valid":
        detail += "; the JSON inside is valid: remove fences from the training completions"
    elif inner_problem is not None:
        detail += f"; inside it: {inner_problem.rule}"
    return JsonProblem("code_fence", detail, start, evidence=evidence)


def _first_of(text: str, chars: str, start: int) -> int | None:
    hits = [pos for pos in (text.find(ch, start) for ch in chars) if pos >= 0]
    return min(hits) if hits else None
