"""The strict parser: every failure class from the text's structure, and properties over any text."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sftgate.gates.adapter.json_parse import RULE_NAMES, parse_strict
from sftgate.gates.adapter.json_problem import format_path
from sftgate.gates.adapter.json_scanner import Scanner

# (text, stop_reason, rule or None, JSON path of the problem or None, reason)
CASES = [
    ('{"a": 1}', None, None, None, "a plain object"),
    ('  \n\t{"a": [1, 2.5, -3e2, true, false, null, "x"]}\r\n ', None, None, None, "JSON whitespace around passes"),
    ('"text"', None, None, None, "a top-level string"),
    ("null", None, None, None, "a top-level literal"),
    ("-0.5e-3", None, None, None, "a top-level number"),
    ('{"a": "\\u00e9\\n\\"q\\""}', None, None, None, "escapes"),
    ("", None, "no_json_start", "$", "empty output"),
    ("   \n", None, "no_json_start", "$", "only whitespace"),
    ('Sure! {"a": 1}', None, "no_json_start", "$", "prose before the JSON"),
    ('\ufeff{"a": 1}', None, "no_json_start", "$", "a byte order mark"),
    ('\u00a0{"a": 1}', None, "no_json_start", "$", "non-JSON whitespace (NBSP)"),
    ("This is not JSON", None, "no_json_start", "$", "prose starting with a letter that starts 'true'"),
    ("None", None, "no_json_start", "$", "Python None"),
    ("1. First, the name", None, "no_json_start", "$", "a numbered Markdown list"),
    ("- item", None, "no_json_start", "$", "a Markdown bullet"),
    ("'text'", None, "no_json_start", "$", "a single-quoted top-level string"),
    ('```json\n{"a": 1}\n```', None, "code_fence", "$", "a fence with a language tag"),
    ('```\n{"a": 1}\n```', None, "code_fence", "$", "a fence without a tag"),
    ('\n  ```json\n{"a": 1}', None, "code_fence", "$", "an unclosed fence after whitespace"),
    ('~~~\n{"a": 1}\n~~~', None, "code_fence", "$", "a tilde fence"),
    ('{"age": 3', None, "unterminated_json", "$.age", "json says \"Expecting ',' delimiter\"; it is unterminated"),
    ('{"a": "abc', None, "unterminated_json", "$.a", "inside a string"),
    ('{"a": "\\', None, "unterminated_json", "$.a", "inside an escape"),
    ('{"a": "\\u00', None, "unterminated_json", "$.a", "inside a unicode escape"),
    ('{"a": [1, 2', None, "unterminated_json", "$.a[1]", "inside an array"),
    ('{"a":', None, "unterminated_json", "$.a", "after a colon"),
    ('{"a"', None, "unterminated_json", "$.a", "after a key"),
    ('{"a": 1,', None, "unterminated_json", "$", "after a comma"),
    ('{"a": tr', None, "unterminated_json", "$.a", "inside a literal"),
    ('{"a": -', None, "unterminated_json", "$.a", "inside a number"),
    ('{"a": 1.', None, "unterminated_json", "$.a", "inside a fraction"),
    ('{"a": 1e+', None, "unterminated_json", "$.a", "inside an exponent"),
    ("{", None, "unterminated_json", "$", "just an open brace"),
    ('{"age": 3', "length", "truncated", "$.age", "cut at the token limit"),
    ('{"a": "abc', "length", "truncated", "$.a", "cut inside a string at the token limit"),
    ('{"a": 1} I hope this helps', None, "trailing_text", "$", "prose after the object"),
    ('{"a": 1}\n{"a": 2}', None, "trailing_text", "$", "a second object"),
    ('{"a": 1}}', None, "trailing_text", "$", "an extra closing brace"),
    ('{"a": 1} and more', "length", "trailing_text", "$", "complete JSON then more, at the limit: not truncated"),
    ("{'a': 1}", None, "invalid_json", "$", "single-quoted key"),
    ("{\"a\": 'x'}", None, "invalid_json", "$.a", "single-quoted value"),
    ('{"a": 1,}', None, "invalid_json", "$", "trailing comma in an object"),
    ("[1, 2,]", None, "invalid_json", "$[2]", "trailing comma in an array"),
    ('{"a": 1 /* c */}', None, "invalid_json", "$.a", "a block comment"),
    ('{"a": 1, // c\n"b": 2}', None, "invalid_json", "$", "a line comment"),
    ('{a: 1}', None, "invalid_json", "$", "an unquoted key"),
    ('{"a": "x\ny"}', None, "invalid_json", "$.a", "a raw newline in a string"),
    ('{"a": "x\ty"}', None, "invalid_json", "$.a", "a raw tab in a string"),
    ('{"a": "\\x41"}', None, "invalid_json", "$.a", "an invalid escape"),
    ('{"a": "\\u12G4"}', None, "invalid_json", "$.a", "a bad unicode escape"),
    ('{"a": 01}', None, "invalid_json", "$.a", "a leading zero"),
    ('{"a": .5}', None, "invalid_json", "$.a", "a number without an integer part"),
    ('{"a": +1}', None, "invalid_json", "$.a", "a plus sign"),
    ('{"a": True}', None, "invalid_json", "$.a", "Python True"),
    ('{"a" 1}', None, "invalid_json", "$.a", "a missing colon"),
    ('{"a": 1 "b": 2}', None, "invalid_json", "$.a", "a missing comma"),
    ('{"a": [1}', None, "invalid_json", "$.a[0]", "a mismatched bracket"),
    ('{"a": 1, "a": 2}', None, "duplicate_key", "$.a", "a repeated key"),
    ('{"x": {"b": [{"c": 1, "c": 2}]}}', None, "duplicate_key", "$.x.b[0].c", "a nested repeated key"),
    ('{"a": NaN}', None, "non_finite_number", "$.a", "NaN"),
    ('[Infinity]', None, "non_finite_number", "$[0]", "Infinity"),
    ('{"a": -Infinity}', None, "non_finite_number", "$.a", "-Infinity"),
    ("NaN", None, "non_finite_number", "$", "a top-level NaN"),
    ('{"a": 1e400}', None, "non_finite_number", "$.a", "a number that overflows to infinity"),
    ("[-1.5E+999]", None, "non_finite_number", "$[0]", "a negative overflow"),
    ("1" + "0" * 400 + ".0", None, "non_finite_number", "$", "400 digits with a fraction"),
    ('{"a": 1e400, "b": 1', None, "unterminated_json", "$.b", "structure wins over an overflow"),
    ('{"a": 1e308, "b": 1e-400}', None, None, "$", "the largest float and an underflow to 0 are finite"),
    ('{"a": 1' + "0" * 400 + "}", None, None, "$", "a 401-digit integer is exact, not a float"),
    ('{"a": NaN, "b": 1', None, "unterminated_json", "$.b", "structure wins over a non-finite number"),
    ('{"a": 1, "a": 2} x', None, "trailing_text", "$", "structure wins over a duplicate key"),
]


@pytest.mark.parametrize(("text", "stop_reason", "rule", "path", "reason"), CASES, ids=[c[4] for c in CASES])
def test_classification(text, stop_reason, rule, path, reason):
    value, problem = parse_strict(text, stop_reason=stop_reason)
    if rule is None:
        assert problem is None, reason
        assert value == json.loads(text)
    else:
        assert problem is not None, reason
        assert value is None
        assert (problem.rule, problem.path) == (rule, path), reason
        assert problem.detail and "\n" not in problem.detail


@pytest.mark.parametrize(
    ("text", "inner", "reason"),
    [
        ('```json\n{"a": 1}\n```', "valid", "valid JSON inside"),
        ('```json\n{"a": 1', "unterminated_json", "cut inside the fence"),
        ("```\n```", "empty", "an empty fence"),
        ('```json\n{"a": 1} ok\n```', "trailing_text", "prose inside"),
    ],
)
def test_fence_evidence_says_what_is_inside(text, inner, reason):
    _, problem = parse_strict(text)
    assert problem is not None and problem.rule == "code_fence"
    assert problem.evidence["inner"] == inner, reason


def test_offsets_point_at_the_problem():
    assert parse_strict('{"a": 1} tail')[1].offset == 9
    assert parse_strict('{"a": 1,}')[1].offset == 8
    assert parse_strict('{"a": 3')[1].offset == 7  # the end of the text


def test_deep_nesting_never_raises():
    _, problem = parse_strict("[" * 100_000)
    assert problem.rule == "unterminated_json"
    assert len(problem.path) < 400  # bounded
    _, problem = parse_strict("[" * 5_000 + "]" * 5_000)
    assert problem.rule == "invalid_json"  # beyond what Python's json can build


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([], "$"),
        (["a", 0, "b"], "$.a[0].b"),
        (["a b", "c.d", "é"], '$["a b"]["c.d"]["é"]'),
        ([0] * 20, "$" + "[0]" * 8 + "…(4 more)…" + "[0]" * 8),
    ],
)
def test_format_path(parts, expected):
    assert format_path(parts) == expected


# --------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
containers = json_values.filter(lambda v: isinstance(v, list | dict))
dumps_options = st.sampled_from([{}, {"indent": 2}, {"ensure_ascii": False}, {"separators": (",", ":")}])
not_whitespace = st.characters(blacklist_characters=" \t\n\r", blacklist_categories=("Cs",))


@settings(deadline=None)
@given(json_values, dumps_options)
def test_any_serialised_value_passes(value, options):
    parsed, problem = parse_strict(json.dumps(value, **options))
    assert problem is None
    assert parsed == value or (isinstance(value, float) and math.isclose(parsed, value))


@settings(deadline=None)
@given(json_values.filter(lambda v: isinstance(v, list | dict | str)), not_whitespace, st.text(max_size=20))
def test_value_plus_text_is_trailing_text(value, first, rest):
    _, problem = parse_strict(json.dumps(value) + first + rest)
    assert problem is not None and problem.rule == "trailing_text"


@settings(deadline=None)
@given(st.one_of(st.booleans(), st.none(), st.integers()), st.sampled_from("xyz!?#<@"), st.text(max_size=10))
def test_scalar_plus_text_is_trailing_text(value, first, rest):
    _, problem = parse_strict(json.dumps(value) + first + rest)
    assert problem is not None and problem.rule == "trailing_text"


@settings(deadline=None)
@given(containers, dumps_options, st.data())
def test_strict_prefix_of_a_container_is_unterminated(value, options, data):
    text = json.dumps(value, **options)
    cut = data.draw(st.integers(min_value=1, max_value=len(text) - 1))
    _, problem = parse_strict(text[:cut])
    assert problem is not None and problem.rule == "unterminated_json", text[:cut]
    _, problem = parse_strict(text[:cut], stop_reason="length")
    assert problem.rule == "truncated"


@settings(deadline=None)
@given(json_values, st.sampled_from(["", "json", "JSON", " json "]), st.sampled_from(["```", "~~~"]),
       st.booleans())
def test_fenced_value_is_code_fence(value, tag, fence, closed):
    text = f"{fence}{tag}\n{json.dumps(value)}\n" + (fence if closed else "")
    _, problem = parse_strict(text)
    assert problem is not None and problem.rule == "code_fence"


JSONISH = st.text(alphabet=list('{}[]",:0123456789.-+eEtrufalsnNIiy \n\t\\/\'a`'), max_size=40)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60), JSONISH, containers.map(json.dumps)))
@example("")
@example('{"a":1,"a":2}')
def test_arbitrary_text_never_raises_and_agrees_with_json(text):
    value, problem = parse_strict(text)
    if problem is None:
        assert json.loads(text) == value or value != value
        return
    assert problem.rule in RULE_NAMES
    assert "\n" not in problem.detail
    try:
        json.loads(text, parse_constant=_reject, object_pairs_hook=_unique, parse_float=_finite)
    except (ValueError, RecursionError):
        return
    raise AssertionError(f"json accepts {text!r} but parse_strict says {problem.rule}")


@settings(deadline=None)
@given(st.one_of(JSONISH, json_values.map(json.dumps)))
def test_scanner_agrees_with_the_fast_path(text):
    """The slow path alone finds no problem exactly when the text is strict JSON."""
    fast_ok = True
    try:
        json.loads(text, parse_constant=_reject, object_pairs_hook=_unique, parse_float=_finite)
    except ValueError:
        fast_ok = False
    assert (Scanner(text, None).scan() is None) == fast_ok


def _reject(name):
    raise ValueError(name)


def _finite(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} overflows")
    return value


@settings(deadline=None)
@given(st.integers(min_value=309, max_value=10**6), st.sampled_from(["", "-"]), st.sampled_from(["e", "E", "e+"]))
def test_an_overflowing_exponent_is_non_finite(exponent, sign, marker):
    _, problem = parse_strict(f'{{"x": [{sign}9.5{marker}{exponent}]}}')
    assert problem is not None and (problem.rule, problem.path) == ("non_finite_number", "$.x[0]")


def _unique(pairs):
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate")
    return dict(pairs)
