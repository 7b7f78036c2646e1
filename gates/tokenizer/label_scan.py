"""The vectorised label scan: tokenized rows in flat Arrow-style batches, checked with numpy.

A :class:`TokenBatch` is a batch of rows as Arrow holds them: one flat array per column and the
row offsets. :func:`scan_batch` finds, without a Python loop per token, the positions each label
rule is about (:class:`BatchHits`); :class:`~sftgate.gates.tokenizer.label_tally.LabelTally`
adds them up over a whole dataset. Positions are flat indices into the batch.

How a row is read (HF causal LMs shift labels inside the model, so ``labels[i]`` is the target at
position ``i`` and a row's first label never counts):

- padding: ``attention_mask == 0``, else a trailing run of the pad id (the first of the run is a
  real EOS when pad == EOS);
- examples: a row is split where ``position_ids`` reset, where TRL's ``seq_lengths`` say, where an
  ``attention_mask`` of segment ids changes (LLaMA-Factory's ``neat_packing``), and where a token
  starts another example (BOS inside a row; a token after an example-ending EOS). A start that
  nothing else separates is a ``packing_leak``;
- roles: :func:`~sftgate.gates.tokenizer.turn_regions.classify` on the learned turn markers, else
  ``completion_mask == 0`` is the prompt;
- every run of trained tokens must end in an end-of-turn token (or the template's text after one):
  a masked end-of-turn right after the run is ``eos_masked``, the end of the example is a truncation
  candidate (with the example's length, or its row's when it ends the row), anything else
  ``eos_not_appended``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sftgate.gates.tokenizer.turn_regions import (
    PROMPT_HEADER,
    PROMPT_TEXT,
    UNKNOWN,
    TurnMarkers,
    expand,
    region_marks,
)

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

    hits: dict[str, np.ndarray] = field(default_factory=dict)  # rule -> sorted flat positions
    truncation: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # candidates
    truncation_length: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # their length
    row_length: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # real tokens per row
    labels: np.ndarray | None = None  # the labels the rules read (realigned where a row was shifted)
    figures: dict[str, int] = field(default_factory=dict)


def row_of(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The row of each flat position."""
    return np.searchsorted(offsets, positions, "right") - 1


