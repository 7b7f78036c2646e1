"""sftgate init DIR: scaffold a starter project that `sftgate check` passes."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gates.core import Stage
from gates.execute import run_gate
from gates.report import Report
from gates.scaffold import scaffold

if TYPE_CHECKING:
    from runners.cli import IO

HELP = "create a starter project (config, train/eval data, output schema, fixed cases)"
DESCRIPTION = """\
Create DIR (or fill an existing folder) with a complete starter project that `sftgate check`
passes: sftgate.yaml; data/train.jsonl and data/eval.jsonl (prompt/completion records whose
completions are compact JSON, with no eval row leaking into train); data/cases.jsonl (fixed
cases with expected answers); schema/output.schema.json (the JSON Schema every answer must
satisfy). The task is support-ticket triage; replace the data with yours and keep the shape.
Existing files are never overwritten: init writes nothing if any of them exists.

examples:
  sftgate init my-project
  sftgate check my-project/sftgate.yaml
  sftgate rules                      # what each gate checks
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the folder to create (or an empty one)")


def run(args: argparse.Namespace, io: IO) -> Report:
    written = scaffold(args.dir)
    report = Report(command=f"init {args.dir}")
    report.add(run_gate("init", Stage.CONFIG, _nothing_to_check))
    for path in written:
        report.artifacts[path.relative_to(args.dir).as_posix()] = str(path)
    if not args.quiet:
        io.say(f"next: sftgate check {args.dir}/sftgate.yaml")
    return report


def _nothing_to_check():  # the init "gate": the files were written; nothing failed
    yield from ()
