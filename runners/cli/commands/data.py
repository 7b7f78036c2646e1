"""sftgate data TRAIN.jsonl: the dataset gates (schema, quality, stats, split isolation)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sftgate.gates.frame.core import InputError, Stage, UsageError
from sftgate.gates.frame.execute import run_gate, skipped
from sftgate.gates.frame.report import Report
from sftgate.gates.readers.textfile import PATH_HINT
from sftgate.runners.cli.commands.argtypes import non_negative_int, positive_int

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

TORCH_FREE = True  # the script loads tokenizers without torch (tokenizer_io.without_torch)
HELP = "check training data: schema, roles, completions, stats, train/eval leaks"
DESCRIPTION = """\
Check a training file before any GPU time is spent: every record is valid JSON in a known
format (prompt/completion, or chat messages with system/user/assistant roles in order, ending
with the assistant), every completion is strict JSON valid against the output schema, and the
stats (counts, character and token lengths p5/p50/p95/max, JSON value balance, duplicates) land
in the report. With --eval or --cases, eval records and fixed cases are looked up in train:
exact copies, copies after normalisation, the same prompt, a shared 13-word n-gram, a shared
group (--group-key). Every finding names FILE:LINE and the fix; `sftgate rules NAME` explains it.

TRAIN (and EVAL) is JSON Lines, a Parquet file or a `datasets` save_to_disk folder. Large JSONL
files are read by one worker process per CPU; a progress bar shows on a terminal (not with
--quiet). Exit 1 when a gate fails, 2 when a file is missing or unreadable.

examples:
  sftgate data train.jsonl
  sftgate data train.jsonl --eval eval.jsonl --output-schema schema.json
  sftgate data train.jsonl --eval eval.jsonl --cases cases.jsonl --group-key source_id --format json
  sftgate data train.jsonl --tokenizer ./tokenizer --max-seq-len 2048
  sftgate data train.jsonl --expectations --expectations-suite team_suite.json
  sftgate data fixtures/data/clean_prompt_completion.jsonl --eval fixtures/data/clean_eval.jsonl
"""




def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("train", metavar="TRAIN.jsonl", help="training data: JSONL, Parquet or a save_to_disk folder")
    parser.add_argument("--eval", metavar="EVAL.jsonl", help="eval split: checked like train, and for leaks into train")
    parser.add_argument("--cases", metavar="CASES.jsonl", help="fixed eval cases: their prompts must not be in train")
    parser.add_argument("--output-schema", metavar="SCHEMA.json",
                        help="JSON Schema every completion (or final assistant turn) must satisfy as strict JSON")
    parser.add_argument("--exact-keys", action="store_true",
                        help="completion objects must have exactly the schema's properties")
    parser.add_argument("--data-format", choices=("auto", "prompt_completion", "messages"), default="auto",
                        help="expected record format (default auto: each file's majority format)")
    parser.add_argument("--group-key", metavar="KEY",
                        help="a field (dotted path, e.g. meta.doc_id) whose values must not span train and eval")
    parser.add_argument("--ngram", type=positive_int, default=13, metavar="N",
                        help="word n-gram length for eval_leak_ngram (default 13)")
    parser.add_argument("--tokenizer", metavar="DIR", help="local tokenizer folder: token-length stats")
    parser.add_argument("--max-seq-len", type=positive_int, metavar="N",
                        help="with --tokenizer: records longer than N tokens are too_long")
    parser.add_argument("--expectations", action="store_true",
                        help="also run the checks as a great-expectations suite and write Data Docs (extra gx)")
    parser.add_argument("--expectations-suite", metavar="FILE",
                        help="also run this GX expectation suite (JSON) on the data (implies --expectations)")
    parser.add_argument("--data-docs", metavar="DIR",
                        help="where the GX Data Docs go (default: sftgate-data-docs/ beside --junit-xml, or here)")
    parser.add_argument("--max-per-rule", type=non_negative_int, default=100, metavar="N",
                        help="findings listed per rule and file (default 100; 0 lists all; all are counted)")
    parser.add_argument("--workers", type=non_negative_int, metavar="N",
                        help="processes for a large JSONL file (default: one per CPU from 32 MB on)")
    parser.add_argument("--fail-fast", action="store_true", help="stop each gate at its first error")


def _must_exist(path: str | None, what: str) -> None:
    if path is not None and not Path(path).exists():
        raise InputError(f"{path}: no such file ({what})", hint=PATH_HINT)


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.gates.data import dataset_schema, split_isolation
    from sftgate.gates.readers.roles import accepted_roles, folder_template_text

    if args.max_seq_len is not None and not args.tokenizer:
        raise UsageError("--max-seq-len needs --tokenizer DIR to count tokens",
                         hint="e.g. sftgate data train.jsonl --tokenizer ./tokenizer --max-seq-len 2048")
    for path, what in ((args.train, "TRAIN"), (args.eval, "--eval"), (args.cases, "--cases"),
                       (args.output_schema, "--output-schema"), (args.tokenizer, "--tokenizer"),
                       (args.expectations_suite, "--expectations-suite")):
        _must_exist(path, what)
    progress = io.stderr if io.progress_enabled(args.quiet) else False
    workers = args.workers or None
    report = Report(command="data " + args.train)
    schema = args.output_schema
    if schema is not None:
        from sftgate.gates.adapter.output_schema import OutputSchema

        schema = OutputSchema.load(schema, exact_keys=args.exact_keys)  # a bad schema: exit 2 before any gate
    report.add(run_gate(
        "dataset-schema", Stage.DATA, dataset_schema.check, fail_fast=args.fail_fast,
        train=args.train, eval=args.eval, output_schema=schema, format=args.data_format,
        tokenizer=args.tokenizer, max_seq_len=args.max_seq_len, progress=progress,
        max_per_rule=args.max_per_rule, workers=workers,
    ))
    if args.eval or args.cases:
        report.add(run_gate(
            "split-isolation", Stage.DATA, split_isolation.check, fail_fast=args.fail_fast,
            train=args.train, eval=args.eval, cases=args.cases, group_key=args.group_key, ngram=args.ngram,
            progress=progress, max_per_rule=args.max_per_rule, workers=workers,
            roles=accepted_roles(folder_template_text(args.tokenizer)),  # the one role policy, as for train
        ))
    else:
        report.add(skipped("split-isolation", Stage.DATA, "no --eval or --cases to compare train with",
                           required=False))
    if args.expectations or args.expectations_suite:
        from sftgate.gates.data import gx_suite

        docs = Path(args.data_docs) if args.data_docs else (
            Path(args.junit_xml).parent / gx_suite.DOCS_DIR if args.junit_xml else Path(gx_suite.DOCS_DIR))
        result = report.add(run_gate(
            gx_suite.GATE, Stage.DATA, gx_suite.check, fail_fast=args.fail_fast,
            train=args.train, eval=args.eval, suite=args.expectations_suite, builtin=args.expectations,
            output_schema=schema, docs_dir=docs,
        ))
        if "data_docs" in result.metrics:
            report.artifacts["data_docs"] = result.metrics["data_docs"]
    return report
