"""Core types every gate shares: rules, findings, gate results and the errors users see.

A gate is a generator: ``check(...)`` yields :class:`Finding` objects and never stops at the
first one. A gate that cannot run raises; the gate runner (:mod:`sftgate.gates.frame.execute`) turns that into
status ``error``. A gate that has nothing to check raises :class:`GateSkipped`, which is never a
pass for a required gate.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_SAMPLES = 20
MAX_STRING = 300
MAX_DEPTH = 4
MAX_KEYS = 40


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


class Stage(str, enum.Enum):
    """The stages of a fine-tune, in promotion order."""

    CONFIG = "config"
    DATA = "data"
    TOKENIZER = "tokenizer"
    TRAIN = "train"
    ADAPTER = "adapter"
    MERGE = "merge"
    RELEASE = "release"


STAGE_ORDER = tuple(Stage)


# --------------------------------------------------------------------------- errors


class SftgateError(Exception):
    """Base of the errors a user can cause; ``str()`` is the message shown to them."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(SftgateError):
    """Bad command-line usage (exit 2)."""

    exit_code = 2


class InputError(SftgateError):
    """A missing, unreadable or malformed input file (exit 2)."""

    exit_code = 2


class OutputError(SftgateError):
    """A report or output target that cannot be written: a folder, a read-only place, a full disk,
    a closed stdout (exit 2)."""

    exit_code = 2


class ConfigError(InputError):
    """An invalid sftgate config: names the file, the key path and the line (exit 2).

    ``problems`` holds them structured (:class:`sftgate.gates.readers.config.ConfigProblem`) when validation found them."""

    problems: list[Any] = []  # noqa: RUF012 - replaced per instance by the validator


class GateSkipped(Exception):
    """Raised by a gate that has nothing to check; the reason goes in the report."""


# --------------------------------------------------------------------------- rules and findings


@dataclass(frozen=True)
class Rule:
    """One stable rule: a code that is never reused, a snake_case name, and its documentation."""

    code: str
    name: str
    severity: Severity
    gate: str
    summary: str
    why: str
    fix: str
    example: str = ""

    def finding(
        self,
        message: str,
        location: str,
        *,
        suggestion: str | None = None,
        evidence: Mapping[str, Any] | None = None,
        severity: Severity | None = None,
        line: int | None = None,
    ) -> Finding:
        """Build a finding of this rule; ``severity`` overrides the rule's default."""
        return Finding(
            code=self.code,
            rule=self.name,
            severity=severity or self.severity,
            message=one_line(message),
            location=location,
            suggestion=suggestion,
            evidence=bound_evidence(evidence or {}),
            line=line,
        )


def rule_maker(gate: str) -> Callable[..., Rule]:
    """``make(code, name, summary, why, fix, example="", severity=ERROR)``: the rules of one gate."""

    def make(code: str, name: str, summary: str, why: str, fix: str, example: str = "",
             severity: Severity = Severity.ERROR) -> Rule:
        return Rule(code, name, severity, gate, summary, why, fix, example)

    return make


@dataclass(frozen=True)
class Finding:
    code: str
    rule: str
    severity: Severity
    message: str
    location: str
    suggestion: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    line: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def file(self) -> str | None:
        """The file part of ``location`` when it names one (``FILE:LINE`` or ``FILE:key.path``)."""
        head, sep, _ = self.location.rpartition(":")
        return head if sep and head else None

    @property
    def file_line(self) -> int | None:
        """The line this finding points at: explicit, or parsed from ``FILE:LINE``."""
        if self.line is not None:
            return self.line
        _, sep, tail = self.location.rpartition(":")
        return int(tail) if sep and tail.isascii() and tail.isdigit() else None  # not "²"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "location": self.location,
        }
        if self.suggestion is not None:
            out["suggestion"] = self.suggestion
        if self.evidence:
            out["evidence"] = self.evidence
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass
class GateResult:
    gate: str
    stage: Stage
    status: Status
    seconds: float
    findings: list[Finding] = field(default_factory=list)
    required: bool = True
    reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    # Exit code a status ``error`` maps to: 2 for bad input, 3 for an internal failure.
    error_exit_code: int = 3

    @property
    def passed(self) -> bool:
        """A skip is never a pass; only a gate that ran and found no error passes."""
        return self.status is Status.PASS

    @property
    def blocks(self) -> bool:
        """Whether this result stops promotion (a required skip blocks; an optional one does not)."""
        if self.status is Status.SKIP:
            return self.required
        return self.status is not Status.PASS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "gate": self.gate,
            "stage": self.stage.value,
            "status": self.status.value,
            "seconds": round(self.seconds, 6),
            "required": self.required,
            "findings": [f.to_dict() for f in self.findings],
        }
        if self.reason:
            out["reason"] = self.reason
        if self.metrics:
            out["metrics"] = bound_evidence(self.metrics)
        return out


# --------------------------------------------------------------------------- bounded evidence


def one_line(text: str, limit: int = 500) -> str:
    """A message is one line: newlines and other control characters are shown escaped."""
    out = text if text.isprintable() else "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def bound_evidence(value: Mapping[str, Any]) -> dict[str, Any]:
    """Return a JSON-safe copy of ``value`` small enough for a report.

    Lists keep at most 20 items, strings at most 300 characters, dicts at most 40 keys,
    nesting at most 4 levels: evidence is a sample, never a whole file.
    """
    bounded = _bound(dict(value), 0)
    assert isinstance(bounded, dict)
    return bounded


def _bound(value: Any, depth: int) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):  # beyond 64 bits, JSON consumers (and orjson) lose it: keep it as text
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[: MAX_STRING - 1] + "…"
    if isinstance(value, bytes):
        return _bound(value.decode("utf-8", "backslashreplace"), depth)
    if depth >= MAX_DEPTH:
        return _bound(repr(value), depth)
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k): _bound(v, depth + 1) for k, v in items[:MAX_KEYS]}
        if len(items) > MAX_KEYS:
            out["…"] = f"{len(items) - MAX_KEYS} more keys"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        out_list = [_bound(v, depth + 1) for v in seq[:MAX_SAMPLES]]
        if len(seq) > MAX_SAMPLES:
            out_list.append(f"… {len(seq) - MAX_SAMPLES} more")
        return out_list
    return _bound(repr(value), depth)
