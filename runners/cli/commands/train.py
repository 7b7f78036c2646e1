"""sftgate train CONFIG: the train stage alone (lora-targets, LoRA training, provenance)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sftgate.gates.frame.core import Stage
from sftgate.gates.frame.report import Report

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

DISTRIBUTED = True  # under torchrun / accelerate launch only rank 0 prints and writes reports (cli.main)
HELP = "train the LoRA adapter (one stage: lora-targets, sft, provenance)"
DESCRIPTION = """\
Run the train stage of CONFIG with its gates: lora-targets checks lora.target_modules against
the model built on the meta device (no weights), then the model is wrapped with peft and
generates a few tokens (a PEFT or generation incompatibility fails in seconds), then LoRA SFT
with the transformers Trainer, then the provenance manifest and the job ledger.

Labels come from the same module the gates check (sftgate.gates.tokenizer.rendering): prompt tokens masked, the
completion and its final EOS / end-of-turn token trained; pad is distinct from EOS unless
train.collator is mask_pad. bf16 on a GPU that supports it, fp32 on CPU. The adapter is the
artifact: <train.output_dir>/adapter (adapter_config.json + adapter_model.safetensors, with the
tokenizer files), and the loss curve goes to <train.output_dir>/loss.png.

Run `sftgate check CONFIG` first (or `sftgate run`, which runs every stage in order).

examples:
  sftgate train sftgate.yaml
  sftgate train sftgate.yaml --format json
  torchrun --nproc-per-node 4 -m sftgate.runners.work.sft sftgate.yaml
  accelerate launch -m sftgate.runners.work.sft sftgate.yaml --quiet
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="sftgate.yaml")


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.runners.pipeline.run import run_pipeline

    report = run_pipeline(args.config, only=Stage.TRAIN, resume=False,
                          say=(lambda _m: None) if args.quiet else io.say,
                          progress=io.progress_enabled(args.quiet), command=f"train {args.config}")
    return report