def row_sums(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-row count of True in the flat ``mask`` (empty rows give 0)."""
    lengths = np.diff(offsets)
    out = np.zeros(len(lengths), dtype=np.int64)
    nonempty = lengths > 0
    if nonempty.any():
        out[nonempty] = np.add.reduceat(mask, offsets[:-1][nonempty], dtype=np.int64)
    return out


def _sorted_union(*parts: np.ndarray) -> np.ndarray:
    """The sorted distinct positions of ``parts`` (a sort, not numpy's slower hash-based unique)."""
    joined = np.sort(np.concatenate(parts).astype(np.int64, copy=False))
    return joined[np.r_[True, joined[1:] != joined[:-1]]] if len(joined) else joined


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_set)`` for a sorted ``sorted_set``, by binary search."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[at] == values


def scan_batch(batch: TokenBatch, markers: TurnMarkers, *, pad_id: int | None, vocab_limit: int | None) -> BatchHits:
    """Every rule's positions in ``batch`` (see the module docstring for how rows are read).

    Dense work is a handful of passes over the tokens; everything about rows, examples and
    headers is done on sorted position arrays.
    """
    ids = batch.input_ids
    offsets = batch.offsets.astype(np.int64, copy=False)
    n, n_rows = len(ids), batch.n_rows
    lengths = np.diff(offsets)
    out = BatchHits(row_length=lengths.copy())
    labels = batch.labels
    out.labels = labels
    if n == 0:
        out.figures = {"rows": n_rows, "tokens": 0, "trained_tokens": 0, "segments": 0, "packed_rows": 0}
        return out
    row_start = offsets[:-1][lengths > 0]
    end_ids = np.asarray(markers.end_of_turn or (-1,), dtype=ids.dtype)

    sup = labels != IGNORE_INDEX
    n_sup = int(np.count_nonzero(sup))
    if vocab_limit is not None:
        out.hits["token_out_of_range"] = _out_of_range(ids, labels, sup, n - n_sup, vocab_limit)

    if np.any((labels != ids) & sup):
        labels, sup, shifted_rows, mismatched = _realign_shifted(ids, labels, sup, offsets)
        out.hits["labels_shifted"] = offsets[shifted_rows]
        out.labels = labels
    else:
        mismatched = 0

    trained = sup.copy()
    trained[row_start] = False  # a row's first label never counts: the model shifts labels
    pad, out.row_length = _padding(batch, ids, offsets, lengths, pad_id, end_ids)
    if pad is not None:
        out.hits["pad_trained"] = np.flatnonzero(trained & pad)
        trained &= ~pad

    special = _special_positions(ids, markers)
    starts, out.hits["packing_leak"] = _example_starts(batch, ids, special, row_start, offsets, pad, markers)
    seg_trained = np.add.reduceat(trained.view(np.uint8), starts, dtype=np.int64)
    seg_real = np.add.reduceat(~pad, starts, dtype=np.int64) if pad is not None else np.diff(np.r_[starts, n])
    # A one-token piece of a packed row (an example's last token cut off by wrapping) is no example.
    whole_row = _member(starts, row_start) & _member(np.r_[starts[1:], n], offsets[1:])
    out.hits["nothing_trained"] = starts[(seg_trained == 0) & ((seg_real > 1) | (whole_row & (seg_real > 0)))]

    prompt = _prompt_trained(batch, ids, special, starts, row_start, markers, trained)
    if prompt is not None:
        out.hits["prompt_trained"] = prompt

    masked, not_appended, at_end = _run_ends(ids, sup, trained, starts, pad, end_ids, markers)
    out.hits["eos_masked"] = masked
    out.hits["eos_not_appended"] = not_appended
    # A run cut at the end of its example is a truncation when the example (or the row it ends,
    # for packing that cuts examples at row ends) is at the maximum length; the tally decides.
    segment = np.searchsorted(starts, at_end, "right") - 1
    bounds = np.r_[starts, n]
    seg_length = bounds[segment + 1] - bounds[segment]
    rows = row_of(offsets, at_end)
    ends_row = _member(bounds[segment + 1], offsets[1:])
    out.truncation = at_end
    out.truncation_length = np.where(ends_row, np.maximum(out.row_length[rows], seg_length), seg_length)

    seg_rows = row_of(offsets, starts)
    out.figures = {
        "rows": n_rows,
        "tokens": int(seg_real.sum()),
        "trained_tokens": int(seg_trained.sum()),
        "segments": len(starts),
        "packed_rows": int(np.count_nonzero(np.bincount(seg_rows, minlength=n_rows) > 1)),
        "mismatched_labels": mismatched,
    }
    return out


def _out_of_range(ids: np.ndarray, labels: np.ndarray, sup: np.ndarray, masked: int, limit: int) -> np.ndarray:
    """Ids outside [0, limit), trained labels outside it (-100 is the only negative label allowed)."""
    bad_ids = ids.min() < 0 or ids.max() >= limit
    bad_labels = labels.max() >= limit or int(np.count_nonzero(labels < 0)) != masked
    if not (bad_ids or bad_labels):
        return np.zeros(0, dtype=np.int64)
    bad = (ids < 0) | (ids >= limit) | (sup & ((labels < 0) | (labels >= limit)))
    return np.flatnonzero(bad)


def _realign_shifted(ids: np.ndarray, labels: np.ndarray, sup: np.ndarray, offsets: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Rows whose trained labels are the NEXT input ids (pre-shifted), realigned for the other rules."""
    n_sup = row_sums(sup, offsets)
    aligned = row_sums(sup & (labels == ids), offsets)
    following = np.full(len(ids), -1, dtype=ids.dtype)
    following[:-1] = ids[1:]
    nonempty = np.diff(offsets) > 0
    following[offsets[1:][nonempty] - 1] = -1
    shifted = row_sums(sup & (labels == following), offsets)
    is_shifted = (n_sup >= 2) & (shifted >= SHIFTED_MIN * n_sup) & (aligned < 0.5 * n_sup)
    mismatched = int((n_sup - aligned)[~is_shifted].sum())
    rows = np.flatnonzero(is_shifted & nonempty)
    if not len(rows):
        return labels, sup, rows, mismatched
    moved = np.full(len(labels), IGNORE_INDEX, dtype=labels.dtype)
    moved[1:] = labels[:-1]
    moved[offsets[:-1][nonempty]] = IGNORE_INDEX
    per_token = np.repeat(is_shifted, np.diff(offsets))
    labels = np.where(per_token, moved, labels)
    return labels, labels != IGNORE_INDEX, rows, mismatched


def _padding(batch: TokenBatch, ids: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, pad_id: int | None,
             end_ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The pad positions (or None) and each row's real length (index of its last real token + 1)."""
    nonempty = lengths > 0
    if batch.attention_mask is not None:
        if batch.attention_mask.all():
            return None, lengths.copy()
        pad = batch.attention_mask == 0
    elif pad_id is not None and _trailing_pads(ids, offsets, nonempty, pad_id, pad_id in end_ids):
        pos = np.arange(len(ids), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        last_real = np.full(len(lengths), -1, dtype=np.int64)
        last_real[nonempty] = np.maximum.reduceat(np.where(ids == pad_id, -1, pos), offsets[:-1][nonempty])
        if pad_id in end_ids:  # pad == EOS: the first token of the trailing run is the real EOS
            last_real = np.minimum(last_real + 1, lengths - 1)
        pad = pos > np.repeat(last_real, lengths)
    else:
        return None, lengths.copy()
    if not pad.any():
        return None, lengths.copy()
    pos = np.arange(len(ids), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    last = np.full(len(lengths), -1, dtype=np.int64)
    last[nonempty] = np.maximum.reduceat(np.where(pad, -1, pos), offsets[:-1][nonempty])
    return pad, last + 1


def _trailing_pads(ids: np.ndarray, offsets: np.ndarray, nonempty: np.ndarray, pad_id: int, pad_is_end: bool) -> bool:
    """Whether some row ends in pad ids (two of them when the pad id is also an end-of-turn id)."""
    last = offsets[1:][nonempty] - 1
    ends_in_pad = ids[last] == pad_id
    if not pad_is_end or not ends_in_pad.any():
        return bool(ends_in_pad.any())
    last = last[ends_in_pad]
    last = last[last - 1 >= offsets[:-1][nonempty][ends_in_pad]]
    return bool(np.any(ids[last - 1] == pad_id))


_TABLES: dict[TurnMarkers, np.ndarray] = {}


def _special_positions(ids: np.ndarray, markers: TurnMarkers) -> np.ndarray:
    """Positions of the tokens the scan looks for (header starts, BOS, EOS), in one pass over the ids."""
    table = _TABLES.get(markers)
    if table is None:
        wanted = [seq[0] for _, seq in markers.headers if seq] + [t for t in (markers.bos_id, markers.eos_id) if t is not None]
        table = np.zeros(max([0, *wanted]) + 2, dtype=bool)  # the last entry (False) takes every larger id
        table[[w for w in wanted if w >= 0]] = True
        if len(_TABLES) > 16:
            _TABLES.clear()
        _TABLES[markers] = table
    return np.flatnonzero(table.take(ids, mode="clip") & (ids >= 0))


def _example_starts(batch: TokenBatch, ids: np.ndarray, special: np.ndarray, row_start: np.ndarray,
                    offsets: np.ndarray, pad: np.ndarray | None, markers: TurnMarkers) -> tuple[np.ndarray, np.ndarray]:
    """Where examples start (sorted positions) and the starts nothing separates (packing leaks)."""
    n = len(ids)
    empty = np.zeros(0, dtype=np.int64)
    separated = [empty]
    if batch.position_ids is not None:
        separated.append(np.flatnonzero(batch.position_ids == 0))
    if batch.seq_starts is not None:
        separated.append(np.flatnonzero(batch.seq_starts))
    mask = batch.attention_mask
    if mask is not None and n > 1 and mask.max() > 1:  # segment ids per example (LLaMA-Factory's neat_packing)
        separated.append(np.flatnonzero((mask[1:] != mask[:-1]) & (mask[1:] > 0)) + 1)
    signals = [empty]
    if markers.bos_id is not None:
        signals.append(special[ids[special] == markers.bos_id])
    if markers.eos_id is not None:
        after = special[ids[special] == markers.eos_id] + 1
        after = after[after < n]
        signals.append(after[row_of(offsets, after) == row_of(offsets, after - 1)])
    sep, sig = _sorted_union(*separated), _sorted_union(*signals)
    if pad is not None:
        sep, sig = sep[~pad[sep]], sig[~pad[sig]]
    sep = sep[~_member(sep, row_start)]
    sig = sig[~_member(sig, row_start)]
    leaks = empty if batch.separated else sig[~_member(sig, sep)]
    return _sorted_union(row_start, sep, sig), leaks[leaks < n]


def _prompt_trained(batch: TokenBatch, ids: np.ndarray, special: np.ndarray, starts: np.ndarray,
                    row_start: np.ndarray, markers: TurnMarkers, trained: np.ndarray) -> np.ndarray | None:
    """Trained tokens of system, user and tool turns (by turn markers, else by ``completion_mask``);
    ``None`` when the roles cannot be told. Regions are counted first: clean rows cost one pass."""
    if not markers.has_roles and batch.completion_mask is None:
        return None
    n = len(ids)
    positions, codes = region_marks(ids, starts, row_start, markers, candidates=special)
    is_prompt = (codes == PROMPT_HEADER) | (codes == PROMPT_TEXT)
    hits = np.zeros(0, dtype=np.int64)
    if is_prompt.any() and np.any(np.add.reduceat(trained.view(np.uint8), positions, dtype=np.int64)[is_prompt]):
        hits = np.flatnonzero(trained & expand(positions, is_prompt, n))
    if batch.completion_mask is not None and np.any(codes == UNKNOWN):
        prompt = expand(positions, codes == UNKNOWN, n) & (batch.completion_mask == 0)
        hits = _sorted_union(hits, np.flatnonzero(trained & prompt))
    return hits


def _run_ends(ids: np.ndarray, sup: np.ndarray, trained: np.ndarray, starts: np.ndarray, pad: np.ndarray | None,
              end_ids: np.ndarray, markers: TurnMarkers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of trained tokens that do not end in an end-of-turn token: (masked EOS positions,
    run ends followed by something else, run ends at the end of their example)."""
    n = len(ids)
    ends = np.flatnonzero(trained[:-1] & ~trained[1:])
    before = starts[1:] - 1  # a run that reaches the next example's start ends there too
    extra = [before[trained[before]]]
    if trained[-1]:
        extra.append(np.array([n - 1]))
    ends = _sorted_union(ends, *extra)
    segment = np.searchsorted(starts, ends, "right") - 1
    ok = np.isin(ids[ends], end_ids)
    tail = np.asarray(markers.after_end or (-2,), dtype=ids.dtype)
    in_tail = np.isin(ids[ends], tail) & ~ok
    for back in range(1, len(markers.after_end) + 1):  # the template's text after the end-of-turn token
        prev = np.maximum(ends - back, 0)
        valid = in_tail & (ends - back >= starts[segment])
        ok |= valid & np.isin(ids[prev], end_ids)
        in_tail = valid & np.isin(ids[prev], tail)
    bad, segment = ends[~ok], segment[~ok]
    nxt = np.minimum(bad + 1, n - 1)
    follows = (bad + 1 < n) & (np.r_[starts, n][segment + 1] > bad + 1)
    if pad is not None:
        follows &= ~pad[nxt]
    masked = follows & np.isin(ids[nxt], end_ids) & ~sup[nxt]
    return nxt[masked], bad[follows & ~masked], bad[~follows]
