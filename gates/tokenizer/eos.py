"""Gate ``eos``: every training example ends in a supervised EOS the model will stop on.

The model never stops when EOS is never learned: the tokenizer has no EOS; the chat template
does not close the assistant turn with EOS/EOT; pad == eos and the collator masks every pad
label (EOS included); truncation cuts the EOS; or ``generation_config.eos_token_id`` lacks the
end-of-turn token the template uses (Llama 3's ``<|eot_id|>`` vs ``<|end_of_text|>``).

Everything goes through :mod:`sftgate.gates.tokenizer.rendering`, the module the training runner builds its
labels and batches with, so the gate checks the code path that trains. Without data, a
stop-token probe (user / assistant / user) checks the chat template alone.

::

    sftgate tokenizer ./tok --data train.jsonl --max-seq-len 2048
    sftgate check sftgate.yaml        # model.tokenizer / model.id, data.train, train.*
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, Rule, Severity
from sftgate.gates.readers import tokenizer_io
from sftgate.gates.tokenizer.data_scan import DataScan, scan_data
from sftgate.gates.tokenizer.end_of_turn import turn_probe
from sftgate.gates.tokenizer.label_building import (
    COLLATORS,
    IGNORE_INDEX,
    Encoded,
    collate,
    encode_example,
    pad_id_for,
)
from sftgate.gates.tokenizer.prompt_spec import (
    PROBE_ASSISTANT,
    PROBE_USER,
    PromptSpec,
    chat_template_text,
    spec_from_config,
)
from sftgate.gates.tokenizer.stop_ids import EOS_NOT_IN_STOP_IDS, stop_id_findings
from sftgate.gates.tokenizer.token_encoding import token_strings

GATE = "eos"
MAX_FINDINGS = 20  # individual findings per rule; the rest go in one summary finding

NO_EOS_TOKEN = Rule(
    "EOS001", "no_eos_token", Severity.ERROR, GATE,
    "the tokenizer has no EOS token",
    "Without an EOS token no example can end in one: the model learns to go on forever and "
    "generation only stops at max_new_tokens.",
    "Set eos_token in tokenizer_config.json (e.g. \"</s>\" or \"<|end_of_text|>\"), matching the model's config.",
    'tokenizer_config.json: "eos_token": null',
)
EOS_NOT_APPENDED = Rule(
    "EOS002", "eos_not_appended", Severity.ERROR, GATE,
    "an encoded training example does not end in a supervised EOS/end-of-turn token",
    "The model only learns to stop if the last trained token of every example is EOS (or the "
    "template's end-of-turn token). A chat template that does not close the assistant turn, or "
    "a completion without EOS, trains a model that never stops.",
    "Close the assistant turn in the chat template with eos_token / the end-of-turn token "
    "(e.g. `+ eos_token` after the assistant content); `sftgate tokenizer DIR --show 2` shows the labels.",
    "{{ '[INST] ' + user + '[/INST] ' + assistant }}   # no eos_token after the assistant",
)
EOS_MASKED = Rule(
    "EOS003", "eos_masked", Severity.ERROR, GATE,
    "the label at the EOS position is -100 after the configured collator",
    "With pad == eos, a collator that masks every label equal to pad_token_id (the classic "
    "DataCollatorForLanguageModeling setup) masks EOS too: loss looks fine and the model never stops.",
    "Use a pad token distinct from EOS (tokenizer.pad_token = '<pad>' or a reserved token), or "
    "mask padding by attention_mask only (train.collator: completion_only).",
    "tokenizer.pad_token = tokenizer.eos_token; labels[labels == pad_token_id] = -100",
)
EOS_TRUNCATED = Rule(
    "EOS004", "eos_truncated", Severity.ERROR, GATE,
    "truncation to max_seq_len cuts the EOS of some examples (count and share)",
    "An example cut at max_seq_len loses its final EOS: each one teaches the model to keep going.",
    "Raise train.max_seq_len, or drop / split the long examples (`sftgate data --tokenizer DIR "
    "--max-seq-len N` lists them as too_long).",
    "max_seq_len: 512 with answers of 600 tokens",
)
STOP_TOKEN_NOT_TRAINED = Rule(
    "EOS006", "stop_token_not_trained", Severity.ERROR, GATE,
    "the token that closes an assistant turn in a conversation is not the one training supervises",
    "Probe: user / assistant / user. The token between the assistant's reply and the next user "
    "turn is what the model must emit to stop. If training supervises another token (e.g. the "
    "last turn ends with eos_token, earlier ones with <|eot_id|>), multi-turn chats never stop.",
    "Make the chat template close every assistant turn with the same token, the one in the stop ids.",
    "{% if loop.last %}{{ eos_token }}{% else %}<|eot_id|>{% endif %}",
)

RULES = (NO_EOS_TOKEN, EOS_NOT_APPENDED, EOS_MASKED, EOS_TRUNCATED, EOS_NOT_IN_STOP_IDS, STOP_TOKEN_NOT_TRAINED)


# --------------------------------------------------------------------------- config


def from_config(config: Any) -> dict[str, Any] | None:
    """Kwargs for :func:`check` from an sftgate config; GateSkipped when no tokenizer is offline."""
    folder = tokenizer_io.tokenizer_dir_from_config(config)
    model_dir = tokenizer_io.model_dir_from_config(config)
    generation = None
    for candidate in (model_dir, folder):
        if candidate is not None and tokenizer_io.generation_config_path(candidate) is not None:
            generation = tokenizer_io.generation_config_path(candidate)
            break
    spec = spec_from_config(config)
    return {
        "tokenizer": folder,
        "data": config.require_file("data.train"),
        "spec": spec,
        "max_seq_len": config.get("train.max_seq_len"),
        "collator": config.get("train.collator") or "completion_only",
        "generation_config": generation,
        "template_source": template_location(folder, config.path_of("prompt.chat_template")),
    }


def template_location(folder: Path, override: Path | None = None) -> str:
    """Where the chat template comes from, for finding locations."""
    if override is not None:
        return str(override)
    if (folder / "chat_template.jinja").is_file():
        return str(folder / "chat_template.jinja")
    return f"{folder / 'tokenizer_config.json'}:chat_template"


# --------------------------------------------------------------------------- the gate


def check(
    *,
    tokenizer: str | Path,
    data: str | Path | None = None,
    spec: PromptSpec | None = None,
    max_seq_len: int | None = None,
    collator: str = "completion_only",
    generation_config: str | Path | None = None,
    template_source: str | None = None,
    data_display: str | None = None,
    max_records: int | None = None,
    max_truncated_share: float = 0.0,
    progress: bool = False,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Yield the EOS findings for the tokenizer folder ``tokenizer`` and (optionally) training ``data``.

    ``collator`` is ``completion_only`` or ``mask_pad`` (the pad-masking bug); ``generation_config``
    is the served ``generation_config.json`` (default: the one in the tokenizer folder).
    ``max_truncated_share`` is the share of truncated examples tolerated (as a warning).
    """
    metrics = metrics if metrics is not None else {}
    folder = Path(tokenizer)
    spec = spec or PromptSpec()
    if collator not in COLLATORS:
        from sftgate.gates.frame.core import InputError

        raise InputError(f"unknown collator {collator!r}", hint=f"use one of {', '.join(COLLATORS)}")
    tok = tokenizer_io.load_tokenizer_cached(folder)
    source = template_source or _default_template_source(folder, spec)
    eos_id = tok.eos_token_id if isinstance(getattr(tok, "eos_token_id", None), int) else None
    unk_id = getattr(tok, "unk_token_id", None)
    metrics["eos_token"] = getattr(tok, "eos_token", None)
    metrics["pad_token"] = getattr(tok, "pad_token", None)
    metrics["collator"] = collator

    if eos_id is None or (eos_id == unk_id and tok.eos_token != getattr(tok, "unk_token", None)):
        yield NO_EOS_TOKEN.finding(
            f"the tokenizer has no EOS token (eos_token={getattr(tok, 'eos_token', None)!r})",
            f"{folder / 'tokenizer_config.json'}:eos_token",
            evidence={"eos_token": getattr(tok, "eos_token", None), "eos_token_id": eos_id},
        )

    mask_pad = collator == "mask_pad"
    scan = None
    if data is not None:
        scan = scan_data(
            tok, data, spec, max_seq_len=max_seq_len, max_records=max_records, display=data_display, progress=progress
        )
    probe_applies = scan is None or scan.count("messages") > 0
    template = chat_template_text(tok, spec)
    probe_enc = _probe_encoding(tok, spec, source) if probe_applies and template is not None else None
    # A template that does not close the assistant turn is ONE cause, reported once at the template.
    template_open = probe_enc is not None and not probe_enc.ends_with_eos
    if scan is not None:
        yield from _data_findings(tok, scan, mask_pad, max_seq_len, max_truncated_share, metrics, template_open)
    reported = set()  # rules the data scan already reported: the probe does not repeat them
    if scan is not None:
        reported = {r for r, n in metrics.get("counts", {}).items() if n}

    final_tokens: list[int] = []
    if probe_enc is not None:
        found, final_tokens = _probe_findings(tok, spec, source, mask_pad, reported, probe_enc, scan)
        yield from found
    if scan is not None:
        final_tokens = [t for t, _ in Counter(r.final_token for r in scan.records if r.ends_with_eos and r.final_token is not None).most_common()]
    elif not final_tokens and template is None and eos_id is not None:
        final_tokens = [eos_id]
    yield from stop_id_findings(tok, folder, generation_config, final_tokens, metrics)


