"""The vectorised label scan: tokenized rows in flat Arrow-style batches, checked with numpy.

A :class:`TokenBatch` is a batch of rows as Arrow holds them: one flat array per column and the
row offsets. :func:`scan_batch` finds, without a Python loop per token, the positions each label
rule is about (:class:`BatchHits`); :class:`~sftgate.gates.tokenizer.label_tally.LabelTally`
adds them up over a whole dataset. Positions are flat indices into the batch.

How a row is read (HF causal LMs shift labels inside the model, so ``labels[i]`` is the target at
position ``i`` and a row's first label never counts):

- padding: ``attention_mask == 0``, else a trailing run of the pad id (the first of the run is a
  real EOS when pad == EOS);
- examples: a row is split where ``position_ids`` reset, where TRL's ``seq_lengths`` say, and where
  a token starts another example (BOS inside a row; a token after an example-ending EOS). A start
  that no reset or ``seq_lengths`` separates is a ``packing_leak``;
- roles: :func:`~sftgate.gates.tokenizer.turn_regions.classify` on the learned turn markers, else
  ``completion_mask == 0`` is the prompt;
- every run of trained tokens must end in an end-of-turn token (or the template's text after one):
  a masked end-of-turn right after the run is ``eos_masked``, the end of the example is a truncation
  candidate, anything else ``eos_not_appended``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sftgate.gates.tokenizer.turn_regions import PROMPT_HEADER, PROMPT_TEXT, UNKNOWN, TurnMarkers, classify

IGNORE_INDEX = -100
SHIFTED_MIN = 0.9  # share of trained labels equal to the next input id for a row to count as shifted


@dataclass
class TokenBatch:
    """Rows of one batch: flat columns aligned with ``input_ids`` and the row ``offsets`` (rows + 1)."""

    input_ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    attention_mask: np.ndarray | None = None
    position_ids: np.ndarray | None = None
    completion_mask: np.ndarray | None = None  # 1 on completion tokens (TRL's prompt/completion mask)
    seq_starts: np.ndarray | None = None  # bool: packed examples start here (TRL's seq_lengths)
    separated: bool = False  # something outside the ids separates packed examples (cu_seq_lens)
    rows: np.ndarray | None = None  # the 1-based row (or line) number of each row

    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1


@dataclass
class BatchHits:
    """What one batch shows, as flat positions per rule plus the figures of the batch."""

    row_of: np.ndarray
    hits: dict[str, np.ndarray] = field(default_factory=dict)  # rule -> flat positions
    truncation: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # candidates
    row_length: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # real tokens per row
    labels: np.ndarray | None = None  # the labels the rules read (realigned where a row was shifted)
    figures: dict[str, int] = field(default_factory=dict)


def row_sums(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-row count of True in the flat ``mask`` (empty rows give 0)."""
    lengths = np.diff(offsets)
    out = np.zeros(len(lengths), dtype=np.int64)
    nonempty = lengths > 0
    if nonempty.any():
        out[nonempty] = np.add.reduceat(mask, offsets[:-1][nonempty], dtype=np.int64)
    return out


