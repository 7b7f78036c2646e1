"""The token view (``sftgate tokenizer DIR --data TRAIN.jsonl --show K``).

For K training examples, every token with its id and whether the loss trains it, after the
runner's own label construction and the configured collator (every trained assistant turn and its
end-of-turn token marked): the thing to reach for when
``eos_masked`` or ``prompt_not_prefix`` fires (axolotl's ``preprocess --debug`` is the anchor).
Coloured on a TTY (trained green, masked grey, EOS bold; a masked EOS red), plain otherwise::

    train.jsonl:1  messages  21 tokens: 17 masked, 4 trained, ends with '<|im_end|>' (trained)
         #      id  label    token (decoded text when it differs)
         0       4  masked   '<|im_start|>'
         1     421  masked   'user'
         2     211  masked   'Ċ' '\n'
        ...
        19       5  TRAINED  '<|im_end|>'  <- EOS/end of turn
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftgate.gates.tokenizer.label_building import IGNORE_INDEX, Encoded, collate, encode_example, pad_id_for
from sftgate.gates.tokenizer.prompt_spec import PromptSpec, RenderError
from sftgate.gates.tokenizer.template_rendering import example_messages
from sftgate.gates.tokenizer.token_encoding import token_strings

GREEN, GREY, RED, BOLD, RESET = "\033[32m", "\033[90m", "\033[31m", "\033[1m", "\033[0m"
DEFAULT_MAX_TOKENS = 120
_TAIL = 2 / 3  # of max_tokens shown from the end, where the EOS is


def _paint(text: str, *codes: str, color: bool) -> str:
    return f"{''.join(codes)}{text}{RESET}" if color and codes else text


def format_encoded(
    tokenizer: Any,
    encoded: Encoded,
    *,
    labels: list[int] | None = None,
    title: str = "",
    color: bool = False,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
) -> str:
    """Render one encoded example: a header line, then one line per token (id, label, text).

    ``labels`` are the labels the loss sees (after the collator); default ``encoded.labels``.
    ``max_tokens`` keeps the first third and the last two thirds of long examples.
    """
    ids = encoded.input_ids
    labels = list(labels if labels is not None else encoded.labels)[: len(ids)]
    eos = set(encoded.eos_ids)
    trained = sum(1 for label in labels if label != IGNORE_INDEX)
    last = next((i for i in range(len(labels) - 1, -1, -1) if labels[i] != IGNORE_INDEX), None)
    pieces = token_strings(tokenizer, ids)
    texts = [tokenizer.decode([token_id]) for token_id in ids]
    if last is None:
        ending = "nothing is trained"
    else:
        state = "trained" if ids[last] in eos else "trained, not EOS"
        ending = f"ends with {texts[last]!r} ({state})"
    masked_eos = [i for i, t in enumerate(ids) if t in eos and encoded.in_completion(i) and labels[i] == IGNORE_INDEX]
    if masked_eos:
        ending += f"; EOS masked at {', '.join(map(str, masked_eos[:5]))}"
    if encoded.truncated:
        ending += "; TRUNCATED"
    head = f"{title}  " if title else ""
    lines = [
        f"{head}{len(ids)} tokens: {len(ids) - trained} masked, {trained} trained, {ending}",
        f"  {'#':>5}  {'id':>7}  {'label':<8} token (decoded text when it differs)",
    ]
    turn_starts = {start: n for n, (start, _) in enumerate(encoded.turn_spans, 1)}
    skip_from = skip_to = -1
    if max_tokens is not None and len(ids) > max_tokens:
        tail = int(max_tokens * _TAIL)
        skip_from, skip_to = max_tokens - tail, len(ids) - tail
    for i in range(len(ids)):
        if skip_from <= i < skip_to:
            if i == skip_from:
                lines.append(_paint(f"  {'…':>5}  {skip_to - skip_from} tokens not shown (--max-tokens)", GREY, color=color))
            continue
        is_trained = labels[i] != IGNORE_INDEX
        is_eos = ids[i] in eos and encoded.in_completion(i)
        label = "TRAINED" if is_trained else "masked"
        note = ""
        codes: tuple[str, ...] = (GREEN,) if is_trained else (GREY,)
        if is_eos:
            note = "  <- EOS/end of turn" if is_trained else "  <- EOS/end of turn MASKED"
            codes = (GREEN, BOLD) if is_trained else (RED, BOLD)
        if i == encoded.prompt_len and i > 0:
            lines.append(_paint(f"  {'':>5}  -- completion starts (prompt: {encoded.prompt_len} tokens) --", GREY, color=color))
        elif i in turn_starts:
            lines.append(_paint(f"  {'':>5}  -- assistant turn {turn_starts[i]} starts --", GREY, color=color))
        shown = repr(pieces[i]) if pieces[i] == texts[i] else f"{pieces[i]!r} {texts[i]!r}"
        lines.append(_paint(f"  {i:>5}  {ids[i]:>7}  {label:<8} {shown}{note}", *codes, color=color))
    return "\n".join(lines) + "\n"


def show_examples(
    tokenizer: Any,
    data: str | Path,
    spec: PromptSpec,
    k: int,
    *,
    max_seq_len: int | None = None,
    collator: str = "completion_only",
    color: bool = False,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
    display: str | None = None,
) -> str:
    """The token view of the first ``k`` trainable records of ``data``, labels after ``collator``."""
    from sftgate.gates.readers.tokenizer_io import iter_records

    pad_id = pad_id_for(tokenizer)
    shown = display or str(data)
    parts: list[str] = []
    count = 0
    for line, record in iter_records(data, display=display):
        if count >= k:
            break
        try:
            enc = encode_example(tokenizer, record, spec, max_seq_len=max_seq_len)
        except RenderError as exc:
            parts.append(f"{shown}:{line}  not shown: {exc}\n")
            continue
        labels = collate([enc], pad_id, mask_pad_labels=collator == "mask_pad")["labels"][0]
        kind = "messages" if example_messages(record) is not None else "prompt/completion"
        parts.append(format_encoded(tokenizer, enc, labels=labels, title=f"{shown}:{line}  {kind}",
                                    color=color, max_tokens=max_tokens))
        count += 1
    if not parts:
        return f"{shown}: no records to show\n"
    return "\n".join(parts)
