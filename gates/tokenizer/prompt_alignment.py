"""Gate ``prompt-alignment``: the prompt seen in training is the prompt seen at inference.

In one reported case the same model scored 26% with the wrong template and 57% with the right
one. This gate catches the ways they drift apart:

- ``prompt_not_prefix``: the tokens of the prompt are not a prefix of the tokens of prompt +
  completion (a trailing space moves the token boundary; a template renders the last user turn
  differently when a reply follows). Generation then starts from tokens training never saw.
- ``double_bos``: BOS twice (a rendered text that already holds ``<s>`` tokenized again with
  special tokens).
- ``template_mismatch``: the inference rendering of the fixed cases differs from the training
  rendering (a system prompt in one only, a template whose hash differs, a missing generation
  prompt).
- ``implicit_system_prompt``: the template adds a system prompt the data did not give (as
  Qwen2.5's does), found by rendering with and without one and diffing.

Rendering and tokenization go through :mod:`sftgate.gates.tokenizer.rendering`, the module training and eval
generation use.

::

    sftgate tokenizer ./tok --data train.jsonl --cases cases.jsonl
    sftgate tokenizer ./tok --cases cases.jsonl --system "Be brief." --inference-system ""
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, InputError, Rule
from sftgate.gates.readers import tokenizer_io
from sftgate.gates.readers.roles import accepted_roles, template_roles
from sftgate.gates.tokenizer.data_scan import DataScan, RecordScan, scan_data
from sftgate.gates.tokenizer.end_of_turn import turn_probe
from sftgate.gates.tokenizer.label_building import encode_prompt
from sftgate.gates.tokenizer.prompt_alignment_rules import (
    DOUBLE_BOS,
    IMPLICIT_SYSTEM_PROMPT,
    MAX_FINDINGS,
    PROMPT_NOT_PREFIX,
    RULES,
    TEMPLATE_MISMATCH,
)
from sftgate.gates.tokenizer.prompt_comparison import (
    comparison_examples,
    data_system_finding,
    first_line_difference,
    implicit_system_text,
    mismatch_cause,
)
from sftgate.gates.tokenizer.prompt_spec import (
    PromptSpec,
    RenderError,
    chat_template_text,
    inference_spec_from_config,
    spec_from_config,
    template_hash,
)
from sftgate.gates.tokenizer.scan_findings import (
    case_special_findings,
    special_content_findings,
    unrendered_findings,
)
from sftgate.gates.tokenizer.template_checks import bos_findings, header_findings, kwargs_findings
from sftgate.gates.tokenizer.template_rendering import example_messages, render_prompt
from sftgate.gates.tokenizer.token_encoding import double_bos

# --------------------------------------------------------------------------- config


def from_config(config: Any) -> dict[str, Any] | None:
    """Kwargs for :func:`check` from an sftgate config; GateSkipped when no tokenizer is offline."""
    from sftgate.gates.tokenizer.eos import template_location

    folder = tokenizer_io.tokenizer_dir_from_config(config)
    training = config.path_of("prompt.chat_template")
    inference = config.path_of("prompt.inference_chat_template")
    return {
        "tokenizer": folder,
        "data": config.require_file("data.train"),
        "cases": config.require_file("data.cases"),
        "spec": spec_from_config(config),
        "inference_spec": inference_spec_from_config(config),
        "template_source": template_location(folder, training),
        "inference_template_source": str(inference) if inference is not None else None,
        "kwargs_source": config.location("prompt.inference_template_kwargs"),
    }


# --------------------------------------------------------------------------- the gate


def check(
    *,
    tokenizer: str | Path,
    data: str | Path | None = None,
    cases: str | Path | None = None,
    spec: PromptSpec | None = None,
    inference_spec: PromptSpec | None = None,
    max_seq_len: int | None = None,
    template_source: str | None = None,
    inference_template_source: str | None = None,
    kwargs_source: str | None = None,
    training_template_sha256: str | None = None,
    data_display: str | None = None,
    cases_display: str | None = None,
    max_records: int | None = None,
    progress: bool = False,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Yield prompt-alignment findings for tokenizer folder ``tokenizer``, training ``data`` and fixed ``cases``.

    ``spec`` is the training rendering, ``inference_spec`` the serving one (default: the same).
    ``training_template_sha256`` is the template hash a training run recorded, when known;
    ``kwargs_source`` is where the inference template variables are set (for their finding).
    """
    from sftgate.gates.tokenizer.eos import template_location

    metrics = metrics if metrics is not None else {}
    folder = Path(tokenizer)
    spec = spec or PromptSpec()
    inference = inference_spec or spec
    tok = tokenizer_io.load_tokenizer_cached(folder)
    source = template_source or ("prompt.chat_template" if spec.chat_template is not None else template_location(folder))
    inf_source = inference_template_source or source
    counts = {rule.name: 0 for rule in RULES}
    metrics["counts"] = counts

    def counted(found: Iterator[Finding]) -> Iterator[Finding]:
        for f in found:
            counts[f.rule] = counts.get(f.rule, 0) + 1
            yield f

    scan = None
    if data is not None:
        scan = scan_data(
            tok, data, spec, max_seq_len=max_seq_len, max_records=max_records, display=data_display, progress=progress
        )
        yield from counted(_data_findings(tok, scan, metrics))
        yield from counted(unrendered_findings(scan))
        yield from counted(special_content_findings(scan))

    train_template = chat_template_text(tok, spec)
    inf_template = chat_template_text(tok, inference)
    metrics["template_sha256"] = template_hash(train_template)
    uses_chat = scan is None or scan.count("messages") > 0
    if train_template is not None and uses_chat:
        with_system = scan is None or spec.system is not None or any(r.has_system for r in scan.records)
        without_system = spec.system is None and (scan is None or any(not r.has_system for r in scan.records))
        yield from counted(_template_findings(tok, spec, source, "training", with_system, without_system))
        yield from counted(kwargs_findings(tok, spec, inference, kwargs_source or "prompt.inference_template_kwargs"))
    current = template_hash(train_template) or ""
    if training_template_sha256 and current and training_template_sha256 != current:
        yield from counted(iter([TEMPLATE_MISMATCH.finding(
            f"the chat template's sha256 {current[:12]}… differs from the one recorded "
            f"for training {training_template_sha256[:12]}…",
            source,
            evidence={"cause": "template_hash", "recorded_sha256": training_template_sha256, "sha256": current},
        )]))
    if inf_template is not None and inf_template != train_template and uses_chat:
        yield from counted(_hash_finding(train_template, inf_template, inf_source))
        yield from counted(_template_findings(
            tok, inference, inf_source, "inference", with_system=False, without_system=inference.system is None
        ))

    roles = accepted_roles(train_template, template_roles(inf_template))  # the role policy of the data, too
    examples = comparison_examples(cases, cases_display, data, data_display, scan, spec, inference, roles)
    metrics["cases_compared"] = len(examples)
    yield from counted(_case_findings(tok, examples, spec, inference, scan, train_template, inf_template))
    yield from counted(case_special_findings(tok, examples if cases is not None else [], inference))
    system = data_system_finding(scan, data, data_display, examples if cases is not None else [], spec, inference)
    if system is not None:
        yield from counted(iter([system]))