def scan_batch(batch: TokenBatch, markers: TurnMarkers, *, pad_id: int | None, vocab_limit: int | None) -> BatchHits:
    """Every rule's positions in ``batch`` (see the module docstring for how rows are read)."""
    ids = batch.input_ids
    offsets = batch.offsets.astype(np.int64, copy=False)
    n, n_rows = len(ids), batch.n_rows
    lengths = np.diff(offsets)
    row_of = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)
    out = BatchHits(row_of=row_of)
    labels = batch.labels
    if n == 0:
        out.row_length = np.zeros(n_rows, dtype=np.int64)
        out.labels = labels
        out.figures = {"rows": n_rows, "tokens": 0, "trained_tokens": 0, "segments": 0, "packed_rows": 0}
        return out
    row_start = offsets[:-1][lengths > 0]
    first = np.zeros(n, dtype=bool)
    first[row_start] = True
    end_ids = np.asarray(markers.end_of_turn or (-1,), dtype=ids.dtype)

    sup = labels != IGNORE_INDEX
    if vocab_limit is not None:
        bad = (ids < 0) | (ids >= vocab_limit) | (sup & ((labels < 0) | (labels >= vocab_limit)))
        out.hits["token_out_of_range"] = np.flatnonzero(bad)

    labels, sup, shifted_rows, mismatched = _realign_shifted(ids, labels, sup, offsets, row_of)
    if len(shifted_rows):
        out.hits["labels_shifted"] = row_start[np.isin(row_of[row_start], shifted_rows)]
    out.labels = labels

    pad, row_length = _padding(batch, ids, offsets, lengths, row_of, pad_id, end_ids)
    out.row_length = row_length
    trained = sup & ~first
    if pad is not None:
        out.hits["pad_trained"] = np.flatnonzero(trained & pad)
        trained &= ~pad

    starts, leaks = _example_starts(batch, ids, first, row_of, pad, markers)
    out.hits["packing_leak"] = leaks
    start_at = np.flatnonzero(starts)
    segment = np.cumsum(starts) - 1
    real = ~pad if pad is not None else np.ones(n, dtype=bool)
    seg_trained = np.add.reduceat(trained, start_at, dtype=np.int64)
    seg_real = np.add.reduceat(real, start_at, dtype=np.int64)
    out.hits["nothing_trained"] = start_at[(seg_trained == 0) & (seg_real > 0)]

    prompt = _prompt_tokens(batch, ids, starts, row_of, markers)
    if prompt is not None:
        out.hits["prompt_trained"] = np.flatnonzero(trained & prompt)

    masked, not_appended, at_end = _run_ends(ids, sup, trained, segment, starts, pad, end_ids, markers)
    out.hits["eos_masked"] = masked
    # A run cut at the end of its example is a truncation when that example ends its row at max length.
    last_seg_of_row = np.zeros(n_rows, dtype=np.int64)
    np.maximum.at(last_seg_of_row, row_of[start_at], np.arange(len(start_at)))
    at_row_end = segment[at_end] == last_seg_of_row[row_of[at_end]]
    out.hits["eos_not_appended"] = np.sort(np.concatenate([not_appended, at_end[~at_row_end]]))
    out.truncation = at_end[at_row_end]

    seg_rows = row_of[start_at]
    out.figures = {
        "rows": n_rows,
        "tokens": int(real.sum()),
        "trained_tokens": int(trained.sum()),
        "segments": len(start_at),
        "packed_rows": int(np.count_nonzero(np.bincount(seg_rows, minlength=n_rows) > 1)),
        "mismatched_labels": mismatched,
    }
    return out


