"""The ``sftgate`` command line: a thin layer that parses, dispatches and renders.

Each subcommand lives in ``runners/cli/commands/<name>.py`` with ``HELP``, ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args, io)``; ``run`` returns a :class:`~sftgate.gates.frame.report.Report`
(rendered here in the chosen format) or an exit code. Errors a user can cause are
:class:`~sftgate.gates.frame.core.SftgateError` and map to their exit code here, in one place.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from sftgate.gates import __version__
from sftgate.gates.frame.core import SftgateError
from sftgate.gates.frame.report import FORMATS
from sftgate.runners.cli.streams import IO

# The explicit command table: name -> module. Order is the order of ``sftgate --help``.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("demo", "sftgate.runners.cli.commands.demo"),
    ("check", "sftgate.runners.cli.commands.check"),
    ("model-id", "sftgate.runners.cli.commands.model_id"),
    ("data", "sftgate.runners.cli.commands.data"),
    ("tokenizer", "sftgate.runners.cli.commands.tokenizer"),
    ("json-check", "sftgate.runners.cli.commands.json_check"),
    ("eval", "sftgate.runners.cli.commands.eval"),
    ("train", "sftgate.runners.cli.commands.train"),
    ("merge", "sftgate.runners.cli.commands.merge"),
    ("run", "sftgate.runners.cli.commands.run"),
    ("release", "sftgate.runners.cli.commands.release"),
    ("fix-model-ids", "sftgate.runners.cli.commands.fix_model_ids"),
    ("triage", "sftgate.runners.cli.commands.triage"),
    ("init", "sftgate.runners.cli.commands.init"),
    ("rules", "sftgate.runners.cli.commands.rules"),
)

EPILOG = """\
exit codes: 0 every gate passed; 1 a gate failed; 2 usage, config or input-file error;
            3 internal error.
start here: `sftgate demo` runs the whole pipeline on a built-in example;
            `sftgate init my-project && sftgate check my-project/sftgate.yaml` starts your own.
explain a rule: `sftgate rules dash_separated_id`."""


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse writing to our streams and returning instead of calling ``sys.exit``."""

    io: IO

    def _print_message(self, message: str, file: TextIO | None = None) -> None:  # type: ignore[override]
        if message:
            target = self.io.stderr if file is sys.stderr else self.io.stdout
            target.write(message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            self.io.stderr.write(message)
        raise _Exit(status)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n  hint: `{self.prog} --help` lists the options\n")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("output")
    group.add_argument("--format", choices=FORMATS, default="table",
                       help="report format on stdout (default: table; json is one document, schema in the package)")
    group.add_argument("--junit-xml", metavar="PATH", help="also write a JUnit XML report (one testcase per gate)")
    group.add_argument("--quiet", "-q", action="store_true", help="no progress bars or status lines on stderr")
    return common


def build_parser(io: IO) -> _Parser:
    parser = _Parser(
        prog="sftgate",
        description="Validation and CI gates for fine-tuning LLMs with transformers and PEFT.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.io = io
    parser.add_argument("--version", action="version", version=f"sftgate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_options()
    for name, module_name in COMMANDS:
        module = importlib.import_module(module_name)
        child = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],  # type: ignore[list-item]
        )
        child.io = io  # type: ignore[attr-defined]
        module.add_arguments(child)
        child.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None,
         env: dict[str, str] | None = None) -> int:
    """Entry point: parse ``argv``, run the command, render its report, return the exit code."""
    io = IO(stdout or sys.stdout, stderr or sys.stderr, dict(os.environ) if env is None else env)
    args = None
    try:
        parser = build_parser(io)
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if args.command is None:
            parser.print_help(io.stdout)
            return 2
        result = args._module.run(args, io)
        if isinstance(result, int):
            return result
        from sftgate.runners.cli.output import emit_report

        return emit_report(result, args, io)
    except _Exit as done:
        return done.code
    except SftgateError as exc:
        from sftgate.runners.cli.output import emit_error

        return emit_error(exc, args, io)
    except KeyboardInterrupt:
        io.stderr.write("sftgate: interrupted\n")
        return 130
    except Exception:
        io.stderr.write("sftgate: internal error (a bug in sftgate, not in your input); please report it with:\n")
        if io.env.get("SFTGATE_DEBUG"):
            traceback.print_exc(file=io.stderr)
        else:
            last = traceback.format_exc().strip().splitlines()[-1]
            io.stderr.write(f"  {last}\n  set SFTGATE_DEBUG=1 for the traceback\n")
        return 3


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
