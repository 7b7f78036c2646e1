"""What a LoRA config trains of the input embedding and the output head, token by token.

peft trains embedding rows in three ways: ``modules_to_save`` (a full trainable copy of the
module), a LoRA on the module itself (``target_modules`` naming ``embed_tokens`` / ``lm_head``;
``all-linear`` never includes either), and ``trainable_token_indices`` (only the listed rows; a
list means the input embedding, a dict names modules; with tied embeddings peft ties the head's
rows too). Entries match module names as peft matches them: equal, or ending with ``.<entry>``;
a ``target_modules`` string other than ``all-linear`` is a regular expression on the full name.

::

    settings = LoraEmbeddings(modules_to_save=("embed_tokens", "lm_head"))
    coverage = settings.coverage("model.embed_tokens", "lm_head", tied=False)
    coverage.input(128009), coverage.output(128009)        # True, True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

TYING_PEFT = (0, 18)  # peft's LoraConfig.ensure_weight_tying, which sftgate's runner sets on tied models


def runner_keeps_ties() -> bool | None:
    """Whether the installed peft keeps tied embeddings tied when one side is trained
    (``ensure_weight_tying``, peft >= 0.18); None when peft is not installed here."""
    try:
        version = metadata.version("peft")
    except metadata.PackageNotFoundError:
        return None
    found = re.match(r"(\d+)\.(\d+)", version)
    return found is not None and (int(found.group(1)), int(found.group(2))) >= TYING_PEFT


def _matches(entry: str, module: str) -> bool:
    return module == entry or module.endswith("." + entry)


@dataclass(frozen=True)
class Coverage:
    """Which rows training updates: all of a side, or the listed token ids."""

    input_all: bool = False
    output_all: bool = False
    input_ids: frozenset[int] = frozenset()
    output_ids: frozenset[int] = frozenset()

    def input(self, token: int) -> bool:
        return self.input_all or token in self.input_ids

    def output(self, token: int) -> bool:
        return self.output_all or token in self.output_ids

    @property
    def anything(self) -> bool:
        return self.input_all or self.output_all or bool(self.input_ids or self.output_ids)


@dataclass(frozen=True)
class LoraEmbeddings:
    """The embedding-related LoRA settings of a config (``lora.*``)."""

    target_modules: tuple[str, ...] | str | None = None
    modules_to_save: tuple[str, ...] = ()
    trainable_token_indices: tuple[int, ...] | dict[str, tuple[int, ...]] | None = None

    @classmethod
    def from_config(cls, config: Any) -> LoraEmbeddings:
        targets = config.get("lora.target_modules")
        tokens = config.get("lora.trainable_token_indices")
        if isinstance(tokens, dict):
            tokens = {str(k): tuple(int(i) for i in v) for k, v in tokens.items()}
        elif tokens is not None:
            tokens = tuple(int(i) for i in tokens)
        return cls(
            target_modules=tuple(targets) if isinstance(targets, list) else targets,
            modules_to_save=tuple(config.get("lora.modules_to_save") or ()),
            trainable_token_indices=tokens,
        )

    def saved(self, module: str | None) -> bool:
        """``module`` is in ``modules_to_save`` (a full trainable copy)."""
        return module is not None and any(_matches(e, module) for e in self.modules_to_save)

    def lora(self, module: str | None) -> bool:
        """``target_modules`` puts a LoRA on ``module`` (never for ``all-linear``: it skips both)."""
        targets = self.target_modules
        if module is None or targets is None or targets == "all-linear":
            return False
        if isinstance(targets, str):
            return re.fullmatch(targets, module) is not None
        return any(_matches(e, module) for e in targets)

    def token_rows(self, module: str | None, *, is_input: bool) -> frozenset[int]:
        tokens = self.trainable_token_indices
        if module is None or tokens is None:
            return frozenset()
        if isinstance(tokens, dict):
            return frozenset(i for key, ids in tokens.items() if _matches(key, module) for i in ids)
        return frozenset(tokens) if is_input else frozenset()

    def coverage(self, embedding: str | None, head: str | None, *, tied: bool) -> Coverage:
        """What training updates, for the input module ``embedding`` and the head module ``head``."""
        input_all = self.saved(embedding) or self.lora(embedding)
        output_all = self.saved(head) or self.lora(head)
        input_ids = self.token_rows(embedding, is_input=True)
        output_ids = self.token_rows(head, is_input=False)
        if tied:  # one tensor: peft ties trainable tokens to the head, and a full copy trains both uses
            output_ids = output_ids | input_ids
        return Coverage(input_all, output_all, input_ids, output_ids)

    def split_tied(self, embedding: str | None, head: str | None) -> list[str]:
        """On tied embeddings, the settings that train one side without the other (they come apart)."""
        out = []
        if self.saved(embedding) != self.saved(head):
            one = embedding if self.saved(embedding) else head
            out.append(f"lora.modules_to_save trains {one!r} alone")
        if self.lora(embedding) != self.lora(head):
            one = embedding if self.lora(embedding) else head
            out.append(f"lora.target_modules puts a LoRA on {one!r} alone")
        return out
