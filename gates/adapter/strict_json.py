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

The rule catalogue is in :mod:`~sftgate.gates.adapter.strict_json_rules`, the reading of outputs
lines in :mod:`~sftgate.gates.adapter.output_records`, the comparison with ``expected`` in
:mod:`~sftgate.gates.adapter.value_diff` and the pass rate in :mod:`~sftgate.gates.adapter.strict_json_metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized
from pathlib import Path
from typing import Any

from sftgate.gates.adapter.json_parse import parse_strict
from sftgate.gates.adapter.json_problem import JsonProblem
from sftgate.gates.adapter.output_records import OutputRecord, normalize_stop_reason, parse_output_line
from sftgate.gates.adapter.output_schema import OutputSchema
from sftgate.gates.adapter.strict_json_metrics import PassRateTally, allowed_failures
from sftgate.gates.adapter.strict_json_rules import GATE, RULES, R
from sftgate.gates.adapter.value_diff import MAX_DIFFS, value_diff
from sftgate.gates.frame.core import Finding, InputError, Severity
from sftgate.gates.frame.finding_cap import MAX_PER_RULE, FindingCap
from sftgate.gates.readers.cases import MISSING, count_jsonl_lines, iter_jsonl_lines
from sftgate.gates.readers.textfile import regular_path

__all__ = ["GATE", "MAX_FINDINGS_PER_CASE", "RULES", "check", "check_records", "record_problems"]

MAX_FINDINGS_PER_CASE = 10


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
    max_per_rule: int = MAX_PER_RULE,
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
    allowed = allowed_failures(min_pass_rate, size) if fail_fast else None
    tally = PassRateTally()
    cap = FindingCap(max_per_rule)  # at most max_per_rule findings built per rule; every case counted
    for item in records:
        tally.total += 1
        if isinstance(item, Finding):  # an unreadable record
            tally.counts[item.rule] += 1
            if cap.admit(item):
                yield item
        else:
            record = item
            reason = normalize_stop_reason(record.stop_reason)
            if reason is not None:
                tally.stops[reason] += 1
            problems = record_problems(record, schema, stop_reason=reason)
            if not problems:
                tally.passed += 1
                continue
            for rule in {p.rule for p in problems}:
                tally.counts[rule] += 1
            location = f"{source}:{record.line}" if record.line is not None else record.id
            for problem in problems[:MAX_FINDINGS_PER_CASE]:
                if cap.room(problem.rule, location, code=R[problem.rule].code, severity=severity):
                    yield _finding(problem, record, location, reason, severity, len(problems))
        if allowed is not None and tally.failed > allowed:
            tally.stopped_early = size is None or tally.total < size
            break
    if tally.total == 0:
        raise InputError(
            f"{source}: no outputs to check", hint='one generation per line: {"id": "c1", "output": "..."}'
        )
    yield from cap.summaries()
    if metrics is not None:
        metrics.update(tally.metrics(min_pass_rate, size))
        if cap.not_listed:
            metrics["findings_not_listed"] = cap.not_listed
    verdict = tally.verdict(source, min_pass_rate, size)
    if verdict is not None:
        yield verdict


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


# --------------------------------------------------------------------------- json-check


def check(
    *,
    outputs: str | Path,
    schema: str | Path | OutputSchema | None,
    min_pass_rate: float = 1.0,
    fail_fast: bool = False,
    exact_keys: bool = False,
    metrics: dict[str, Any] | None = None,
    max_per_rule: int = MAX_PER_RULE,
) -> Iterator[Finding]:
    """``sftgate json-check``: check an outputs JSONL file (see the module docstring), streamed."""
    if schema is not None and not isinstance(schema, OutputSchema):
        schema = OutputSchema.load(schema, exact_keys=exact_keys)
    source = str(outputs)
    # Streamed: one line in memory at a time, so a million outputs take no more memory than ten.
    # --fail-fast below a pass rate of 1 needs the number of cases first (a FIFO is copied to a file for that).
    counted = fail_fast and min_pass_rate < 1.0
    path = regular_path(outputs, display=source) if counted else outputs
    items = (parse_output_line(text, n, source) for n, text in iter_jsonl_lines(path))
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
        n_records=count_jsonl_lines(path) if counted else None,
        max_per_rule=max_per_rule,
    )
