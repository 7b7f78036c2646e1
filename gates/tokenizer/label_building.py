"""Label construction: token ids and labels of training examples, as the trainer builds them.

The prompt's tokens (``len(encode_prompt(...))``, as TRL does) are ``-100``; the completion's
tokens up to and including its last end-of-turn token
(:func:`~sftgate.gates.tokenizer.end_of_turn.end_of_turn_ids`) are supervised; tokens after it
(ChatML's trailing newline) are ``-100``. Every earlier assistant turn of a conversation is
trained the same way (what TRL's ``assistant_only_loss`` does), unless ``PromptSpec.turns`` is
``"last"`` (config ``train.turns: last``). ``max_seq_len`` truncates on the right and sets
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
from sftgate.gates.tokenizer.token_encoding import encode_groups, encode_offsets, encode_texts

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
    turn_spans: tuple[tuple[int, int], ...] = ()  # earlier trained assistant turns: [start, end) token positions

    @property
    def spans(self) -> tuple[tuple[int, int], ...]:
        """Every trained assistant span ``[start, end)``, the final completion last."""
        return (*self.turn_spans, (self.prompt_len, len(self.input_ids)))

    def in_completion(self, index: int) -> bool:
        """Whether token ``index`` lies in an assistant span (the completion or an earlier trained turn)."""
        return any(start <= index < end for start, end in self.spans)

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

    def turn_ends(self) -> list[int | None]:
        """For each earlier trained turn, the index of its last trained token (``None``: nothing trained)."""
        ends: list[int | None] = []
        for start, end in self.turn_spans:
            last = next((i for i in range(min(end, len(self.labels)) - 1, start - 1, -1)
                         if self.labels[i] != IGNORE_INDEX), None)
            ends.append(last)
        return ends


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
        # each conversation with its prompt and turns: most of them are its prefixes (encode_groups)
        groups = encode_groups(tokenizer, [[rendered[i].full or "", rendered[i].prompt,
                                            *(text for turn in rendered[i].turns for text in turn[:2])]
                                           for i in index], special)
        for i, (full_ids, prompt_ids, *turn_list) in zip(index, groups, strict=True):
            if rendered[i].append_eos and eos_id is not None and (not full_ids or full_ids[-1] != eos_id):
                full_ids.append(eos_id)
            turn_ids = iter(turn_list)
            pairs = [(next(turn_ids), next(turn_ids)) for _ in rendered[i].turns]
            spans = turn_spans(pairs, full_ids)
            if len(spans) < len(pairs):  # a template that renders earlier turns differently alone
                found = text_spans(tokenizer, rendered[i].full or "", [t[2] for t in rendered[i].turns], full_ids, eot)
                spans = found if len(found) > len(spans) else spans
            out[i] = (prompt_ids, build_labels(prompt_ids, full_ids, eot, max_seq_len=max_seq_len, turns=spans))
    return out


def turn_spans(pairs: Sequence[tuple[list[int], list[int]]], full_ids: list[int]) -> tuple[tuple[int, int], ...]:
    """Token spans of earlier assistant turns from ``(prompt ids, through ids)`` pairs.

    A turn starts where its prompt ends (when that prompt is a prefix of the full sequence) and ends
    where the conversation through it stops agreeing with the full sequence.
    """
    spans = []
    for prompt_ids, through_ids in pairs:
        start = len(prompt_ids)
        if full_ids[:start] != prompt_ids:
            continue
        end = start
        limit = min(len(through_ids), len(full_ids))
        while end < limit and through_ids[end] == full_ids[end]:
            end += 1
        if end > start:
            spans.append((start, end))
    return tuple(spans)


def text_spans(tokenizer: Any, full: str, texts: Sequence[str], full_ids: list[int], eot: tuple[int, ...]
               ) -> tuple[tuple[int, int], ...]:
    """Token spans of the assistant ``texts`` found in order in the rendered ``full`` text.

    For templates whose rendering of the conversation before a turn is not a prefix of the whole
    (Mistral's puts the system prompt in the LAST user turn): each text's tokens (by character
    offsets) and the tokens after it up to its end-of-turn token. Needs a fast tokenizer; none
    found otherwise.
    """
    try:
        ids, offsets = encode_offsets(tokenizer, full)
    except (NotImplementedError, ValueError, TypeError):
        return ()
    if ids != full_ids[: len(ids)]:
        return ()
    ends = set(eot)
    spans = []
    char = token = 0
    for text in texts:
        at = full.find(text, char) if text else -1
        if at < 0:
            continue
        char = at + len(text)
        while token < len(offsets) and offsets[token][1] <= at:
            token += 1
        start = end = token
        while end < len(offsets) and offsets[end][0] < char:
            end += 1
        while end < len(offsets) and full_ids[end - 1] not in ends and full_ids[end] in ends:
            end += 1
        if end > start:
            spans.append((start, end))
        token = end
    return tuple(spans)


def build_labels(
    prompt_ids: list[int],
    full_ids: list[int],
    eos_ids: tuple[int, ...],
    *,
    max_seq_len: int | None = None,
    turns: Sequence[tuple[int, int]] = (),
) -> Encoded:
    """Labels for ``full_ids`` whose first ``len(prompt_ids)`` tokens are the prompt.

    ``turns`` are earlier assistant spans ``[start, end)`` inside the prompt, trained the same way
    (their tokens after their last end-of-turn token masked).
    """
    prompt_len = len(prompt_ids)
    labels = [IGNORE_INDEX] * min(prompt_len, len(full_ids)) + full_ids[prompt_len:]
    eos = set(eos_ids)
    kept = []
    for start, end in turns:
        if end > prompt_len:
            continue
        labels[start:end] = full_ids[start:end]
        _mask_after_last_eos(full_ids, labels, start, end, eos)
        kept.append((start, end))
    _mask_after_last_eos(full_ids, labels, prompt_len, len(full_ids), eos)
    encoded = Encoded(full_ids, labels, prompt_len, eos_ids, False, tuple(kept))
    return truncate(encoded, max_seq_len) if max_seq_len is not None else encoded


def truncate(encoded: Encoded, max_seq_len: int) -> Encoded:
    """``encoded`` cut to ``max_seq_len`` tokens (``truncated`` set when that cut anything)."""
    if len(encoded.input_ids) <= max_seq_len:
        return encoded
    spans = tuple((s, min(e, max_seq_len)) for s, e in encoded.turn_spans if s < max_seq_len)
    return Encoded(encoded.input_ids[:max_seq_len], encoded.labels[:max_seq_len], encoded.prompt_len,
                   encoded.eos_ids, True, spans)


def _mask_after_last_eos(ids: list[int], labels: list[int], start: int, end: int, eos: set[int]) -> None:
    for index in range(end - 1, start - 1, -1):
        if ids[index] in eos:
            for after in range(index + 1, end):
                labels[after] = IGNORE_INDEX
            return


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
