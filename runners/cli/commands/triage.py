"""sftgate triage LOG...: which gate would have caught the failures in these job logs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sftgate.gates.config import triage
from sftgate.gates.frame.core import Stage
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.report import Report

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

HELP = "map known failures in job logs to the gate and rule that would have caught them"
DESCRIPTION = """\
Scan job logs (files, .gz files, or folders of *.log/*.txt/*.out/*.err) for failure messages
that a gate catches before the job starts, and name that gate, the rule and the fix:

  'X is not a local folder and is not a valid model identifier'  -> model-id (the ID is
      diagnosed: dash_separated_id with the slash form as the fix, url_not_id, ...)
  HFValidationError 'Repo id must ...'                          -> model-id invalid_repo_id / local_path_missing
  gated repos, RepositoryNotFoundError                           -> model-id gated / not_found
  'is not a valid git identifier', Revision Not Found            -> model-id revision_not_found
  trust_remote_code, PEFT target modules, JSONDecodeError, over-long sequences -> their gates

Each distinct failure is reported once per log, at its first line (LOG:LINE), with the
number of occurrences. Exit 1 when a known failure is found, 0 when none is.

examples:
  sftgate triage logs/job-1234.log
  sftgate triage logs/ --format markdown
  sftgate triage slurm-*.out --format json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOG", help="log files or folders of logs")


def run(args: argparse.Namespace, io: IO) -> Report:
    triage.resolve_logs(args.logs)  # a missing log is an input error (exit 2), before any scan
    report = Report(command="triage " + " ".join(args.logs))
    report.add(run_gate("triage", Stage.CONFIG, triage.check, logs=args.logs))
    return report