def _default_template_source(folder: Path, spec: PromptSpec) -> str:
    if spec.chat_template is not None:
        return "prompt.chat_template"
    return template_location(folder)


def _summary(rule: Rule, count: int, total: int, source: str, lines: list[int], what: str) -> Finding:
    return rule.finding(
        f"… and {count - MAX_FINDINGS} more records {what} ({count} of {total}, {count / max(total, 1):.1%})",
        f"{source}:{lines[MAX_FINDINGS]}" if len(lines) > MAX_FINDINGS else source,
        evidence={"count": count, "total": total, "share": round(count / max(total, 1), 6), "lines": lines[MAX_FINDINGS:MAX_FINDINGS + 20]},
    )


def _data_findings(
    tok: Any, scan: DataScan, mask_pad: bool, max_seq_len: int | None, max_share: float, metrics: dict[str, Any],
    template_open: bool = False,
) -> Iterator[Finding]:
    total = len(scan.records)
    not_appended = [r for r in scan.records if not r.truncated and not r.ends_with_eos]
    counted_not_appended = len(not_appended)
    if template_open:  # the chat records are the template's finding; only the others are listed here
        not_appended = [r for r in not_appended if r.kind != "messages"]
    masked = [r for r in scan.records if r.ends_with_eos and (r.eos_masked_mask_pad if mask_pad else r.eos_masked_default)]
    truncated = [r for r in scan.records if r.truncated and not r.ends_with_eos]
    pad_token = token_strings(tok, [scan.pad_id])[0]
    metrics.update(scan.metrics())
    metrics.update({
        "counts": {
            "eos_not_appended": counted_not_appended,
            "eos_masked": len(masked),
            "eos_truncated": len(truncated),
        },
        "eos_truncated_share": round(len(truncated) / total, 6) if total else 0.0,
        "max_tokens": max((r.full_length for r in scan.records), default=0),
    })
    lines = [r.line for r in not_appended]
    for r in not_appended[:MAX_FINDINGS]:
        last = token_strings(tok, [r.final_token])[0] if r.final_token is not None else None
        yield EOS_NOT_APPENDED.finding(
            f"the example's last trained token is {last!r}, not EOS/end-of-turn "
            f"({', '.join(repr(t) for t in token_strings(tok, scan.eos_ids))})",
            f"{scan.source}:{r.line}",
            evidence={"last_trained_token": last, "end_of_turn_tokens": token_strings(tok, scan.eos_ids)},
        )
    if len(not_appended) > MAX_FINDINGS:
        yield _summary(EOS_NOT_APPENDED, len(not_appended), total, scan.source, lines, "without a trained EOS")
    lines = [r.line for r in masked]
    for r in masked[:MAX_FINDINGS]:
        eos = token_strings(tok, [r.final_token])[0] if r.final_token is not None else None
        yield EOS_MASKED.finding(
            f"the collator masks the EOS label {eos!r}: pad token {pad_token!r} (id {scan.pad_id}) == EOS and "
            f"train.collator is mask_pad",
            f"{scan.source}:{r.line}",
            evidence={"eos_token": eos, "pad_token": pad_token, "pad_id": scan.pad_id, "collator": "mask_pad" if mask_pad else "completion_only"},
        )
    if len(masked) > MAX_FINDINGS:
        yield _summary(EOS_MASKED, len(masked), total, scan.source, lines, "with a masked EOS label")
    if truncated:
        share = len(truncated) / max(total, 1)
        sample = truncated[:MAX_FINDINGS]
        yield EOS_TRUNCATED.finding(
            f"{len(truncated)} of {total} examples ({share:.1%}) are longer than max_seq_len={max_seq_len}: "
            f"truncation cuts their EOS (longest: {max(r.full_length for r in truncated)} tokens)",
            f"{scan.source}:{sample[0].line}",
            severity=Severity.WARNING if share <= max_share else None,
            evidence={
                "count": len(truncated), "total": total, "share": round(share, 6), "max_seq_len": max_seq_len,
                "samples": [{"line": r.line, "tokens": r.full_length} for r in sample],
            },
        )


