"""The pass rate of the gate ``strict-json``: counts per rule and stop reason, metrics, the verdict.

:class:`PassRateTally` is filled case by case by :func:`~sftgate.gates.adapter.strict_json.check_records`;
at the end it gives the metrics (pass_rate, counts, eos_stop_rate...) and the ``pass_rate_below_min``
finding, if any.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sftgate.gates.adapter.strict_json_rules import R
from sftgate.gates.frame.core import Finding

__all__ = ["PassRateTally", "allowed_failures"]


def allowed_failures(min_pass_rate: float, size: int | None) -> int | None:
    """How many failed cases ``--fail-fast`` tolerates: 0 when every case must pass; with a lower
    ``min_pass_rate`` and ``size`` cases, the most that still lets the rate reach it; else None."""
    if min_pass_rate >= 1.0:
        return 0
    if size is not None:
        return int(size - min_pass_rate * size + 1e-9)  # more failures: the rate is below
    return None


@dataclass
class PassRateTally:
    """The running count of a check: cases seen and passed, cases failed per rule, stop reasons."""

    counts: Counter[str] = field(default_factory=Counter)
    stops: Counter[str] = field(default_factory=Counter)
    total: int = 0
    passed: int = 0
    stopped_early: bool = False

    @property
    def failed(self) -> int:
        return self.total - self.passed

    def cases(self, size: int | None) -> int:
        """The number of cases the check is about: all ``size`` when it stopped early, else those seen."""
        return size if self.stopped_early and size is not None else self.total

    def metrics(self, min_pass_rate: float, size: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cases": self.cases(size),
            "checked": self.total,
            "passed": self.passed,
            "failed": self.failed,
            "pass_rate": round(self.passed / self.total, 6),
            "min_pass_rate": min_pass_rate,
            "counts": dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        }
        if self.stops:
            out["eos_stop_rate"] = round(self.stops.get("eos", 0) / sum(self.stops.values()), 6)
            out["stop_reasons"] = dict(self.stops)
        if self.stopped_early:
            out["stopped_early"] = True
        return out

    def verdict(self, source: str, min_pass_rate: float, size: int | None) -> Finding | None:
        """The ``pass_rate_below_min`` finding, or None when the pass rate reaches the minimum."""
        total, passed = self.total, self.passed
        if self.stopped_early:
            denominator = self.cases(size)
            best = (denominator - self.failed) / denominator if denominator else 0.0
            return R["pass_rate_below_min"].finding(
                f"{self.failed} of the first {total} cases failed: the pass rate cannot reach "
                f"{min_pass_rate:g} (at most {best:.4f}); stopped early (--fail-fast)",
                source,
                evidence={"checked": total, "failed": self.failed, "min_pass_rate": min_pass_rate},
            )
        rate = passed / total
        if rate >= min_pass_rate:
            return None
        top = ", ".join(f"{rule} {n}" for rule, n in self.counts.most_common(5))
        return R["pass_rate_below_min"].finding(
            f"pass rate {rate:.4f} ({passed}/{total}) is below the minimum {min_pass_rate:g}"
            + (f"; most frequent: {top}" if top else ""),
            source,
            evidence={
                "pass_rate": round(rate, 6),
                "min_pass_rate": min_pass_rate,
                "passed": passed,
                "cases": total,
                "counts": dict(self.counts.most_common(20)),
            },
        )
