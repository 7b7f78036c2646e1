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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.data.eval_index import EvalIndex, build_index
from sftgate.gates.data.leak_hashing import extract, record_words
from sftgate.gates.data.leak_scan import ScanResult, ngram_leaks, scan_task
from sftgate.gates.data.split_isolation_rules import EXACT, GATE, KIND_RULE, NORMALIZED, PROMPT, RULES, R
from sftgate.gates.frame.core import Finding
from sftgate.gates.frame.finding_cap import MAX_PER_RULE, FindingCap
from sftgate.gates.readers.dataset_io import default_workers, map_chunks, open_dataset
from sftgate.gates.readers.roles import roles_from_config

__all__ = ["GATE", "RULES", "check", "from_config"]

DEFAULT_NGRAM = 13
NGRAM_COMMON = 10


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
    roles: Any = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Check eval (and fixed cases) against train; see the module docstring for the rules.

    ``workers``: processes that stream a large JSONL train file (default: one per CPU from
    32 MB on; they inherit the eval index by ``fork``). ``roles``: the roles the cases may use
    (:func:`~sftgate.gates.readers.roles.roles_from_config`; default: the standard roles).
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

        case_list = load_cases(cases, roles=roles)
    train_source = open_dataset(train, progress=progress)
    eval_source = open_dataset(eval, progress=progress) if eval is not None else None
    n_workers = default_workers(train_source) if workers is None else max(1, workers)
    eval_workers = (default_workers(eval_source) if workers is None else max(1, workers)) if eval_source else 1
    index = build_index(eval_source, case_list, n=ngram, group_path=group_path, workers=eval_workers)
    res: ScanResult | None = None
    task = functools.partial(scan_task, index, group_path)
    for part in map_chunks(train_source, task, workers=n_workers):
        part.dense(len(index.ngrams))
        if res is None:
            res = part
        else:
            res.merge(part)
    assert res is not None
    ng_leaks = ngram_leaks(index, res, common=ngram_common)

    cap = FindingCap(max_per_rule)
    counts = cap.totals

    def emit(rule: str, message: str, location: str, line: int | None, evidence: dict[str, Any]) -> Finding | None:
        if not cap.room(rule, location, code=R[rule].code, severity=R[rule].severity):
            return None
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
    yield from cap.summaries()

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
        "roles": roles_from_config(config) if cases is not None else None,
    }