# --------------------------------------------------------------------------- data


def _data_findings(tok: Any, scan: DataScan, metrics: dict[str, Any]) -> Iterator[Finding]:
    total = len(scan.records)
    not_prefix = [r for r in scan.records if r.prefix_diff is not None]
    doubled = [r for r in scan.records if r.double_bos]
    metrics.update(scan.metrics())
    metrics.update({
        "prompt_not_prefix_rate": round(len(not_prefix) / total, 6) if total else 0.0,
        "double_bos_rate": round(len(doubled) / total, 6) if total else 0.0,
    })
    for r in not_prefix[:MAX_FINDINGS]:
        detail = scan.details.get(r.line, {"position": r.prefix_diff})
        pos = detail["position"]
        offset = pos - detail.get("from", pos)
        ours = detail.get("prompt_tokens", [])[offset:offset + 1]
        theirs = detail.get("training_tokens", [])[offset:offset + 1]
        yield PROMPT_NOT_PREFIX.finding(
            f"prompt tokens leave the training tokens at position {pos}: prompt has "
            f"{ours[0] if ours else 'nothing'!r}, prompt + completion has {theirs[0] if theirs else 'nothing'!r}",
            f"{scan.source}:{r.line}",
            suggestion="strip trailing whitespace from the prompt (start the completion with it instead)",
            evidence=detail,
        )
    if len(not_prefix) > MAX_FINDINGS:
        yield _summary(PROMPT_NOT_PREFIX, not_prefix, total, scan.source, "whose prompt tokens are not a prefix")
    bos = getattr(tok, "bos_token", None)
    for r in doubled[:MAX_FINDINGS]:
        yield DOUBLE_BOS.finding(
            f"the encoded example starts with {bos!r} twice: the text already holds {bos!r} and the tokenizer adds another",
            f"{scan.source}:{r.line}",
            suggestion=f"remove the leading {bos!r} from the prompt text or prompt.template",
            evidence={"bos_token": bos, "kind": r.kind},
        )
    if len(doubled) > MAX_FINDINGS:
        yield _summary(DOUBLE_BOS, doubled, total, scan.source, "starting with BOS twice")


def _summary(rule: Rule, records: list[RecordScan], total: int, source: str, what: str) -> Finding:
    rest = records[MAX_FINDINGS:]
    return rule.finding(
        f"… and {len(rest)} more records {what} ({len(records)} of {total}, {len(records) / max(total, 1):.1%})",
        f"{source}:{rest[0].line}",
        evidence={"count": len(records), "total": total, "share": round(len(records) / max(total, 1), 6),
                  "lines": [r.line for r in rest[:20]]},
    )


# --------------------------------------------------------------------------- template probes


