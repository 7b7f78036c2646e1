"""Serving profiles of gate ``artifacts``: what vLLM and TGI need beyond a transformers folder.

``--profile vllm``:

- ``lora_rank_over_serving_limit``: vLLM serves LoRA ranks up to ``--max-lora-rank`` (default 16;
  the largest it accepts is 512): a larger rank (``r`` or any ``rank_pattern`` value) is refused at
  load time, a warning with the flag to pass, an error above 512.
- ``adapter_unsupported_by_server``: vLLM loads plain LoRA only: ``modules_to_save`` (a trained
  ``lm_head`` / ``embed_tokens`` copy), DoRA (``use_dora``) and other PEFT types are refused.

``--profile tgi``:

- ``chat_template_not_in_tokenizer_config``: TGI reads the chat template only from
  ``tokenizer_config.json``; a template shipped as ``chat_template.jinja`` alone (or a different
  one there) is not the template TGI serves.

Both (OpenAI-compatible servers):

- ``template_rejects_openai_messages``: the shipped chat template must render what an OpenAI client
  sends: a system turn (an error when it cannot) and an assistant tool call with its tool result
  (a warning). Rendered with transformers' own Jinja renderer, no tokenizer loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, Rule, Severity

GATE = "artifacts"
SERVING_PROFILES = ("vllm", "tgi")
VLLM_DEFAULT_MAX_LORA_RANK = 16
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # --max-lora-rank choices

LORA_RANK_OVER_SERVING_LIMIT = Rule(
    "ART007", "lora_rank_over_serving_limit", Severity.ERROR, GATE,
    "the adapter's LoRA rank is above what the serving stack loads by default (vLLM: 16, at most 512)",
    "vLLM allocates LoRA slots for --max-lora-rank (default 16) and refuses a larger adapter when it is "
    "loaded: the model passes every offline gate and fails at deployment.",
    "Serve with --max-lora-rank N (one of 8, 16, 32, 64, 128, 256, 320, 512, at least the adapter's rank), "
    "or train with lora.r within the limit.",
    '"r": 64   # vllm serve BASE --enable-lora --max-lora-rank 64',
)
ADAPTER_UNSUPPORTED_BY_SERVER = Rule(
    "ART008", "adapter_unsupported_by_server", Severity.ERROR, GATE,
    "the adapter uses a PEFT feature the serving stack does not load (vLLM: modules_to_save, DoRA, non-LoRA)",
    "vLLM's LoRA loader supports plain LoRA weights only: an adapter with modules_to_save (full copies of "
    "lm_head or embed_tokens), use_dora or another PEFT type is refused.",
    "Merge the adapter (`sftgate merge`) and serve the merged model, or train without modules_to_save / DoRA "
    "(trainable token indices instead of modules_to_save for new tokens).",
    '"modules_to_save": ["lm_head", "embed_tokens"]',
)
CHAT_TEMPLATE_NOT_IN_TOKENIZER_CONFIG = Rule(
    "ART009", "chat_template_not_in_tokenizer_config", Severity.ERROR, GATE,
    "TGI reads the chat template only from tokenizer_config.json, which lacks it (or holds another one)",
    "transformers 4.43+ saves the template as chat_template.jinja; TGI looks in tokenizer_config.json only "
    "and serves the conversation without the trained template (or with a stale one).",
    "Copy the template into tokenizer_config.json's chat_template (the same text as chat_template.jinja).",
    "chat_template.jinja present, tokenizer_config.json without chat_template",
)
TEMPLATE_REJECTS_OPENAI_MESSAGES = Rule(
    "ART010", "template_rejects_openai_messages", Severity.ERROR, GATE,
    "the shipped chat template cannot render OpenAI-style messages (a system turn; a tool call and result)",
    "An OpenAI-compatible server (vLLM, TGI) renders whatever the client sends: a template that raises on a "
    "system message, or on an assistant tool call whose content is null, turns those requests into errors.",
    "Make the template accept a system message (fold it into the first user turn if the model has no "
    "system role) and tool turns (tool_calls with content null, role tool), or document that it does not.",
    "{{ raise_exception('System role not supported') }}",
)

RULES = (LORA_RANK_OVER_SERVING_LIMIT, ADAPTER_UNSUPPORTED_BY_SERVER, CHAT_TEMPLATE_NOT_IN_TOKENIZER_CONFIG,
         TEMPLATE_REJECTS_OPENAI_MESSAGES)

_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
PROBES: tuple[tuple[str, Severity, list[dict[str, Any]]], ...] = (
    ("a system turn", Severity.ERROR, [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]),
    ("an assistant tool call and its tool result", Severity.WARNING, [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
    ]),
)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # reported by the artifacts gate's own JSON checks


def serving_findings(root: Path, names: set[str], profile: str, kind: str) -> Iterator[Finding]:
    """The findings of ``profile`` (``vllm`` / ``tgi``; nothing for the others) for folder ``root``."""
    if profile not in SERVING_PROFILES:
        return
    if kind == "adapter":
        if profile == "vllm" and "adapter_config.json" in names:
            yield from _vllm_adapter(root / "adapter_config.json")
        return
    tok_cfg = _load(root / "tokenizer_config.json") if "tokenizer_config.json" in names else None
    jinja = root / "chat_template.jinja"
    template = jinja.read_text(encoding="utf-8") if "chat_template.jinja" in names else None
    in_config = tok_cfg.get("chat_template") if isinstance(tok_cfg, dict) else None
    if profile == "tgi":
        yield from _tgi_template(root, template, in_config)
    shipped = template if template is not None else _tgi_served(in_config)
    if shipped is not None:
        yield from _openai_messages(root, shipped, tok_cfg if isinstance(tok_cfg, dict) else {},
                                    str(jinja) if template is not None else f"{root / 'tokenizer_config.json'}:chat_template")


def _vllm_adapter(path: Path) -> Iterator[Finding]:
    config = _load(path)
    if not isinstance(config, dict):
        return
    ranks = [config.get("r"), *(config.get("rank_pattern") or {}).values()]
    rank = max((r for r in ranks if isinstance(r, int) and not isinstance(r, bool)), default=None)
    if rank is not None and rank > VLLM_DEFAULT_MAX_LORA_RANK:
        flag = next((r for r in VLLM_LORA_RANKS if r >= rank), None)
        yield LORA_RANK_OVER_SERVING_LIMIT.finding(
            f"LoRA rank {rank} is above vLLM's default --max-lora-rank {VLLM_DEFAULT_MAX_LORA_RANK}"
            + ("" if flag else f" and its largest, {VLLM_LORA_RANKS[-1]}: vLLM cannot serve it"),
            f"{path}:r",
            severity=Severity.WARNING if flag else None,
            suggestion=f"vllm serve BASE --enable-lora --max-lora-rank {flag}" if flag else "train with lora.r <= 512",
            evidence={"rank": rank, "max_lora_rank": flag},
        )
    features = []
    if config.get("modules_to_save"):
        features.append(f"modules_to_save {config['modules_to_save']}")
    if config.get("use_dora"):
        features.append("use_dora")
    if config.get("peft_type") not in (None, "LORA"):
        features.append(f"peft_type {config.get('peft_type')}")
    for feature in features:
        key = feature.split()[0]
        yield ADAPTER_UNSUPPORTED_BY_SERVER.finding(
            f"vLLM does not load adapters with {feature}", f"{path}:{key}",
            suggestion="merge the adapter (`sftgate merge`) and serve the merged model",
            evidence={"feature": key, "value": config.get(key)},
        )


def _tgi_served(in_config: Any) -> str | None:
    """The template TGI serves from ``tokenizer_config.json``'s ``chat_template``: a string, or the entry
    named ``default`` of a ``[{"name": ..., "template": ...}]`` list (transformers' format for named templates)."""
    if isinstance(in_config, list):
        default = [e.get("template") for e in in_config if isinstance(e, dict) and e.get("name") == "default"]
        in_config = default[0] if default else None
    return in_config if isinstance(in_config, str) else None


def _tgi_template(root: Path, template: str | None, in_config: Any) -> Iterator[Finding]:
    where = f"{root / 'tokenizer_config.json'}:chat_template"
    in_config = _tgi_served(in_config)
    if template is not None and not isinstance(in_config, str):
        yield CHAT_TEMPLATE_NOT_IN_TOKENIZER_CONFIG.finding(
            "chat_template.jinja holds the template, tokenizer_config.json has none: TGI serves without it", where,
            suggestion="copy chat_template.jinja into tokenizer_config.json's chat_template",
            evidence={"chat_template_jinja": True, "in_tokenizer_config": False},
        )
    elif template is not None and isinstance(in_config, str) and in_config != template:
        yield CHAT_TEMPLATE_NOT_IN_TOKENIZER_CONFIG.finding(
            "tokenizer_config.json's chat_template differs from chat_template.jinja: TGI serves the former", where,
            suggestion="make tokenizer_config.json's chat_template the text of chat_template.jinja",
            evidence={"chat_template_jinja": True, "in_tokenizer_config": True, "same": False},
        )


def _special(value: Any) -> Any:
    return value.get("content") if isinstance(value, dict) else value


def _openai_messages(root: Path, template: str, tok_cfg: dict[str, Any], where: str) -> Iterator[Finding]:
    try:
        from transformers.utils.chat_template_utils import render_jinja_template
    except ImportError:  # the core install: the template is checked where transformers is installed
        return
    specials = {k: _special(v) for k, v in tok_cfg.items() if k.endswith("_token") and isinstance(_special(v), str)}
    for what, severity, messages in PROBES:
        try:
            render_jinja_template(conversations=[messages], chat_template=template, add_generation_prompt=True, **specials)
        except Exception as exc:  # raise_exception(), a None concatenated, a template bug
            yield TEMPLATE_REJECTS_OPENAI_MESSAGES.finding(
                f"the chat template cannot render {what} as an OpenAI client sends it: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:160]}",
                where,
                severity=severity,
                evidence={"probe": what, "error": str(exc)[:200]},
            )
