"""Gate ``split-isolation``: eval records and fixed cases do not leak into the training data.

For every eval record, the strongest leak found in train is reported once, with both places
(``train.jsonl:L`` and ``eval.jsonl:L``) in the evidence:

- ``eval_leak_exact``: a train record has the same prompt and completion, character for character;
- ``eval_leak_normalized``: equal after :func:`gates.text_normalize.normalize` (NFKC, casefold,
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

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gates.core import Finding, Rule, Severity
from gates.dataset_io import DatasetSource, open_dataset
from gates.text_normalize import words as norm_words

GATE = "split-isolation"
DEFAULT_NGRAM = 13
NGRAM_COMMON = 10
MAX_PER_RULE = 100
BATCH = 2048
_P = 0x100000001B3  # FNV prime: the multiplier of the polynomial n-gram hash

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


@dataclass(slots=True)
class Features:
    exact: int
    nprompt: int
    nfull: int
    word_hashes: list[int]


def features(parts: tuple[tuple[str, str], ...], completion: str) -> Features:
    if len(parts) == 1:
        wp = norm_words(parts[0][1])
    else:
        wp = [w for _, content in parts for w in norm_words(content)]
    wc = norm_words(completion)
    hp = list(map(hash, wp))
    hc = list(map(hash, wc))
    nprompt = hash(tuple(hp))
    return Features(hash((parts, completion)), nprompt, hash((nprompt, tuple(hc))), hp + hc)


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


# --------------------------------------------------------------------------- n-gram hashing


def window_hashes(flat: list[int], lens: list[int], n: int) -> tuple[Any, Any]:
    """Hashes of every ``n``-word window inside one record, and the record index of each window."""
    import numpy as np

    total = len(flat)
    if total < n or not lens:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    w = np.array(flat, dtype=np.int64).view(np.uint64)
    count = total - n + 1
    h = w[:count].copy()
    p = np.uint64(_P)
    for k in range(1, n):
        h *= p
        h += w[k : k + count]
    rec = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    valid = rec[:count] == rec[n - 1 :]
    return h[valid], rec[:count][valid]


def ngram_texts(word_list: list[str], n: int) -> dict[int, str]:
    """``hash -> "w1 w2 ... wn"`` for every n-gram of ``word_list`` (to recover reported n-grams)."""
    out: dict[int, str] = {}
    if len(word_list) < n:
        return out
    hashes, _ = window_hashes(list(map(hash, word_list)), [len(word_list)], n)
    for i, h in enumerate(hashes.tolist()):
        out.setdefault(h, " ".join(word_list[i : i + n]))
    return out


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
    groups: dict[str, list[int]] = field(default_factory=dict)
    cases: dict[int, list[int]] = field(default_factory=dict)  # normalised prompt -> case numbers
    case_info: list[tuple[str, int]] = field(default_factory=list)  # (id, line)
    ngrams: Any = None  # sorted unique uint64 n-gram hashes
    ng_pair_ngram: Any = None  # (n-gram index, eval index) pairs, one per record and n-gram
    ng_pair_eval: Any = None
    eval_df: Any = None  # eval records per n-gram
    bitmap: Any = None
    mask: int = 0
    skipped: int = 0


def build_index(eval_source: DatasetSource | None, cases: list[Any], *, n: int,
                group_path: tuple[str, ...] | None) -> EvalIndex:
    import numpy as np

    index = EvalIndex(eval_source, n)
    flat: list[int] = []
    lens: list[int] = []
    all_hashes: list[Any] = []
    all_recs: list[Any] = []

    def flush_ngrams() -> None:
        h, rec = window_hashes(flat, lens, n)
        all_hashes.append(h)
        all_recs.append(rec + (len(index.lines) - len(lens)))
        flat.clear()
        lens.clear()

    if eval_source is not None:
        for line, obj in eval_source:
            ex = extract(obj)
            if ex is None:
                index.skipped += 1
                continue
            f = features(*ex)
            i = len(index.lines)
            index.lines.append(line)
            index.exact.setdefault(f.exact, []).append(i)
            index.nfull.setdefault(f.nfull, []).append(i)
            index.nprompt.setdefault(f.nprompt, []).append(i)
            index.nfull_of.append(f.nfull)
            if group_path is not None:
                g = group_value(obj, group_path)
                if g is not None:
                    index.groups.setdefault(g, []).append(i)
            flat.extend(f.word_hashes)
            lens.append(len(f.word_hashes))
            if len(lens) >= BATCH:
                flush_ngrams()
        flush_ngrams()
    for k, case in enumerate(cases):
        example = case.as_example()
        ex = extract(example)
        if ex is None:
            continue
        parts, _ = ex  # a case ending with an assistant turn: its prompt is what comes before
        index.cases.setdefault(features(parts, "").nprompt, []).append(k)
        index.case_info.append((case.id, case.line))
    hashes = np.concatenate(all_hashes) if all_hashes else np.empty(0, dtype=np.uint64)
    recs = np.concatenate(all_recs) if all_recs else np.empty(0, dtype=np.int64)
    uniq, inverse = np.unique(hashes, return_inverse=True)
    # one pair per (n-gram, record): a record repeating an n-gram counts once
    pairs = np.unique(inverse.astype(np.int64) * max(len(index.lines), 1) + recs)
    index.ngrams = uniq
    index.ng_pair_ngram = (pairs // max(len(index.lines), 1)).astype(np.int64)
    index.ng_pair_eval = (pairs % max(len(index.lines), 1)).astype(np.int64)
    index.eval_df = np.bincount(index.ng_pair_ngram, minlength=len(uniq)).astype(np.int32)
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


def scan_train(records: Iterable[tuple[int, Any]], index: EvalIndex, *, group_path: tuple[str, ...] | None
               ) -> ScanResult:
    import numpy as np

    res = ScanResult()
    res.train_df = np.zeros(len(index.ngrams), dtype=np.int32)
    res.first_line = np.zeros(len(index.ngrams), dtype=np.int64)
    exact, nfull, nprompt, nfull_of = index.exact, index.nfull, index.nprompt, index.nfull_of
    groups, cases = index.groups, index.cases
    best = res.best
    check_ngrams = len(index.ngrams) > 0
    flat: list[int] = []
    lens: list[int] = []
    batch_lines: list[int] = []

    def mark(hits: dict[int, int], line: int) -> None:
        for e, kind in hits.items():
            cur = best.get(e)
            if cur is None:
                best[e] = [kind, line, 1]
            else:
                cur[2] += 1
                if kind < cur[0]:
                    cur[0], cur[1] = kind, line

    for line, obj in records:
        ex = extract(obj)
        if ex is None:
            res.skipped += 1
            continue
        res.records += 1
        f = features(*ex)
        hits: dict[int, int] | None = None
        hit = exact.get(f.exact)
        if hit is not None:
            hits = dict.fromkeys(hit, EXACT)
        hit = nfull.get(f.nfull)
        if hit is not None:
            hits = hits or {}
            for e in hit:
                hits.setdefault(e, NORMALIZED)
        hit = nprompt.get(f.nprompt)
        if hit is not None:
            hits = hits or {}
            for e in hit:
                if nfull_of[e] != f.nfull:
                    hits.setdefault(e, PROMPT)
        if hits:
            mark(hits, line)
        if cases:
            hit = cases.get(f.nprompt)
            if hit is not None:
                for k in hit:
                    cur = res.case_hits.get(k)
                    if cur is None:
                        res.case_hits[k] = [line, 1]
                    else:
                        cur[1] += 1
        if group_path is not None and groups:
            g = group_value(obj, group_path)
            if g is not None and g in groups:
                cur = res.group_hits.get(g)
                if cur is None:
                    res.group_hits[g] = [line, 1]
                else:
                    cur[1] += 1
        if check_ngrams:
            flat.extend(f.word_hashes)
            lens.append(len(f.word_hashes))
            batch_lines.append(line)
            if len(lens) >= BATCH:
                _match_ngrams(flat, lens, batch_lines, index, res)
    if check_ngrams and lens:
        _match_ngrams(flat, lens, batch_lines, index, res)
    return res


def _match_ngrams(flat: list[int], lens: list[int], lines: list[int], index: EvalIndex, res: ScanResult) -> None:
    import numpy as np

    h, rec = window_hashes(flat, lens, index.n)
    line_arr = np.array(lines, dtype=np.int64)
    flat.clear()
    lens.clear()
    lines.clear()
    if not h.size:
        return
    cand = index.bitmap[(h & np.uint64(index.mask)).astype(np.int64)]
    if not cand.any():
        return
    h, rec = h[cand], rec[cand]
    pos = np.searchsorted(index.ngrams, h)
    pos[pos >= len(index.ngrams)] = 0
    found = index.ngrams[pos] == h
    if not found.any():
        return
    ng, rec = pos[found], rec[found]
    # one count per (train record, n-gram)
    key = np.unique(rec * len(index.ngrams) + ng)
    ng = key % len(index.ngrams)
    rec = key // len(index.ngrams)
    np.add.at(res.train_df, ng, 1)
    # first train line per n-gram: records are in line order within the batch
    uniq_ng, first = np.unique(ng, return_index=True)
    unset = res.first_line[uniq_ng] == 0
    res.first_line[uniq_ng[unset]] = line_arr[rec[first[unset]]]


def ngram_leaks(index: EvalIndex, res: ScanResult, *, common: int) -> dict[int, tuple[int, int, int]]:
    """``eval idx -> (n-gram index, first train line, shared n-grams)`` for n-gram leaks.

    Per eval record, the reported n-gram is the rarest in train among those not common.
    """
    import numpy as np

    if index.ngrams is None or not len(index.ngrams):
        return {}
    ok = (res.train_df > 0) & (res.train_df <= common) & (index.eval_df <= common)
    sel = ok[index.ng_pair_ngram]
    if not sel.any():
        return {}
    ng = index.ng_pair_ngram[sel]
    ev = index.ng_pair_eval[sel]
    df = res.train_df[ng]
    order = np.lexsort((ng, df, ev))  # by eval record, then rarest, then n-gram index
    ev, ng = ev[order], ng[order]
    starts = np.flatnonzero(np.r_[True, ev[1:] != ev[:-1]])
    shared = np.diff(np.r_[starts, len(ev)])
    out: dict[int, tuple[int, int, int]] = {}
    for e, g, s in zip(ev[starts].tolist(), ng[starts].tolist(), shared.tolist(), strict=True):
        out[e] = (g, int(res.first_line[g]), s)
    return out


# --------------------------------------------------------------------------- the gate


def check(
    *,
    train: str | Path,
    eval: str | Path | None = None,
    cases: str | Path | None = None,
    group_key: str | None = None,
    ngram: int = DEFAULT_NGRAM,
    ngram_common: int = NGRAM_COMMON,
    progress: bool = False,
    max_per_rule: int = MAX_PER_RULE,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Check eval (and fixed cases) against train; see the module docstring for the rules."""
    from gates.core import InputError

    if ngram < 3:
        raise InputError(f"--ngram {ngram} is too short to mean shared text", hint="use 8 or more (default 13)")
    if eval is None and cases is None:
        raise InputError("nothing to compare train with", hint="give --eval EVAL.jsonl and/or --cases CASES.jsonl")
    metrics = metrics if metrics is not None else {}
    group_path = tuple(group_key.split(".")) if group_key else None
    case_list: list[Any] = []
    if cases is not None:
        from gates.cases import load_cases

        case_list = load_cases(cases)
    train_source = open_dataset(train, progress=progress)
    eval_source = open_dataset(eval, progress=progress) if eval is not None else None
    index = build_index(eval_source, case_list, n=ngram, group_path=group_path)
    res = scan_train(train_source, index, group_path=group_path)
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
    ngram_wanted = {index.lines[e]: ng_leaks[e][0] for e in ng_leaks if e not in res.best}
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
                g, tline, shared = ng_leaks[e]
                text = ngram_text.get(eline, "")
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
    """The text of the reported n-gram of each wanted eval line (re-reads eval; eval is the small side)."""
    out: dict[int, str] = {}
    if index.source is None:
        return out
    import numpy as np

    limit = 2 * MAX_PER_RULE
    targets = dict(sorted(wanted.items())[:limit])
    for line, obj in index.source:
        if line not in targets:
            continue
        ex = extract(obj)
        if ex is None:
            continue
        parts, completion = ex
        word_list = [w for _, c in parts for w in norm_words(c)] + norm_words(completion)
        texts = ngram_texts(word_list, index.n)
        want = int(index.ngrams[targets[line]].astype(np.uint64))
        out[line] = texts.get(want, "")
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
