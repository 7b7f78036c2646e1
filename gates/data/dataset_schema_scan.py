"""Scanning a dataset file (or a worker's chunk of it) for ``dataset-schema``: findings and stats.

:func:`scan_chunk` runs the per-record checks over a stream of records and keeps what the file
verdicts need as compact arrays (:class:`ChunkScan`); worker processes each scan a chunk of a
large file and their results merge in file order. :class:`Emitter` caps the findings listed per
rule and counts all of them.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from sftgate.gates.adapter.json_problem import json_type
from sftgate.gates.data.dataset_schema_rules import R
from sftgate.gates.data.dataset_stats import ValueStats
from sftgate.gates.data.record_checks import (
    _UNSURE,
    FORMATS,
    check_messages,
    check_prompt_completion,
    fast_strict_parse,
    final_completion,
    q,
    unknown_format_problem,
)
from sftgate.gates.frame.core import Finding
from sftgate.gates.frame.finding_cap import FindingCap
from sftgate.gates.readers.dataset_io import DatasetSource
from sftgate.gates.readers.jsonl_reader import ReadIssue
from sftgate.gates.readers.roles import accepted_roles


class Emitter:
    """Builds findings, at most ``cap`` per rule per file (a :class:`FindingCap`); counts all of them."""

    def __init__(self, source: DatasetSource, cap: int) -> None:
        self.source = source
        self.cap = FindingCap(cap)
        self.counts = self.cap.totals  # every finding per rule, listed or not

    def __call__(self, rule: str, message: str, line: int, *, suggestion: str | None = None,
                 evidence: dict[str, Any] | None = None) -> Finding | None:
        spec = R[rule]
        if not self.cap.room(rule, self.source.location(line), code=spec.code, severity=spec.severity):
            return None
        return spec.finding(message, self.source.location(line), suggestion=suggestion, evidence=evidence,
                            line=line if self.source.line_based else None)

    def absorb(self, part: ChunkScan) -> Iterator[Finding]:
        """Take a chunk's findings (already capped per chunk) in file order, under the file's cap."""
        for f in part.findings:
            if self.cap.admit(f):
                yield f
        self.cap.absorb(part.cap)

    def summaries(self, records: int) -> Iterator[Finding]:
        """The cap's summary per rule, with the share of records and the next lines."""
        extra = {}
        for rule, locations in self.cap.next.items():
            pct = 100.0 * self.cap.totals[rule] / records if records else 0.0
            extra[rule] = {"percent": round(pct, 3),
                           "next_lines": [int(loc.rpartition(":")[2]) for loc in locations]}
        for f in self.cap.summaries(extra=extra):
            first = extra[f.rule]["next_lines"][0] if extra[f.rule]["next_lines"] else None
            yield replace(f, message=f"{f.message[:-1]}, {extra[f.rule]['percent']:.2f}% of records)",
                          line=first if self.source.line_based else None)


@dataclass
class ScanContext:
    """What every chunk's scan needs (inherited by forked workers, never pickled)."""

    schema: Any
    cap: int
    tokens: Any


@dataclass
class ChunkScan:
    """What scanning one chunk of a file leaves: capped findings, counts, compact per-record arrays."""

    findings: list[Finding] = field(default_factory=list)
    cap: FindingCap = field(default_factory=FindingCap)  # the chunk's counts, and where its unlisted findings are
    records: int = 0
    valid: int = 0
    schema_fails: int = 0
    format_lines: dict[str, array[int]] = field(default_factory=lambda: {f: array("I") for f in FORMATS})
    hashes: array[int] = field(default_factory=lambda: array("q"))
    hash_lines: array[int] = field(default_factory=lambda: array("I"))
    len_prompt: array[int] = field(default_factory=lambda: array("I"))
    len_completion: array[int] = field(default_factory=lambda: array("I"))
    values: ValueStats = field(default_factory=lambda: ValueStats())
    token_lengths: array[int] = field(default_factory=lambda: array("I"))
    too_long: int = 0
    token_path: str = ""

    def merge(self, other: ChunkScan) -> None:
        self.records += other.records
        self.valid += other.valid
        self.schema_fails += other.schema_fails
        for f, lines in other.format_lines.items():
            self.format_lines[f].extend(lines)
        for mine, theirs in ((self.hashes, other.hashes), (self.hash_lines, other.hash_lines),
                             (self.len_prompt, other.len_prompt), (self.len_completion, other.len_completion),
                             (self.token_lengths, other.token_lengths)):
            mine.extend(theirs)
        self.values.merge(other.values)
        self.too_long += other.too_long
        if other.token_path and self.token_path != "encode_many":
            self.token_path = other.token_path