def _realign_shifted(ids: np.ndarray, labels: np.ndarray, sup: np.ndarray, offsets: np.ndarray, row_of: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Rows whose trained labels are the NEXT input ids (pre-shifted), realigned for the other rules."""
    n_sup = row_sums(sup, offsets)
    aligned = row_sums(sup & (labels == ids), offsets)
    if (aligned == n_sup).all():
        return labels, sup, np.zeros(0, dtype=np.int64), 0
    following = np.full(len(ids), -1, dtype=ids.dtype)
    following[:-1] = ids[1:]
    ends = offsets[1:][np.diff(offsets) > 0] - 1
    following[ends] = -1
    shifted = row_sums(sup & (labels == following), offsets)
    is_shifted = (n_sup >= 2) & (shifted >= SHIFTED_MIN * n_sup) & (aligned < 0.5 * n_sup)
    mismatched = int((n_sup - aligned)[~is_shifted].sum())
    rows = np.flatnonzero(is_shifted)
    if not len(rows):
        return labels, sup, rows, mismatched
    moved = np.full(len(labels), IGNORE_INDEX, dtype=labels.dtype)
    moved[1:] = labels[:-1]
    moved[offsets[:-1][np.diff(offsets) > 0]] = IGNORE_INDEX
    labels = np.where(is_shifted[row_of], moved, labels)
    return labels, labels != IGNORE_INDEX, rows, mismatched


def _padding(batch: TokenBatch, ids: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, row_of: np.ndarray,
             pad_id: int | None, end_ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The pad positions (or None) and each row's real length (index of its last real token + 1)."""
    n = len(ids)
    pos = np.arange(n, dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    nonempty = lengths > 0
    last_real = np.full(len(lengths), -1, dtype=np.int64)
    if batch.attention_mask is not None:
        pad = batch.attention_mask == 0
    elif pad_id is not None and np.any(ids[offsets[1:][nonempty] - 1] == pad_id):
        pad_run = ids == pad_id
        last_real[nonempty] = np.maximum.reduceat(np.where(pad_run, -1, pos), offsets[:-1][nonempty])
        if pad_id in end_ids:  # pad == EOS: the first token of the trailing run is the real EOS
            last_real = np.minimum(last_real + 1, lengths - 1)
        pad = pos > last_real[row_of]
    else:
        return None, lengths.copy()
    if nonempty.any():
        last_real[nonempty] = np.maximum.reduceat(np.where(pad, -1, pos), offsets[:-1][nonempty])
    return (pad if pad.any() else None), last_real + 1


def _example_starts(batch: TokenBatch, ids: np.ndarray, first: np.ndarray, row_of: np.ndarray,
                    pad: np.ndarray | None, markers: TurnMarkers) -> tuple[np.ndarray, np.ndarray]:
    """Where examples start (bool) and the starts that nothing separates (packing leaks)."""
    n = len(ids)
    separated = np.zeros(n, dtype=bool)
    if batch.position_ids is not None:
        separated |= (batch.position_ids == 0) & ~first
    if batch.seq_starts is not None:
        separated |= batch.seq_starts & ~first
    signals = np.zeros(n, dtype=bool)
    if markers.bos_id is not None:
        signals |= (ids == markers.bos_id) & ~first
    if markers.eos_id is not None:
        after = np.flatnonzero(ids[:-1] == markers.eos_id) + 1
        after = after[(row_of[after] == row_of[after - 1]) & ~first[after]]
        signals[after] = True
    if pad is not None:
        signals &= ~pad
        separated &= ~pad
    leaks = np.zeros(0, dtype=np.int64) if batch.separated else np.flatnonzero(signals & ~separated)
    return first | separated | signals, leaks


def _prompt_tokens(batch: TokenBatch, ids: np.ndarray, starts: np.ndarray, row_of: np.ndarray,
                   markers: TurnMarkers) -> np.ndarray | None:
    """Tokens of system, user and tool turns (by turn markers, else by ``completion_mask``)."""
    if not markers.has_roles and batch.completion_mask is None:
        return None
    region = classify(ids, starts, row_of, markers)
    prompt = (region == PROMPT_HEADER) | (region == PROMPT_TEXT)
    if batch.completion_mask is not None:
        prompt |= (region == UNKNOWN) & (batch.completion_mask == 0)
    return prompt


def _run_ends(ids: np.ndarray, sup: np.ndarray, trained: np.ndarray, segment: np.ndarray, starts: np.ndarray,
              pad: np.ndarray | None, end_ids: np.ndarray, markers: TurnMarkers
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of trained tokens that do not end in an end-of-turn token: (masked EOS positions,
    run ends followed by something else, run ends at the end of their example)."""
    n = len(ids)
    next_trained = np.zeros(n, dtype=bool)
    next_trained[:-1] = trained[1:] & ~starts[1:]
    ends = np.flatnonzero(trained & ~next_trained)
    ok = np.isin(ids[ends], end_ids)
    tail = np.asarray(markers.after_end or (-2,), dtype=ids.dtype)
    in_tail = np.isin(ids[ends], tail)
    for back in range(1, len(markers.after_end) + 1):  # the template's text after the end-of-turn token
        prev = ends - back
        valid = (prev >= 0) & in_tail & ~ok
        prev = np.where(valid, prev, 0)
        valid &= segment[prev] == segment[ends]
        ok |= valid & np.isin(ids[prev], end_ids)
        in_tail &= valid & np.isin(ids[prev], tail)
    bad = ends[~ok]
    nxt = np.minimum(bad + 1, n - 1)
    follows = (bad + 1 < n) & (segment[nxt] == segment[bad])
    if pad is not None:
        follows &= ~pad[nxt]
    masked = follows & np.isin(ids[nxt], end_ids) & ~sup[nxt]
    return nxt[masked], bad[follows & ~masked], bad[~follows]
