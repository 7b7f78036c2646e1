"""The statistics of ``dataset-schema``: length percentiles, completion value counts, enums, duplicates.

Percentiles use numpy's linear interpolation (the definition of
``statistics.quantiles(method="inclusive")`` and pandas). :class:`ValueStats` counts the values of
the top-level keys of JSON-object completions, bounded so that a key with too many distinct
values is not taken for an enum.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_DISTINCT_VALUES = 50  # a completion key with more distinct values is not an enum
MAX_VALUE_KEYS = 20
PERCENTILES = (5, 50, 95)


def percentiles(values: Any) -> dict[str, float | int]:
    """p5/p50/p95 (linear interpolation between closest ranks) and max of ``values``; {} if none."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {}
    p = np.percentile(arr, PERCENTILES)
    out: dict[str, float | int] = {f"p{k}": round(float(v), 1) for k, v in zip(PERCENTILES, p, strict=True)}
    out["max"] = int(arr.max())
    out["mean"] = round(float(arr.mean()), 1)
    return out


@dataclass
class ValueStats:
    """Counts of the values of each top-level key of JSON-object completions (bounded)."""

    counts: dict[str, dict[Any, int]] = field(default_factory=dict)
    high_cardinality: set[str] = field(default_factory=set)
    objects: int = 0

    def add(self, value: Any) -> None:
        if type(value) is not dict:
            return
        self.objects += 1
        counts = self.counts
        for key, v in value.items():
            if type(v) not in (str, bool, int) or key in self.high_cardinality:
                continue
            per_key = counts.get(key)
            if per_key is None:
                if len(counts) >= MAX_VALUE_KEYS:
                    continue
                per_key = counts[key] = {}
            if v in per_key:
                per_key[v] += 1
            elif len(per_key) < MAX_DISTINCT_VALUES:
                per_key[v] = 1
            else:
                self.high_cardinality.add(key)
                del counts[key]

    def merge(self, other: ValueStats) -> None:
        self.objects += other.objects
        self.high_cardinality |= other.high_cardinality
        for key in self.high_cardinality:
            self.counts.pop(key, None)
        for key, per_key in other.counts.items():
            if key in self.high_cardinality:
                continue
            mine = self.counts.get(key)
            if mine is None:
                if len(self.counts) >= MAX_VALUE_KEYS:
                    continue
                mine = self.counts[key] = {}
            for v, n in per_key.items():
                mine[v] = mine.get(v, 0) + n
            if len(mine) > MAX_DISTINCT_VALUES:
                self.high_cardinality.add(key)
                del self.counts[key]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, per_key in self.counts.items():
            top = sorted(per_key.items(), key=lambda kv: (-kv[1], str(kv[0])))
            out[key] = {json.dumps(k) if not isinstance(k, str) else k: n for k, n in top}
        return out


def enum_values(schema: Any) -> dict[str, list[Any]]:
    """Top-level properties of an output schema that are enums (``enum`` or ``const``)."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties")
    out: dict[str, list[Any]] = {}
    if isinstance(props, dict):
        for key, sub in props.items():
            if isinstance(sub, dict) and isinstance(sub.get("enum"), list):
                out[key] = list(sub["enum"])
    return out


def duplicate_lines(hashes: array[int], lines: array[int]) -> Iterator[tuple[int, int]]:
    """``(line, first line)`` of every record whose hash an earlier record has, in line order."""
    if len(hashes) < 2:
        return
    import numpy as np

    h = np.frombuffer(hashes, dtype=np.int64)
    ln = np.frombuffer(lines, dtype=np.uint32)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    start = np.empty(len(hs), dtype=bool)
    start[0] = True
    np.not_equal(hs[1:], hs[:-1], out=start[1:])
    if start.all():
        return
    run = np.cumsum(start) - 1
    first_pos = order[np.flatnonzero(start)][run]
    dup = ~start
    dup_lines = ln[order[dup]]
    first_lines = ln[first_pos[dup]]
    by_line = np.argsort(dup_lines, kind="stable")
    yield from zip(dup_lines[by_line].tolist(), first_lines[by_line].tolist(), strict=True)