def scan_chunk(ctx: ScanContext, source: DatasetSource, records: Iterator[tuple[int, Any]]) -> ChunkScan:
    """The per-record checks over ``records`` (a whole file, or a worker's chunk of it)."""
    import orjson

    from sftgate.gates.adapter.json_parse import parse_strict

    out = ChunkScan()
    emit = Emitter(source, ctx.cap)
    findings = out.findings
    schema = ctx.schema
    tokens = ctx.tokens.fork() if ctx.tokens is not None else None
    accepted = tokens.roles if tokens is not None else accepted_roles()  # the template's own roles too
    pc_lines, msg_lines = out.format_lines["prompt_completion"], out.format_lines["messages"]
    add_hash, add_hash_line = out.hashes.append, out.hash_lines.append
    add_len_p, add_len_c = out.len_prompt.append, out.len_completion.append
    add_value = out.values.add
    dumps = orjson.dumps
    sort_keys = orjson.OPT_SORT_KEYS
    orjson_loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    records_n = valid = schema_fails = 0

    def too_long(pairs: list[tuple[int, int]]) -> None:
        assert tokens is not None
        for long_line, n_tokens in pairs:
            if n_tokens < 0:
                reason = tokens.errors.pop(0) if tokens.errors else "the template raised"
                f = emit("template_error", f"the chat template cannot render the record: {reason}", long_line,
                         evidence={"error": reason})
                if f is not None:
                    findings.append(f)
                continue
            f = emit("too_long", f"{n_tokens} tokens > max_seq_len {tokens.max_seq_len}: the end of the "
                     "completion and its EOS would be cut", long_line,
                     evidence={"tokens": n_tokens, "max_seq_len": tokens.max_seq_len})
            if f is not None:
                findings.append(f)

    for line, obj in records:
        records_n += 1
        if type(obj) is not dict:
            if type(obj) is ReadIssue:
                what = {"invalid_utf8": "not valid UTF-8", "too_large": "over the record size bound"}.get(
                    obj.kind, "not valid JSON")
                f = emit("invalid_json_line", f"line is {what}: {obj.detail}: {obj.snippet}", line,
                         evidence={"reason": obj.kind, "column": obj.column})
            else:
                f = emit("not_an_object", f"a record must be a JSON object, found {json_type(obj)} {q(obj)}", line)
            if f is not None:
                findings.append(f)
            continue
        if "messages" in obj:
            rf = "ambiguous" if ("prompt" in obj or "completion" in obj) else "messages"
        elif "prompt" in obj or "completion" in obj:
            rf = "prompt_completion"
        else:
            rf = "unknown"
        if rf == "prompt_completion":
            pc_lines.append(line)
            problems = check_prompt_completion(obj)
        elif rf == "messages":
            msg_lines.append(line)
            problems = check_messages(obj, accepted)
        else:
            problems = [unknown_format_problem(obj, rf)]
        if problems:
            for rule, message, path, suggestion in problems:
                f = emit(rule, message, line, suggestion=suggestion, evidence={"field": path} if path else None)
                if f is not None:
                    findings.append(f)
            continue
        valid += 1
        # ---- a structurally valid record: stats, duplicates, completion schema, tokens
        completion: str | None
        if rf == "prompt_completion":
            completion = obj["completion"]
            add_hash(hash((obj["prompt"], completion)))
            add_len_p(len(obj["prompt"]))
        else:
            msgs = obj["messages"]
            completion = final_completion(obj, rf)
            add_hash(hash(dumps(msgs, option=sort_keys)))
            add_len_p(sum(len(m.get("content") or "") for m in msgs[:-1]))
        add_hash_line(line)
        add_len_c(len(completion) if completion is not None else 0)
        if tokens is not None:
            too_long(tokens.add(obj, line))
        if completion is None:
            continue
        if schema is not None:
            value = fast_strict_parse(completion)
            if value is _UNSURE or schema.problems(value):  # only the clean case is decided fast
                value, problem = parse_strict(completion)
                schema_problems = [problem] if problem is not None else schema.problems(value)
                if schema_problems:
                    schema_fails += 1
                    first = schema_problems[0]
                    f = emit("completion_schema",
                             f"completion is not valid: {first.rule}: {first.detail}: {q(completion, 80)}", line,
                             evidence={"json_rule": first.rule, "path": first.path,
                                       "problems": [{"rule": p.rule, "path": p.path, "detail": p.detail}
                                                    for p in schema_problems[:10]]})
                    if f is not None:
                        findings.append(f)
                    continue
            add_value(value)
        elif completion[:1] == "{":
            with contextlib.suppress(decode_error):
                add_value(orjson_loads(completion))
    if tokens is not None:
        too_long(tokens.flush())
        out.token_lengths = tokens.lengths
        out.too_long = tokens.too_long
        out.token_path = "batched (verified against encode_many)" if tokens.fast else "encode_many"
    out.records, out.valid, out.schema_fails = records_n, valid, schema_fails
    out.cap = emit.cap
    return out
