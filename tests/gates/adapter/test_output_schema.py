"""The schema layer: jsonschema errors mapped to rules with JSON paths; drafts; the fast path."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.gates.adapter.output_schema import OutputSchema
from sftgate.gates.adapter.schema_compile import close_objects
from sftgate.gates.frame.core import InputError

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 5},
        "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
        "score": {"type": "number", "multipleOf": 0.5},
        "status": {"enum": ["active", "inactive"]},
        "kind": {"const": "person"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "code": {"type": "string", "pattern": "^[A-Z]+$"},
        "nick": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}

# (value, expected (rule, path) pairs, reason)
CASES = [
    ({"name": "Ada", "age": 36}, [], "valid"),
    ({"name": "Ada"}, [("missing_key", "$.age")], "a required key is missing"),
    ({"name": "Ada", "age": 3, "address": {}}, [("missing_key", "$.address.city")], "a nested required key"),
    ({"name": "Ada", "age": 3, "extra": 1}, [("unexpected_key", "$.extra")], "additionalProperties false"),
    ({"name": "Ada", "age": 3, "address": {"city": "x", "zip": 1}}, [("unexpected_key", "$.address.zip")],
     "a nested extra key"),
    ({"name": "Ada", "age": True}, [("type_mismatch", "$.age")], "true is not an integer"),
    ({"name": "Ada", "age": 31.5}, [("type_mismatch", "$.age")], "31.5 is not an integer"),
    ({"name": "Ada", "age": "31"}, [("type_mismatch", "$.age")], "a string is not an integer"),
    ({"name": "Ada", "age": 31.0}, [], "31.0 is an integer in JSON Schema"),
    ([], [("type_mismatch", "$")], "the root has the wrong type"),
    ({"name": "Ada", "age": -1}, [("range_mismatch", "$.age")], "below minimum"),
    ({"name": "Ada", "age": 150}, [("range_mismatch", "$.age")], "at the exclusive maximum"),
    ({"name": "", "age": 1}, [("range_mismatch", "$.name")], "minLength"),
    ({"name": "Adaaaa", "age": 1}, [("range_mismatch", "$.name")], "maxLength"),
    ({"name": "Ada", "age": 1, "tags": []}, [("range_mismatch", "$.tags")], "minItems"),
    ({"name": "Ada", "age": 1, "tags": ["a", "b", "c"]}, [("range_mismatch", "$.tags")], "maxItems"),
    ({"name": "Ada", "age": 1, "score": 0.3}, [("range_mismatch", "$.score")], "multipleOf"),
    ({"name": "Ada", "age": 1, "status": "Active"}, [("enum_mismatch", "$.status")], "enum is case-sensitive"),
    ({"name": "Ada", "age": 1, "kind": "robot"}, [("enum_mismatch", "$.kind")], "const"),
    ({"name": "Ada", "age": 1, "code": "ab"}, [("schema_mismatch", "$.code")], "pattern"),
    ({"name": "Ada", "age": 1, "nick": 3}, [("type_mismatch", "$.nick")], "anyOf takes its best branch's rule"),
    ({"name": "Ada", "age": 1, "tags": [1]}, [("type_mismatch", "$.tags[0]")], "an array item"),
    ({"age": True, "extra": 1}, [("type_mismatch", "$.age"), ("missing_key", "$.name"), ("unexpected_key", "$.extra")],
     "every problem is reported"),
]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "jsonschema-only"])
@pytest.mark.parametrize(("value", "expected", "reason"), CASES, ids=[c[2] for c in CASES])
def test_problems(value, expected, reason, fast):
    schema = OutputSchema.from_dict(PERSON)
    assert schema.fast
    if not fast:
        schema._fast = None
    got = [(p.rule, p.path) for p in schema.problems(value)]
    assert sorted(got) == sorted(expected), reason


@pytest.mark.parametrize(
    ("schema", "value", "expected", "reason"),
    [
        ({"type": "object", "properties": {"a": {"type": "integer"}}}, {"a": 1, "b": 2}, [("unexpected_key", "$.b")],
         "exact keys closes an open object"),
        ({"type": "object", "properties": {"o": {"type": "object", "properties": {"x": {}}}}}, {"o": {"x": 1, "y": 2}},
         [("unexpected_key", "$.o.y")], "and nested ones"),
        ({"type": "object", "properties": {"a": {}}, "additionalProperties": True}, {"a": 1, "b": 2}, [],
         "an explicit additionalProperties is respected"),
        ({"type": "object", "properties": {"a": {}}, "patternProperties": {"^x_": {}}}, {"a": 1, "x_b": 2}, [],
         "patternProperties are respected"),
        ({"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]}, {"a": 1, "b": 2}, [],
         "allOf branches stay open"),
    ],
)
def test_exact_keys(schema, value, expected, reason):
    got = [(p.rule, p.path) for p in OutputSchema.from_dict(schema, exact_keys=True).problems(value)]
    assert got == expected, reason
    if expected:
        assert OutputSchema.from_dict(schema).problems(value) == [], "without exact_keys it passes"


def test_close_objects_does_not_mutate():
    schema = {"type": "object", "properties": {"a": {}}}
    close_objects(schema)
    assert "additionalProperties" not in schema


@pytest.mark.parametrize(
    ("schema", "value", "rules", "reason"),
    [
        ({"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer", "minimum": 0,
          "exclusiveMinimum": True}, 0, ["range_mismatch"], "draft-04 boolean exclusiveMinimum is honoured"),
        ({"$schema": "http://json-schema.org/draft-07/schema#", "type": "array", "items": [{"type": "string"}]},
         [1], ["type_mismatch"], "draft-07 tuple items are honoured"),
        ({"type": "array", "prefixItems": [{"type": "string"}]}, [1], ["type_mismatch"],
         "2020-12 prefixItems is the default draft"),
        ({"type": "object", "dependentRequired": {"a": ["b"]}}, {"a": 1}, ["missing_key"], "dependentRequired"),
        ({"type": "object", "properties": {"a": {}}, "unevaluatedProperties": False}, {"a": 1, "b": 2},
         ["unexpected_key"], "unevaluatedProperties"),
        ({"$defs": {"n": {"type": "integer"}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/n"}}},
         {"a": "x"}, ["type_mismatch"], "local $ref"),
        ({"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}}, {"A": 1}, ["unexpected_key"], "propertyNames"),
        ({"type": "array", "uniqueItems": True}, [1, 1], ["schema_mismatch"], "uniqueItems"),
    ],
)
def test_drafts_and_keywords(schema, value, rules, reason):
    assert [p.rule for p in OutputSchema.from_dict(schema).problems(value)] == rules, reason


def test_draft_is_reported():
    assert OutputSchema.from_dict({}).draft == "Draft202012"
    assert OutputSchema.from_dict({"$schema": "http://json-schema.org/draft-07/schema#"}).draft == "Draft7"


def test_problems_are_bounded():
    schema = OutputSchema.from_dict({"type": "array", "items": {"type": "integer"}})
    assert len(schema.problems(["x"] * 10_000)) == 50


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"type": "integr"}', "an unknown type"),
        ('{"properties": {"a": {"minimum": "zero"}}}', "a bound that is not a number"),
        ('{"$schema": "https://example.com/my-draft", "type": "object"}', "an unknown $schema"),
        ('{"properties": {"a": {"$ref": "https://example.com/s.json"}}}', "a remote $ref"),
        ('{"type": "object",', "not JSON at all"),
        ("[1, 2]", "not a schema object"),
    ],
)
def test_invalid_schema_is_input_error(tmp_path, text, reason):
    path = tmp_path / "schema.json"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        OutputSchema.load(path)
    assert err.value.exit_code == 2, reason
    assert str(path) in err.value.message


def test_invalid_schema_names_the_line(fixtures_dir):
    with pytest.raises(InputError) as err:
        OutputSchema.load(fixtures_dir / "strict_json" / "schema_invalid.json")
    assert "schema_invalid.json:4:" in err.value.message


def test_missing_schema_is_input_error(tmp_path):
    with pytest.raises(InputError):
        OutputSchema.load(tmp_path / "nope.json")


# --------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=15,
)


def derive(value):
    """A tight schema that ``value`` satisfies: exact types, keys, bounds and enums."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean", "const": value}
    if isinstance(value, int):
        return {"type": "integer", "minimum": value, "maximum": value}
    if isinstance(value, float):
        return {"type": "number", "minimum": value, "maximum": value}
    if isinstance(value, str):
        return {"type": "string", "enum": [value], "minLength": len(value), "maxLength": len(value)}
    if isinstance(value, list):
        return {"type": "array", "items": {"anyOf": [derive(v) for v in value]} if value else {},
                "minItems": len(value), "maxItems": len(value)}
    return {"type": "object", "properties": {k: derive(v) for k, v in value.items()}, "required": list(value),
            "additionalProperties": False}


