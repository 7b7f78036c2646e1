"""Streaming the train split against the eval index for ``split-isolation``: the matches it leaves.

:func:`scan_train` hashes train a batch at a time and keeps, per eval record, its strongest match
(exact, normalised, prompt) and, per eval n-gram, how many train records have it
(:class:`ScanResult`); chunks scanned by worker processes merge in file order.
:func:`ngram_leaks` then finds the eval records that share an n-gram that is not template text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sftgate.gates.data.eval_index import EvalIndex
from sftgate.gates.data.leak_hashing import (
    BATCH,
    batch_hashes,
    extract,
    first_index,
    group_value,
    member,
    unique,
)
from sftgate.gates.data.split_isolation_rules import EXACT, NORMALIZED, PROMPT
from sftgate.gates.readers.dataset_io import DatasetSource


@dataclass
class ScanResult:
    """What streaming train leaves behind: per-eval best match, per-n-gram counts, group and case hits."""

    records: int = 0
    skipped: int = 0
    best: dict[int, list[int]] = field(default_factory=dict)  # eval idx -> [kind, first train line, count]
    group_hits: dict[str, list[int]] = field(default_factory=dict)  # group -> [first train line, count]
    case_hits: dict[int, list[int]] = field(default_factory=dict)  # case -> [first train line, count]
    train_df: Any = None  # train records per eval n-gram
    first_line: Any = None  # first train line per eval n-gram (0: none)

    def sparse(self) -> None:
        """Keep only the eval n-grams found in train: ``(indexes, counts, first lines)``."""
        import numpy as np

        found = np.flatnonzero(self.train_df)
        self.train_df = (found, self.train_df[found])
        self.first_line = self.first_line[found]

    def dense(self, size: int) -> None:
        import numpy as np

        if isinstance(self.train_df, tuple):
            found, counts = self.train_df
            self.train_df = np.zeros(size, dtype=np.int32)
            self.train_df[found] = counts
            first = np.zeros(size, dtype=np.int64)
            first[found] = self.first_line
            self.first_line = first

    def merge(self, later: ScanResult) -> None:
        """Fold in the result of a later chunk of train (so earlier lines win ties)."""
        self.records += later.records
        self.skipped += later.skipped
        for e, (kind, line, count) in later.best.items():
            cur = self.best.get(e)
            if cur is None:
                self.best[e] = [kind, line, count]
            else:
                cur[2] += count
                if kind < cur[0]:
                    cur[0], cur[1] = kind, line
        pairs: tuple[tuple[dict[Any, list[int]], dict[Any, list[int]]], ...] = (
            (self.group_hits, later.group_hits), (self.case_hits, later.case_hits))  # type: ignore[assignment]
        for mine, theirs in pairs:
            for key, (line, count) in theirs.items():
                if key in mine:
                    mine[key][1] += count
                else:
                    mine[key] = [line, count]
        self.train_df += later.train_df
        unset = self.first_line == 0
        self.first_line[unset] = later.first_line[unset]


def scan_task(index: EvalIndex, group_path: tuple[str, ...] | None, source: DatasetSource,
               records: Iterable[tuple[int, Any]]) -> ScanResult:
    res = scan_train(records, index, group_path=group_path)
    res.sparse()  # a worker's result crosses a pipe: send only the n-grams it found
    return res


def scan_train(records: Iterable[tuple[int, Any]], index: EvalIndex, *, group_path: tuple[str, ...] | None
               ) -> ScanResult:
    import numpy as np

    res = ScanResult()
    res.train_df = np.zeros(len(index.ngrams), dtype=np.int32)
    res.first_line = np.zeros(len(index.ngrams), dtype=np.int64)
    groups = index.groups if group_path is not None else None
    items: list[Any] = []
    lines: list[int] = []
    add_item, add_line = items.append, lines.append
    ex: Any
    for line, obj in records:
        if type(obj) is dict and "messages" not in obj and type(obj.get("prompt")) is str:
            c = obj.get("completion")  # prompt/completion, inline: the common case
            ex = (("user", obj["prompt"]),), c if type(c) is str else ""
        else:
            ex = extract(obj)
            if ex is None:
                res.skipped += 1
                continue
        add_item(ex)
        add_line(line)
        if groups:
            g = group_value(obj, group_path)  # type: ignore[arg-type]
            if g is not None and g in groups:
                cur = res.group_hits.get(g)
                if cur is None:
                    res.group_hits[g] = [line, 1]
                else:
                    cur[1] += 1
        if len(items) >= BATCH:
            _scan_batch(items, lines, index, res)
    if items:
        _scan_batch(items, lines, index, res)
    return res


def _scan_batch(items: list[Any], lines: list[int], index: EvalIndex, res: ScanResult) -> None:
    import numpy as np

    b = batch_hashes(items, index.n)
    res.records += len(items)
    line_arr = np.array(lines, dtype=np.int64)
    items.clear()
    lines.clear()
    keys = index.keys
    cand = member(keys["exact"], b.exact) | member(keys["nfull"], b.nfull) | member(keys["nprompt"], b.nprompt)
    for i in np.flatnonzero(cand).tolist():
        _mark(index, res, int(b.exact[i]), int(b.nprompt[i]), int(b.nfull[i]), int(line_arr[i]))
    if len(index.ngrams) and len(b.ngrams):
        _match_ngrams(b.ngrams, b.ngram_rec, line_arr, index, res)


def _mark(index: EvalIndex, res: ScanResult, exact: int, nprompt: int, nfull: int, line: int) -> None:
    hits: dict[int, int] = {}
    for e in index.exact.get(exact, ()):
        hits[e] = EXACT
    for e in index.nfull.get(nfull, ()):
        hits.setdefault(e, NORMALIZED)
    for e in index.nprompt.get(nprompt, ()):
        if index.nfull_of[e] != nfull:
            hits.setdefault(e, PROMPT)
    for e, kind in hits.items():
        cur = res.best.get(e)
        if cur is None:
            res.best[e] = [kind, line, 1]
        else:
            cur[2] += 1
            if kind < cur[0]:
                cur[0], cur[1] = kind, line
    for k in index.cases.get(nprompt, ()):
        cur = res.case_hits.get(k)
        if cur is None:
            res.case_hits[k] = [line, 1]
        else:
            cur[1] += 1


def _match_ngrams(h: Any, rec: Any, line_arr: Any, index: EvalIndex, res: ScanResult) -> None:
    import numpy as np

    cand = index.bitmap[(h & np.uint64(index.mask)).astype(np.int64)]
    if not cand.any():
        return
    h, rec = h[cand], rec[cand]
    pos = np.searchsorted(index.ngrams, h)
    pos[pos >= len(index.ngrams)] = 0
    found = index.ngrams[pos] == h
    if not found.any():
        return
    batch = len(line_arr)
    key = unique(pos[found] * batch + rec[found])  # one per (n-gram, train record), by n-gram then line
    ng, rec = key // batch, key % batch
    uniq, first = first_index(ng)
    res.train_df[uniq] += np.diff(np.append(first, len(ng))).astype(np.int32)
    unset = res.first_line[uniq] == 0
    res.first_line[uniq[unset]] = line_arr[rec[first[unset]]]


def ngram_leaks(index: EvalIndex, res: ScanResult, *, common: int) -> dict[int, tuple[int, int, int]]:
    """``eval idx -> (n-gram index, its word position in the record, shared n-grams)``.

    An n-gram in more than ``common`` train or eval records is template text; the eval words it
    covers are masked, and only shared n-grams clear of every masked word count: a leak is 13
    shared words of the record's own text, never a shared instruction plus a word or two. The
    reported n-gram is the first such one in the text.
    """
    import numpy as np

    if index.ngrams is None or not len(index.ngrams):
        return {}
    n = index.n
    is_common = (res.train_df > common) | (index.eval_df > common)
    win_common = is_common[index.win_ngram]
    diff = np.zeros(index.n_words + 1, dtype=np.int32)
    np.add.at(diff, index.win_start[win_common], 1)
    np.add.at(diff, index.win_start[win_common] + n, -1)
    covered = np.zeros(index.n_words + 1, dtype=np.int64)
    np.cumsum(np.cumsum(diff[:-1]) > 0, out=covered[1:])
    clear = covered[index.win_start + n] == covered[index.win_start]
    shared = (res.train_df[index.win_ngram] > 0) & ~win_common & clear
    if not shared.any():
        return {}
    ev = index.win_eval[shared]
    ng = index.win_ngram[shared]
    pos = index.win_start[shared] - index.rec_word_start[ev]
    order = np.lexsort((pos, ev))  # by record, then text order
    ev, ng, pos = ev[order], ng[order], pos[order]
    starts = np.flatnonzero(np.r_[True, ev[1:] != ev[:-1]])
    counts = np.diff(np.r_[starts, len(ev)])
    return {int(e): (int(g), int(p), int(c))
            for e, g, p, c in zip(ev[starts], ng[starts], pos[starts], counts, strict=True)}
