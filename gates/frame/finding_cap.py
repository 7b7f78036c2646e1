"""At most N findings listed per rule, every one counted: what keeps a report (and memory) bounded.

A gate that checks a million records can find a million problems; a report that lists them all
is unreadable and building it takes gigabytes. :class:`FindingCap` lists the first ``limit``
findings of each rule (``0``: all), counts the others, keeps the locations of the next
:data:`NEXT_LOCATIONS` of them, and ends with one summary finding per capped rule::

    JSON003 unterminated_json  999,900 more unterminated_json findings not listed (1,000,000 in all)
        evidence: {"total": 1000000, "listed": 100, "not_listed": 999900, "next_locations": [...]}

Memory stays bounded by rules x ``limit``, not by records. Every gate goes through one:
:func:`~sftgate.gates.frame.execute.run_gate` caps what a gate yields (with the gate's own
``max_per_rule`` when it takes one, else :data:`MAX_PER_RULE`); gates that find problems in worker
processes cap inside each worker as well (``dataset-schema``, ``split-isolation``), and gates that
would build several findings per record ask :meth:`FindingCap.room` before building one
(``strict-json``). A summary finding (evidence with ``not_listed``) passes any later cap as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sftgate.gates.frame.core import Finding, Severity

MAX_PER_RULE = 100
NEXT_LOCATIONS = 20

__all__ = ["MAX_PER_RULE", "FindingCap", "is_summary"]


def is_summary(finding: Finding) -> bool:
    """Whether ``finding`` is a cap's summary ("N more ... not listed"), not a finding of its own."""
    return "not_listed" in finding.evidence


class FindingCap:
    """Lists the first ``limit`` findings of each rule (0: all) and counts all of them."""

    def __init__(self, limit: int = MAX_PER_RULE) -> None:
        self.limit = max(0, int(limit))
        self.totals: dict[str, int] = {}  # every finding counted, listed or not
        self.listed: dict[str, int] = {}
        self.next: dict[str, list[str]] = {}  # locations of the first findings not listed
        self.kinds: dict[str, tuple[str, Severity]] = {}  # rule -> (code, severity) of its summary

    def room(self, rule: str, location: str = "", *, code: str = "", severity: Severity = Severity.ERROR) -> bool:
        """Count one finding of ``rule`` (at ``location``); True when it is to be listed (built)."""
        self.totals[rule] = self.totals.get(rule, 0) + 1
        listed = self.listed.get(rule, 0)
        if not self.limit or listed < self.limit:
            self.listed[rule] = listed + 1
            return True
        locations = self.next.get(rule)
        if locations is None:
            locations = self.next[rule] = []
            self.kinds[rule] = (code, severity)
        if len(locations) < NEXT_LOCATIONS:
            locations.append(location)
        return False

    def admit(self, finding: Finding) -> bool:
        """Count ``finding``; True when it is listed. A summary is always listed and never counted."""
        if is_summary(finding):
            return True
        return self.room(finding.rule, finding.location, code=finding.code, severity=finding.severity)

    @property
    def not_listed(self) -> int:
        """How many findings were counted but not listed, all rules together."""
        return sum(self.totals[rule] - self.listed.get(rule, 0) for rule in self.next)

    def summaries(self, *, extra: dict[str, dict[str, Any]] | None = None) -> Iterator[Finding]:
        """One finding per capped rule: how many more were found, in all, and where the next ones are.

        ``extra`` adds evidence per rule (e.g. the share of records)."""
        for rule, locations in self.next.items():
            total, listed = self.totals[rule], self.listed.get(rule, 0)
            code, severity = self.kinds[rule]
            evidence: dict[str, Any] = {"total": total, "listed": listed, "not_listed": total - listed,
                                        "next_locations": locations, **(extra or {}).get(rule, {})}
            yield Finding(code=code, rule=rule, severity=severity,
                          message=f"{total - listed:,} more {rule} findings not listed ({total:,} in all)",
                          location=locations[0] if locations else "", evidence=evidence)

    def absorb(self, other: FindingCap) -> None:
        """Add the counts of a cap that saw later findings of the same file (a worker's chunk): its
        listed findings go through :meth:`admit` separately; here only its unlisted ones."""
        for rule, locations in other.next.items():
            unlisted = other.totals[rule] - other.listed.get(rule, 0)
            self.totals[rule] = self.totals.get(rule, 0) + unlisted
            mine = self.next.get(rule)
            if mine is None:
                mine = self.next[rule] = []
                self.kinds[rule] = other.kinds[rule]
            mine.extend(locations[: NEXT_LOCATIONS - len(mine)])
