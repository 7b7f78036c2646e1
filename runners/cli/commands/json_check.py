"""sftgate json-check OUTPUTS.jsonl --schema SCHEMA.json: the strict JSON gate on saved generations."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from sftgate.gates.frame import registry
from sftgate.gates.frame.core import InputError
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.report import Report
from sftgate.runners.cli.commands.argtypes import rate

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

HELP = "check saved generations are strict JSON valid against an output schema"
DESCRIPTION = """\
Check model outputs produced by anything (vLLM, TGI, an API, `sftgate eval`): each must be
strict JSON, valid against SCHEMA, and equal to the case's expected value when it has one.
Failures are named (code_fence, trailing_text, truncated, unterminated_json, duplicate_key,
missing_key, type_mismatch, ...) so the fix is obvious; `sftgate rules NAME` explains each.

OUTPUTS.jsonl has one generation per line:
  {"id": "c1", "output": "<raw text>", "stop_reason": "eos", "expected": {"name": "Ada"}}
"stop_reason" ("eos" or "length"; vLLM/OpenAI "finish_reason" works too) and "expected" are
optional. With stop_reason "length", JSON that is cut off is reported as `truncated`: raise
max_new_tokens or train EOS. Leading and trailing whitespace is valid JSON and passes.

The gate fails (exit 1) when the pass rate is below --min-pass-rate (default 1.0: every case
must pass). A missing file, or a schema that is missing or invalid, exits 2.

examples:
  sftgate json-check outputs.jsonl --schema schema.json
  sftgate json-check outputs.jsonl --schema schema.json --min-pass-rate 0.95 --format json
  sftgate json-check outputs.jsonl --schema schema.json --exact-keys --fail-fast
  sftgate json-check fixtures/strict_json/clean.jsonl --schema fixtures/strict_json/schema.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("outputs", metavar="OUTPUTS.jsonl", help="generations, one JSON object per line")
    parser.add_argument(
        "--schema",
        required=True,
        metavar="SCHEMA.json",
        help="JSON Schema every output must satisfy (Draft 2020-12 unless $schema says otherwise)",
    )
    parser.add_argument(
        "--min-pass-rate",
        type=rate,
        default=1.0,
        metavar="R",
        help="minimum share of passing cases, 0..1 or a percentage (default 1.0: all)",
    )
    parser.add_argument(
        "--fail-fast", action="store_true", help="stop as soon as the pass rate cannot be reached"
    )
    parser.add_argument(
        "--exact-keys",
        action="store_true",
        help="objects must have exactly the schema's properties, even without additionalProperties: false",
    )


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.gates.adapter import strict_json
    from sftgate.gates.adapter.output_schema import OutputSchema

    outputs = Path(args.outputs)
    if not outputs.is_file():
        what = "is a folder, expected a JSONL file" if outputs.is_dir() else "no such file"
        raise InputError(
            f"{args.outputs}: {what}",
            hint='OUTPUTS.jsonl holds one generation per line: {"id": "c1", "output": "..."}',
        )
    schema = OutputSchema.load(args.schema, exact_keys=args.exact_keys)
    spec = registry.get("strict-json")
    report = Report(command=f"json-check {args.outputs}")
    # fail_fast goes to the gate itself (it stops once the pass rate cannot be reached and still
    # reports it); run_gate's own fail_fast would stop at the first finding, before the verdict.
    check = functools.partial(strict_json.check, fail_fast=args.fail_fast)
    report.add(
        run_gate(
            spec.name,
            spec.stage,
            check,
            required=spec.required,
            outputs=outputs,
            schema=schema,
            min_pass_rate=args.min_pass_rate,
        )
    )
    return report
