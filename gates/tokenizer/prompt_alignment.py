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
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, InputError, Rule, Severity
from sftgate.gates.readers import tokenizer_io
from sftgate.gates.tokenizer import rendering

GATE = "prompt-alignment"
MAX_FINDINGS = 20
CASE_SAMPLE = 20  # data records compared when there are no fixed cases

PROMPT_NOT_PREFIX = Rule(
    "TOK001", "prompt_not_prefix", Severity.ERROR, GATE,
    "the prompt's tokens are not a prefix of the prompt + completion tokens",
    "Training masks the first len(prompt) tokens of prompt + completion; inference generates "
    "from the prompt's own tokens. If they differ (a trailing space moves the token boundary, "
    "a template renders the last turn differently when a reply follows) the model generates "
    "from a context it never saw, and a completion token is masked in training.",
    "Strip trailing whitespace from prompts (put the space at the start of the completion), or "
    "fix the template so the prompt renders the same with and without the reply.",
    '{"prompt": "Answer: ", "completion": "Paris"}   # "▁" then "▁Paris"',
)
DOUBLE_BOS = Rule(
    "TOK002", "double_bos", Severity.ERROR, GATE,
    "the encoded sequence starts with BOS twice",
    "A rendered text that already starts with <s> / <|begin_of_text|>, tokenized again with "
    "add_special_tokens=True, gets a second BOS. Training and serving then disagree on the "
    "first tokens, and quality drops.",
    "Remove the BOS string from the prompt text / prompt.template (the tokenizer adds it), or "
    "tokenize chat-rendered text with add_special_tokens=False.",
    'prompt.template: "<s>[INST] {prompt} [/INST]"  with a tokenizer that adds <s>',
)
TEMPLATE_MISMATCH = Rule(
    "TOK003", "template_mismatch", Severity.ERROR, GATE,
    "the inference rendering of the fixed cases differs from the training rendering",
    "The model answers well only in the format it was trained on: a system prompt present in "
    "one and not the other, an edited chat template, or a prompt without the generation "
    "prompt (the assistant header) all change what the model sees.",
    "Serve with the template and system prompt used in training (prompt.chat_template, "
    "prompt.system); record the template's sha256 with the run and compare it at release.",
    "prompt.system: 'Answer in JSON.'   prompt.inference_system: null",
)
IMPLICIT_SYSTEM_PROMPT = Rule(
    "TOK004", "implicit_system_prompt", Severity.ERROR, GATE,
    "the chat template adds a system prompt the data did not give",
    "Some templates (Qwen2.5's) inject a default system prompt when a conversation has none. "
    "Training then sees a system prompt your data and your serving stack may not have.",
    "Set prompt.system explicitly (the template then uses yours), or remove the default from the template.",
    "{% else %}<|im_start|>system\\nYou are a helpful assistant.<|im_end|>{% endif %}",
)

RULES = (PROMPT_NOT_PREFIX, DOUBLE_BOS, TEMPLATE_MISMATCH, IMPLICIT_SYSTEM_PROMPT)


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
        "spec": rendering.spec_from_config(config),
        "inference_spec": rendering.inference_spec_from_config(config),
        "template_source": template_location(folder, training),
        "inference_template_source": str(inference) if inference is not None else None,
    }


# --------------------------------------------------------------------------- the gate


