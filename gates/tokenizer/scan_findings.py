"""Findings of gate ``prompt-alignment`` on what the data scan could not check or found in the text.

- ``record_not_rendered``: records the chat template refused, records with nothing to train (the
  last turn is not the assistant's) and values that are not objects. The gate checked only the
  rest, so it must not pass: one finding per cause, with the share and sample lines.
- ``special_token_in_content``: a message text holds a special token's string (training records
  and fixed cases), unless the split-special-tokens rendering is on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from sftgate.gates.frame.core import Finding
from sftgate.gates.tokenizer.data_scan import DataScan
from sftgate.gates.tokenizer.prompt_alignment_rules import (
    MAX_FINDINGS,
    RECORD_NOT_RENDERED,
    SPECIAL_TOKEN_IN_CONTENT,
)
from sftgate.gates.tokenizer.prompt_spec import PromptSpec
from sftgate.gates.tokenizer.special_content import content_hits, hit_evidence

SPLIT_FIX = "prompt.split_special_tokens: true"


def unrendered_findings(scan: DataScan) -> Iterator[Finding]:
    """One ``record_not_rendered`` per cause (template error, no completion, not an object)."""
    total = len(scan.records) + scan.unrenderable + scan.no_completion + scan.skipped
    missed = total - len(scan.records)
    if not missed:
        return
    checked = f"the gate checked {len(scan.records)} of {total} records ({len(scan.records) / total:.0%})"
    common = {"total": total, "checked": len(scan.records), "checked_share": round(len(scan.records) / total, 6)}
    if scan.unrenderable:
        reasons = Counter(reason for _, reason in scan.unrenderable_samples)
        reason = reasons.most_common(1)[0][0] if reasons else "the template raised"
        first = scan.unrenderable_samples[0][0] if scan.unrenderable_samples else None
        yield RECORD_NOT_RENDERED.finding(
            f"{scan.unrenderable} records cannot be rendered ({reason}); {checked}",
            f"{scan.source}:{first}" if first is not None else scan.source,
            suggestion="fix those records or the chat template; `sftgate data FILE --tokenizer DIR` lists each",
            evidence={**common, "cause": "template_error", "count": scan.unrenderable,
                      "samples": [{"line": line, "error": err[:200]} for line, err in scan.unrenderable_samples[:20]]},
        )
    if scan.no_completion:
        lines = scan.no_completion_lines
        yield RECORD_NOT_RENDERED.finding(
            f"{scan.no_completion} records have no completion to train (the last turn is not the assistant's); {checked}",
            f"{scan.source}:{lines[0]}" if lines else scan.source,
            suggestion="end every conversation with the assistant's answer, or drop the trailing turn",
            evidence={**common, "cause": "no_completion", "count": scan.no_completion, "lines": lines[:20]},
        )
    if scan.skipped:
        yield RECORD_NOT_RENDERED.finding(
            f"{scan.skipped} values are not JSON objects; {checked}",
            scan.source,
            suggestion="`sftgate data FILE` names each line (not_an_object)",
            evidence={**common, "cause": "not_an_object", "count": scan.skipped},
        )


def _special_message(hits: list[dict[str, Any]]) -> str:
    shown = ", ".join(f"{h['token']!r} in {h['field']} ({h['role']})" for h in hits[:3])
    return f"the text holds {shown}: it tokenizes as the control token, not as text"


def special_content_findings(scan: DataScan) -> Iterator[Finding]:
    """``special_token_in_content`` for the records of the scan (the first 20, then one summary)."""
    samples = scan.special_content_samples
    for line, hits in samples[:MAX_FINDINGS]:
        yield SPECIAL_TOKEN_IN_CONTENT.finding(
            _special_message(hits), f"{scan.source}:{line}", suggestion=SPLIT_FIX, evidence={"hits": hits},
        )
    if scan.special_content > MAX_FINDINGS:
        rest = samples[MAX_FINDINGS:]
        total = len(scan.records)
        yield SPECIAL_TOKEN_IN_CONTENT.finding(
            f"… and {scan.special_content - MAX_FINDINGS} more records with a special token's string in their text "
            f"({scan.special_content} of {total})",
            f"{scan.source}:{rest[0][0]}" if rest else scan.source,
            suggestion=SPLIT_FIX,
            evidence={"count": scan.special_content, "total": total, "lines": [line for line, _ in rest[:20]]},
        )


def case_special_findings(
    tok: Any, examples: list[tuple[str, str, dict[str, Any]]], spec: PromptSpec
) -> Iterator[Finding]:
    """``special_token_in_content`` for fixed cases (what serving will be sent)."""
    if spec.split_special_tokens:
        return
    found = 0
    for location, label, example in examples:
        hits = [hit_evidence(h) for h in content_hits(tok, example)]
        if hits:
            found += 1
            if found <= MAX_FINDINGS:
                yield SPECIAL_TOKEN_IN_CONTENT.finding(
                    f"{label}: {_special_message(hits)}", location, suggestion=SPLIT_FIX, evidence={"hits": hits},
                )
