"""Comparing a parsed output with its case's expected value: a bounded, per-key diff.

``true`` never equals ``1``; ``1`` equals ``1.0``; each difference names its JSON path.
"""

from __future__ import annotations

from typing import Any

import orjson

from sftgate.gates.adapter.json_problem import format_path, json_type, short

__all__ = ["MAX_DIFFS", "value_diff"]

MAX_DIFFS = 20


def value_diff(expected: Any, got: Any, path: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Per-key differences between two JSON values (``true`` never equals ``1``; ``1`` equals ``1.0``)."""
    if _canonical(expected) == _canonical(got) is not None:
        return []  # identical, types included: the common case, without a walk in Python
    out: list[dict[str, Any]] = []
    _diff(expected, got, list(path), out)
    return out


def _diff(expected: Any, got: Any, parts: list[Any], out: list[dict[str, Any]]) -> None:
    if len(out) >= MAX_DIFFS * 5:
        return
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in expected:
            if key not in got:
                out.append(
                    {"path": format_path([*parts, key]), "expected": short(expected[key]), "got": "(missing)"}
                )
            else:
                _diff(expected[key], got[key], [*parts, key], out)
        for key in got:
            if key not in expected:
                out.append(
                    {"path": format_path([*parts, key]), "expected": "(absent)", "got": short(got[key])}
                )
        return
    if isinstance(expected, list) and isinstance(got, list):
        for i, (e, g) in enumerate(zip(expected, got, strict=False)):
            _diff(e, g, [*parts, i], out)
        if len(expected) != len(got):
            out.append(
                {"path": format_path(parts), "expected": f"{len(expected)} items", "got": f"{len(got)} items"}
            )
        return
    if not _same(expected, got):
        out.append({"path": format_path(parts), "expected": short(expected), "got": short(got)})


def _canonical(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except Exception:  # beyond orjson (integers over 64 bits...): the exact walk decides
        return None


def _same(a: Any, b: Any) -> bool:
    ta, tb = json_type(a), json_type(b)
    numeric = {"integer", "number"}
    if ta != tb and not (ta in numeric and tb in numeric):
        return False
    return bool(a == b)
