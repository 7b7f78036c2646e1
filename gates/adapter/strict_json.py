"""Gate ``strict-json``: model outputs are strict JSON, valid against the output schema.

Each output is parsed by :func:`sftgate.gates.adapter.json_parse.parse_strict`, which names the failure class
(fence, prose, cut off, trailing text...), then checked against the schema
(:class:`sftgate.gates.adapter.output_schema.OutputSchema`) and, when its case has an ``expected`` value, compared
with it. A case passes when it has no problem at all. The gate fails when the pass rate is below
``min_pass_rate`` (default 1.0: every case must pass); below 1.0, per-case findings are warnings
and the pass-rate finding is the error.

Two entry points: :func:`check_records` on records in memory (``sftgate eval``, the pipeline) and
:func:`check` on an outputs JSONL file (``sftgate json-check``), one generation per line::

    {"id": "c1", "output": "<raw text>", "stop_reason": "eos", "expected": {"name": "Ada"}}

``stop_reason`` (or ``finish_reason``) is optional: ``eos`` or ``length``; vLLM/TGI/API names
(``stop``, ``eos_token``, ``stop_sequence``, ``end_turn``, ``max_tokens``) are understood.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sftgate.gates.adapter.json_parse import JsonProblem, format_path, parse_strict
from sftgate.gates.adapter.output_schema import OutputSchema, json_type, short
from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.readers.cases import MISSING, read_jsonl_lines

GATE = "strict-json"
MAX_FINDINGS_PER_CASE = 10
MAX_DIFFS = 20


def _rule(code: str, name: str, summary: str, why: str, fix: str, example: str = "") -> Rule:
    return Rule(code, name, Severity.ERROR, GATE, summary, why, fix, example)


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


# --------------------------------------------------------------------------- the gate


def check_records(
    records: Iterable[OutputRecord | Finding],
    schema: OutputSchema | None,
    *,
    source: str,
    min_pass_rate: float = 1.0,
    fail_fast: bool = False,
    metrics: dict[str, Any] | None = None,
    n_records: int | None = None,
) -> Iterator[Finding]:
    """Check every record; yield findings; fill ``metrics`` (pass_rate, counts per rule, eos_stop_rate).

    ``source`` names the outputs (a file: locations read ``FILE:LINE``; otherwise the case id is the
    location). ``fail_fast`` stops as soon as the verdict is certain: at the first failing case when
    every case must pass; with a lower ``min_pass_rate`` and a known number of records (``records``
    is a list, or ``n_records`` says it), once too many cases failed. An item of ``records`` may also be an ``invalid_output_line`` finding (a line
    that could not be read, from :func:`check`): it counts as a failed case.
    """
    if not 0.0 <= min_pass_rate <= 1.0:
        raise ValueError(f"min_pass_rate must be within [0, 1], got {min_pass_rate}")
    severity = Severity.ERROR if min_pass_rate >= 1.0 else Severity.WARNING
    size = n_records if n_records is not None else len(records) if isinstance(records, Sized) else None
    allowed_failures = None
    if fail_fast:
        if min_pass_rate >= 1.0:
            allowed_failures = 0
        elif size is not None:
            allowed_failures = int(size - min_pass_rate * size + 1e-9)  # more failures: the rate is below
    counts: Counter[str] = Counter()
    stops: Counter[str] = Counter()
    total = passed = 0
    stopped_early = False
    for item in records:
        total += 1
        if isinstance(item, Finding):  # an unreadable record
            counts[item.rule] += 1
            yield item
        else:
            record = item
            reason = normalize_stop_reason(record.stop_reason)
            if reason is not None:
                stops[reason] += 1
            problems = record_problems(record, schema, stop_reason=reason)
            if not problems:
                passed += 1
                continue
            for rule in {p.rule for p in problems}:
                counts[rule] += 1
            location = f"{source}:{record.line}" if record.line is not None else record.id
            for problem in problems[:MAX_FINDINGS_PER_CASE]:
                yield _finding(problem, record, location, reason, severity, len(problems))
        if allowed_failures is not None and total - passed > allowed_failures:
            stopped_early = size is None or total < size
            break
    if total == 0:
        raise InputError(
            f"{source}: no outputs to check", hint='one generation per line: {"id": "c1", "output": "..."}'
        )
    denominator = size if stopped_early and size is not None else total
    rate = passed / total
    if metrics is not None:
        metrics.update(
            {
                "cases": denominator,
                "checked": total,
                "passed": passed,
                "failed": total - passed,
                "pass_rate": round(rate, 6),
                "min_pass_rate": min_pass_rate,
                "counts": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            }
        )
        if stops:
            metrics["eos_stop_rate"] = round(stops.get("eos", 0) / sum(stops.values()), 6)
            metrics["stop_reasons"] = dict(stops)
        if stopped_early:
            metrics["stopped_early"] = True
    if stopped_early:
        best = (denominator - (total - passed)) / denominator if denominator else 0.0
        yield R["pass_rate_below_min"].finding(
            f"{total - passed} of the first {total} cases failed: the pass rate cannot reach "
            f"{min_pass_rate:g} (at most {best:.4f}); stopped early (--fail-fast)",
            source,
            evidence={"checked": total, "failed": total - passed, "min_pass_rate": min_pass_rate},
        )
    elif rate < min_pass_rate:
        top = ", ".join(f"{rule} {n}" for rule, n in counts.most_common(5))
        yield R["pass_rate_below_min"].finding(
            f"pass rate {rate:.4f} ({passed}/{total}) is below the minimum {min_pass_rate:g}"
            + (f"; most frequent: {top}" if top else ""),
            source,
            evidence={
                "pass_rate": round(rate, 6),
                "min_pass_rate": min_pass_rate,
                "passed": passed,
                "cases": total,
                "counts": dict(counts.most_common(20)),
            },
        )


def record_problems(
    record: OutputRecord, schema: OutputSchema | None, *, stop_reason: str | None
) -> list[JsonProblem]:
    """Every problem of one output: the parse problem, or schema problems plus a value mismatch."""
    value, problem = parse_strict(record.output, stop_reason=stop_reason)
    if problem is not None:
        return [problem]
    problems = schema.problems(value) if schema is not None else []
    if record.expected is not MISSING:
        diffs = value_diff(record.expected, value)
        if diffs:
            shown = "; ".join(f"{d['path']}: expected {d['expected']}, got {d['got']}" for d in diffs[:3])
            problems.append(
                JsonProblem(
                    "value_mismatch",
                    f"differs from the expected value in {len(diffs)} place(s): {shown}",
                    None,
                    diffs[0]["path"],
                    {"diff": diffs[:MAX_DIFFS], "differences": len(diffs)},
                )
            )
    return problems


def _finding(
    problem: JsonProblem,
    record: OutputRecord,
    location: str,
    reason: str | None,
    severity: Severity,
    n_problems: int,
) -> Finding:
    evidence: dict[str, Any] = {"case": record.id, "path": problem.path}
    if problem.offset is not None:
        evidence["offset"] = problem.offset
    if reason is not None:
        evidence["stop_reason"] = reason
    evidence.update(problem.evidence)
    evidence["output"] = record.output[:200]
    if n_problems > MAX_FINDINGS_PER_CASE:
        evidence["problems_in_case"] = n_problems
    at = "" if problem.path == "$" else f" at {problem.path}"
    return R[problem.rule].finding(
        f"case {record.id!r}{at}: {problem.detail}",
        location,
        evidence=evidence,
        severity=severity,
        line=record.line,
    )


# --------------------------------------------------------------------------- value diff


def value_diff(expected: Any, got: Any, path: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Per-key differences between two JSON values (``true`` never equals ``1``; ``1`` equals ``1.0``)."""
    if _canonical(expected) == _canonical(got) is not None:
        return []  # identical, types included: the common case, without a walk in Python
    out: list[dict[str, Any]] = []
    _diff(expected, got, list(path), out)
    return out


