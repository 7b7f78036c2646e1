"""The report of a command: its gate results, rendered as JSON, a table, markdown or JUnit XML.

Rendering lives here, apart from the CLI; the CLI only picks a format and a stream.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TextIO

from sftgate.gates import __version__
from sftgate.gates.frame.core import GateResult, Severity, Status
from sftgate.gates.readers import atomic

SCHEMA_VERSION = 1
FORMATS = ("table", "json", "markdown")
_ICON = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.SKIP: "SKIP", Status.ERROR: "ERROR"}


@dataclass
class Report:
    command: str
    gates: list[GateResult] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)

    def add(self, result: GateResult) -> GateResult:
        self.gates.append(result)
        return result

    @property
    def passed(self) -> bool:
        """True when no gate blocks: a failure, an error or a required skip all block."""
        return bool(self.gates) and not any(g.blocks for g in self.gates)

    @property
    def exit_code(self) -> int:
        """0 passed; 1 a gate failed (or a required gate was skipped); 2 bad input; 3 internal."""
        errors = [g for g in self.gates if g.status is Status.ERROR]
        if errors:
            return max(g.error_exit_code for g in errors)
        return 0 if self.passed else 1

    def summary(self) -> dict[str, int]:
        counts = Counter(g.status.value for g in self.gates)
        sev = Counter(f.severity.value for g in self.gates for f in g.findings)
        return {
            "gates": len(self.gates),
            **{s.value: counts.get(s.value, 0) for s in Status},
            **{f"{s.value}s": sev.get(s.value, 0) for s in Severity},
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tool": "sftgate",
            "version": __version__,
            "command": self.command,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "gates": [g.to_dict() for g in self.gates],
        }
        if self.artifacts:
            out["artifacts"] = dict(self.artifacts)
        return out


def report_schema() -> dict[str, Any]:
    """The JSON Schema of ``--format json`` output, as shipped in the package."""
    text = resources.files("sftgate.gates").joinpath("schemas/report.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- renderers


def render(report: Report, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "markdown":
        return to_markdown(report)
    return to_table(report, color=color)


def to_json(report: Report) -> str:
    import orjson

    return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


_STATUS_COLOR = {Status.PASS: "32", Status.FAIL: "31", Status.SKIP: "33", Status.ERROR: "35"}
_SEV_COLOR = {Severity.ERROR: "31", Severity.WARNING: "33", Severity.INFO: "36"}


def gate_lines(g: GateResult, *, color: bool = False) -> list[str]:
    """One gate as text: a status line, then each finding with its location and fix, then metrics.

    Shared by the table report and the pytest plugin's failure text."""
    status = _paint(f"{_ICON[g.status]:<5}", _STATUS_COLOR[g.status], color)
    head = f"{status} {g.gate} [{g.stage.value}] ({g.seconds:.2f}s)"
    errors = sorted({f.rule for f in g.findings if f.is_error})
    if errors:
        count = sum(1 for f in g.findings if f.is_error)
        head += f": {count} error finding{'s' if count != 1 else ''} ({', '.join(errors)})"
    if g.reason:
        head += f": {g.reason}"
    lines = [head]
    for f in g.findings:
        sev = _paint(f"{f.severity.value:<7}", _SEV_COLOR[f.severity], color)
        lines.append(f"  {sev} {f.code} {f.rule}  {f.location}")
        lines.append(f"          {f.message}")
        if f.suggestion is not None:
            lines.append(f"          fix: {f.suggestion}")
    for key, value in g.metrics.items():
        if isinstance(value, int | float | str | bool):
            lines.append(f"          {key}: {value}")
    return lines


