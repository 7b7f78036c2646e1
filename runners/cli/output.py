"""Write a command's report: stdout in the chosen format, JUnit XML, GitHub annotations, errors.

Every value is escaped where it is written (:mod:`sftgate.gates.frame.escape`) and the streams are
guarded (:class:`~sftgate.gates.frame.escape.GuardedStream`); files are scrubbed of secrets too.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from sftgate.gates import __version__
from sftgate.gates.frame.core import SftgateError
from sftgate.gates.frame.escape import gh_data, visible, write_command
from sftgate.gates.frame.report import Report, emit_github, render, write_junit

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO


def emit_report(report: Report, args: argparse.Namespace, io: IO) -> int:
    fmt = getattr(args, "format", "table")
    io.stdout.write(render(report, fmt, color=fmt == "table" and _color(io)))
    junit = getattr(args, "junit_xml", None)
    if junit:
        write_junit(report, junit, scrub=io.scrubber)
    # Annotations go to stdout, where the runner reads them, unless stdout carries the JSON document.
    emit_github(report, io.stderr if fmt == "json" else io.stdout, io.env, scrub=io.scrubber)
    return report.exit_code


def error_lines(exc: SftgateError) -> list[str]:
    """The lines of a user error on stderr: each line of the message and the hint, made visible."""
    lines = [visible(line) for line in exc.message.split("\n")]
    lines[0] = f"sftgate: error: {lines[0]}"
    if exc.hint:
        lines += [f"  hint: {visible(line)}" for line in exc.hint.split("\n")]
    return lines


def emit_exit_code(code: int, args: argparse.Namespace, io: IO) -> int:
    """A command that prints no gate report (``rules``): ``--junit-xml`` still gets a report, with no gates."""
    junit = getattr(args, "junit_xml", None)
    if junit:
        write_junit(Report(command=str(getattr(args, "command", "") or "")), junit)
    return code


def emit_error(exc: SftgateError, args: argparse.Namespace | None, io: IO) -> int:
    """A user error: the message on stderr; with ``--format json`` also a JSON document."""
    io.stderr.write("\n".join(error_lines(exc)) + "\n")
    as_json = args is not None and getattr(args, "format", None) == "json"
    if as_json:
        doc: dict[str, object] = {"schema_version": 1, "tool": "sftgate", "version": __version__,
               "command": getattr(args, "command", "") or "", "passed": False,
               "exit_code": exc.exit_code, "error": exc.message, "gates": []}
        io.stdout.write(json.dumps(doc, indent=2) + "\n")
    if io.env.get("GITHUB_ACTIONS") == "true":
        # stderr when stdout carries the JSON document (the runner reads annotations on both)
        write_command(io.stderr if as_json else io.stdout, "::error title=sftgate::" + gh_data(exc.message))
    return exc.exit_code


def _color(io: IO) -> bool:
    return bool(getattr(io.stdout, "isatty", lambda: False)()) and "NO_COLOR" not in io.env
