"""The label gate's findings: one per rule, with the count, the share, the first rows and decoded tokens.

Each finding's message names the first row and shows the tokens around its first problem, the
problem token between ``>>`` and ``<<`` and each token's label state; ``evidence`` holds the count,
share, first rows and up to five samples (ids, token strings, trained flags).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sftgate.gates.frame.core import Finding, Rule, Severity
from sftgate.gates.tokenizer.label_scan import IGNORE_INDEX
from sftgate.gates.tokenizer.label_tally import RULE_ORDER, RuleTally, Sample
from sftgate.gates.tokenizer.token_encoding import token_strings

SUGGESTIONS = {
    "prompt_trained": "TRL: assistant_only_loss=True or completion_only_loss=True; axolotl: train_on_inputs: false; "
                      "LLaMA-Factory: train_on_prompt: false",
    "packing_leak": "TRL: packing_strategy='bfd' (position_ids reset per example) or packing=False",
    "eos_masked": "train the end-of-turn token: a pad token distinct from EOS, or the end-of-turn inside "
                  "{% generation %}...{% endgeneration %}",
    "completion_truncated": "raise the trainer's max length, or drop the long examples",
}

WHAT = {
    "nothing_trained": "train nothing: every label is -100",
    "prompt_trained": "supervise tokens of system, user or tool turns",
    "labels_shifted": "have labels equal to the NEXT input id (shifted before the model shifts them)",
    "pad_trained": "supervise padding (attention_mask 0 or pad ids after the end)",
    "packing_leak": "pack several examples with nothing that separates them (no position_ids reset)",
    "completion_truncated": "end at the maximum length inside a supervised span: the end-of-turn token was cut",
    "token_out_of_range": "hold ids or labels outside the vocabulary",
    "eos_masked": "mask (-100) the end-of-turn token that closes a trained span",
    "eos_not_appended": "have a trained span that does not end in an end-of-turn token",
}


def context(tokenizer: Any, sample: Sample) -> str:
    """``'a' 'b' >>'<|im_end|>'<< 'c'`` with the labels' state after it."""
    names = token_strings(tokenizer, sample.ids)
    shown = [f">>{n!r}<<" if i == sample.at else repr(n) for i, n in enumerate(names)]
    states = ["T" if label != IGNORE_INDEX else "-" for label in sample.labels]
    return f"{' '.join(shown)}  (trained: {''.join(states)})"


def _sample_evidence(tokenizer: Any, sample: Sample) -> dict[str, Any]:
    return {
        "row": sample.row,
        "position": sample.position,
        "ids": sample.ids,
        "tokens": token_strings(tokenizer, sample.ids),
        "trained": [label != IGNORE_INDEX for label in sample.labels],
        "at": sample.at,
    }


def rule_findings(
    tokenizer: Any,
    summary: Mapping[str, Any],
    rules: Mapping[str, Rule],
    *,
    source: str,
    total: int,
    allow_prompt_training: bool = False,
    max_truncated_share: float = 0.0,
) -> Iterator[Finding]:
    """One finding per rule that has rows, in :data:`RULE_ORDER`."""
    tallies: Mapping[str, RuleTally] = summary["rules"]
    for name in RULE_ORDER:
        tally = tallies[name]
        if not tally.rows:
            continue
        share = tally.rows / max(total, 1)
        severity = None
        if name == "prompt_trained" and allow_prompt_training:
            severity = Severity.WARNING
        if name == "completion_truncated" and share <= max_truncated_share:
            severity = Severity.WARNING
        first = tally.first_rows[0] if tally.first_rows else None
        extra = ""
        if name == "completion_truncated":
            extra = f" (max length {summary['max_len']})"
        elif name == "token_out_of_range":
            extra = f" (limit {summary.get('vocab_limit')})"
        detail = ""
        if tally.samples:
            sample = tally.samples[0]
            detail = f"; row {sample.row} at token {sample.position}: {context(tokenizer, sample)}"
        message = (f"{tally.rows} of {total} rows ({share:.1%}) {WHAT[name]}{extra}; "
                   f"{tally.tokens} token{'s' if tally.tokens != 1 else ''}{detail}")
        yield rules[name].finding(
            message,
            f"{source}:{first}" if first is not None else source,
            severity=severity,
            suggestion=SUGGESTIONS.get(name),
            line=first,
            evidence={
                "rows": tally.rows,
                "total_rows": total,
                "share": round(share, 6),
                "tokens": tally.tokens,
                "first_rows": tally.first_rows,
                "samples": [_sample_evidence(tokenizer, s) for s in tally.samples],
            },
        )
