"""sftgate check CONFIG: every preflight gate the config enables."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sftgate.gates.frame.report import Report
    from sftgate.runners.cli.streams import IO

HELP = "run every preflight gate a config enables (CPU only, no weights)"
DESCRIPTION = """\
Run every preflight gate that CONFIG enables, before any GPU time is spent: model IDs,
dataset schema and split isolation, prompt alignment and EOS handling. CPU only; no weights
are loaded. Paths in the config are relative to the config file.

CONFIG is an sftgate.yaml; any other JSON or YAML config (a training job, an axolotl or TRL
config) is scanned for model-ID fields (model.name, base_model, model_name_or_path, ...).

examples:
  sftgate check sftgate.yaml
  sftgate check job.json --format json
  sftgate check sftgate.yaml --junit-xml reports/preflight.xml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="sftgate.yaml, or any JSON/YAML job config")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failing gate")


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.gates.frame.preflight import run_preflight

    return run_preflight(args.config, fail_fast=args.fail_fast)
