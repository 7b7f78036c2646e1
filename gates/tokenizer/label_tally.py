"""The label scan's running totals over a whole dataset, in bounded memory.

:class:`LabelTally` takes each batch's :class:`~sftgate.gates.tokenizer.label_scan.BatchHits`
and keeps, per rule, the rows and tokens it holds, the first row numbers and a few samples (the
ids and labels around the problem, decoded later by the gate), plus the first problem rows whole
for the token view. Truncation is decided at the end, once the longest row is known: a run of
trained tokens cut at the end of a row of that length (or of ``max_seq_len``) is
``completion_truncated`` (without ``max_seq_len``, not when the row's earlier turns lack their
end-of-turn token as well: that row was never closed); elsewhere it is ``eos_not_appended``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sftgate.gates.tokenizer.label_scan import BatchHits, TokenBatch, row_of

FIRST_ROWS = 20
SAMPLES = 5
CONTEXT = 4  # tokens shown on each side of a problem

RULE_ORDER = (
    "token_out_of_range", "labels_shifted", "nothing_trained", "prompt_trained", "pad_trained",
    "packing_leak", "eos_masked", "eos_not_appended", "completion_truncated",
)


@dataclass
class Sample:
    """The ids and labels around one problem token (``at`` is its index in the window)."""

    row: int
    position: int
    ids: list[int]
    labels: list[int]
    at: int


@dataclass
class RuleTally:
    rows: int = 0
    tokens: int = 0
    first_rows: list[int] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def note(self, row: int, sample: Sample | None) -> None:
        if len(self.first_rows) < FIRST_ROWS and (not self.first_rows or self.first_rows[-1] != row):
            self.first_rows.append(row)
        if sample is not None and len(self.samples) < SAMPLES and all(s.row != row for s in self.samples):
            self.samples.append(sample)


@dataclass
class _Candidate:
    row: int
    length: int
    also_not_appended: bool
    sample: Sample | None


class LabelTally:
    """Adds up :class:`BatchHits`; :meth:`finish` resolves truncation and returns the rule tallies."""

    def __init__(self, *, max_seq_len: int | None = None, keep_rows: int = 0) -> None:
        self.max_seq_len = max_seq_len
        self.keep_rows = keep_rows
        self.rules: dict[str, RuleTally] = {name: RuleTally() for name in RULE_ORDER}
        self.figures: dict[str, int] = {}
        self.longest = 0
        self.rows_seen = 0
        self.kept: dict[int, tuple[list[int], list[int]]] = {}  # row -> (ids, labels), for the token view
        self._cand_rows: list[np.ndarray] = []
        self._cand_lengths: list[np.ndarray] = []
        self._cand_flags: list[np.ndarray] = []
        self._cand_samples: list[_Candidate] = []

    def add(self, batch: TokenBatch, hits: BatchHits) -> None:
        numbers = batch.rows if batch.rows is not None else np.arange(self.rows_seen + 1, self.rows_seen + batch.n_rows + 1)
        self.rows_seen += batch.n_rows
        for key, value in hits.figures.items():
            self.figures[key] = self.figures.get(key, 0) + value
        if len(hits.row_length):
            self.longest = max(self.longest, int(hits.row_length.max()))
        labels = hits.labels if hits.labels is not None else batch.labels
        for rule, positions in hits.hits.items():
            if not len(positions):
                continue
            tally = self.rules[rule]
            rows = row_of(batch.offsets, positions)
            distinct = rows[np.r_[True, rows[1:] != rows[:-1]]]  # positions are sorted
            tally.rows += len(distinct)
            tally.tokens += len(positions)
            room = max(FIRST_ROWS - len(tally.first_rows), SAMPLES - len(tally.samples))
            for flat in positions[np.searchsorted(rows, distinct[:room])]:
                tally.note(int(numbers[row_of(batch.offsets, flat)]), self._sample(batch, labels, int(flat), numbers))
            self._keep(batch, labels, distinct[: self.keep_rows], numbers)
        cand = hits.truncation
        if len(cand):
            rows = row_of(batch.offsets, cand)
            other = hits.hits.get("eos_not_appended")
            flagged = (np.isin(rows, row_of(batch.offsets, other)) if other is not None and len(other)
                       else np.zeros(len(rows), bool))
            self._cand_rows.append(numbers[rows].astype(np.int64))
            self._cand_lengths.append(hits.truncation_length)
            self._cand_flags.append(flagged)
            for i in range(min(len(cand), 2 * FIRST_ROWS - len(self._cand_samples))):
                flat = int(cand[i])
                self._cand_samples.append(_Candidate(int(numbers[rows[i]]), int(hits.truncation_length[i]),
                                                     bool(flagged[i]), self._sample(batch, labels, flat, numbers)))
            self._keep(batch, labels, np.unique(rows)[: self.keep_rows], numbers)

    def _sample(self, batch: TokenBatch, labels: np.ndarray, flat: int, numbers: np.ndarray) -> Sample:
        row = int(row_of(batch.offsets, np.asarray(flat)))
        lo_row, hi_row = int(batch.offsets[row]), int(batch.offsets[row + 1])
        lo, hi = max(lo_row, flat - CONTEXT), min(hi_row, flat + CONTEXT + 1)
        return Sample(int(numbers[row]), flat - lo_row, batch.input_ids[lo:hi].tolist(), labels[lo:hi].tolist(), flat - lo)

    def _keep(self, batch: TokenBatch, labels: np.ndarray, rows: np.ndarray, numbers: np.ndarray) -> None:
        for row in rows:
            if len(self.kept) >= self.keep_rows:
                return
            number = int(numbers[row])
            if number not in self.kept:
                lo, hi = int(batch.offsets[row]), int(batch.offsets[row + 1])
                self.kept[number] = (batch.input_ids[lo:hi].tolist(), labels[lo:hi].tolist())

    def finish(self) -> dict[str, Any]:
        """Resolve truncation candidates; return ``{"rules", "figures", "max_len", "kept"}``."""
        limit = self.max_seq_len or self.longest
        truncated, appended = self.rules["completion_truncated"], self.rules["eos_not_appended"]
        if self._cand_rows:
            rows = np.concatenate(self._cand_rows)
            lengths = np.concatenate(self._cand_lengths)
            flags = np.concatenate(self._cand_flags)
            cut = lengths >= limit
            if self.max_seq_len is None:  # a row whose earlier turns lack EOS too was never closed, not cut
                cut &= ~flags
            truncated.rows += int(np.unique(rows[cut]).size)
            truncated.tokens += int(cut.sum())
            spare = np.unique(rows[~cut & ~flags])
            appended.rows += int(spare.size)
            appended.tokens += int((~cut).sum())
            for cand in self._cand_samples:
                is_cut = cand.length >= limit and (self.max_seq_len is not None or not cand.also_not_appended)
                target = truncated if is_cut else appended
                target.note(cand.row, cand.sample)
            appended.first_rows.sort()
            appended.samples.sort(key=lambda s: s.row)
        figures = dict(self.figures)
        figures["longest_row"] = self.longest
        return {"rules": self.rules, "figures": figures, "max_len": limit, "kept": dict(sorted(self.kept.items()))}
