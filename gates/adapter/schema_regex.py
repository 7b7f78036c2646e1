"""Schema regular expressions (``pattern``, ``patternProperties``) matched with a time bound.

Python's ``re`` backtracks: ``^(a+)+$`` against a 41-character output runs for hours, and both
validators of an output schema (jsonschema and fastjsonschema) use it. Here every schema pattern is
matched by the ``regex`` engine (the same syntax, with guards against the classic blow-ups) under a
timeout of :data:`PATTERN_SECONDS`; past it, the schema is at fault and :class:`PatternTimeout`
(an input error, exit 2) names the pattern, so one hostile output cannot hang json-check.

:func:`bounded_validator` gives a jsonschema validator class whose ``pattern``,
``patternProperties`` and ``additionalProperties`` match that way; :func:`bound_fast` rewires a
compiled fastjsonschema validator's patterns (or says it cannot, and the fast path is dropped).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from sftgate.gates.frame.core import InputError

PATTERN_SECONDS = 0.5


class PatternTimeout(InputError):
    """A schema pattern took longer than :data:`PATTERN_SECONDS` on one value."""


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> Any:
    import regex

    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise InputError(f"the schema pattern {pattern[:80]!r} is not a valid regular expression ({exc})",
                         hint="fix the pattern (Python / ECMA-262 regular expression syntax)") from None


def search(pattern: str, text: str, *, compiled: Any = None, shown: str | None = None) -> bool:
    """Whether ``pattern`` is found in ``text``, within :data:`PATTERN_SECONDS` (``shown``: the
    pattern as the schema writes it)."""
    engine = compiled if compiled is not None else _compile(pattern)
    try:
        return engine.search(text, timeout=PATTERN_SECONDS) is not None
    except TimeoutError:
        raise PatternTimeout(
            f"the schema pattern {(shown or pattern)[:80]!r} took over {PATTERN_SECONDS:g} s on a value of {len(text)} "
            "characters (catastrophic backtracking)",
            hint="rewrite the pattern without nested quantifiers, e.g. ^a+$ instead of ^(a+)+$",
        ) from None


class _BoundedPattern:
    """Stands in for a compiled ``re`` pattern in fastjsonschema's generated code."""

    def __init__(self, pattern: str, shown: str) -> None:
        self.pattern = pattern
        self.shown = shown
        self._engine = _compile(pattern)

    def search(self, text: str) -> bool:
        return search(self.pattern, text, compiled=self._engine, shown=self.shown)

    match = fullmatch = search  # fastjsonschema only searches; never silently unbounded otherwise


def bound_fast(validate: Any) -> Any | None:
    """``validate`` (a fastjsonschema function) with its patterns bounded, or None if it cannot be."""
    table = getattr(validate, "__globals__", {}).get("REGEX_PATTERNS")
    if not isinstance(table, dict):
        return None
    try:
        for key, compiled in list(table.items()):
            table[key] = _BoundedPattern(compiled.pattern, str(key))
    except (AttributeError, InputError):
        return None
    return validate


def bounded_validator(cls: Any) -> Any:
    """``cls`` (a jsonschema validator class) with schema patterns matched by :func:`search`."""
    from jsonschema import validators

    keywords = cls.VALIDATORS
    if "pattern" not in keywords:
        return cls
    extended = validators.extend(cls, {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties(keywords.get("additionalProperties")),
    })
    extended.__name__ = extended.__qualname__ = cls.__name__  # the draft's name, as reports show it
    return extended


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(original: Any) -> Any:
    """jsonschema's ``additionalProperties``, with the patternProperties lookups bounded."""

    def additional(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[Any]:
        from jsonschema.exceptions import ValidationError

        patterns = schema.get("patternProperties") if isinstance(schema, dict) else None
        if not patterns or original is None:
            if original is not None:
                yield from original(validator, additional, instance, schema)
            return
        if not validator.is_type(instance, "object"):
            return
        properties = schema.get("properties", {})
        extras = [k for k in instance if k not in properties and not any(search(p, k) for p in patterns)]
        if validator.is_type(additional, "object"):
            for extra in extras:
                yield from validator.descend(instance[extra], additional, path=extra)
        elif not additional and extras:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            listed = ", ".join(repr(each) for each in sorted(patterns))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {listed}")

    return additional
