"""sftgate rules [NAME]: the rule catalogue, like ``ruff rule``."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from sftgate.gates.frame import catalog
from sftgate.gates.frame.core import Rule, UsageError

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

HELP = "list every rule, or explain one (code, name, severity, why, how to fix)"
DESCRIPTION = """\
List every rule with its stable code, name, severity and gate, or explain one rule in full:
what it checks, why it matters, an example and how to fix it.

examples:
  sftgate rules
  sftgate rules dash_separated_id
  sftgate rules MID003
  sftgate rules --format json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="a rule name or code")


def _as_dict(rule: Rule) -> dict[str, str]:
    return {"code": rule.code, "rule": rule.name, "severity": rule.severity.value, "gate": rule.gate,
            "summary": rule.summary, "why": rule.why, "fix": rule.fix, "example": rule.example}


def run(args: argparse.Namespace, io: IO) -> int:
    if args.name:
        rule = catalog.find(args.name)
        if rule is None:
            guesses = catalog.close_matches(args.name)
            hint = f"did you mean {', '.join(guesses)}?" if guesses else "`sftgate rules` lists them all"
            raise UsageError(f"no rule named '{args.name}'", hint=hint)
        if args.format == "json":
            io.stdout.write(json.dumps(_as_dict(rule), indent=2) + "\n")
        else:
            io.stdout.write(_explain(rule, markdown=args.format == "markdown"))
        return 0
    rules = catalog.all_rules()
    if args.format == "json":
        io.stdout.write(json.dumps([_as_dict(r) for r in rules], indent=2) + "\n")
    elif args.format == "markdown":
        io.stdout.write("| code | rule | severity | gate | what it catches |\n|---|---|---|---|---|\n")
        for r in rules:
            io.stdout.write(f"| {r.code} | `{r.name}` | {r.severity.value} | {r.gate} | {r.summary} |\n")
    else:
        width = max((len(r.name) for r in rules), default=10)
        for r in rules:
            io.stdout.write(f"{r.code:<8} {r.name:<{width}}  {r.severity.value:<7}  {r.gate:<18} {r.summary}\n")
    return 0


def _explain(rule: Rule, *, markdown: bool) -> str:
    head = f"# {rule.name} ({rule.code})" if markdown else f"{rule.name} ({rule.code})"
    parts = [head, "", f"Gate: {rule.gate}. Severity: {rule.severity.value}.", "", rule.summary, ""]
    parts += ["## Why" if markdown else "Why:", rule.why, ""]
    if rule.example:
        parts += ["## Example" if markdown else "Example:", rule.example, ""]
    parts += ["## How to fix" if markdown else "How to fix:", rule.fix, ""]
    return "\n".join(parts)
