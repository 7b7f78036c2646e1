"""The output schema: a JSON Schema every parsed model output must satisfy, with named failures.

jsonschema is the authority (Draft 2020-12 unless the schema's ``$schema`` names another draft).
Its errors map to the strict-JSON rules, each with the JSON path of the offending value:

===================== ===================================================================
rule                  jsonschema keywords
===================== ===================================================================
missing_key           required, dependentRequired
unexpected_key        additionalProperties / unevaluatedProperties false, propertyNames;
                      also every object schema with ``properties`` when ``exact_keys`` is
                      set, even though the schema forgot ``additionalProperties: false``
type_mismatch         type (``true`` is not an integer, ``31.5`` is not one either)
range_mismatch        minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf,
                      minLength, maxLength, minItems, maxItems, minProperties, maxProperties
enum_mismatch         enum, const
schema_mismatch       anything else (pattern, uniqueItems, not, oneOf, contains...); an
                      anyOf/oneOf takes the rule of its best-matching branch when it has one
===================== ===================================================================

Speed: validating with jsonschema costs about 20 ``json.loads`` of the same value. When the
schema only uses keywords whose meaning is the same in every draft (the usual output schema:
types, properties, required, enums, bounds), a validator compiled by ``fastjsonschema`` answers
"valid" first, at about the cost of one ``json.loads``; jsonschema only runs on values that
fail, to name the failures. ``format`` is an annotation (not checked), as jsonschema's default.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.adapter.json_parse import JsonProblem, format_path
from sftgate.gates.frame.core import InputError

__all__ = ["OutputSchema", "json_type"]

MAX_PROBLEMS = 50  # per value: a value wrong in 10,000 places still yields a bounded list

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

# Keywords whose meaning is the same in drafts 4 to 2020-12 (as fastjsonschema implements them);
# a schema that uses only these (and local $refs without siblings) gets the compiled fast path.
_PORTABLE = frozenset(
    {
        "$schema", "$id", "id", "$comment", "title", "description", "default", "examples",
        "deprecated", "readOnly", "writeOnly", "format", "$defs", "definitions", "$ref",
        "type", "enum", "const", "properties", "required", "additionalProperties",
        "patternProperties", "propertyNames", "minProperties", "maxProperties", "items",
        "minItems", "maxItems", "uniqueItems", "contains", "minLength", "maxLength", "pattern",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "allOf", "anyOf", "oneOf", "not",
    }
)  # fmt: skip
_ANNOTATIONS = frozenset(
    {
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "id",
        "$defs",
        "definitions",
    }
)
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMAS = (
    "additionalProperties",
    "unevaluatedProperties",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "additionalItems",
    "unevaluatedItems",
    "contentSchema",
)


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


class OutputSchema:
    """A compiled output schema. Build it with :meth:`load` or :meth:`from_dict`."""

    def __init__(self, schema: Any, *, exact_keys: bool, source: str, lines: Callable[[tuple], int | None]):
        self.source = source
        self.exact_keys = exact_keys
        self.schema = close_objects(schema) if exact_keys else schema
        self._validator = _authority(self.schema, source, lines)
        self.draft = type(self._validator).__name__.replace("Validator", "")
        self._fast = _compile_fast(self.schema)

    # -- construction
    @classmethod
    def load(cls, path: str | Path, *, exact_keys: bool = False) -> OutputSchema:
        """Read a JSON (or YAML) schema file; InputError (exit 2) when missing or invalid."""
        from sftgate.gates.readers import document

        doc = document.load(path)
        if not isinstance(doc.data, dict | bool):
            raise InputError(
                f"{path}: an output schema must be a JSON object (or a boolean), found {json_type(doc.data)}",
                hint='e.g. {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}',
            )
        return cls(doc.data, exact_keys=exact_keys, source=str(path), lines=doc.line_of)

    @classmethod
    def from_dict(cls, schema: Any, *, exact_keys: bool = False, source: str = "<schema>") -> OutputSchema:
        return cls(schema, exact_keys=exact_keys, source=source, lines=lambda _path: None)

    @property
    def fast(self) -> bool:
        """Whether the compiled fast path is in use (see the module docstring)."""
        return self._fast is not None

    # -- validation
    def problems(self, value: Any) -> list[JsonProblem]:
        """Every way ``value`` breaks the schema (at most 50), each with its rule and JSON path."""
        fast = self._fast
        if fast is not None:
            try:
                fast(value)
                return []
            except Exception:  # invalid, or anything the fast validator chokes on: ask the authority
                pass
        problems: list[JsonProblem] = []
        seen: set[tuple[str, str]] = set()
        try:
            for error in self._validator.iter_errors(value):
                for problem in _map_error(error, self.exact_keys):
                    key = (problem.rule, problem.path)
                    if key not in seen:
                        seen.add(key)
                        problems.append(problem)
                if len(problems) >= MAX_PROBLEMS:
                    break
        except Exception as exc:  # an unresolvable $ref surfaces here, not at load time
            if type(exc).__module__.startswith(("jsonschema", "referencing")):
                raise InputError(
                    f"{self.source}: the schema cannot be applied: {str(exc).splitlines()[0][:200]}",
                    hint="use local references ($ref: '#/$defs/...'); remote schemas are never fetched",
                ) from None
            raise
        return problems[:MAX_PROBLEMS]


# --------------------------------------------------------------------------- loading


def _authority(schema: Any, source: str, lines: Callable[[tuple], int | None]) -> Any:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    if isinstance(schema, dict) and "$schema" in schema:
        cls = validator_for(schema, default=None)  # type: ignore[call-overload]
        if cls is None:
            raise InputError(
                f"{source}: unknown $schema {short(schema['$schema'])}",
                hint="use https://json-schema.org/draft/2020-12/schema (the default when $schema is absent) "
                "or a draft-04/06/07/2019-09 URI",
            )
    else:
        cls = Draft202012Validator
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        where = tuple(exc.absolute_path)
        line = lines(where)
        at = f"{source}:{line}" if line else source
        raise InputError(
            f"{at}: invalid JSON Schema at {format_path(where)}: {exc.message[:200]}",
            hint=f"fix the schema ({cls.__name__.replace('Validator', '')}); "
            "see https://json-schema.org/understanding-json-schema/",
        ) from None
    _check_refs(schema, source)
    return cls(schema)


def _check_refs(schema: Any, source: str) -> None:
    for node in _walk(schema):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if isinstance(ref, str) and re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", ref):
            raise InputError(
                f"{source}: remote $ref {short(ref)}: schemas are never fetched",
                hint="inline the referenced schema under $defs and use '#/$defs/NAME'",
            )


def _walk(schema: Any) -> Iterator[Any]:
    """Every subschema of ``schema`` (itself included), depth first."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield node
        for key in _SUBSCHEMA_MAPS:
            sub = node.get(key)
            if isinstance(sub, dict):
                stack.extend(sub.values())
        for key in _SUBSCHEMA_LISTS:
            sub = node.get(key)
            if isinstance(sub, list):
                stack.extend(sub)
        for key in _SUBSCHEMAS:
            sub = node.get(key)
            if isinstance(sub, list):  # draft-07 tuple "items"
                stack.extend(sub)
            elif isinstance(sub, dict):
                stack.append(sub)


