"""Generation records of the gate ``strict-json``: :class:`OutputRecord`, stop reasons, outputs-file lines.

One line of an outputs JSONL file is read by :func:`parse_output_line` into an
:class:`OutputRecord`, or into an ``invalid_output_line`` finding when it is not a generation record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from sftgate.gates.adapter.json_problem import json_type, short
from sftgate.gates.adapter.strict_json_rules import R
from sftgate.gates.frame.core import Finding
from sftgate.gates.readers.cases import MISSING

__all__ = ["OutputRecord", "normalize_stop_reason", "parse_output_line"]

_STOP_SYNONYMS = {
    "eos": "eos", "stop": "eos", "eos_token": "eos", "stop_sequence": "eos", "end_turn": "eos",
    "length": "length", "max_tokens": "length", "max_length": "length", "max_new_tokens": "length",
}  # fmt: skip


@dataclass
class OutputRecord:
    """One generation: the raw ``output`` text of case ``id``, how it stopped, what was expected."""

    id: str
    output: str
    stop_reason: str | None = None
    expected: Any = MISSING
    line: int | None = None


def normalize_stop_reason(value: Any) -> str | None:
    """``"stop"``/``"eos_token"``/... -> ``"eos"``; ``"max_tokens"``/... -> ``"length"``; else as given."""
    if value is None:
        return None
    hit = _STOP_SYNONYMS.get(value)
    if hit is not None:
        return hit
    text = str(value).strip().lower()
    return _STOP_SYNONYMS.get(text, text)



_LONG_DIGITS = re.compile(r"[0-9]{19}")


def _strict_record(text: str) -> Any:
    """``json`` as the second opinion on a line orjson refused (integers beyond 64 bits...)."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        return exc


def _has_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_output_line(text: str, n: int, source: str) -> OutputRecord | Finding:
    """One line of an outputs file: an :class:`OutputRecord`, or an ``invalid_output_line`` finding."""
    try:
        record = orjson.loads(text)
        if (
            isinstance(record, dict)
            and "expected" in record
            and _LONG_DIGITS.search(text)
            and _has_float(record["expected"])
        ):
            record = _strict_record(text)  # orjson turns integers beyond 64 bits into floats: read it exactly
    except ValueError:
        record = _strict_record(text)
    except RecursionError as too_deep:
        record = too_deep
    if isinstance(record, BaseException):
        why = (str(record) or type(record).__name__).splitlines()[0][:120]
        return R["invalid_output_line"].finding(
            f"line {n} is not valid JSON ({why}): {text[:60]!r}",
            f"{source}:{n}",
            evidence={"line": text[:200]},
            line=n,
        )
    if not isinstance(record, dict):
        return R["invalid_output_line"].finding(
            f"line {n} is a JSON {json_type(record)}, not an object: {text[:60]!r}",
            f"{source}:{n}",
            evidence={"line": text[:200]},
            line=n,
        )
    output = record.get("output")
    case_id = record.get("id", f"line-{n}")
    if isinstance(case_id, bool) or not isinstance(case_id, str | int):
        return R["invalid_output_line"].finding(
            f"line {n}: 'id' must be a string, found {short(case_id)}",
            f"{source}:{n}",
            evidence={"keys": sorted(record)[:20]},
            line=n,
        )
    if not isinstance(output, str):
        found = "no 'output' key" if "output" not in record else f"'output' is a {json_type(output)}"
        return R["invalid_output_line"].finding(
            f"line {n} (case {str(case_id)!r}): {found}; the raw generated text goes in 'output' as a string",
            f"{source}:{n}",
            evidence={"case": str(case_id), "keys": sorted(record)[:20]},
            line=n,
        )
    reason = record.get("stop_reason", record.get("finish_reason"))
    if reason is not None and not isinstance(reason, str):
        return R["invalid_output_line"].finding(
            f'line {n} (case {str(case_id)!r}): \'stop_reason\' must be a string such as "eos" or "length", '
            f"found {short(reason)}",
            f"{source}:{n}",
            evidence={"case": str(case_id)},
            line=n,
        )
    return OutputRecord(
        id=str(case_id),
        output=output,
        stop_reason=reason,
        expected=record.get("expected", MISSING),
        line=n,
    )
