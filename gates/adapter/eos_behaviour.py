"""Gate ``eos-behaviour``: after training, generations on the fixed cases stop with EOS.

The ``eos`` gate proves before training that EOS is supervised; this gate proves after training
that the model learned it. Each fixed case is generated greedily up to ``max_new_tokens``; a case
passes when its generation ended with an EOS / end-of-turn token (``stop_reason`` ``eos``), not by
hitting the token limit (``length``). The share of cases that stopped is compared with
``eval.min_eos_rate`` (default 1.0).

Rules:

- ``EOSB001 eos_rate_below_min`` (error): the share of cases that stopped is below the minimum;
- ``EOSB002 no_eos_stop`` (warning): one case ran to ``max_new_tokens`` without stopping;
- ``EOSB003 no_stop_reason`` (error): a record does not say how it stopped, so nothing can be
  concluded (an outputs file from elsewhere without ``stop_reason``).

Records come from :func:`sftgate.runners.work.generate.generate_cases` (the pipeline, ``sftgate eval``) or an
outputs JSONL file (``stop_reason`` / ``finish_reason``; ``stop``/``max_tokens`` are understood).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sftgate.gates.frame.core import Finding, InputError, Rule, Severity

GATE = "eos-behaviour"
MAX_CASE_FINDINGS = 50

EOS_RATE_BELOW_MIN = Rule(
    "EOSB001", "eos_rate_below_min", Severity.ERROR, GATE,
    "too few fixed cases stop with EOS before max_new_tokens",
    "A model that does not stop rambles until the token limit: outputs gain trailing text, cost "
    "max_new_tokens every call and break strict parsers. It means EOS was never learned (pad == eos "
    "with a collator that masks pad, a truncation that cut EOS, a template without end-of-turn).",
    "Run `sftgate check` (the eos gate names the cause: eos_masked, eos_truncated, eos_not_appended), "
    "fix it and retrain; raise eval.max_new_tokens only if correct answers are longer than it.",
    "eos stop rate 0.10 (4/40) is below the minimum 0.95",
)
NO_EOS_STOP = Rule(
    "EOSB002", "no_eos_stop", Severity.WARNING, GATE,
    "a fixed case's generation ran to max_new_tokens without an EOS",
    "Each case that does not stop is a sample of the failure the rate measures; its output tail "
    "shows what the model does instead (repeats, starts a new turn, keeps writing).",
    "See eos_rate_below_min; read the output tail in the evidence.",
    'case-007: 64 tokens without EOS, ends with ...}}"name":"Ada"',
)
NO_STOP_REASON = Rule(
    "EOSB003", "no_stop_reason", Severity.ERROR, GATE,
    "a generation record does not say whether it stopped with EOS or at the token limit",
    "Without the stop reason, a cut-off output and a finished one look alike, and the EOS rate "
    "cannot be measured.",
    'Write "stop_reason": "eos" or "length" (or the server\'s finish_reason) in every outputs line; '
    "`sftgate eval` does.",
    '{"id": "c1", "output": "{...}"}  (no stop_reason)',
)

RULES = (EOS_RATE_BELOW_MIN, NO_EOS_STOP, NO_STOP_REASON)


def check(
    *,
    records: Iterable[Any],
    max_new_tokens: int | None = None,
    min_eos_rate: float = 1.0,
    source: str = "",
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Yield a ``no_eos_stop`` per case that did not stop and ``eos_rate_below_min`` when too few did.

    ``records`` are :class:`sftgate.gates.adapter.output_records.OutputRecord` (``id``, ``output``, ``stop_reason``,
    optional ``line``); other items (an unreadable outputs line) are ignored here.
    """
    from sftgate.gates.adapter.output_records import OutputRecord, normalize_stop_reason

    if not 0.0 <= min_eos_rate <= 1.0:
        raise ValueError(f"min_eos_rate must be within [0, 1], got {min_eos_rate}")
    total = stopped = unknown = shown = 0
    limit = f" after {max_new_tokens} new tokens" if max_new_tokens else ""
    for record in records:
        if not isinstance(record, OutputRecord):
            continue
        total += 1
        reason = normalize_stop_reason(record.stop_reason)
        location = f"{source}:{record.line}" if source and record.line is not None else record.id
        if reason == "eos":
            stopped += 1
            continue
        if reason is None:
            unknown += 1
            if unknown <= MAX_CASE_FINDINGS:
                yield NO_STOP_REASON.finding(
                    f"case {record.id!r} has no stop_reason: cannot tell whether it stopped", location,
                    evidence={"case": record.id},
                )
            continue
        if shown < MAX_CASE_FINDINGS:
            shown += 1
            yield NO_EOS_STOP.finding(
                f"case {record.id!r} did not stop (stop_reason {record.stop_reason!r}){limit}; "
                f"output ends with {record.output[-60:]!r}",
                location,
                evidence={"case": record.id, "stop_reason": record.stop_reason, "tail": record.output[-200:]},
            )
    if total == 0:
        raise InputError(f"{source or 'generations'}: no generations to check",
                         hint="generate on the fixed cases first (`sftgate eval`)")
    judged = total - unknown
    rate = stopped / judged if judged else 0.0
    if metrics is not None:
        metrics.update(cases=total, stopped=stopped, not_stopped=judged - stopped, unknown=unknown,
                       eos_rate=round(rate, 6), min_eos_rate=min_eos_rate)
        if max_new_tokens:
            metrics["max_new_tokens"] = max_new_tokens
    if judged and rate < min_eos_rate:
        yield EOS_RATE_BELOW_MIN.finding(
            f"eos stop rate {rate:.4f} ({stopped}/{judged}) is below the minimum {min_eos_rate:g}{limit}",
            source or "fixed cases",
            evidence={"eos_rate": round(rate, 6), "stopped": stopped, "cases": judged, "min_eos_rate": min_eos_rate},
        )
