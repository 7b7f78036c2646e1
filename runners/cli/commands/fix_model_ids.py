"""sftgate fix-model-ids FILE... [--write]: migrate model IDs in existing configs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sftgate.gates.config import fix_model_ids
from sftgate.gates.frame.core import Stage
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.report import Report

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

HELP = "rewrite broken model IDs in JSON/YAML configs (diff by default; --write to apply)"
DESCRIPTION = """\
Find the model-ID fields of each FILE (an sftgate.yaml; an axolotl, LLaMA-Factory, TRL or
mistral-finetune config, read with that tool's keys, comma-separated adapter lists included;
or any JSON/YAML job config: model.name, base_model, model_name_or_path, ...) and correct the
IDs that can be corrected
with certainty: dash-separated IDs of known organisations (mistralai-Mistral-7B-Instruct ->
mistralai/Mistral-7B-Instruct), HF cache folder names, URLs, legacy IDs (gpt2), stray
whitespace, quotes, a trailing '/' or '.git'. Guesses are listed, never applied.

Without --write: print the diff and exit 1 if anything would change (a CI check).
With --write: rewrite each file atomically, keep everything else as it was (JSON key order and
indentation, YAML comments, quoting and anchors), and keep the original as FILE.bak.

examples:
  sftgate fix-model-ids job.json                   # show the diff; exit 1 when a fix is pending
  sftgate fix-model-ids configs/*.yaml --write     # apply; originals kept as *.bak
  sftgate fix-model-ids job.json --format json     # the pending fixes as a JSON report
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSON or YAML config files")
    parser.add_argument("--write", action="store_true", help="apply the fixes (atomic; keeps FILE.bak)")
    parser.add_argument("--no-backup", action="store_true", help="with --write: do not keep FILE.bak")
    parser.add_argument("--format-of", choices=("axolotl", "llamafactory", "trl", "mistral-finetune", "sftgate"),
                        metavar="TOOL", default=None, help="read every FILE as this tool's config instead of "
                        "recognising it from its keys")


def run(args: argparse.Namespace, io: IO) -> Report:
    # every file parses before any write
    plans = [fix_model_ids.plan(path, env=io.env, format_of=args.format_of) for path in args.files]
    show_diff = args.format == "table"
    for result in plans:
        if show_diff and result.changed:
            io.stdout.write(result.diff())
    if args.write:
        for result in plans:
            bak = fix_model_ids.write(result, backup=not args.no_backup)
            if result.changed and not args.quiet:
                io.say(f"fixed {result.display}: {len(result.edits)} value(s)" + (f" (original in {bak})" if bak else ""))
    report = Report(command="fix-model-ids " + " ".join(args.files) + (" --write" if args.write else ""))
    report.add(run_gate("fix-model-ids", Stage.CONFIG, fix_model_ids.findings, required=True,
                        plans=plans, written=args.write))
    return report
