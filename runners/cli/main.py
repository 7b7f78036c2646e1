"""The ``sftgate`` command line: a thin layer that parses, dispatches and renders.

Each subcommand lives in ``runners/cli/commands/<name>.py`` with ``HELP``, ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args, io)``; ``run`` returns a :class:`~sftgate.gates.frame.report.Report`
(rendered here in the chosen format) or an exit code. Errors a user can cause are
:class:`~sftgate.gates.frame.core.SftgateError` and map to their exit code here, in one place.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, TextIO

from sftgate.gates import __version__
from sftgate.gates.frame.report import FORMATS
from sftgate.runners.cli.streams import IO

# The explicit command table: name -> module. Order is the order of ``sftgate --help``.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("demo", "sftgate.runners.cli.commands.demo"),
    ("check", "sftgate.runners.cli.commands.check"),
    ("model-id", "sftgate.runners.cli.commands.model_id"),
    ("data", "sftgate.runners.cli.commands.data"),
    ("tokenizer", "sftgate.runners.cli.commands.tokenizer"),
    ("labels", "sftgate.runners.cli.commands.labels"),
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
    """Entry point: parse ``argv``, run the command, render its report, return the exit code.

    The one place an exception becomes an exit code (:mod:`sftgate.gates.frame.failures`): a user
    error is 2 with its message, Ctrl-C is 130, a bug is 3; no traceback unless ``SFTGATE_DEBUG``.
    Run as the ``sftgate`` script (no streams given), ``sys.stdout`` and ``sys.stderr`` are the guarded
    streams while the command runs, so what libraries print is guarded and scrubbed too."""
    own = stdout is None and stderr is None
    io = IO(stdout or sys.stdout or _Closed(), stderr or sys.stderr or _Closed(),
            dict(os.environ) if env is None else env)
    saved = (sys.stdout, sys.stderr)
    if own:
        sys.stdout, sys.stderr = io.stdout, io.stderr  # type: ignore[assignment]
    try:
        return _run(argv, io)
    finally:
        if own:
            sys.stdout, sys.stderr = saved
        _finish(io, own)


def _run(argv: Sequence[str] | None, io: IO) -> int:
    args = None
    try:
        parser = build_parser(io)
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if args.command is None:
            parser.print_help(io.stdout)
            return 2
        if argv is None and getattr(args._module, "TORCH_FREE", False):  # the script itself, not a caller's process
            from sftgate.gates.readers.tokenizer_io import without_torch

            without_torch()
        result = args._module.run(args, io)
        if getattr(args._module, "DISTRIBUTED", False) and not isinstance(result, int):
            from sftgate.runners.work.ranks import is_main_process

            if not is_main_process():  # one report per job, rank 0's: no stdout, JSON or JUnit from the others
                return result.exit_code
        if isinstance(result, int):
            from sftgate.runners.cli.output import emit_exit_code

            return emit_exit_code(result, args, io)
        from sftgate.runners.cli.output import emit_report

        return emit_report(result, args, io)
    except _Exit as done:
        return done.code
    except KeyboardInterrupt:
        _quietly(io.stderr.write, "sftgate: interrupted\n")
        return 130
    except Exception as exc:
        from sftgate.gates.frame.failures import user_error

        known = user_error(exc)
        if known is None:
            return _internal_error(io)
        from sftgate.runners.cli.output import emit_error

        try:
            return emit_error(known, args, io)
        except (OSError, ValueError):  # the streams themselves are gone
            return known.exit_code


def _internal_error(io: IO) -> int:
    def report() -> None:
        io.stderr.write("sftgate: internal error (a bug in sftgate, not in your input); please report it with:\n")
        if io.env.get("SFTGATE_DEBUG"):
            traceback.print_exc(file=io.stderr)
        else:
            last = traceback.format_exc().strip().splitlines()[-1]
            io.stderr.write(f"  {last}\n  set SFTGATE_DEBUG=1 for the traceback\n")

    _quietly(report)
    return 3


def _quietly(write: Any, *args: Any) -> None:
    """Write to a stream that may be closed (a broken pipe): then say nothing."""
    with contextlib.suppress(OSError, ValueError):
        write(*args)


def _finish(io: IO, own: bool) -> None:
    try:
        io.finish()
    except (OSError, ValueError):  # stdout closed under us (`| head`): no second error at exit
        if own:
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())


class _Closed:
    """Stands in for a stream the process was started without (``sftgate ... >&-``)."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "the stream is closed (the process was started without it)")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
