"""Loading an output schema: checked against its draft, local refs only, a fast path compiled when portable.

:func:`authority` builds the jsonschema validator (InputError on an invalid schema or a remote
``$ref``); :func:`compile_fast` a ``fastjsonschema`` validator when the schema only uses keywords
that mean the same in every draft; :func:`close_objects` applies the ``exact_keys`` option.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

from sftgate.gates.adapter.json_problem import format_path, short
from sftgate.gates.adapter.schema_regex import bound_fast, bounded_validator
from sftgate.gates.frame.core import InputError

__all__ = ["authority", "close_objects", "compile_fast"]

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


def authority(schema: Any, source: str, lines: Callable[[tuple], int | None]) -> Any:
    """The jsonschema validator of the schema's draft (2020-12 by default); InputError when invalid."""
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
    return bounded_validator(cls)(schema)  # schema patterns under a time bound (schema_regex)


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


def compile_fast(schema: Any) -> Callable[[Any], Any] | None:
    """A fastjsonschema validator when the schema is portable and fastjsonschema is installed."""
    if not _portable(schema):
        return None
    try:
        import fastjsonschema
    except ImportError:
        return None
    try:
        validate = fastjsonschema.compile(schema, use_formats=False, use_default=False)
    except Exception:  # anything it cannot compile is validated by jsonschema alone
        return None
    return bound_fast(validate)  # its patterns under a time bound, or no fast path


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
