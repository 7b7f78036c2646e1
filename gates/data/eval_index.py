"""The index of the eval split and the fixed cases for ``split-isolation``: hashes and lines, no text.

:func:`build_index` hashes eval (in worker processes for a large file) and the cases' prompts
into an :class:`EvalIndex`: dictionaries for the exact and normalised matches, the sorted unique
n-gram hashes with their windows in eval's text, and a bitmap that rejects almost every train
n-gram before the exact lookup.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sftgate.gates.data.leak_hashing import (
    BATCH,
    Batch,
    batch_hashes,
    extract,
    group_value,
    unique,
    unique_inverse,
)
from sftgate.gates.readers.dataset_io import DatasetSource, map_chunks


@dataclass
class EvalIndex:
    """What is kept of the eval split and the fixed cases: hashes and line numbers, no text."""

    source: DatasetSource | None
    n: int
    lines: list[int] = field(default_factory=list)
    exact: dict[int, list[int]] = field(default_factory=dict)
    nfull: dict[int, list[int]] = field(default_factory=dict)
    nprompt: dict[int, list[int]] = field(default_factory=dict)
    nfull_of: list[int] = field(default_factory=list)
    keys: dict[str, Any] = field(default_factory=dict)  # sorted key arrays for the batch prefilter
    groups: dict[str, list[int]] = field(default_factory=dict)
    cases: dict[int, list[int]] = field(default_factory=dict)  # normalised prompt -> case numbers
    case_info: list[tuple[str, int]] = field(default_factory=list)  # (id, line)
    ngrams: Any = None  # sorted unique uint64 n-gram hashes
    win_ngram: Any = None  # per n-gram window of eval, in text order: its n-gram (index into ngrams),
    win_eval: Any = None  # its eval record,
    win_start: Any = None  # and its first word (an index into all eval words)
    rec_word_start: Any = None  # first word of each eval record
    n_words: int = 0
    eval_df: Any = None  # eval records per n-gram
    bitmap: Any = None
    mask: int = 0
    skipped: int = 0


@dataclass
class _EvalChunk:
    """The hashes of one chunk of eval (built in a worker; merged in order by :func:`build_index`)."""

    lines: list[int] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    groups: dict[str, list[int]] = field(default_factory=dict)  # value -> chunk-local record numbers
    skipped: int = 0


def _index_task(n: int, group_path: tuple[str, ...] | None, source: DatasetSource,
                records: Iterable[tuple[int, Any]]) -> _EvalChunk:
    out = _EvalChunk()
    items: list[Any] = []
    for line, obj in records:
        ex = extract(obj)
        if ex is None:
            out.skipped += 1
            continue
        if group_path is not None:
            g = group_value(obj, group_path)
            if g is not None:
                out.groups.setdefault(g, []).append(len(out.lines))
        out.lines.append(line)
        items.append(ex)
        if len(items) >= BATCH:
            out.batches.append(batch_hashes(items, n))
            items.clear()
    if items:
        out.batches.append(batch_hashes(items, n))
    return out


def build_index(eval_source: DatasetSource | None, cases: list[Any], *, n: int,
                group_path: tuple[str, ...] | None, workers: int = 1) -> EvalIndex:
    import numpy as np

    index = EvalIndex(eval_source, n)
    all_hashes: list[Any] = []
    all_recs: list[Any] = []
    all_starts: list[Any] = []
    rec_words: list[Any] = []
    if eval_source is not None:
        task = functools.partial(_index_task, n, group_path)
        for chunk in map_chunks(eval_source, task, workers=workers):
            for value, local in chunk.groups.items():
                index.groups.setdefault(value, []).extend(len(index.lines) + k for k in local)
            index.lines.extend(chunk.lines)
            index.skipped += chunk.skipped
            for b in chunk.batches:
                base = len(index.nfull_of)
                exact, nprompt, nfull = index.exact, index.nprompt, index.nfull
                for i, (e, p, f) in enumerate(zip(b.exact.tolist(), b.nprompt.tolist(), b.nfull.tolist(),
                                                  strict=True), base):
                    exact.setdefault(e, []).append(i)
                    nprompt.setdefault(p, []).append(i)
                    nfull.setdefault(f, []).append(i)
                index.nfull_of.extend(b.nfull.tolist())
                all_hashes.append(b.ngrams)
                all_recs.append(b.ngram_rec + base)
                all_starts.append(b.ngram_start + index.n_words)
                firsts = np.zeros(len(b.record_words), dtype=np.int64)
                np.cumsum(b.record_words[:-1], out=firsts[1:])
                rec_words.append(firsts + index.n_words)
                index.n_words += b.n_words
    case_items = []
    for case in cases:
        ex = extract(case.as_example())
        if ex is not None:  # a case ending with an assistant turn: its prompt is what comes before
            case_items.append((ex[0], ""))
            index.case_info.append((case.id, case.line))
    if case_items:
        for k, p in enumerate(batch_hashes(case_items, n).nprompt.tolist()):
            index.cases.setdefault(p, []).append(k)
    index.keys = {
        "exact": np.array(sorted(index.exact), dtype=np.int64),
        "nfull": np.array(sorted(index.nfull), dtype=np.uint64),
        "nprompt": np.array(sorted(set(index.nprompt) | set(index.cases)), dtype=np.uint64),
    }
    hashes = np.concatenate(all_hashes) if all_hashes else np.empty(0, dtype=np.uint64)
    recs = np.concatenate(all_recs) if all_recs else np.empty(0, dtype=np.int64)
    uniq, inverse = unique_inverse(hashes)
    index.ngrams = uniq
    index.win_ngram = inverse.astype(np.int32)
    index.win_eval = recs.astype(np.int32)
    index.win_start = np.concatenate(all_starts) if all_starts else np.empty(0, dtype=np.int64)
    index.rec_word_start = np.concatenate(rec_words) if rec_words else np.empty(0, dtype=np.int64)
    n_eval = max(len(index.lines), 1)
    pairs = unique(inverse * n_eval + recs)  # one per (n-gram, record)
    index.eval_df = np.bincount(pairs // n_eval, minlength=len(uniq)).astype(np.int32)
    bits = 1 << max(16, min(31, int(len(uniq) * 8).bit_length()))
    index.mask = bits - 1
    index.bitmap = np.zeros(bits, dtype=np.bool_)
    index.bitmap[(uniq & np.uint64(index.mask)).astype(np.int64)] = True
    return index
