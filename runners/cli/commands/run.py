"""sftgate run CONFIG: the whole pipeline, config to release, every stage behind its gates."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sftgate.gates.frame.core import Stage
from sftgate.gates.frame.report import Report

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

DISTRIBUTED = True  # under torchrun / accelerate launch only rank 0 prints and writes reports (cli.main)
HELP = "run the whole pipeline: config, data, tokenizer, train, adapter, merge, release"
DESCRIPTION = """\
Run every stage of the fine-tune that CONFIG describes, each behind its gates; a stage starts
only when every stage before it passed, and one report covers the whole run:

  config     model-id
  data       dataset-schema, split-isolation
  tokenizer  prompt-alignment, eos, embeddings, model-config
  train      lora-targets (before any weights load), sft (LoRA training after a PEFT
             smoke test), provenance (manifest + job ledger runs/submissions.jsonl)
  adapter    strict-json and eos-behaviour on the fixed cases (base + adapter)
  merge      merge, merge-equivalence, artifacts, merge-dtype, strict-json and eos-behaviour
             (merged)
  release    promotion to the release folder with a manifest, only if no gate blocks

Everything goes to the run folder (train.output_dir, default sftgate-runs/<config name>):
adapter/, merged/, release/ (or release.dir), outputs-*.jsonl, provenance.json, loss.png,
report.json, report.md. A rerun resumes after the last stage that passed when its inputs (the
config sections, files and folders it reads) are unchanged; --fresh runs everything again.
Training runs under `accelerate launch` / `torchrun` too: see `sftgate train --help`.

examples:
  sftgate run sftgate.yaml
  sftgate run sftgate.yaml --until tokenizer        # the preflight stages only
  sftgate run sftgate.yaml --until adapter --format json --junit-xml reports/run.xml
  sftgate run sftgate.yaml --fresh
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="sftgate.yaml")
    parser.add_argument("--until", choices=[s.value for s in Stage], metavar="STAGE",
                        help="stop after this stage: " + ", ".join(s.value for s in Stage))
    parser.add_argument("--fresh", action="store_true", help="do not resume: run every stage again")


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.runners.pipeline.run import run_pipeline

    report = run_pipeline(args.config, until=args.until, resume=not args.fresh,
                          say=(lambda _m: None) if args.quiet else io.say,
                          progress=io.progress_enabled(args.quiet), command=f"run {args.config}")
    return report
