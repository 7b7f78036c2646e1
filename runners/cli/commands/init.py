"""sftgate init DIR: scaffold a starter project that `sftgate check` passes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sftgate.gates.frame.report import Report
from sftgate.runners.scaffold import scaffold

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

HELP = "create a starter project (config, train/eval data, output schema, fixed cases)"
DESCRIPTION = """\
Create DIR (or fill an existing folder) with a complete starter project that `sftgate check`
passes: sftgate.yaml; data/train.jsonl and data/eval.jsonl (prompt/completion records whose
completions are compact JSON, with no eval row leaking into train); data/cases.jsonl (fixed
cases with expected answers); schema/output.schema.json (the JSON Schema every answer must
satisfy). The task is support-ticket triage; replace the data with yours and keep the shape.
Existing files are never overwritten: init writes nothing if any of them exists. The new
project is then checked at once, so the report shows what `sftgate check` will run.

examples:
  sftgate init my-project
  sftgate check my-project/sftgate.yaml
  sftgate rules                      # what each gate checks
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the folder to create (or an empty one)")


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.gates.frame.preflight import run_preflight

    written = scaffold(args.dir)
    config = Path(args.dir) / "sftgate.yaml"
    if not args.quiet:
        for path in written:
            io.say(f"created {path}")
        io.say(f"checking the new project (the same as `sftgate check {config}`):")
    report = run_preflight(config, command=f"init {args.dir}")
    for path in written:
        report.artifacts[path.relative_to(args.dir).as_posix()] = str(path)
    return report
