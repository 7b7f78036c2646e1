"""Mapping jsonschema errors to the named strict-JSON rules, each with the JSON path of the value.

The table of rules and keywords is in :mod:`sftgate.gates.adapter.output_schema`; an
``anyOf``/``oneOf`` takes the rule of its best-matching branch when it has one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sftgate.gates.adapter import schema_regex
from sftgate.gates.adapter.json_problem import JsonProblem, format_path, json_type, short
from sftgate.gates.frame.core import InputError

__all__ = ["map_error"]

_RANGE = {
    "minimum": "is below the minimum {limit}",
    "maximum": "is above the maximum {limit}",
    "exclusiveMinimum": "is not above the exclusive minimum {limit}",
    "exclusiveMaximum": "is not below the exclusive maximum {limit}",
    "multipleOf": "is not a multiple of {limit}",
    "minLength": "is shorter than minLength {limit} (length {size})",
    "maxLength": "is longer than maxLength {limit} (length {size})",
    "minItems": "has fewer than minItems {limit} items ({size})",
    "maxItems": "has more than maxItems {limit} items ({size})",
    "minProperties": "has fewer than minProperties {limit} keys ({size})",
    "maxProperties": "has more than maxProperties {limit} keys ({size})",
}


def map_error(error: Any, exact_keys: bool) -> Iterator[JsonProblem]:
    """The named problems of one jsonschema error (one per key for ``required``, ``additionalProperties``)."""
    keyword = error.validator
    parts = list(error.absolute_path)
    path = format_path(parts)
    instance = error.instance
    value = error.validator_value
    if "propertyNames" in error.absolute_schema_path:
        yield JsonProblem(
            "unexpected_key",
            f"the key {short(instance)} is not an allowed key name",
            None,
            path,
            {"key": instance, "keyword": "propertyNames"},
        )
        return
    if keyword in ("required", "dependentRequired") and isinstance(instance, dict):
        if keyword == "required":
            wanted = value if isinstance(value, list) else []
        else:
            wanted = [k for trigger, deps in value.items() if trigger in instance for k in deps]
        for key in wanted:
            if key not in instance:
                yield JsonProblem(
                    "missing_key",
                    f"missing required key {short(key)}",
                    None,
                    format_path([*parts, key]),
                    {"key": key, "keyword": keyword, "present": sorted(instance)[:20]},
                )
        return
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        extras = (
            [k for k in instance if k not in allowed and not any(_search(p, k) for p in patterns)]
            if keyword == "additionalProperties"
            else _unevaluated(error.message, instance)
        )
        why = " (exact keys)" if exact_keys else ""
        for key in extras:
            yield JsonProblem(
                "unexpected_key",
                f"unexpected key {short(key)}{why}; allowed: {short(allowed, 120)}",
                None,
                format_path([*parts, key]),
                {"key": key, "allowed": allowed[:20], "keyword": keyword},
            )
        return
    if keyword == "type":
        expected = value if isinstance(value, list) else [value]
        yield JsonProblem(
            "type_mismatch",
            f"expected {' or '.join(map(str, expected))}, found {json_type(instance)} {short(instance)}",
            None,
            path,
            {"expected": expected, "found": json_type(instance), "value": short(instance)},
        )
        return
    if keyword in _RANGE:
        size = len(instance) if isinstance(instance, str | list | dict) else None
        shown = f"{json_type(instance)} {short(instance)}" if size is not None else short(instance)
        detail = f"{shown} " + _RANGE[keyword].format(limit=value, size=size)
        yield JsonProblem(
            "range_mismatch",
            detail,
            None,
            path,
            {"keyword": keyword, "limit": value, "value": short(instance)},
        )
        return
    if keyword == "enum":
        yield JsonProblem(
            "enum_mismatch",
            f"{short(instance)} is not one of {short(value, 120)}",
            None,
            path,
            {"keyword": "enum", "allowed": list(value)[:20], "value": short(instance)},
        )
        return
    if keyword == "const":
        yield JsonProblem(
            "enum_mismatch",
            f"{short(instance)} is not the constant {short(value)}",
            None,
            path,
            {"keyword": "const", "allowed": [value], "value": short(instance)},
        )
        return
    if keyword in ("anyOf", "oneOf") and error.context:
        from jsonschema.exceptions import best_match

        best = best_match(error.context)
        inner = list(map_error(best, exact_keys)) if best is not None else []
        if inner and inner[0].rule != "schema_mismatch":
            first = inner[0]
            yield JsonProblem(
                first.rule,
                f"{first.detail} (no {keyword} branch matches)",
                None,
                first.path,
                {**first.evidence, "via": keyword},
            )
            return
    if keyword is None or keyword is False:  # the false schema: nothing is allowed here
        detail = "no value is allowed here (the schema is false)"
        rule = "unexpected_key" if parts and isinstance(parts[-1], str) else "schema_mismatch"
        yield JsonProblem(rule, detail, None, path, {"keyword": "false"})
        return
    message = error.message if len(error.message) <= 200 else error.message[:199] + "…"
    yield JsonProblem(
        "schema_mismatch", message, None, path, {"keyword": str(keyword), "value": short(instance)}
    )


def _search(pattern: str, key: str) -> bool:
    try:
        return schema_regex.search(pattern, key)  # bounded in time
    except schema_regex.PatternTimeout:
        raise
    except InputError:  # not a valid pattern
        return False


def _unevaluated(message: str, instance: dict[str, Any]) -> list[str]:
    """The keys an ``unevaluatedProperties`` error names, read back from its message."""
    named = [k for k in instance if repr(k) in message]
    return named or ["<unevaluated>"]