def _diff(expected: Any, got: Any, parts: list[Any], out: list[dict[str, Any]]) -> None:
    if len(out) >= MAX_DIFFS * 5:
        return
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in expected:
            if key not in got:
                out.append(
                    {"path": format_path([*parts, key]), "expected": short(expected[key]), "got": "(missing)"}
                )
            else:
                _diff(expected[key], got[key], [*parts, key], out)
        for key in got:
            if key not in expected:
                out.append(
                    {"path": format_path([*parts, key]), "expected": "(absent)", "got": short(got[key])}
                )
        return
    if isinstance(expected, list) and isinstance(got, list):
        for i, (e, g) in enumerate(zip(expected, got, strict=False)):
            _diff(e, g, [*parts, i], out)
        if len(expected) != len(got):
            out.append(
                {"path": format_path(parts), "expected": f"{len(expected)} items", "got": f"{len(got)} items"}
            )
        return
    if not _same(expected, got):
        out.append({"path": format_path(parts), "expected": short(expected), "got": short(got)})


def _canonical(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except Exception:  # beyond orjson (integers over 64 bits...): the exact walk decides
        return None


def _same(a: Any, b: Any) -> bool:
    ta, tb = json_type(a), json_type(b)
    numeric = {"integer", "number"}
    if ta != tb and not (ta in numeric and tb in numeric):
        return False
    return bool(a == b)


# --------------------------------------------------------------------------- json-check


def check(
    *,
    outputs: str | Path,
    schema: str | Path | OutputSchema | None,
    min_pass_rate: float = 1.0,
    fail_fast: bool = False,
    exact_keys: bool = False,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """``sftgate json-check``: check an outputs JSONL file (see the module docstring)."""
    if schema is not None and not isinstance(schema, OutputSchema):
        schema = OutputSchema.load(schema, exact_keys=exact_keys)
    source = str(outputs)
    lines = read_jsonl_lines(outputs)  # strings only; records are parsed one at a time (streaming
    # keeps 100k parsed records from sitting in memory, where the cyclic GC would walk them again and again)
    items = (parse_output_line(text, n, source) for n, text in lines)
    if metrics is not None and schema is not None:
        metrics["schema_validator"] = (
            f"{schema.draft} ({'compiled fast path' if schema.fast else 'jsonschema'})"
        )
    yield from check_records(
        items,
        schema,
        source=source,
        min_pass_rate=min_pass_rate,
        fail_fast=fail_fast,
        metrics=metrics,
        n_records=len(lines),
    )


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


__all__ = [
    "RULES",
    "OutputRecord",
    "check",
    "check_records",
    "normalize_stop_reason",
    "parse_output_line",
    "record_problems",
    "value_diff",
]
