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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sftgate.gates.adapter.json_problem import JsonProblem, json_type
from sftgate.gates.adapter.schema_compile import authority, close_objects, compile_fast
from sftgate.gates.adapter.schema_errors import map_error
from sftgate.gates.frame.core import InputError

__all__ = ["OutputSchema"]

MAX_PROBLEMS = 50  # per value: a value wrong in 10,000 places still yields a bounded list


class OutputSchema:
    """A compiled output schema. Build it with :meth:`load` or :meth:`from_dict`."""

    def __init__(self, schema: Any, *, exact_keys: bool, source: str, lines: Callable[[tuple], int | None]):
        self.source = source
        self.exact_keys = exact_keys
        self.schema = close_objects(schema) if exact_keys else schema
        self._validator = authority(self.schema, source, lines)
        self.draft = type(self._validator).__name__.replace("Validator", "")
        self._fast = compile_fast(self.schema)

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
            except InputError:  # a schema pattern past its time bound (schema_regex)
                raise
            except Exception:  # invalid, or anything the fast validator chokes on: ask the authority
                pass
        problems: list[JsonProblem] = []
        seen: set[tuple[str, str]] = set()
        try:
            for error in self._validator.iter_errors(value):
                for problem in map_error(error, self.exact_keys):
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