@settings(deadline=None, max_examples=50)
@given(json_values)
def test_a_value_satisfies_its_derived_schema(value):
    from sftgate.gates.adapter.json_parse import parse_strict

    parsed, problem = parse_strict(json.dumps(value))
    assert problem is None
    schema = OutputSchema.from_dict(derive(value), exact_keys=True)
    assert schema.problems(parsed) == []
    schema._fast = None
    assert schema.problems(parsed) == []


@settings(deadline=None, max_examples=50)
@given(json_values, json_values)
def test_fast_path_never_passes_what_jsonschema_rejects(value, other):
    schema = OutputSchema.from_dict(derive(value))
    slow = OutputSchema.from_dict(derive(value))
    slow._fast = None
    assert (schema.problems(other) == []) == (slow.problems(other) == [])


@pytest.mark.parametrize(
    ("schema", "value", "valid", "reason"),
    [
        ({"enum": [1]}, True, False, "true is not 1 in an enum"),
        ({"const": 0}, False, False, "false is not 0"),
        ({"const": {"a": 1}}, {"a": True}, False, "nor inside an object"),
        ({"enum": [1.0]}, 1, True, "1 equals 1.0"),
        ({"type": "integer"}, 2**80, True, "big integers are integers"),
    ],
)
def test_fast_path_agrees_on_bool_and_number_edges(schema, value, valid, reason):
    fast, slow = OutputSchema.from_dict(schema), OutputSchema.from_dict(schema)
    slow._fast = None
    assert fast.fast
    assert (fast.problems(value) == []) is valid, reason
    assert (slow.problems(value) == []) is valid, reason
