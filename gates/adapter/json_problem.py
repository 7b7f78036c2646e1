"""The vocabulary of a strict-JSON problem: :class:`JsonProblem`, JSON paths, type names, short quotes.

Shared by the parser (:mod:`sftgate.gates.adapter.json_parse`), the schema layer
(:mod:`sftgate.gates.adapter.output_schema`) and the strict-json gate; standard library only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JsonProblem", "format_path", "json_type", "quote", "short", "snippet"]


@dataclass(frozen=True)
class JsonProblem:
    """Why a text is not strict JSON (or, from the schema layer, not a valid value).

    ``rule`` is the rule name, ``detail`` a one-line explanation quoting the offending text,
    ``offset`` the character offset in the text where the problem was found (None when it is not
    about one place), ``path`` the JSON path of the value involved, ``evidence`` a small dict.
    """

    rule: str
    detail: str
    offset: int | None = None
    path: str = "$"
    evidence: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- paths

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


_PATH_KEEP = 8  # a path keeps its first and last 8 steps; deeper ones are elided
_KEY_WIDTH = 60


def format_path(parts: Any) -> str:
    """``["a", 0, "b c"]`` -> ``$.a[0]["b c"]``: identifiers with a dot, other keys quoted.

    Bounded: long keys are cut and a path deeper than 16 steps keeps its ends only.
    """
    parts = list(parts)
    elided = 0
    if len(parts) > 2 * _PATH_KEEP:
        elided = len(parts) - 2 * _PATH_KEEP
        parts = [*parts[:_PATH_KEEP], None, *parts[-_PATH_KEEP:]]
    out = ["$"]
    for part in parts:
        if part is None:
            out.append(f"…({elided} more)…")
        elif isinstance(part, int) and not isinstance(part, bool):
            out.append(f"[{part}]")
        else:
            key = str(part)
            if len(key) > _KEY_WIDTH:
                key = key[: _KEY_WIDTH - 1] + "…"
            if _IDENT.match(key):
                out.append(f".{key}")
            else:
                out.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(out)


# --------------------------------------------------------------------------- values


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value: ``True`` is a boolean, ``1.5`` a number."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def short(value: Any, width: int = 60) -> str:
    """A bounded JSON rendering of ``value`` for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- text


def snippet(text: str, offset: int, width: int = 40) -> str:
    return text[offset : offset + width]


def quote(text: str, offset: int, width: int = 20) -> str:
    piece = text[offset : offset + width]
    return repr(piece + ("…" if len(text) > offset + width else ""))
