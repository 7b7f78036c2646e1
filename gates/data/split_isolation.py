"""Gate ``split-isolation``: eval records and fixed cases do not leak into the training data.

For every eval record, the strongest leak found in train is reported once, with both places
(``train.jsonl:L`` and ``eval.jsonl:L``) in the evidence:

- ``eval_leak_exact``: a train record has the same prompt and completion, character for character;
- ``eval_leak_normalized``: equal after :func:`sftgate.gates.data.text_normalize.normalize` (NFKC, casefold,
  punctuation strip, whitespace collapse) but not raw-equal;
- ``eval_leak_prompt``: same normalised prompt, different completion (the model saw the question);
- ``eval_leak_ngram``: a train record shares a word n-gram (13 words by default, as in the
  decontamination literature: GPT-3, PaLM) with the eval record; the n-gram is in the evidence.
  An n-gram found in more than ``ngram_common`` train or eval records (default 10) is template
  text (a shared instruction or system prompt), not a leak, and is ignored.

``group_leak`` (with ``group_key``, a dotted path such as ``source_id`` or ``meta.doc``) reports a
group value found in both splits; ``cases_leak`` a fixed case whose prompt (or messages, without
a final assistant turn) is a train record's prompt after normalisation.

Memory is bounded by the smaller side: eval and the cases are indexed (hashes, not strings);
train is streamed once and only match positions are kept. Word hashes are Python's ``hash``
(salted per process, stable within a run: the fastest hash measured for short words; xxhash
needs an ``encode`` per word and was 3x slower), combined into n-gram hashes with numpy in
batches; a bitmap over the eval n-grams rejects almost every train n-gram before the exact
lookup. The texts of the few reported n-grams are recovered at the end by re-reading eval.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.data.text_normalize import FOLD_TABLE, fold_bytes
from sftgate.gates.data.text_normalize import words as norm_words
from sftgate.gates.frame.core import Finding, Rule, Severity
from sftgate.gates.readers.dataset_io import DatasetSource, default_workers, map_chunks, open_dataset

GATE = "split-isolation"
DEFAULT_NGRAM = 13
NGRAM_COMMON = 10
MAX_PER_RULE = 100
BATCH = 2048

# Leak kinds, strongest first; the value is the rank kept per eval record (lower wins).
EXACT, NORMALIZED, PROMPT, NGRAM = 1, 2, 3, 4
KIND_RULE = {EXACT: "eval_leak_exact", NORMALIZED: "eval_leak_normalized", PROMPT: "eval_leak_prompt",
             NGRAM: "eval_leak_ngram"}


def _rule(code: str, name: str, summary: str, why: str, fix: str, example: str = "",
          severity: Severity = Severity.ERROR) -> Rule:
    return Rule(code, name, severity, GATE, summary, why, fix, example)


_FIX = "Remove the eval record from train (or from eval), then re-split by a group key so near-copies stay together."
RULES: tuple[Rule, ...] = (
    _rule("LEAK001", "eval_leak_exact", "an eval record is in train, exactly",
          "The eval score then measures memory, not generalisation: the model has seen the answer.", _FIX,
          'train.jsonl:12 and eval.jsonl:3 are both {"prompt": "2+2?", "completion": "4"}'),
    _rule("LEAK002", "eval_leak_normalized", "an eval record is in train after normalisation",
          "Case, punctuation, spacing or Unicode forms differ, the example does not: a copy that exact "
          "hashes miss.", _FIX, '"What is 2+2?" / "what is 2 + 2" with the same answer'),
    _rule("LEAK003", "eval_leak_prompt", "an eval prompt is in train with a different completion",
          "The model saw the question in training; its eval answer is not a fresh generalisation "
          "(and the two labels may disagree).", _FIX),
    _rule("LEAK004", "eval_leak_ngram", "an eval record shares a long word n-gram with a train record",
          "A shared 13-word sequence means shared source text (the same article, the same long question): "
          "the decontamination standard of GPT-3 and PaLM.",
          "Drop or rewrite the overlapping records; split by document (--group-key) so one source "
          "never lands in both splits; raise --ngram only with a reason."),
    _rule("LEAK005", "group_leak", "a group value (e.g. a source document id) is in both splits",
          "Records of one group are near-copies; a split that cuts groups leaks them.",
          "Split by the group key: every group entirely in train or entirely in eval."),
    _rule("LEAK006", "cases_leak", "a fixed eval case's prompt is in the training data",
          "The release gate's fixed cases then test recall of training examples.",
          "Remove the case's prompt from train, or replace the case."),
)
R = {rule.name: rule for rule in RULES}


# --------------------------------------------------------------------------- record features


def extract(obj: Any) -> tuple[tuple[tuple[str, str], ...], str] | None:
    """``(prompt parts, completion)`` of a record, or None when it has no usable text.

    Prompt parts are ``(role, content)`` pairs: ``(("user", prompt),)`` for prompt/completion
    data, every message but a final assistant turn for chat data (whose content is the completion).
    """
    if type(obj) is not dict:
        return None
    msgs = obj.get("messages")
    if msgs is None:
        p = obj.get("prompt")
        c = obj.get("completion")
        if type(p) is str:
            return (("user", p),), c if type(c) is str else ""
        return None
    if type(msgs) is not list or not msgs:
        return None
    parts = []
    for m in msgs:
        if type(m) is not dict:
            return None
        content = m.get("content")
        parts.append((str(m.get("role")), content if type(content) is str else ""))
    completion = parts.pop()[1] if parts[-1][0] == "assistant" else ""
    return tuple(parts), completion


def group_value(obj: Any, key_path: tuple[str, ...]) -> str | None:
    node = obj
    for part in key_path:
        if type(node) is not dict or part not in node:
            return None
        node = node[part]
    if node is None:
        return None
    if isinstance(node, str):
        return node
    import orjson

    return orjson.dumps(node, option=orjson.OPT_SORT_KEYS).decode()


# --------------------------------------------------------------------------- batch hashing
#
# Per batch of records, Python only folds each text to bytes (NFKC, casefold, punctuation and
# whitespace to spaces: C-level string calls) and joins them; numpy does the rest: word
# boundaries, word hashes (a polynomial over the bytes by prefix sums: position-independent
# through the inverse powers, mod 2^64), segment hashes and n-gram hashes (the same over the
# word hashes), each finished with the splitmix64 mixer. Measured on 1M records: 5x faster than
# splitting into Python words and hashing them one by one.

_Q = 0x9E3779B97F4A7C15  # odd: invertible mod 2^64
_R = 0xD6E8FEB86659FD93
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_LEN = 0xC2B2AE3D27D4EB4F
_FULL = 0x165667B19E3779F9
_powers: dict[int, tuple[Any, Any]] = {}


def _pow_tables(base: int, size: int) -> tuple[Any, Any]:
    """``base**j`` and ``base**-j`` (mod 2^64) for j < size, cached and grown by doubling."""
    import numpy as np

    have = _powers.get(base)
    if have is not None and len(have[0]) >= size:
        return have
    size = max(size, 1 << 16, 2 * len(have[0]) if have is not None else 0)
    inv = pow(base, -1, 1 << 64)
    fwd = np.full(size, base, dtype=np.uint64)
    bwd = np.full(size, inv, dtype=np.uint64)
    fwd[0] = bwd[0] = 1
    with np.errstate(over="ignore"):
        tables = (np.cumprod(fwd, dtype=np.uint64), np.cumprod(bwd, dtype=np.uint64))
    _powers[base] = tables
    return tables


def _mix(x: Any) -> Any:
    import numpy as np

    x = x ^ (x >> np.uint64(30))
    x *= np.uint64(_M1)
    x ^= x >> np.uint64(27)
    x *= np.uint64(_M2)
    x ^= x >> np.uint64(31)
    return x


@dataclass
class Batch:
    """Hashes of a batch of records: per record, and per n-gram window (with its record)."""

    exact: Any  # int64: Python hash of the raw (prompt parts, completion)
    nprompt: Any  # uint64: normalised prompt words
    nfull: Any  # uint64: normalised prompt and completion words
    ngrams: Any  # uint64 n-gram hashes
    ngram_rec: Any  # int64 record index of each n-gram
    ngram_start: Any = None  # int64 index of each n-gram's first word in the batch's words
    n_words: int = 0
    record_words: Any = None  # int64 words per record


def prompt_text(parts: tuple[tuple[str, str], ...]) -> str:
    return parts[0][1] if len(parts) == 1 else " ".join(content for _, content in parts)


def batch_hashes(items: list[tuple[tuple[tuple[str, str], ...], str]], n: int) -> Batch:
    """The :class:`Batch` of ``items`` (``(prompt parts, completion)`` pairs) for ``n``-grams."""
    import numpy as np

    texts: list[str] = []
    exact: list[int] = []
    add_text = texts.append
    for parts, completion in items:
        add_text(parts[0][1] if len(parts) == 1 else prompt_text(parts))
        add_text(completion)
        exact.append(hash((parts, completion)))
    n_rec = len(items)
    joined = " ".join(texts)
    if joined.isascii():  # one translate for the whole batch; byte offsets are character offsets
        folded = joined.encode("ascii").translate(FOLD_TABLE)
        seg_lens = list(map(len, texts))
    else:
        parts_b = [fold_bytes(t) for t in texts]
        folded = b" ".join(parts_b)
        seg_lens = list(map(len, parts_b))
    buf = np.frombuffer(folded, dtype=np.uint8)
    size = len(buf)
    seg_start = np.zeros(2 * n_rec, dtype=np.int64)
    np.cumsum(np.array(seg_lens[:-1], dtype=np.int64) + 1, out=seg_start[1:])
    padded = np.zeros(size + 2, dtype=bool)
    np.not_equal(buf, 32, out=padded[1:-1])
    edges = np.flatnonzero(padded[1:] != padded[:-1])  # alternately a word's start and its end
    starts, ends = edges[0::2], edges[1::2]
    n_words = len(starts)
    # words per segment: segments are contiguous and in order, so the first word of each is a search
    first_word = np.searchsorted(starts, seg_start)
    counts = np.diff(np.append(first_word, n_words))
    seg = np.repeat(np.arange(2 * n_rec, dtype=np.int64), counts)
    qp, qi = _pow_tables(_Q, size + 1)
    rp, ri = _pow_tables(_R, n_words + 1)
    with np.errstate(over="ignore"):
        cs = np.zeros(size + 1, dtype=np.uint64)
        np.cumsum(np.multiply(buf, qp[:size], dtype=np.uint64), out=cs[1:])
        lengths = (ends - starts).astype(np.uint64)
        wh = _mix(((cs[ends] - cs[starts]) * qi[starts]) ^ (lengths * np.uint64(_LEN)))
        cw = np.zeros(n_words + 1, dtype=np.uint64)
        np.cumsum(wh * rp[:n_words], out=cw[1:])
        first = first_word
        seg_hash = _mix(((cw[first + counts] - cw[first]) * ri[first]) ^ (counts.astype(np.uint64) * np.uint64(_LEN)))
        nprompt = seg_hash[0::2]
        nfull = _mix(nprompt ^ (seg_hash[1::2] * np.uint64(_FULL)))
        windows = n_words - n + 1
        if windows > 0:
            rec = seg // 2
            ng = _mix((cw[n:] - cw[:windows]) * ri[:windows])
            valid = rec[:windows] == rec[n - 1 :]
            ngrams, ngram_rec, ngram_start = ng[valid], rec[:windows][valid], np.flatnonzero(valid)
        else:
            ngrams, ngram_rec = np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
            ngram_start = np.empty(0, dtype=np.int64)
    per_record = counts[0::2] + counts[1::2]
    return Batch(np.array(exact, dtype=np.int64), nprompt, nfull, ngrams, ngram_rec.astype(np.int64),
                 ngram_start, n_words, per_record)


def record_words(parts: tuple[tuple[str, str], ...], completion: str) -> list[str]:
    """The normalised words the n-grams of a record run over (prompt, then completion)."""
    return norm_words(prompt_text(parts)) + norm_words(completion)


def _unique(a: Any) -> Any:
    """Sorted unique values (numpy's ``unique`` hashes, which measured 10x slower on uint64 here)."""
    import numpy as np

    s = np.sort(a)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def _unique_inverse(a: Any) -> tuple[Any, Any]:
    """Sorted unique values and, per input, the index of its value among them."""
    import numpy as np

    order = np.argsort(a)
    s = a[order]
    keep = np.ones(len(s), dtype=bool)
    if len(s) > 1:
        np.not_equal(s[1:], s[:-1], out=keep[1:])
    inverse = np.empty(len(a), dtype=np.int64)
    inverse[order] = np.cumsum(keep) - 1
    return s[keep], inverse


def _first_index(sorted_values: Any) -> tuple[Any, Any]:
    """Unique values of a sorted array and the index of the first occurrence of each."""
    import numpy as np

    keep = np.ones(len(sorted_values), dtype=bool)
    if len(sorted_values) > 1:
        np.not_equal(sorted_values[1:], sorted_values[:-1], out=keep[1:])
    first = np.flatnonzero(keep)
    return sorted_values[first], first


def _member(sorted_keys: Any, values: Any) -> Any:
    """Boolean mask: which ``values`` are in the sorted array ``sorted_keys``."""
    import numpy as np

    if not len(sorted_keys) or not len(values):
        return np.zeros(len(values), dtype=bool)
    pos = np.searchsorted(sorted_keys, values)
    pos[pos >= len(sorted_keys)] = 0
    return sorted_keys[pos] == values  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- eval index


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
    uniq, inverse = _unique_inverse(hashes)
    index.ngrams = uniq
    index.win_ngram = inverse.astype(np.int32)
    index.win_eval = recs.astype(np.int32)
    index.win_start = np.concatenate(all_starts) if all_starts else np.empty(0, dtype=np.int64)
    index.rec_word_start = np.concatenate(rec_words) if rec_words else np.empty(0, dtype=np.int64)
    n_eval = max(len(index.lines), 1)
    pairs = _unique(inverse * n_eval + recs)  # one per (n-gram, record)
    index.eval_df = np.bincount(pairs // n_eval, minlength=len(uniq)).astype(np.int32)
    bits = 1 << max(16, min(31, int(len(uniq) * 8).bit_length()))
    index.mask = bits - 1
    index.bitmap = np.zeros(bits, dtype=np.bool_)
    index.bitmap[(uniq & np.uint64(index.mask)).astype(np.int64)] = True
    return index


# --------------------------------------------------------------------------- scanning train


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


def _scan_task(index: EvalIndex, group_path: tuple[str, ...] | None, source: DatasetSource,
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
    cand = _member(keys["exact"], b.exact) | _member(keys["nfull"], b.nfull) | _member(keys["nprompt"], b.nprompt)
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
    key = _unique(pos[found] * batch + rec[found])  # one per (n-gram, train record), by n-gram then line
    ng, rec = key // batch, key % batch
    uniq, first = _first_index(ng)
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


# --------------------------------------------------------------------------- the gate


def check(
    *,
    train: str | Path,
    eval: str | Path | None = None,
    cases: str | Path | None = None,
    group_key: str | None = None,
    ngram: int = DEFAULT_NGRAM,
    ngram_common: int = NGRAM_COMMON,
    progress: Any = False,
    max_per_rule: int = MAX_PER_RULE,
    workers: int | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Check eval (and fixed cases) against train; see the module docstring for the rules.

    ``workers``: processes that stream a large JSONL train file (default: one per CPU from
    32 MB on; they inherit the eval index by ``fork``).
    """
    from sftgate.gates.frame.core import InputError

    if ngram < 3:
        raise InputError(f"--ngram {ngram} is too short to mean shared text", hint="use 8 or more (default 13)")
    if eval is None and cases is None:
        raise InputError("nothing to compare train with", hint="give --eval EVAL.jsonl and/or --cases CASES.jsonl")
    metrics = metrics if metrics is not None else {}
    group_path = tuple(group_key.split(".")) if group_key else None
    case_list: list[Any] = []
    if cases is not None:
        from sftgate.gates.readers.cases import load_cases

        case_list = load_cases(cases)
    train_source = open_dataset(train, progress=progress)
    eval_source = open_dataset(eval, progress=progress) if eval is not None else None
    n_workers = default_workers(train_source) if workers is None else max(1, workers)
    eval_workers = (default_workers(eval_source) if workers is None else max(1, workers)) if eval_source else 1
    index = build_index(eval_source, case_list, n=ngram, group_path=group_path, workers=eval_workers)
    res: ScanResult | None = None
    task = functools.partial(_scan_task, index, group_path)
    for part in map_chunks(train_source, task, workers=n_workers):
        part.dense(len(index.ngrams))
        if res is None:
            res = part
        else:
            res.merge(part)
    assert res is not None
    ng_leaks = ngram_leaks(index, res, common=ngram_common)

    counts: dict[str, int] = {name: 0 for name in R}
    emitted: dict[str, int] = {}

    def emit(rule: str, message: str, location: str, line: int | None, evidence: dict[str, Any]) -> Finding | None:
        counts[rule] += 1
        if max_per_rule and counts[rule] > max_per_rule:
            return None
        emitted[rule] = emitted.get(rule, 0) + 1
        return R[rule].finding(message, location, evidence=evidence, line=line)

    t_loc = train_source.location
    leaked = set(res.best) | set(ng_leaks)
    ngram_wanted = {index.lines[e]: ng_leaks[e][1] for e in ng_leaks if e not in res.best}
    ngram_text = _recover_ngrams(index, ngram_wanted) if ngram_wanted else {}
    if eval_source is not None:
        e_loc = eval_source.location
        line_based = eval_source.line_based
        for e in sorted(leaked):
            eline = index.lines[e]
            if e in res.best:
                kind, tline, n_train = res.best[e]
                rule = KIND_RULE[kind]
                what = {EXACT: "is in train exactly", NORMALIZED: "equals a train record after normalisation",
                        PROMPT: "has its prompt in train with a different completion"}[kind]
                f = emit(rule, f"eval record {what} ({t_loc(tline)})", e_loc(eline), eline if line_based else None,
                         {"train": t_loc(tline), "eval": e_loc(eline), "train_matches": n_train})
            else:
                g, _, shared = ng_leaks[e]
                text = ngram_text.get(eline, "")
                tline = int(res.first_line[g])
                f = emit("eval_leak_ngram", f"eval record shares the {ngram}-gram {text!r} with {t_loc(tline)}",
                         e_loc(eline), eline if line_based else None,
                         {"train": t_loc(tline), "eval": e_loc(eline), "ngram": text, "n": ngram,
                          "shared_ngrams": shared, "train_records_with_ngram": int(res.train_df[g])})
            if f is not None:
                yield f
        for value, (tline, n_train) in sorted(res.group_hits.items(), key=lambda kv: index.groups[kv[0]][0]):
            eidx = index.groups[value]
            eline = index.lines[eidx[0]]
            f = emit("group_leak", f"{group_key} {value!r} is in both splits ({t_loc(tline)}, {e_loc(eline)})",
                     e_loc(eline), eline if line_based else None,
                     {"group_key": group_key, "value": value, "train": t_loc(tline), "eval": e_loc(eline),
                      "train_records": n_train, "eval_records": len(eidx)})
            if f is not None:
                yield f
    for k, (tline, n_train) in sorted(res.case_hits.items()):
        case_id, cline = index.case_info[k]
        where = f"{cases}:{cline}" if cline else str(case_id)
        f = emit("cases_leak", f"fixed case {case_id!r} has its prompt in train ({t_loc(tline)})", where,
                 cline or None, {"case": case_id, "train": t_loc(tline), "cases": where, "train_matches": n_train})
        if f is not None:
            yield f
    for rule, total in counts.items():
        if max_per_rule and total > max_per_rule:
            yield R[rule].finding(f"{total - max_per_rule} more {rule} findings not listed ({total} in all)",
                                  eval_source.display if eval_source is not None else str(cases),
                                  evidence={"total": total, "listed": max_per_rule})

    n_eval = len(index.lines)
    if n_workers > 1:
        metrics["workers"] = n_workers
    metrics.update({
        "train_records": res.records,
        "eval_records": n_eval,
        "cases": len(index.case_info),
        "ngram": ngram,
        "leaked_eval_records": len(leaked),
        "leaked_eval_pct": round(100.0 * len(leaked) / n_eval, 3) if n_eval else 0.0,
        "leaks": {rule: n for rule, n in counts.items() if n},
    })
    if index.ngrams is not None and len(index.ngrams):
        common = int(((res.train_df > ngram_common) | (index.eval_df > ngram_common)).sum())
        metrics["common_ngrams_ignored"] = common
    if res.skipped or index.skipped:
        metrics["records_without_text"] = {"train": res.skipped, "eval": index.skipped}


def _recover_ngrams(index: EvalIndex, wanted: dict[int, int]) -> dict[int, str]:
    """The words of the reported n-gram (``eval line -> word position``): eval is re-read, only
    hashes were kept."""
    out: dict[int, str] = {}
    if index.source is None:
        return out
    targets = dict(sorted(wanted.items())[: 2 * MAX_PER_RULE])
    for line, obj in index.source:
        if line not in targets:
            continue
        ex = extract(obj)
        if ex is not None:
            pos = targets[line]
            out[line] = " ".join(record_words(*ex)[pos : pos + index.n])
        if len(out) == len(targets):
            break
    return out


# --------------------------------------------------------------------------- config


def from_config(config: Any) -> dict[str, Any] | None:
    """The kwargs for :func:`check`, or None when the config names no eval split and no cases."""
    train = config.require_file("data.train")
    eval_path = config.require_file("data.eval")
    cases = config.require_file("data.cases")
    if train is None or (eval_path is None and cases is None):
        return None
    return {
        "train": train,
        "eval": eval_path,
        "cases": cases,
        "group_key": config.get("data.group_key"),
        "ngram": int(config.get("data.ngram", DEFAULT_NGRAM) or DEFAULT_NGRAM),
    }