def check(
    *,
    tokenizer: str | Path,
    data: str | Path | None = None,
    cases: str | Path | None = None,
    spec: rendering.PromptSpec | None = None,
    inference_spec: rendering.PromptSpec | None = None,
    max_seq_len: int | None = None,
    template_source: str | None = None,
    inference_template_source: str | None = None,
    training_template_sha256: str | None = None,
    data_display: str | None = None,
    cases_display: str | None = None,
    max_records: int | None = None,
    progress: bool = False,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Yield prompt-alignment findings for tokenizer folder ``tokenizer``, training ``data`` and fixed ``cases``.

    ``spec`` is the training rendering, ``inference_spec`` the serving one (default: the same).
    ``training_template_sha256`` is the template hash a training run recorded, when known.
    """
    from sftgate.gates.tokenizer.eos import template_location

    metrics = metrics if metrics is not None else {}
    folder = Path(tokenizer)
    spec = spec or rendering.PromptSpec()
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
        scan = rendering.scan_data(
            tok, data, spec, max_seq_len=max_seq_len, max_records=max_records, display=data_display, progress=progress
        )
        yield from counted(_data_findings(tok, scan, metrics))

    train_template = rendering.chat_template_text(tok, spec)
    inf_template = rendering.chat_template_text(tok, inference)
    metrics["template_sha256"] = rendering.template_hash(train_template)
    uses_chat = scan is None or scan.count("messages") > 0
    if train_template is not None and uses_chat:
        with_system = scan is None or spec.system is not None or any(r.has_system for r in scan.records)
        without_system = spec.system is None and (scan is None or any(not r.has_system for r in scan.records))
        yield from counted(_template_findings(tok, spec, source, "training", with_system, without_system))
    current = rendering.template_hash(train_template) or ""
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

    examples = _comparison_examples(cases, cases_display, data, data_display, scan, spec, inference)
    metrics["cases_compared"] = len(examples)
    yield from counted(_case_findings(tok, examples, spec, inference, scan, train_template, inf_template))


# --------------------------------------------------------------------------- data


def _data_findings(tok: Any, scan: rendering.DataScan, metrics: dict[str, Any]) -> Iterator[Finding]:
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


def _summary(rule: Rule, records: list[rendering.RecordScan], total: int, source: str, what: str) -> Finding:
    rest = records[MAX_FINDINGS:]
    return rule.finding(
        f"… and {len(rest)} more records {what} ({len(records)} of {total}, {len(records) / max(total, 1):.1%})",
        f"{source}:{rest[0].line}",
        evidence={"count": len(records), "total": total, "share": round(len(records) / max(total, 1), 6),
                  "lines": [r.line for r in rest[:20]]},
    )


# --------------------------------------------------------------------------- template probes


def implicit_system_text(tok: Any, spec: rendering.PromptSpec) -> str | None:
    """Text the template renders in the system slot when the conversation has no system message.

    Renders ``[user]`` and ``[system, user]``; after removing their common prefix and suffix,
    what is left of the first is what the template added by itself (``None`` when nothing).
    """
    user = {"role": "user", "content": rendering.PROBE_USER}
    system = {"role": "system", "content": rendering.PROBE_SYSTEM}
    try:
        bare = rendering.apply_template(tok, [user], spec, add_generation_prompt=True)
        given = rendering.apply_template(tok, [system, user], spec, add_generation_prompt=True)
    except rendering.RenderError:
        return None
    prefix = 0
    limit = min(len(bare), len(given))
    while prefix < limit and bare[prefix] == given[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and bare[-1 - suffix] == given[-1 - suffix]:
        suffix += 1
    extra = bare[prefix:len(bare) - suffix]
    return extra if extra.strip() else None


def _template_findings(
    tok: Any, spec: rendering.PromptSpec, source: str, side: str, with_system: bool, without_system: bool
) -> Iterator[Finding]:
    probe = rendering.turn_probe(tok, spec)
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
    header = probe.generation_header
    if header.strip():
        yield TEMPLATE_MISMATCH.finding(
            f"the {side} chat template ignores add_generation_prompt: {header!r} is trained as part of the "
            "completion but missing from inference prompts",
            source,
            evidence={"cause": "missing_generation_prompt", "side": side, "header": header},
        )
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
    train_hash, inf_hash = rendering.template_hash(train_template), rendering.template_hash(inf_template)
    if train_hash == inf_hash:
        return
    line, left, right = _first_line_difference(train_template or "", inf_template)
    yield TEMPLATE_MISMATCH.finding(
        f"the inference chat template differs from the training one (sha256 {str(inf_hash)[:12]}… vs "
        f"{str(train_hash)[:12]}…; first difference on line {line}: {right!r} vs {left!r})",
        inf_source,
        evidence={"cause": "template_hash", "training_sha256": train_hash, "inference_sha256": inf_hash,
                  "line": line, "training_line": left, "inference_line": right},
    )


def _first_line_difference(a: str, b: str) -> tuple[int, str, str]:
    la, lb = a.splitlines(), b.splitlines()
    for index in range(max(len(la), len(lb))):
        left = la[index] if index < len(la) else ""
        right = lb[index] if index < len(lb) else ""
        if left != right:
            return index + 1, left[:120], right[:120]
    return 1, "", ""


# --------------------------------------------------------------------------- fixed cases


def _comparison_examples(
    cases: str | Path | None,
    cases_display: str | None,
    data: str | Path | None,
    data_display: str | None,
    scan: rendering.DataScan | None,
    spec: rendering.PromptSpec,
    inference: rendering.PromptSpec,
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(location, label, example)`` to render both ways: the fixed cases, else a data sample."""
    if cases is not None:
        from sftgate.gates.readers.cases import load_cases

        shown = cases_display or str(cases)
        return [(f"{shown}:{c.line}", f"case {c.id!r}", c.as_example()) for c in load_cases(cases)]
    if data is None or inference == spec:
        return []
    shown = data_display or str(data)
    out: list[tuple[str, str, dict[str, Any]]] = []
    for line, record in tokenizer_io.iter_records(data, display=data_display):
        if len(out) >= CASE_SAMPLE:
            break
        out.append((f"{shown}:{line}", f"record on line {line}", record))
    return out


def _case_findings(
    tok: Any,
    examples: list[tuple[str, str, dict[str, Any]]],
    spec: rendering.PromptSpec,
    inference: rendering.PromptSpec,
    scan: rendering.DataScan | None,
    train_template: str | None,
    inf_template: str | None,
) -> Iterator[Finding]:
    trained_on_chat = scan is not None and scan.count("messages") > 0 and scan.count("prompt_completion") == 0
    bos_id = getattr(tok, "bos_token_id", None)
    mismatches: list[Finding] = []
    doubled: list[Finding] = []
    for location, label, example in examples:
        try:
            train_text = rendering.render_prompt(tok, example, spec)
            inf_text = rendering.render_prompt(tok, example, inference)
            inf_ids = rendering.encode_prompt(tok, example, inference)
        except rendering.RenderError as exc:
            raise InputError(f"{location}: {label} cannot be rendered: {exc}") from exc
        if trained_on_chat and rendering.example_messages(example) is None:
            mismatches.append(TEMPLATE_MISMATCH.finding(
                f"{label} is a plain prompt but training data is chat messages: inference renders no chat template",
                location,
                suggestion='give the case as {"messages": [{"role": "user", "content": ...}]}',
                evidence={"cause": "case_format", "inference_text": inf_text[:200]},
            ))
        elif train_text != inf_text:
            cause = _cause(train_text, inf_text, spec, inference, train_template != inf_template)
            pos = next((i for i, (a, b) in enumerate(zip(train_text, inf_text, strict=False)) if a != b),
                       min(len(train_text), len(inf_text)))
            mismatches.append(TEMPLATE_MISMATCH.finding(
                f"{label} renders differently at inference ({cause.replace('_', ' ')}): from character {pos}, "
                f"training has {train_text[pos:pos + 40]!r}, inference has {inf_text[pos:pos + 40]!r}",
                location,
                evidence={"cause": cause, "position": pos, "training": train_text[max(0, pos - 40):pos + 80],
                          "inference": inf_text[max(0, pos - 40):pos + 80]},
            ))
        if rendering.double_bos(inf_ids, bos_id):
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


def _cause(train_text: str, inf_text: str, spec: rendering.PromptSpec, inference: rendering.PromptSpec, templates_differ: bool) -> str:
    if spec.system != inference.system:
        if spec.system is None:
            return "system_prompt_at_inference_only"
        if inference.system is None:
            return "system_prompt_in_training_only"
        return "different_system_prompt"
    if train_text.startswith(inf_text):
        return "missing_generation_prompt"
    if templates_differ:
        return "different_chat_template"
    return "different_rendering"
