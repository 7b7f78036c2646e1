"""The report of a command: its gate results, rendered as JSON, a table, markdown or JUnit XML.

Rendering lives here, apart from the CLI; the CLI only picks a format and a stream.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TextIO

from sftgate.gates import __version__
from sftgate.gates.frame.core import GateResult, Severity, Status
from sftgate.gates.frame.escape import (
    OLD_COMMAND_DEFUSED,
    gh_data,
    gh_prop,
    md_code,
    md_text,
    visible,
    write_command,
    xml_attr,
    xml_text,
)
from sftgate.gates.readers import report_target

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

    data = report.to_dict()
    try:
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode("utf-8")
    except TypeError:  # a lone surrogate (e.g. from a file name that is not UTF-8): shown escaped
        text = orjson.dumps(_visible_surrogates(data), option=orjson.OPT_INDENT_2).decode("utf-8")
    # "##[" in a value would start an old-style workflow command; "#\u0023[" is the same JSON text
    return text.replace("##[", OLD_COMMAND_DEFUSED) + "\n"


def _visible_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, dict):
        return {_visible_surrogates(k): _visible_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible_surrogates(v) for v in value]
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


_STATUS_COLOR = {Status.PASS: "32", Status.FAIL: "31", Status.SKIP: "33", Status.ERROR: "35"}
_SEV_COLOR = {Severity.ERROR: "31", Severity.WARNING: "33", Severity.INFO: "36"}


def gate_lines(g: GateResult, *, color: bool = False) -> list[str]:
    """One gate as text: a status line, then each finding with its location and fix, then metrics.

    Shared by the table report and the pytest plugin's failure text. Every value is
    :func:`~sftgate.gates.frame.escape.visible`: no value breaks a line or paints the terminal."""
    status = _paint(f"{_ICON[g.status]:<5}", _STATUS_COLOR[g.status], color)
    head = f"{status} {visible(g.gate)} [{g.stage.value}] ({g.seconds:.2f}s)"
    errors = sorted({f.rule for f in g.findings if f.is_error})
    if errors:
        count = sum(1 for f in g.findings if f.is_error)
        head += f": {count} error finding{'s' if count != 1 else ''} ({visible(', '.join(errors))})"
    # A reason may hold lines (an error and its hint): each is shown after a "|", so none starts a line
    reason = [visible(line) for line in (g.reason or "").split("\n")]
    if g.reason:
        head += f": {reason[0]}"
    lines = [head] + [f"        | {line.strip()}" for line in reason[1:] if line.strip()]
    for f in g.findings:
        sev = _paint(f"{f.severity.value:<7}", _SEV_COLOR[f.severity], color)
        lines.append(f"  {sev} {f.code} {visible(f.rule)}  {visible(f.location)}")
        lines.append(f"          {visible(f.message)}")
        if f.suggestion is not None:
            lines.append(f"          fix: {visible(f.suggestion)}")
    for key, value in g.metrics.items():
        if isinstance(value, int | float | str | bool):
            lines.append(f"          {visible(str(key))}: {visible(str(value))}")
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
        lines.append(f"{visible(name)}: {visible(str(path))}")
    return "\n".join(lines) + "\n"


def to_markdown(report: Report) -> str:
    """GitHub-flavoured markdown (the step summary): every value escaped with
    :func:`~sftgate.gates.frame.escape.md_text`, so none becomes a link, an image, HTML or a new cell."""
    verdict = "passed" if report.passed else "failed"
    out = [f"## sftgate {md_text(report.command)}: {verdict}", ""]
    out += ["| gate | stage | status | findings | seconds |", "|---|---|---|---|---|"]
    for g in report.gates:
        status = _ICON[g.status] + (f" ({md_text(g.reason)})" if g.reason else "")
        out.append(f"| {md_text(g.gate)} | {g.stage.value} | {status} | {len(g.findings)} | {g.seconds:.2f} |")
    findings = [(g, f) for g in report.gates for f in g.findings]
    if findings:
        out += ["", "| severity | code | rule | location | message | fix |", "|---|---|---|---|---|---|"]
        for _, f in findings[:200]:
            fix = md_text(f.suggestion) if f.suggestion is not None else ""
            out.append(
                f"| {f.severity.value} | {md_text(f.code)} | {md_code(f.rule)} | {md_text(f.location)} "
                f"| {md_text(f.message)} | {fix} |"
            )
        if len(findings) > 200:
            out.append(f"\n… {len(findings) - 200} more findings in the JSON report.")
    if report.artifacts:
        out += [""] + [f"- {md_text(name)}: {md_text(str(path))}" for name, path in report.artifacts.items()]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- JUnit XML


def to_junit(report: Report) -> str:
    """One ``testsuite`` per report, one ``testcase`` per gate; findings are the failure text.

    Every value is one line (:func:`~sftgate.gates.frame.escape.visible`) and XML-escaped."""
    s = report.summary()
    cases = []
    for g in report.gates:
        name = xml_attr(visible(f"{g.stage.value}::{g.gate}"))
        body = "\n".join(
            visible(f"{f.severity.value} {f.code} {f.rule} at {f.location}: {f.message}"
                    + (f" (fix: {f.suggestion})" if f.suggestion is not None else ""))
            for f in g.findings
        )
        body = xml_text(body)
        inner = ""
        if g.status is Status.FAIL:
            errs = [f for f in g.findings if f.is_error]
            msg = xml_attr(visible(f"{len(errs)} error finding(s): " + ", ".join(sorted({f.rule for f in errs}))))
            inner = f"<failure message={msg} type=\"gate-failed\">{body}</failure>"
        elif g.status is Status.ERROR:
            inner = f"<error message={xml_attr(visible(g.reason or 'error'))} type=\"gate-error\">{body}</error>"
        elif g.status is Status.SKIP:
            reason = visible(g.reason or "skipped")
            if g.required:  # a required skip is never a pass: it fails the suite
                inner = f"<failure message={xml_attr('required gate skipped: ' + reason)} type=\"gate-skipped\"/>"
            else:
                inner = f"<skipped message={xml_attr(reason)}/>"
        elif body:
            inner = f"<system-out>{body}</system-out>"
        cases.append(
            f'  <testcase classname="sftgate.{g.stage.value}" name={name} time="{g.seconds:.3f}">{inner}</testcase>'
        )
    failures = sum(1 for g in report.gates if g.status is Status.FAIL or (g.status is Status.SKIP and g.required))
    skipped = sum(1 for g in report.gates if g.status is Status.SKIP and not g.required)
    total = sum(g.seconds for g in report.gates)
    head = (
        f'<testsuite name={xml_attr(visible("sftgate " + report.command))} tests="{s["gates"]}" '
        f'failures="{failures}" errors="{s["error"]}" skipped="{skipped}" time="{total:.3f}">'
    )
    return '<?xml version="1.0" encoding="utf-8"?>\n' + head + "\n" + "\n".join(cases) + "\n</testsuite>\n"


def write_junit(report: Report, path: str, *, scrub: Callable[[str], str] | None = None) -> None:
    """Write the JUnit XML to ``path`` (see :func:`sftgate.gates.readers.report_target.write_report`)."""
    text = to_junit(report)
    report_target.write_report(path, scrub(text) if scrub else text, what="--junit-xml")


# --------------------------------------------------------------------------- GitHub Actions


def github_annotations(report: Report) -> str:
    """``::error file=F,line=L,title=CODE rule::message`` lines for errors and warnings."""
    lines = []
    for g in report.gates:
        if g.status is Status.ERROR:
            lines.append(f"::error title={gh_prop('sftgate ' + g.gate)}::{gh_data(g.reason or 'error')}")
        for f in g.findings:
            if f.severity is Severity.INFO:
                continue
            props = []
            if f.file:
                props.append(f"file={gh_prop(f.file)}")
                if f.file_line is not None:
                    props.append(f"line={f.file_line}")
            props.append(f"title={gh_prop(f'{f.code} {f.rule}')}")
            text = f.message + (f" (fix: {f.suggestion})" if f.suggestion is not None else "")
            lines.append(f"::{f.severity.value} {','.join(props)}::{gh_data(text)}")
    return "\n".join(lines) + ("\n" if lines else "")


def emit_github(report: Report, stream: TextIO, env: os._Environ[str] | dict[str, str], *,
                scrub: Callable[[str], str] | None = None) -> None:
    """Under ``GITHUB_ACTIONS=true``: annotations on ``stream``, markdown to the step summary.

    The annotations go through the stream's command door
    (:meth:`~sftgate.gates.frame.escape.GuardedStream.command`); the summary is appended with
    :func:`sftgate.gates.readers.report_target.append_report` and scrubbed of the environment's secrets."""
    if env.get("GITHUB_ACTIONS") != "true":
        return
    for line in github_annotations(report).split("\n")[:-1]:
        write_command(stream, line)
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        if scrub is None:
            from sftgate.gates.frame.secrets import Scrubber

            scrub = Scrubber.from_env(env)
        report_target.append_report(summary, scrub(to_markdown(report)), what="GITHUB_STEP_SUMMARY")
