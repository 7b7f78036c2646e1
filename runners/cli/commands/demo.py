"""sftgate demo: the whole pipeline on a built-in example, offline, on CPU."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sftgate.gates.frame.report import Report

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

BREAKS = ("model-id", "leak", "eos", "template")

HELP = "run the whole pipeline on a built-in example (offline, CPU, a few minutes)"
DESCRIPTION = """\
Build a tiny Mistral-architecture model and tokenizer offline, synthetic strict-JSON extraction
data (train, eval, fixed cases with held-out people, a JSON Schema) and run the whole pipeline
on CPU: config -> data -> tokenizer -> train (LoRA) -> adapter -> merge -> release. No download,
no GPU. The model really learns: the adapter and the merged model must pass strict-json on the
held-out fixed cases (pass rate >= 0.95) and stop with EOS.

A random network cannot learn a language through LoRA alone, so the demo first gives the base a
short full training step on raw text (prose answers and JSON records, never paired), and says so.

It writes everything under --out: data/, tokenizer/, base/, sftgate.yaml, and the run folder
run/ with adapter/, merged/, release/, outputs-*.jsonl, loss.png, report.json and
demo-report.md (where they are is printed at the end).

--break reproduces one real failure, stopped by the gate that owns it before any training
(exit 1, the rule in the report):
  model-id  the config names mistralai-Mistral-7B-Instruct-v0.3     -> model-id: dash_separated_id
  leak      eval rows copied into train                           -> split-isolation: eval_leak_exact
  eos       pad == eos and train.collator: mask_pad               -> eos: eos_masked
  template  serving renders with another chat template            -> prompt-alignment: template_mismatch

examples:
  sftgate demo
  sftgate demo --out /tmp/sftgate-demo --format json
  sftgate demo --break leak
  sftgate demo --break eos --format json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", default="sftgate-demo", help="where everything goes (default ./sftgate-demo)")
    parser.add_argument("--break", dest="break_case", choices=BREAKS, metavar="CASE",
                        help="reproduce one failure: " + ", ".join(BREAKS))


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.runners.demo.demo import run_demo

    say = (lambda _m: None) if args.quiet else io.say
    return run_demo(args.out, break_case=args.break_case, say=say, progress=io.progress_enabled(args.quiet))
