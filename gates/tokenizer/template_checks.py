"""Template-level checks of gate ``prompt-alignment``: what a chat template does by itself.

- ``template_tokens_trained``: the full conversation renders text between the generation prompt and
  the assistant's reply (Qwen3's empty ``<think>\\n\\n</think>\\n\\n``), so tokens nobody wrote are
  trained. The template variables it reads are tried (``enable_thinking: false``...) and the one
  that moves those tokens into the prompt is the suggestion.
- ``missing_bos``: the tokenizer adds BOS to plain text (the model expects it) but the chat template
  never writes it, and chat text is tokenized with ``add_special_tokens=False`` (Gemma).
- ``template_kwargs_mismatch``: training and inference pass different template variables.

Each takes the probe of :func:`~sftgate.gates.tokenizer.end_of_turn.turn_probe` or renders the
probe conversation itself, through the one rendering (:func:`apply_template`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from sftgate.gates.frame.core import Finding, Severity
from sftgate.gates.tokenizer.end_of_turn import TurnProbe
from sftgate.gates.tokenizer.prompt_alignment_rules import (
    MISSING_BOS,
    TEMPLATE_KWARGS_MISMATCH,
    TEMPLATE_MISMATCH,
    TEMPLATE_TOKENS_TRAINED,
)
from sftgate.gates.tokenizer.prompt_spec import (
    PROBE_ASSISTANT,
    PROBE_USER,
    RESERVED_TEMPLATE_VARIABLES,
    PromptSpec,
    RenderError,
    chat_template_text,
    kwargs_items,
)
from sftgate.gates.tokenizer.template_rendering import apply_template
from sftgate.gates.tokenizer.token_encoding import encode_texts, token_strings

_USER = {"role": "user", "content": PROBE_USER}
_ASSISTANT = {"role": "assistant", "content": PROBE_ASSISTANT}
_NOT_KWARGS = RESERVED_TEMPLATE_VARIABLES | {"raise_exception", "strftime_now", "loop_messages", "system_message"}
MAX_TRIED = 6  # template variables tried as a fix


# --------------------------------------------------------------------------- trained template tokens


def header_findings(tok: Any, spec: PromptSpec, probe: TurnProbe, source: str, side: str) -> Iterator[Finding]:
    """``template_mismatch`` when the template ignores add_generation_prompt, else
    ``template_tokens_trained`` when the full rendering inserts text before the reply."""
    header = probe.generation_header
    if not header.strip():
        return
    try:
        with_prompt = apply_template(tok, [_USER], spec, add_generation_prompt=True)
        without = apply_template(tok, [_USER], spec, add_generation_prompt=False)
    except RenderError:
        with_prompt = without = ""
    if with_prompt == without:
        yield TEMPLATE_MISMATCH.finding(
            f"the {side} chat template ignores add_generation_prompt: {header!r} is trained as part of the "
            "completion but missing from inference prompts",
            source,
            evidence={"cause": "missing_generation_prompt", "side": side, "header": header},
        )
        return
    tokens = token_strings(tok, encode_texts(tok, [header], False)[0])
    fix = _moving_kwargs(tok, spec)
    yield TEMPLATE_TOKENS_TRAINED.finding(
        f"the {side} chat template inserts {header!r} between the generation prompt and the assistant's reply: "
        f"{len(tokens)} tokens the data does not contain are trained",
        source,
        suggestion=f"prompt.template_kwargs: {json.dumps(fix)}" if fix else
        "render these tokens in the generation prompt (or give them in the data) so they are masked",
        evidence={"side": side, "inserted": header, "tokens": tokens[:20], "template_kwargs": spec.kwargs,
                  "fix_template_kwargs": fix},
    )


def _moving_kwargs(tok: Any, spec: PromptSpec) -> dict[str, Any] | None:
    """Template variables (added to ``spec``'s) under which nothing is inserted before the reply."""
    from sftgate.gates.tokenizer.end_of_turn import turn_probe

    for name in template_variables(chat_template_text(tok, spec) or "")[:MAX_TRIED]:
        for value in (False, True):
            kwargs = {**spec.kwargs, name: value}
            trial = replace(spec, template_kwargs=kwargs_items(kwargs))
            probe = turn_probe(tok, trial)
            if probe is not None and not probe.error and probe.prompt_is_prefix and not probe.generation_header.strip():
                return kwargs
    return None


def template_variables(template: str) -> list[str]:
    """The variables a template reads that the renderer does not set (``enable_thinking``...), sorted."""
    try:
        from jinja2 import meta
        from transformers.utils.chat_template_utils import _compile_jinja_template

        env = _compile_jinja_template(template).environment
        names = meta.find_undeclared_variables(env.parse(template))
    except Exception:  # another transformers, a template jinja cannot parse: nothing to suggest
        return []
    return sorted(n for n in names if n not in _NOT_KWARGS and not n.endswith("_token"))


# --------------------------------------------------------------------------- BOS


def bos_findings(tok: Any, spec: PromptSpec, source: str, side: str) -> Iterator[Finding]:
    """``missing_bos``: plain text gets BOS from the tokenizer, chat-rendered text never does."""
    bos_id = getattr(tok, "bos_token_id", None)
    if not isinstance(bos_id, int):
        return
    plain = encode_texts(tok, [PROBE_USER], True)[0]
    if not plain or plain[0] != bos_id:
        return  # the tokenizer adds no BOS: the model does not expect one
    try:
        prompt = apply_template(tok, [_USER], spec, add_generation_prompt=True)
    except RenderError:
        return
    ids = encode_texts(tok, [prompt], False)[0]
    if ids and ids[0] == bos_id:
        return
    bos = tok.bos_token
    yield MISSING_BOS.finding(
        f"the {side} chat template never writes {bos!r}, and chat text is tokenized with add_special_tokens=False: "
        f"every sequence starts with {token_strings(tok, ids[:1])[0] if ids else 'nothing'!r} instead of {bos!r}",
        source,
        suggestion="start the template with {{ bos_token }}",
        evidence={"side": side, "bos_token": bos, "first_tokens": token_strings(tok, ids[:4]),
                  "plain_text_first_token": token_strings(tok, plain[:1])[0]},
    )


# --------------------------------------------------------------------------- template kwargs


def kwargs_findings(tok: Any, spec: PromptSpec, inference: PromptSpec, source: str) -> Iterator[Finding]:
    """``template_kwargs_mismatch``: an error when the probe prompt renders differently, else a warning."""
    if spec.template_kwargs == inference.template_kwargs:
        return
    train, serve = spec.kwargs, inference.kwargs
    differing = sorted(k for k in set(train) | set(serve) if train.get(k, _UNSET) != serve.get(k, _UNSET))
    try:
        rendered = {apply_template(tok, [_USER], s, add_generation_prompt=True) for s in (spec, inference)}
        renders_alike = len(rendered) == 1
    except RenderError:
        renders_alike = False
    yield TEMPLATE_KWARGS_MISMATCH.finding(
        f"the chat-template variables differ: training {json.dumps(train)}, inference {json.dumps(serve)} "
        f"({', '.join(differing)})" + ("; the template renders both alike" if renders_alike else ""),
        source,
        severity=Severity.WARNING if renders_alike else None,
        suggestion=f"prompt.inference_template_kwargs: {json.dumps(train)}",
        evidence={"training": train, "inference": serve, "keys": differing, "renders_alike": renders_alike},
    )


_UNSET = object()
