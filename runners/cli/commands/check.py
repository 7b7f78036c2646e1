"""sftgate check CONFIG: every preflight gate the config enables."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sftgate.gates.frame.report import Report
    from sftgate.runners.cli.streams import IO

HELP = "run every preflight gate a config enables (CPU only, no weights)"
# The formats --format-of takes (kept here so --help needs no import of the gates).
FORMATS_OF = ("axolotl", "llamafactory", "trl", "mistral-finetune", "sftgate")
DESCRIPTION = """\
Run every preflight gate that CONFIG enables, before any GPU time is spent: model IDs,
dataset schema and split isolation, prompt alignment and EOS handling, and, when the base
model's files are available offline, its embedding rows for the tokens training relies on (a
few rows read by offset, never the weights), its generation config and its context window.
CPU only. Paths in the config are relative to the config file.

CONFIG is an sftgate.yaml, or the job config of axolotl, LLaMA-Factory, TRL (`trl sft --config`)
or mistral-finetune: the format is recognised from the keys (the report says which and why;
--format-of forces it), every key is checked against that tool's documented options (did you
mean...), and the gates run on what it names: model IDs, datasets (in the tool's format, found
from the config's folder, the current folder and the folders above), the tokenizer and chat
template when they are available offline, the sequence length, the LoRA targets. An
accelerate, DeepSpeed or launcher file passes with a note. Any other JSON or YAML config is
scanned for model-ID fields (model.name, base_model, model_name_or_path, ...).

examples:
  sftgate check sftgate.yaml
  sftgate check examples/qwen2-lora.yml                 # axolotl
  sftgate check train_lora/llama3_lora_sft.yaml --format-of llamafactory
  sftgate check job.json --format json
  sftgate check sftgate.yaml --junit-xml reports/preflight.xml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="sftgate.yaml, or any JSON/YAML job config")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failing gate")
    parser.add_argument("--format-of", choices=FORMATS_OF, metavar="TOOL", default=None,
                        help=f"read CONFIG as this tool's job config ({', '.join(FORMATS_OF)}) instead of "
                        "recognising it from its keys")


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.gates.frame.preflight import run_preflight

    return run_preflight(args.config, fail_fast=args.fail_fast, format_of=args.format_of)
