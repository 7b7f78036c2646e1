"""Run one gate: collect every finding, time it, and map skips and exceptions to a status."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable
from typing import Any

from sftgate.gates.frame.core import Finding, GateResult, GateSkipped, SftgateError, Stage, Status
from sftgate.gates.frame.failures import user_error
from sftgate.gates.frame.finding_cap import MAX_PER_RULE, FindingCap


def run_gate(
    gate: str,
    stage: Stage,
    check: Callable[..., Iterable[Finding]],
    *,
    required: bool = True,
    fail_fast: bool = False,
    metrics: dict[str, Any] | None = None,
    **kwargs: Any,
) -> GateResult:
    """Run ``check(**kwargs)`` and return its :class:`GateResult`.

    Every finding is collected unless ``fail_fast``, which stops after the first error. A check that
    takes ``max_per_rule`` caps its own findings (per input file); of any other, at most
    :data:`~sftgate.gates.frame.finding_cap.MAX_PER_RULE` per rule are listed, the others counted in
    one summary finding per rule (:class:`~sftgate.gates.frame.finding_cap.FindingCap`).
    A ``check`` that takes a ``metrics`` parameter gets a dict to fill (pass rates, counts);
    it lands in the result's ``metrics``. :class:`GateSkipped` becomes ``skip``; any other exception
    becomes ``error`` with the reason (exit 2 for bad input, 3 otherwise), never ``fail``.
    """
    findings: list[Finding] = []
    parameters = inspect.signature(check).parameters
    if metrics is None and "metrics" in parameters:
        metrics = {}
    # every gate's findings bounded: a gate that takes max_per_rule caps its own (per input file, in its
    # workers), the others here at MAX_PER_RULE; capping both ways would count one rule twice
    cap = FindingCap(0 if "max_per_rule" in parameters else MAX_PER_RULE)
    if metrics is not None:
        kwargs["metrics"] = metrics
    start = time.perf_counter()
    status = Status.PASS
    reason = None
    exit_code = 3
    try:
        for finding in check(**kwargs):
            if cap.admit(finding):
                findings.append(finding)
            if fail_fast and finding.is_error:
                reason = "stopped at the first error (--fail-fast)"
                break
    except GateSkipped as skip:
        status, reason = Status.SKIP, str(skip) or "skipped"
    except SftgateError as exc:
        status, reason, exit_code = Status.ERROR, str(exc), exc.exit_code
    except Exception as exc:  # a gate that raises could not run; it is not a verdict on the data
        known = user_error(exc)  # an OSError, too deep a nesting...: the input's, exit 2
        if known is not None:
            status, reason, exit_code = Status.ERROR, str(known), known.exit_code
        else:
            status, reason = Status.ERROR, f"{type(exc).__name__}: {exc}"
    findings.extend(cap.summaries())
    seconds = time.perf_counter() - start
    if status is Status.PASS and any(f.is_error for f in findings):
        status = Status.FAIL
    return GateResult(
        gate=gate,
        stage=stage,
        status=status,
        seconds=seconds,
        findings=findings,
        required=required,
        reason=reason,
        metrics=metrics or {},
        error_exit_code=exit_code,
    )


def skipped(gate: str, stage: Stage, reason: str, *, required: bool = True) -> GateResult:
    """A result for a gate that was not run (e.g. an earlier stage failed)."""
    return GateResult(gate=gate, stage=stage, status=Status.SKIP, seconds=0.0, required=required, reason=reason)