def to_table(report: Report, *, color: bool = False) -> str:
    """Human-readable text: one block per gate, one line per finding with location and fix."""
    lines: list[str] = []
    for g in report.gates:
        lines.extend(gate_lines(g, color=color))
    s = report.summary()
    verdict = "PASSED" if report.passed else "FAILED"
    verdict = _paint(verdict, "32" if report.passed else "31", color)
    lines.append(
        f"{verdict}: {s['gates']} gates, {s['pass']} passed, {s['fail']} failed, "
        f"{s['skip']} skipped, {s['error']} errors; {s['errors']} error findings, {s['warnings']} warnings"
    )
    for name, path in report.artifacts.items():
        lines.append(f"{name}: {path}")
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return escape(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    verdict = "passed" if report.passed else "failed"
    out = [f"## sftgate `{_md_cell(report.command)}`: {verdict}", ""]
    out += ["| gate | stage | status | findings | seconds |", "|---|---|---|---|---|"]
    for g in report.gates:
        status = _ICON[g.status] + (f" ({_md_cell(g.reason)})" if g.reason else "")
        out.append(f"| {g.gate} | {g.stage.value} | {status} | {len(g.findings)} | {g.seconds:.2f} |")
    findings = [(g, f) for g in report.gates for f in g.findings]
    if findings:
        out += ["", "| severity | code | rule | location | message | fix |", "|---|---|---|---|---|---|"]
        for _, f in findings[:200]:
            fix = _md_cell(f.suggestion) if f.suggestion is not None else ""
            out.append(
                f"| {f.severity.value} | {f.code} | `{f.rule}` | `{_md_cell(f.location)}` "
                f"| {_md_cell(f.message)} | {fix} |"
            )
        if len(findings) > 200:
            out.append(f"\n… {len(findings) - 200} more findings in the JSON report.")
    if report.artifacts:
        out += [""] + [f"- {name}: `{path}`" for name, path in report.artifacts.items()]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- JUnit XML

def escape(text: str) -> str:
    """XML character data escaping (``xml.sax.saxutils`` would pull in urllib at start-up)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quoteattr(text: str) -> str:
    """An XML attribute value, quoted, with newlines and tabs kept as character references."""
    text = escape(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    return f'"{text}"'


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Text that is legal in XML 1.0: illegal control characters are shown as ``\\xNN``."""
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def to_junit(report: Report) -> str:
    """One ``testsuite`` per report, one ``testcase`` per gate; findings are the failure text."""
    s = report.summary()
    cases = []
    for g in report.gates:
        name = quoteattr(xml_safe(f"{g.stage.value}::{g.gate}"))
        body = "\n".join(
            f"{f.severity.value} {f.code} {f.rule} at {f.location}: {f.message}"
            + (f" (fix: {f.suggestion})" if f.suggestion is not None else "")
            for f in g.findings
        )
        body = escape(xml_safe(body))
        inner = ""
        if g.status is Status.FAIL:
            errs = [f for f in g.findings if f.is_error]
            msg = quoteattr(xml_safe(f"{len(errs)} error finding(s): " + ", ".join(sorted({f.rule for f in errs}))))
            inner = f"<failure message={msg} type=\"gate-failed\">{body}</failure>"
        elif g.status is Status.ERROR:
            inner = f"<error message={quoteattr(xml_safe(g.reason or 'error'))} type=\"gate-error\">{body}</error>"
        elif g.status is Status.SKIP:
            reason = g.reason or "skipped"
            if g.required:  # a required skip is never a pass: it fails the suite
                inner = f"<failure message={quoteattr(xml_safe('required gate skipped: ' + reason))} type=\"gate-skipped\"/>"
            else:
                inner = f"<skipped message={quoteattr(xml_safe(reason))}/>"
        elif body:
            inner = f"<system-out>{body}</system-out>"
        cases.append(
            f'  <testcase classname="sftgate.{g.stage.value}" name={name} time="{g.seconds:.3f}">{inner}</testcase>'
        )
    failures = sum(1 for g in report.gates if g.status is Status.FAIL or (g.status is Status.SKIP and g.required))
    skipped = sum(1 for g in report.gates if g.status is Status.SKIP and not g.required)
    total = sum(g.seconds for g in report.gates)
    head = (
        f'<testsuite name={quoteattr(xml_safe("sftgate " + report.command))} tests="{s["gates"]}" '
        f'failures="{failures}" errors="{s["error"]}" skipped="{skipped}" time="{total:.3f}">'
    )
    return '<?xml version="1.0" encoding="utf-8"?>\n' + head + "\n" + "\n".join(cases) + "\n</testsuite>\n"


def write_junit(report: Report, path: str) -> None:
    atomic.write_text(path, to_junit(report))


# --------------------------------------------------------------------------- GitHub Actions


def _gh_escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_escape_prop(text: str) -> str:
    return _gh_escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(report: Report) -> str:
    """``::error file=F,line=L,title=CODE rule::message`` lines for errors and warnings."""
    lines = []
    for g in report.gates:
        if g.status is Status.ERROR:
            lines.append(f"::error title={_gh_escape_prop('sftgate ' + g.gate)}::{_gh_escape_data(g.reason or 'error')}")
        for f in g.findings:
            if f.severity is Severity.INFO:
                continue
            props = []
            if f.file:
                props.append(f"file={_gh_escape_prop(f.file)}")
                if f.file_line is not None:
                    props.append(f"line={f.file_line}")
            props.append(f"title={_gh_escape_prop(f'{f.code} {f.rule}')}")
            text = f.message + (f" (fix: {f.suggestion})" if f.suggestion is not None else "")
            lines.append(f"::{f.severity.value} {','.join(props)}::{_gh_escape_data(text)}")
    return "\n".join(lines) + ("\n" if lines else "")


def emit_github(report: Report, stream: TextIO, env: os._Environ[str] | dict[str, str]) -> None:
    """Under ``GITHUB_ACTIONS=true``: annotations on ``stream``, markdown to the step summary."""
    if env.get("GITHUB_ACTIONS") != "true":
        return
    stream.write(github_annotations(report))
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(to_markdown(report))