def close_objects(schema: Any) -> Any:
    """A copy of ``schema`` where every object schema with ``properties`` and no rule for other keys
    gets ``additionalProperties: false`` (the ``exact_keys`` option).

    ``allOf`` branches are left open (closing each would reject the keys of the others); so are
    ``if``/``then``/``else`` and ``not``.
    """
    schema = copy.deepcopy(schema)
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if "properties" in node and not any(
            k in node for k in ("additionalProperties", "patternProperties", "unevaluatedProperties")
        ):
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties", "$defs", "definitions"):
            sub = node.get(key)
            if isinstance(sub, dict):
                stack.extend(sub.values())
        for key in ("anyOf", "oneOf", "prefixItems"):
            sub = node.get(key)
            if isinstance(sub, list):
                stack.extend(sub)
        for key in ("items", "additionalProperties", "additionalItems"):
            sub = node.get(key)
            if isinstance(sub, list):
                stack.extend(sub)
            elif isinstance(sub, dict):
                stack.append(sub)
    return schema


def _compile_fast(schema: Any) -> Callable[[Any], Any] | None:
    """A fastjsonschema validator when the schema is portable and fastjsonschema is installed."""
    if not _portable(schema):
        return None
    try:
        import fastjsonschema
    except ImportError:
        return None
    try:
        return fastjsonschema.compile(schema, use_formats=False, use_default=False)  # type: ignore[no-any-return]
    except Exception:  # anything it cannot compile is validated by jsonschema alone
        return None


def _portable(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if (
        isinstance(schema, dict)
        and isinstance(schema.get("$schema"), str)
        and "draft-04" in schema["$schema"]
    ):
        return False  # boolean exclusive bounds: leave draft-04 to jsonschema
    for node in _walk(schema):
        if any(key not in _PORTABLE for key in node):
            return False
        ref = node.get("$ref")
        if ref is not None and (not isinstance(ref, str) or not ref.startswith("#")):
            return False
        if ref is not None and any(key not in _ANNOTATIONS for key in node if key != "$ref"):
            return False  # $ref siblings apply in 2019-09+, are ignored before: leave it to jsonschema
        if isinstance(node.get("items"), list):
            return False  # tuple items: draft-dependent
    return True


# --------------------------------------------------------------------------- error mapping


def _map_error(error: Any, exact_keys: bool) -> Iterator[JsonProblem]:
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
        inner = list(_map_error(best, exact_keys)) if best is not None else []
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
        return re.search(pattern, key) is not None
    except re.error:
        return False


def _unevaluated(message: str, instance: dict[str, Any]) -> list[str]:
    """The keys an ``unevaluatedProperties`` error names, read back from its message."""
    named = [k for k in instance if repr(k) in message]
    return named or ["<unevaluated>"]
