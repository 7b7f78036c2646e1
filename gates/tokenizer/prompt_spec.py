"""How prompts are rendered (:class:`PromptSpec`), read from a config, and the chat template it selects.

The base of the rendering modules: :class:`PromptSpec` (a system prompt, a ``{prompt}``
template, a chat-template override), :class:`RenderError`, the probe texts the template probes
render, the training and serving specs of an sftgate config (``prompt.*``), and the chat
template text and hash a spec stands for (``PromptSpec.chat_template`` when set, else the
tokenizer's).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError
from sftgate.gates.readers.textfile import read_text

# Distinctive probe texts: plain ASCII words no template contains, so they are easy to find.
PROBE_USER = "Xqzprobeuser alpha"
PROBE_ASSISTANT = "Xqzprobeassistant bravo"
PROBE_USER_2 = "Xqzprobeuser charlie"
PROBE_SYSTEM = "Xqzprobesystem delta"


class RenderError(ValueError):
    """An example that cannot be rendered (unknown format, no chat template, a template error)."""


# Variables the renderer sets itself: a template kwarg may not take their names.
RESERVED_TEMPLATE_VARIABLES = frozenset({"messages", "tools", "documents", "add_generation_prompt"})


@dataclass(frozen=True)
class PromptSpec:
    """How prompts are rendered: a system prompt, a ``{prompt}`` template, a chat-template override,
    the variables the chat template reads (``template_kwargs``, as ``(name, JSON text)`` pairs so the
    spec stays hashable; :attr:`kwargs` gives them as a dict) and the split-special-tokens rendering
    (``split_special_tokens``: a control token's string inside message text is tokenized as text)."""

    system: str | None = None
    template: str | None = None
    chat_template: str | None = None
    template_kwargs: tuple[tuple[str, str], ...] = ()
    split_special_tokens: bool = False
    turns: str = "all"  # which assistant turns of a conversation the labels train: "all" or "last" (train.turns)

    @cached_property
    def kwargs(self) -> dict[str, Any]:
        """The template variables, e.g. ``{"enable_thinking": False}`` (empty when none)."""
        return {name: json.loads(text) for name, text in self.template_kwargs}


def kwargs_items(mapping: Mapping[str, Any] | None, where: str = "template kwargs") -> tuple[tuple[str, str], ...]:
    """``PromptSpec.template_kwargs`` of a mapping: sorted ``(name, JSON text)``; InputError for a
    reserved or non-identifier name or a value that is not JSON."""
    if not mapping:
        return ()
    items = []
    for name, value in mapping.items():
        if not isinstance(name, str) or not name.isidentifier() or name in RESERVED_TEMPLATE_VARIABLES:
            raise InputError(
                f"{where}: {name!r} cannot be a template variable",
                hint=f"use a Jinja identifier other than {', '.join(sorted(RESERVED_TEMPLATE_VARIABLES))}",
            )
        try:
            items.append((name, json.dumps(value, sort_keys=True, allow_nan=False)))
        except (TypeError, ValueError):
            raise InputError(f"{where}: {name} = {value!r} is not a JSON value") from None
    return tuple(sorted(items))


# --------------------------------------------------------------------------- config


def spec_from_config(config: Any) -> PromptSpec:
    """The training :class:`PromptSpec` of an sftgate config (``prompt.*``; files relative to it)."""
    return PromptSpec(
        system=config.get("prompt.system"),
        template=config.get("prompt.template"),
        chat_template=_read_template(config, "prompt.chat_template"),
        template_kwargs=kwargs_items(config.get("prompt.template_kwargs"), config.location("prompt.template_kwargs")),
        split_special_tokens=bool(config.get("prompt.split_special_tokens")),
        turns=config.get("train.turns") or "all",
    )


def inference_spec_from_config(config: Any) -> PromptSpec:
    """The spec the serving side uses: ``prompt.inference_system`` / ``prompt.inference_chat_template`` /
    ``prompt.inference_template_kwargs`` when the config sets them (``inference_system: null`` means no
    system prompt), else training's."""
    train = spec_from_config(config)
    section = config.get("prompt") or {}
    system = section.get("inference_system", train.system)  # an explicit null: no system prompt
    chat = _read_template(config, "prompt.inference_chat_template")
    kwargs = train.template_kwargs
    if "inference_template_kwargs" in section:
        where = config.location("prompt.inference_template_kwargs")
        kwargs = kwargs_items(section.get("inference_template_kwargs"), where)
    return PromptSpec(system=system, template=train.template, chat_template=chat if chat is not None else train.chat_template,
                      template_kwargs=kwargs, split_special_tokens=train.split_special_tokens)


def _read_template(config: Any, key: str) -> str | None:
    path = config.require_file(key)
    return None if path is None else read_template_file(path)


def read_template_file(path: str | Path) -> str:
    """Read a ``.jinja`` chat template; a missing or unreadable file is an :class:`InputError`."""
    return read_text(path, expected="a .jinja chat template file", encoding="utf-8")


def template_hash(text: str | None) -> str | None:
    """sha256 of a chat template's text: what a training run records and serving must match."""
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def chat_template_text(tokenizer: Any, spec: PromptSpec) -> str | None:
    """The chat template that renders ``messages`` under ``spec`` (override, else the tokenizer's)."""
    if spec.chat_template is not None:
        return spec.chat_template
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: transformers uses "default"
        template = template.get("default")
    return template if isinstance(template, str) else None
