"""Write a command's report: stdout in the chosen format, JUnit XML, GitHub annotations."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from sftgate.gates import __version__
from sftgate.gates.frame.core import SftgateError
from sftgate.gates.frame.report import Report, emit_github, render, write_junit

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO


def emit_report(report: Report, args: argparse.Namespace, io: IO) -> int:
    fmt = getattr(args, "format", "table")
    io.stdout.write(render(report, fmt, color=fmt == "table" and _color(io)))
    junit = getattr(args, "junit_xml", None)
    if junit:
        write_junit(report, junit)
    # Annotations go to stdout, where the runner reads them, unless stdout carries the JSON document.
    emit_github(report, io.stderr if fmt == "json" else io.stdout, io.env)
    return report.exit_code


def emit_error(exc: SftgateError, args: argparse.Namespace | None, io: IO) -> int:
    """A user error: the message on stderr; with ``--format json`` also a JSON document."""
    io.stderr.write(f"sftgate: error: {exc}\n")
    if args is not None and getattr(args, "format", None) == "json":
        doc: dict[str, object] = {"schema_version": 1, "tool": "sftgate", "version": __version__,
               "command": getattr(args, "command", "") or "", "passed": False,
               "exit_code": exc.exit_code, "error": exc.message, "gates": []}
        io.stdout.write(json.dumps(doc, indent=2) + "\n")
    if io.env.get("GITHUB_ACTIONS") == "true":
        # stderr when stdout carries the JSON document (the runner reads annotations on both)
        stream = io.stderr if args is not None and getattr(args, "format", None) == "json" else io.stdout
        stream.write("::error title=sftgate::" + exc.message.replace("%", "%25").replace("\n", "%0A") + "\n")
    return exc.exit_code


def _color(io: IO) -> bool:
    return bool(getattr(io.stdout, "isatty", lambda: False)()) and "NO_COLOR" not in io.env