def _template_findings(
    tok: Any, spec: PromptSpec, source: str, side: str, with_system: bool, without_system: bool
) -> Iterator[Finding]:
    probe = turn_probe(tok, spec)
    if probe is None:
        return
    if probe.error:
        raise InputError(f"{source}: the {side} chat template cannot render a user/assistant conversation: {probe.error}",
                         hint="fix the template; `sftgate tokenizer DIR --show 1` renders an example")
    if not probe.prompt_is_prefix:
        yield PROMPT_NOT_PREFIX.finding(
            f"the {side} chat template renders the last user turn differently when an assistant reply follows: "
            "the rendered prompt is not a prefix of prompt + completion",
            source,
            evidence={"probe": "user/assistant", "side": side},
        )
    elif with_system and not probe.prompt_is_prefix_with_system:
        yield PROMPT_NOT_PREFIX.finding(
            f"the {side} chat template renders the system prompt differently when an assistant reply follows "
            "(e.g. only in the last user turn): the rendered prompt is not a prefix of prompt + completion",
            source,
            evidence={"probe": "system/user/assistant", "side": side},
        )
    yield from header_findings(tok, spec, probe, source, side)
    yield from bos_findings(tok, spec, source, side)
    if without_system:
        injected = implicit_system_text(tok, spec)
        if injected is not None:
            yield IMPLICIT_SYSTEM_PROMPT.finding(
                f"the {side} chat template adds a system prompt the data did not give: {injected!r}",
                source,
                suggestion="set prompt.system explicitly",
                evidence={"side": side, "injected": injected},
            )


def _hash_finding(train_template: str | None, inf_template: str, inf_source: str) -> Iterator[Finding]:
    train_hash, inf_hash = template_hash(train_template), template_hash(inf_template)
    if train_hash == inf_hash:
        return
    line, left, right = first_line_difference(train_template or "", inf_template)
    yield TEMPLATE_MISMATCH.finding(
        f"the inference chat template differs from the training one (sha256 {str(inf_hash)[:12]}… vs "
        f"{str(train_hash)[:12]}…; first difference on line {line}: {right!r} vs {left!r})",
        inf_source,
        evidence={"cause": "template_hash", "training_sha256": train_hash, "inference_sha256": inf_hash,
                  "line": line, "training_line": left, "inference_line": right},
    )


# --------------------------------------------------------------------------- fixed cases


def _case_findings(
    tok: Any,
    examples: list[tuple[str, str, dict[str, Any]]],
    spec: PromptSpec,
    inference: PromptSpec,
    scan: DataScan | None,
    train_template: str | None,
    inf_template: str | None,
) -> Iterator[Finding]:
    trained_on_chat = scan is not None and scan.count("messages") > 0 and scan.count("prompt_completion") == 0
    bos_id = getattr(tok, "bos_token_id", None)
    # Only the template variables differ: template_kwargs_mismatch reports that once, at its config key.
    kwargs_only = spec != inference and replace(spec, template_kwargs=inference.template_kwargs) == inference
    mismatches: list[Finding] = []
    doubled: list[Finding] = []
    for location, label, example in examples:
        try:
            train_text = render_prompt(tok, example, spec)
            inf_text = render_prompt(tok, example, inference)
            inf_ids = encode_prompt(tok, example, inference)
        except RenderError as exc:
            raise InputError(f"{location}: {label} cannot be rendered: {exc}") from exc
        if trained_on_chat and example_messages(example) is None:
            mismatches.append(TEMPLATE_MISMATCH.finding(
                f"{label} is a plain prompt but training data is chat messages: inference renders no chat template",
                location,
                suggestion='give the case as {"messages": [{"role": "user", "content": ...}]}',
                evidence={"cause": "case_format", "inference_text": inf_text[:200]},
            ))
        elif train_text != inf_text and not kwargs_only:
            cause = mismatch_cause(train_text, inf_text, spec, inference, train_template != inf_template)
            pos = next((i for i, (a, b) in enumerate(zip(train_text, inf_text, strict=False)) if a != b),
                       min(len(train_text), len(inf_text)))
            mismatches.append(TEMPLATE_MISMATCH.finding(
                f"{label} renders differently at inference ({cause.replace('_', ' ')}): from character {pos}, "
                f"training has {train_text[pos:pos + 40]!r}, inference has {inf_text[pos:pos + 40]!r}",
                location,
                evidence={"cause": cause, "position": pos, "training": train_text[max(0, pos - 40):pos + 80],
                          "inference": inf_text[max(0, pos - 40):pos + 80]},
            ))
        if double_bos(inf_ids, bos_id):
            doubled.append(DOUBLE_BOS.finding(
                f"{label}: the inference prompt starts with {tok.bos_token!r} twice",
                location,
                suggestion=f"remove the leading {tok.bos_token!r} from the prompt text or prompt.template",
                evidence={"bos_token": tok.bos_token},
            ))
    for group in (mismatches, doubled):
        yield from group[:MAX_FINDINGS]
        if len(group) > MAX_FINDINGS:
            first = group[0]
            rule = TEMPLATE_MISMATCH if first.rule == TEMPLATE_MISMATCH.name else DOUBLE_BOS
            yield rule.finding(
                f"… and {len(group) - MAX_FINDINGS} more cases ({len(group)} of {len(examples)})",
                group[MAX_FINDINGS].location,
                evidence={"count": len(group), "total": len(examples)},
            )
