"""Gate ``dataset-schema``: every record has a known format, its fields and roles, and the stats.

Two formats are accepted, decided per file from ALL its records (never from the first one):

- ``prompt_completion``: ``{"prompt": "...", "completion": "..."}``
- ``messages``: ``{"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": "..."}]}``
  (after an optional leading ``system`` message, ``user`` and ``assistant`` alternate; ``tool``
  messages answer an assistant message with ``tool_calls``; the last turn is the assistant's).

Their JSON Schemas ship in the package (``gates/schemas/dataset-*.schema.json``); the checks here
are the same rules in code (a test proves they agree), because they run on every record of files
with millions of lines and must name each problem precisely. Extra keys (``id``, metadata, a
group key) are allowed.

Every finding carries ``FILE:LINE``. With an output schema every completion (or final assistant
turn) must be strict JSON valid against it (``completion_schema``). The metrics hold the stats:
counts, character lengths p5/p50/p95/max (numpy's linear interpolation, the definition of
``statistics.quantiles(method="inclusive")`` and pandas), the distribution of values in JSON
completions, duplicates and, with a tokenizer, token lengths and ``too_long``.

Each rule lists at most ``max_per_rule`` findings per file (default 100, 0 = all); one more
finding then gives the total and the lines of the others, so a file with a million broken lines
gives a readable report and every problem is still counted.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.data.dataset_schema_rules import GATE, RULES, R
from sftgate.gates.data.dataset_schema_scan import ChunkScan, Emitter, ScanContext, scan_chunk
from sftgate.gates.data.dataset_stats import duplicate_lines, enum_values, percentiles
from sftgate.gates.data.record_checks import FORMATS, q
from sftgate.gates.data.token_lengths import TokenCounter
from sftgate.gates.frame.core import Finding, InputError
from sftgate.gates.frame.finding_cap import MAX_PER_RULE
from sftgate.gates.readers.dataset_io import (
    PARALLEL_MIN_BYTES,
    DatasetSource,
    default_workers,
    map_chunks,
    open_dataset,
)

__all__ = ["GATE", "RULES", "check", "from_config", "local_tokenizer"]

TOKENS_PARALLEL_MIN_BYTES = 1024 * 1024
TOKENS_BYTES_PER_WORKER = 4 * 1024 * 1024  # with a tokenizer, about 0.4 s of work per worker at least


# --------------------------------------------------------------------------- the gate


def check(
    *,
    train: str | Path | None = None,
    eval: str | Path | None = None,
    output_schema: Any = None,
    exact_keys: bool = False,
    format: str = "auto",
    tokenizer: str | Path | None = None,
    max_seq_len: int | None = None,
    prompt: Any = None,
    progress: Any = False,
    max_per_rule: int = MAX_PER_RULE,
    workers: int | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Check the train (and eval) files; fill ``metrics`` with their stats.

    ``output_schema`` is a path or an :class:`~sftgate.gates.adapter.output_schema.OutputSchema`; ``format`` is
    ``auto`` (each file's majority format) or one of ``prompt_completion`` / ``messages``.
    With ``tokenizer`` (a local folder) the token lengths are measured, and with ``max_seq_len``
    too, ``too_long`` reports the records the trainer would cut. ``prompt`` is the
    :class:`~sftgate.gates.tokenizer.rendering.PromptSpec` the trainer uses (default: none). ``workers``: processes
    for a large JSONL file (default: one per CPU from 32 MB on; 1 reads in this process).
    """
    if format not in ("auto", *FORMATS):
        raise InputError(f"unknown data format {format!r}", hint="use auto, prompt_completion or messages")
    metrics = metrics if metrics is not None else {}
    schema = _load_schema(output_schema, exact_keys)
    files = [(role, p) for role, p in (("train", train), ("eval", eval)) if p is not None]
    if not files:
        raise InputError("no dataset file to check", hint="give TRAIN.jsonl (and --eval EVAL.jsonl)")
    sources = [(role, open_dataset(p, progress=progress)) for role, p in files]
    tokens = TokenCounter(tokenizer, prompt=prompt, max_seq_len=max_seq_len) if tokenizer is not None else None
    totals = {"records": 0, "valid": 0, "duplicates": 0}
    for role, source in sources:
        file_metrics: dict[str, Any] = {"file": source.display}
        if workers is not None:
            n_workers = max(1, workers)
        else:  # tokenizing costs ~50x the checks per record: parallel from 1 MB on
            n_workers = (default_workers(source, min_bytes=TOKENS_PARALLEL_MIN_BYTES, bytes_per_worker=TOKENS_BYTES_PER_WORKER)
                         if tokens else default_workers(source, min_bytes=PARALLEL_MIN_BYTES))
        yield from _check_file(source, ScanContext(schema, max_per_rule, tokens), fmt=format, workers=n_workers,
                               metrics=file_metrics)
        metrics[role] = file_metrics
        for key in totals:
            totals[key] += int(file_metrics.get(key, 0))
        if "too_long" in file_metrics:
            totals["too_long"] = totals.get("too_long", 0) + file_metrics["too_long"]
    metrics.update(totals)
    if "too_long" in totals:
        metrics["too_long_pct"] = round(100.0 * totals["too_long"] / totals["valid"], 3) if totals["valid"] else 0.0


def _load_schema(output_schema: Any, exact_keys: bool) -> Any:
    if output_schema is None:
        return None
    from sftgate.gates.adapter.output_schema import OutputSchema

    if isinstance(output_schema, OutputSchema):
        return output_schema
    return OutputSchema.load(output_schema, exact_keys=exact_keys)


