"""Label construction: token ids and labels of training examples, as the trainer builds them.

The prompt's tokens (``len(encode_prompt(...))``, as TRL does) are ``-100``; the completion's
tokens up to and including its last end-of-turn token
(:func:`~sftgate.gates.tokenizer.end_of_turn.end_of_turn_ids`) are supervised; tokens after it
(ChatML's trailing newline) are ``-100``. ``max_seq_len`` truncates on the right and sets
``truncated``. Chat-rendered texts are tokenized with ``add_special_tokens=False`` (the template
writes BOS), prompt/completion texts with ``add_special_tokens=True`` and EOS appended to the
completion unless it already ends with it (what TRL does). :func:`collate` right-pads a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sftgate.gates.tokenizer.end_of_turn import end_of_turn_ids
from sftgate.gates.tokenizer.prompt_spec import PromptSpec, RenderError
from sftgate.gates.tokenizer.template_rendering import Texts, render_texts
from sftgate.gates.tokenizer.token_encoding import encode_texts

IGNORE_INDEX = -100
COLLATORS = ("completion_only", "mask_pad")


@dataclass
class Encoded:
    """One training example after the runner's label construction."""

    input_ids: list[int]
    labels: list[int]
    prompt_len: int
    eos_ids: tuple[int, ...]
    truncated: bool

    @property
    def supervised(self) -> int:
        """How many tokens are trained."""
        return sum(1 for label in self.labels if label != IGNORE_INDEX)

    @property
    def last_supervised(self) -> int | None:
        """Index of the last trained token, or ``None`` when nothing is trained."""
        for index in range(len(self.labels) - 1, -1, -1):
            if self.labels[index] != IGNORE_INDEX:
                return index
        return None

    @property
    def eos_position(self) -> int | None:
        """Index of the completion's last end-of-turn token (whatever its label), or ``None``."""
        eos = set(self.eos_ids)
        for index in range(len(self.input_ids) - 1, self.prompt_len - 1, -1):
            if self.input_ids[index] in eos:
                return index
        return None

    @property
    def ends_with_eos(self) -> bool:
        """True when the last trained token is an EOS/end-of-turn token."""
        last = self.last_supervised
        return last is not None and self.input_ids[last] in self.eos_ids


def encode_prompt(tokenizer: Any, example: dict[str, Any], spec: PromptSpec) -> list[int]:
    """The token ids generation starts from, tokenized exactly as in training."""
    texts = render_texts(tokenizer, example, spec)
    return encode_texts(tokenizer, [texts.prompt], texts.add_special_tokens)[0]


# --------------------------------------------------------------------------- labels


def encode_example(tokenizer: Any, example: dict[str, Any], spec: PromptSpec, *, max_seq_len: int | None = None) -> Encoded:
    """One training example: input ids and labels (prompt ``-100``; completion and final EOS/EOT trained)."""
    prompt_ids, encoded = encode_many(tokenizer, [example], spec, max_seq_len=max_seq_len)[0]
    del prompt_ids
    return encoded


def encode_many(
    tokenizer: Any,
    examples: Sequence[dict[str, Any]],
    spec: PromptSpec,
    *,
    max_seq_len: int | None = None,
) -> list[tuple[list[int], Encoded]]:
    """Batched :func:`encode_prompt` + :func:`encode_example`: ``[(prompt_ids, encoded), ...]``.

    The same code path as the single-example functions, with the tokenizer called once per
    batch. Every example must have a completion; one that cannot be rendered raises
    :class:`RenderError`.
    """
    rendered = [render_texts(tokenizer, ex, spec) for ex in examples]
    for texts in rendered:
        if texts.full is None:
            raise RenderError("the example has no completion to train on (last turn is not the assistant's)")
    return encode_rendered(tokenizer, rendered, spec, max_seq_len=max_seq_len)


def encode_rendered(
    tokenizer: Any, rendered: Sequence[Texts], spec: PromptSpec, *, max_seq_len: int | None = None
) -> list[tuple[list[int], Encoded]]:
    """Tokenize already rendered texts (all with a completion) and build their labels."""
    eot = tuple(end_of_turn_ids(tokenizer, spec))
    eos_id = getattr(tokenizer, "eos_token_id", None)
    out: list[tuple[list[int], Encoded]] = [None] * len(rendered)  # type: ignore[list-item]
    for special in (False, True):
        index = [i for i, t in enumerate(rendered) if t.add_special_tokens is special]
        if not index:
            continue
        prompts = encode_texts(tokenizer, [rendered[i].prompt for i in index], special)
        fulls = encode_texts(tokenizer, [rendered[i].full or "" for i in index], special)
        for i, prompt_ids, full_ids in zip(index, prompts, fulls, strict=True):
            if rendered[i].append_eos and eos_id is not None and (not full_ids or full_ids[-1] != eos_id):
                full_ids.append(eos_id)
            out[i] = (prompt_ids, build_labels(prompt_ids, full_ids, eot, max_seq_len=max_seq_len))
    return out


def build_labels(prompt_ids: list[int], full_ids: list[int], eos_ids: tuple[int, ...], *, max_seq_len: int | None = None) -> Encoded:
    """Labels for ``full_ids`` whose first ``len(prompt_ids)`` tokens are the prompt."""
    prompt_len = len(prompt_ids)
    labels = [IGNORE_INDEX] * min(prompt_len, len(full_ids)) + full_ids[prompt_len:]
    eos = set(eos_ids)
    for index in range(len(full_ids) - 1, prompt_len - 1, -1):
        if full_ids[index] in eos:
            for after in range(index + 1, len(full_ids)):
                labels[after] = IGNORE_INDEX
            break
    truncated = max_seq_len is not None and len(full_ids) > max_seq_len
    if truncated:
        full_ids, labels = full_ids[:max_seq_len], labels[:max_seq_len]
    return Encoded(full_ids, labels, prompt_len, eos_ids, truncated)


def collate(batch: list[Encoded], pad_id: int, *, mask_pad_labels: bool = False) -> dict[str, list[list[int]]]:
    """Right-pad a batch: ``input_ids`` (pad ``pad_id``), ``attention_mask``, ``labels`` (pad ``-100``).

    ``mask_pad_labels=True`` reproduces the classic collator bug (config ``train.collator:
    mask_pad``): every label equal to ``pad_id`` becomes ``-100``, which masks EOS when pad == eos.
    """
    width = max((len(e.input_ids) for e in batch), default=0)
    input_ids, attention, labels = [], [], []
    for enc in batch:
        pad = width - len(enc.input_ids)
        input_ids.append(enc.input_ids + [pad_id] * pad)
        attention.append([1] * len(enc.input_ids) + [0] * pad)
        row = enc.labels + [IGNORE_INDEX] * pad
        if mask_pad_labels:
            row = [IGNORE_INDEX if label == pad_id else label for label in row]
        labels.append(row)
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def pad_id_for(tokenizer: Any) -> int:
    """The pad id training uses: the tokenizer's pad token, else EOS (the common default), else 0."""
    for attr in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, int):
            return value
    return 0