def _probe_encoding(tok: Any, spec: PromptSpec, source: str) -> Encoded:
    """The user/assistant probe encoded as training encodes it (InputError when the template cannot render it)."""
    probe = turn_probe(tok, spec)
    if probe is None or probe.error:
        from sftgate.gates.frame.core import InputError

        raise InputError(f"{source}: the chat template cannot render a user/assistant conversation: "
                         f"{probe.error if probe else 'no template'}",
                         hint="fix the template; `sftgate tokenizer DIR --show 1` renders an example")
    example = {"messages": [
        {"role": "user", "content": PROBE_USER},
        {"role": "assistant", "content": PROBE_ASSISTANT},
    ]}
    return encode_example(tok, example, replace(spec, system=None, template=None, chat_template=chat_template_text(tok, spec)))


def _probe_findings(
    tok: Any, spec: PromptSpec, source: str, mask_pad: bool, reported: set[str], enc: Encoded, scan: DataScan | None
) -> tuple[list[Finding], list[int]]:
    """The stop-token probe: user / assistant / user rendered with the template, labels via collate."""
    findings: list[Finding] = []
    probe = turn_probe(tok, spec)
    assert probe is not None
    last = enc.last_supervised
    final = enc.input_ids[last] if last is not None else None
    eot_names = token_strings(tok, enc.eos_ids)
    tail = probe.final_tail
    if not enc.ends_with_eos:
        shown = token_strings(tok, [final])[0] if final is not None else None
        closing = token_strings(tok, probe.closing_ids[:1])[0] if probe.closing_ids else None
        wanted = closing or getattr(tok, "eos_token", None)
        affected = None if scan is None else sum(
            1 for r in scan.records if r.kind == "messages" and not r.truncated and not r.ends_with_eos)
        findings.append(EOS_NOT_APPENDED.finding(
            f"the chat template does not close the assistant turn with EOS/end-of-turn: the last trained "
            f"token is {shown!r} (text after the reply: {tail!r})"
            + (f"; {affected} of {len(scan.records)} training records end this way" if scan is not None else ""),
            source,
            suggestion=(f"write {wanted!r} right after the assistant's content in the template"
                        + (" ({{ eos_token }})" if wanted == getattr(tok, "eos_token", None) else "")),
            evidence={"probe": "user/assistant", "text_after_reply": tail, "end_of_turn_tokens": eot_names,
                      "records_affected": affected, "closing_token": closing},
        ))
        return findings, []
    assert last is not None and final is not None
    pad_id = pad_id_for(tok)
    labels = collate([enc], pad_id, mask_pad_labels=mask_pad)["labels"][0]
    final_name = token_strings(tok, [final])[0]
    if labels[last] == IGNORE_INDEX and "eos_masked" not in reported:
        findings.append(EOS_MASKED.finding(
            f"the collator masks the end-of-turn label {final_name!r}: pad id {pad_id} == its id and "
            f"train.collator is {'mask_pad' if mask_pad else 'completion_only'}",
            source,
            evidence={"probe": "user/assistant", "token": final_name, "pad_id": pad_id},
        ))
    closing = probe.closing_ids[0] if probe.closing_ids else None
    after = trained_after_reply(enc, probe.final_tail_ids)
    trained = final if after is None else after  # an id of 0 is a token too
    if closing is not None and closing != trained:
        closing_name, trained_name = token_strings(tok, [closing, trained])
        findings.append(STOP_TOKEN_NOT_TRAINED.finding(
            f"in a conversation the template closes the assistant turn with {closing_name!r}, but training "
            f"supervises {trained_name!r} after the reply",
            source,
            evidence={"probe": "user/assistant/user", "closing_token": closing_name, "trained_token": trained_name,
                      "last_trained_token": final_name},
        ))
    return findings, [final]


def trained_after_reply(enc: Encoded, tail_ids: tuple[int, ...]) -> int | None:
    """The token the model learns to emit right after its final reply: the first of the control tokens the
    template writes after the reply (``tail_ids``, in order) that the final completion trains.

    Phi-3 ends the last turn with ``<|end|>\\n`` + eos_token: ``<|end|>`` is trained right after the reply,
    as it closes every turn of a conversation, and eos_token after it; the last trained token is not the
    stop token then. ``None`` when no tail token is trained (eos_not_appended / eos_masked say why).
    """
    start, end = enc.spans[-1]
    trained = {enc.input_ids[i] for i in range(start, min(end, len(enc.labels))) if enc.labels[i] != IGNORE_INDEX}
    return next((t for t in tail_ids if t in trained), None)