def _check_file(source: DatasetSource, ctx: ScanContext, *, fmt: str, workers: int,
                metrics: dict[str, Any]) -> Iterator[Finding]:
    import functools

    emit = Emitter(source, ctx.cap)
    total = ChunkScan()
    for part in map_chunks(source, functools.partial(scan_chunk, ctx), workers=workers):
        yield from emit.absorb(part)
        total.merge(part)

    # ---- file-level findings
    counts = source.counts
    if total.records == 0:
        f = emit("empty_dataset", "no records in the file" + (" (only blank lines)" if counts.get("blank_lines") else ""),
                 1)
        if f is not None:
            yield f
    if counts.get("blank_lines"):
        blank = source.blank_lines
        yield R["blank_line"].finding(
            f"{counts['blank_lines']} blank line(s), first at line {blank[0]}; they are skipped",
            source.location(blank[0]), evidence={"count": counts["blank_lines"], "lines": blank}, line=blank[0])
    yield from _mixed_formats(emit, total.format_lines, fmt)
    duplicates = 0
    for dup_line, first_line in duplicate_lines(total.hashes, total.hash_lines):
        duplicates += 1
        f = emit("duplicate_example", f"the record repeats line {first_line} exactly", dup_line,
                 evidence={"first": source.location(first_line)})
        if f is not None:
            yield f
    values = total.values
    if ctx.schema is not None and values.objects:
        seen = values.counts
        for key, allowed in enum_values(ctx.schema.schema).items():
            if key in values.high_cardinality:
                continue
            missing = [v for v in allowed if v not in seen.get(key, {})]
            if missing:
                yield R["unseen_enum_value"].finding(
                    f"{key}: enum value(s) {q(missing)} never occur in {values.objects} completions",
                    f"{source.display}:{key}", evidence={"key": key, "missing": missing, "seen": seen.get(key, {})})
    yield from emit.summaries(total.records)

    # ---- metrics
    metrics.update({
        "records": total.records,
        "valid": total.valid,
        "format": _majority(total.format_lines, fmt),
        "formats": {f: len(lines) for f, lines in total.format_lines.items() if lines},
        "duplicates": duplicates,
        "chars": {"prompt": percentiles(total.len_prompt), "completion": percentiles(total.len_completion)},
        "rules": {rule: n for rule, n in emit.counts.items() if n},
    })
    if workers > 1:
        metrics["workers"] = workers
    if ctx.schema is not None:
        metrics["completion_schema_pass_rate"] = round(1 - total.schema_fails / total.valid, 4) if total.valid else 0.0
    if values.objects:
        metrics["completion_values"] = values.summary()
        if values.high_cardinality:
            metrics["completion_keys_not_enum"] = sorted(values.high_cardinality)[:20]
    for key in ("blank_lines", "crlf_lines", "bom"):
        if counts.get(key):
            metrics[key] = counts[key]
    if ctx.tokens is not None:
        metrics["tokens"] = percentiles(total.token_lengths)
        if total.token_path:
            metrics["token_path"] = total.token_path
        if ctx.tokens.max_seq_len is not None:
            metrics["too_long"] = total.too_long
            metrics["too_long_pct"] = (round(100.0 * total.too_long / len(total.token_lengths), 3)
                                       if len(total.token_lengths) else 0.0)


def _majority(format_lines: dict[str, array[int]], fmt: str) -> str | None:
    if fmt != "auto":
        return fmt
    sizes = {f: len(lines) for f, lines in format_lines.items() if lines}
    if not sizes:
        return None
    best = max(sizes.values())
    tied = [f for f, n in sizes.items() if n == best]
    if len(tied) == 1:
        return tied[0]
    # a tie: the format of the first record
    return min(tied, key=lambda f: format_lines[f][0])


def _mixed_formats(emit: Emitter, format_lines: dict[str, array[int]], fmt: str) -> Iterator[Finding]:
    majority = _majority(format_lines, fmt)
    if majority is None:
        return
    sizes = {f: len(lines) for f, lines in format_lines.items()}
    for other, lines in format_lines.items():
        if other == majority or not lines:
            continue
        why = (f"data.format is {majority}" if fmt != "auto"
               else f"{sizes[majority]} records are {majority}, {sizes[other]} are {other}")
        for line in lines:
            f = emit("mixed_formats", f"a {other} record in a {majority} file ({why})", line,
                     evidence={"file_format": majority, "record_format": other, "counts": sizes})
            if f is not None:
                yield f


# --------------------------------------------------------------------------- config


def from_config(config: Any) -> dict[str, Any] | None:
    """The kwargs for :func:`check` from an sftgate config, or None when it names no data."""
    train = config.require_file("data.train")
    eval_path = config.require_file("data.eval")
    if train is None and eval_path is None:
        return None
    kwargs: dict[str, Any] = {
        "train": train,
        "eval": eval_path,
        "output_schema": config.require_file("data.output_schema"),
        "exact_keys": bool(config.get("data.exact_keys", False)),
        "format": config.get("data.format", "auto") or "auto",
    }
    max_seq_len = config.get("train.max_seq_len")
    tokenizer = local_tokenizer(config)
    if tokenizer is not None:
        from sftgate.gates.tokenizer.rendering import spec_from_config

        kwargs.update(tokenizer=tokenizer, max_seq_len=max_seq_len, prompt=spec_from_config(config))
    return kwargs


def local_tokenizer(config: Any) -> Path | None:
    """The tokenizer folder the config names and that exists offline, else None (no token stats).

    A tokenizer that is missing is the tokenizer gates' finding; the data checks run without it.
    """
    from sftgate.gates.frame.core import ConfigError, GateSkipped
    from sftgate.gates.readers.tokenizer_io import tokenizer_dir_from_config

    try:
        return tokenizer_dir_from_config(config)
    except (GateSkipped, ConfigError):
        return None
