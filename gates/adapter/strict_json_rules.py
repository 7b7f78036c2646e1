"""The rule catalogue of the gate ``strict-json``: one rule per failure class, with why and fix.

Parse rules (JSON001-008) come from :mod:`sftgate.gates.adapter.json_parse`, schema rules
(JSON009-013, JSON015) from :mod:`sftgate.gates.adapter.output_schema`; ``value_mismatch``,
``invalid_output_line`` and ``pass_rate_below_min`` from the gate itself.
"""

from __future__ import annotations

from sftgate.gates.frame.core import Rule, rule_maker

__all__ = ["GATE", "RULES", "R"]

GATE = "strict-json"


_rule = rule_maker(GATE)


RULES: tuple[Rule, ...] = (
    _rule(
        "JSON001",
        "no_json_start",
        "the output does not start with a JSON value",
        "Prose before the JSON ('Sure! Here is...'), an empty output or a byte order mark: a strict "
        "consumer rejects it, and the model was not trained to answer with JSON only.",
        "Train on completions that are the JSON and nothing else; check the chat template's "
        "generation prompt; never strip prose in post-processing, it hides the regression.",
        'output: Sure! {"name": "Ada"}',
    ),
    _rule(
        "JSON002",
        "code_fence",
        "the output is wrapped in a Markdown code fence",
        "A ```json fence is the most common failure of JSON fine-tunes: the base model's chat habits "
        "win, or the training completions themselves are fenced. It is reported, never stripped.",
        "Remove fences from the training completions (`sftgate data` with an output schema finds them) "
        "and train longer; the evidence says whether the JSON inside the fence is valid.",
        'output: ```json\\n{"name": "Ada"}\\n```',
    ),
    _rule(
        "JSON003",
        "unterminated_json",
        "the output ends while a string, object or array is open",
        "The model stopped (EOS) in the middle of the JSON: it learned to stop too early, or the "
        "training examples were cut by max_seq_len so it never saw a complete object.",
        "Check `too_long` / `eos_truncated` in the data and tokenizer gates; raise max_seq_len.",
        'output: {"age": 3',
    ),
    _rule(
        "JSON004",
        "truncated",
        "the generation hit its token limit before the JSON was complete",
        "stop_reason 'length': the JSON was cut by max_new_tokens, not malformed. The fix is not in "
        "the format: either the limit is too small or the model never learned to stop (EOS).",
        "Raise max_new_tokens (eval.max_new_tokens) if outputs are legitimately long; otherwise "
        "check the eos gate (eos_masked, eos_not_in_stop_ids) and train EOS.",
        'output: {"items": [1, 2, 3, 4, 5, 6, 7, (stop_reason: length)',
    ),
    _rule(
        "JSON005",
        "trailing_text",
        "text follows the complete JSON value",
        "Prose or a second object after the JSON: the model did not stop after the answer, usually "
        "because EOS is not supervised or not in the generation stop ids.",
        "Check the eos gate (eos_masked, eos_not_appended, eos_not_in_stop_ids); make sure the "
        "completions end with the end-of-turn token.",
        'output: {"name": "Ada"} I hope this helps!',
    ),
    _rule(
        "JSON006",
        "invalid_json",
        "the output breaks the JSON grammar",
        "Single quotes, trailing commas, comments, unquoted keys, raw newlines in strings, bad "
        "escapes: lenient parsers accept some of these, strict consumers do not.",
        "Check the training completions are strict JSON (`sftgate data --output-schema`); serialise "
        "them with json.dumps, never by hand or with Python's repr.",
        "output: {'name': 'Ada',}",
    ),
    _rule(
        "JSON007",
        "duplicate_key",
        "an object repeats a key",
        "Python's json keeps the last value silently, other parsers the first or fail: the meaning "
        "of the output depends on the consumer.",
        "Look for duplicated keys in the training completions; more training usually fixes it.",
        'output: {"name": "Ada", "name": "Bob"}',
    ),
    _rule(
        "JSON008",
        "non_finite_number",
        "the output has NaN, Infinity or -Infinity",
        "Python's json reads and writes them, but they are not JSON: strict parsers reject the output.",
        "Serialise training completions with json.dumps(..., allow_nan=False); use null instead.",
        'output: {"score": NaN}',
    ),
    _rule(
        "JSON009",
        "missing_key",
        "a key the schema requires is missing",
        "The consumer of the output expects this key.",
        "Make sure every training completion has the key (`sftgate data --output-schema`).",
        'schema requires "age"; output: {"name": "Ada"}',
    ),
    _rule(
        "JSON010",
        "unexpected_key",
        "a key the schema does not allow",
        "An extra key is a hallucinated field, or the schema and the training data disagree. With "
        "--exact-keys it is enforced even where the schema forgot additionalProperties: false.",
        "Align the schema and the training completions; add the key to the schema if it is legitimate.",
        'schema properties: name; output: {"name": "Ada", "nickname": "A"}',
    ),
    _rule(
        "JSON011",
        "type_mismatch",
        "a value has the wrong JSON type",
        'true is not an integer, 31.5 is not one either, "3" is not a number: the consumer will crash '
        "or coerce silently.",
        "Fix the types in the training completions; check the schema is what you mean.",
        'schema age: integer; output: {"age": "31"}',
    ),
    _rule(
        "JSON012",
        "range_mismatch",
        "a value breaks a bound: minimum, maximum, length, item count",
        "The value has the right type but an impossible size: an age of -1, an empty name, 50 tags.",
        "Check the training completions respect the bounds; relax the schema if they are wrong.",
        'schema age: minimum 0; output: {"age": -1}',
    ),
    _rule(
        "JSON013",
        "enum_mismatch",
        "a value is not one of the allowed values (enum, const)",
        "A label outside the label set is a classification the consumer cannot handle.",
        "Check the label spelling in the training completions (case, synonyms).",
        'schema status: enum [active, inactive]; output: {"status": "Active"}',
    ),
    _rule(
        "JSON014",
        "value_mismatch",
        "the parsed output differs from the case's expected value",
        "The output is well-formed but wrong: the evidence has a per-key diff.",
        "Look at the diff: a systematic difference (a key, a format) points at the training data.",
        'expected {"name": "Ada"}; output: {"name": "Bob"}',
    ),
    _rule(
        "JSON015",
        "schema_mismatch",
        "the output breaks another schema constraint (pattern, uniqueItems, not...)",
        "A constraint the other rules do not name; the evidence gives the JSON Schema keyword.",
        "Read the keyword and the path in the evidence; fix the training completions or the schema.",
        'schema code: pattern ^[A-Z]{3}$; output: {"code": "ab"}',
    ),
    _rule(
        "JSON016",
        "invalid_output_line",
        "a line of the outputs file is not a generation record",
        "A line that is not a JSON object with an 'output' string cannot be checked; it counts as a "
        "failed case so that a broken file never passes.",
        'Write one JSON object per line: {"id": "c1", "output": "<raw text>", "stop_reason": "eos"}.',
        'outputs.jsonl line: {"id": "c1", "text": "..."}',
    ),
    _rule(
        "JSON017",
        "pass_rate_below_min",
        "fewer cases pass than the minimum pass rate",
        "The gate's verdict: the share of cases whose output is strict JSON, valid and as expected "
        "is below --min-pass-rate (default 1.0, every case).",
        "Fix the most frequent rule first (metrics.counts); the per-rule fixes say what to change.",
        "pass_rate 0.82 < min_pass_rate 0.95",
    ),
)
R = {rule.name: rule for rule in RULES}
