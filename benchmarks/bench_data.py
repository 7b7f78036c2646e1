"""Benchmark: ``sftgate data`` on 1M records against a stdlib ``json.loads`` loop, plus tokenizing;
one process, sftgate's own choice of workers and one worker per CPU side by side.

Part 1 (no tokenizer): 1M prompt/completion records (about 300 MB: a shared 13-word instruction,
a 10-22 word review, a JSON completion with a label, a score and two words of the review) and
100k eval records with planted leaks (exact, normalised, same prompt, shared 13-gram), checked
with an output schema:

    sftgate data train.jsonl --eval eval.jsonl --output-schema schema.json --format json --quiet [--workers N]

Each setting runs in a fresh process (``proc_memory.measure``): wall and CPU time (all its
processes), and the peak memory of ALL its processes together, sampled from ``/proc``: RSS,
PSS (shared pages split between the processes that share them: what the tree really takes) and
private memory (what each process owns alone; the file it reads is not in it), with the PSS each
extra worker adds. The baseline loop only ``json.loads`` every line of both files. Targets: at
most 3x the baseline's time, peak RSS under 1 GB; the planted leaks must all be found.

Part 2 (tokenizer): 220k chat records through the Mistral v3 SentencePiece tokenizer that
mistral-common ships (converted offline by ``fixtures.tokenizers``), token lengths and
``too_long`` with ``--max-seq-len``, the same three settings.

    .venv/bin/python benchmarks/bench_data.py                      # both parts, full size
    .venv/bin/python benchmarks/bench_data.py --records 6000000    # about 2 GB of JSONL
    .venv/bin/python benchmarks/bench_data.py --records 200000 --eval-records 20000 --chat-records 20000
    .venv/bin/python benchmarks/bench_data.py --skip-tokenizer --workers 1   # one setting only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INSTRUCTION = "Classify the sentiment of this product review and reply with one JSON object."  # 13 words
LABELS = ("positive", "negative", "neutral")
SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": list(LABELS)}, "score": {"type": "integer", "minimum": 1, "maximum": 5},
                   "aspects": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 5}},
    "required": ["label", "score", "aspects"],
    "additionalProperties": False,
}
PLANTED = 50  # of each leak kind
CHAT_WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or one had "
              "by word but not what all were we when your can said there use an each which she do how their if will "
              "up other about out many then them these so some her would make like him into time has look two more")


def _vocab(rng, size: int = 12000) -> list[str]:  # type: ignore[no-untyped-def]
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "qui", "bra", "den", "fol", "gar", "hin",
                 "jor", "mel", "nor", "pas", "ril", "sto", "tam", "ver", "wil"]
    words: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(1, 4))  # 24 + 24^2 + 24^3 = 14,424 distinct words at most
        words.add("".join(syllables[int(i)] for i in rng.integers(0, len(syllables), n)))
    return sorted(words)


def _reviews(rng, vocab: list[str], n: int) -> list[str]:  # type: ignore[no-untyped-def]
    lengths = rng.integers(10, 23, n)
    idx = rng.integers(0, len(vocab), int(lengths.sum()))
    out, pos = [], 0
    for length in lengths.tolist():
        out.append(" ".join(vocab[i] for i in idx[pos : pos + length].tolist()) + ".")
        pos += length
    return out


def _record(review: str, label: str, score: int) -> dict[str, str]:
    words = review.rstrip(".").split()
    aspects = [words[len(words) // 3], words[-1]]  # unique-ish completions, as in extraction tasks
    return {"prompt": f"{INSTRUCTION}\n\nReview: {review}",
            "completion": json.dumps({"label": label, "score": score, "aspects": aspects})}


def make_data(folder: Path, records: int, eval_records: int, seed: int = 0) -> dict[str, int]:
    """Write train.jsonl, eval.jsonl and schema.json; return the planted leaks per rule."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = _vocab(rng)
    labels = rng.integers(0, 3, records + eval_records).tolist()
    scores = rng.integers(1, 6, records + eval_records).tolist()
    planted: list[tuple[int, dict[str, str]]] = []  # eval position -> record
    stride = max(records // (4 * PLANTED), 1)
    want = False
    with (folder / "train.jsonl").open("w") as fh:
        done = 0
        chunk = 100_000
        while done < records:
            n = min(chunk, records - done)
            for k, review in enumerate(_reviews(rng, vocab, n)):
                i = done + k
                rec = _record(review, LABELS[labels[i]], scores[i])
                fh.write(json.dumps(rec) + "\n")
                want = want or i % stride == 7
                if want and len(planted) < 4 * PLANTED and len(review.split()) >= 16:
                    planted.append((i, rec))
                    want = False
            done += n
    evals = [_record(r, LABELS[labels[records + i]], scores[records + i])
             for i, r in enumerate(_reviews(np.random.default_rng(seed + 1), vocab, eval_records))]
    counts = {"eval_leak_exact": 0, "eval_leak_normalized": 0, "eval_leak_prompt": 0, "eval_leak_ngram": 0}
    for j, (_, rec) in enumerate(planted):
        slot = 1000 + j * (eval_records - 2000) // max(len(planted), 1)
        kind = ("eval_leak_exact", "eval_leak_normalized", "eval_leak_prompt", "eval_leak_ngram")[j % 4]
        review = rec["prompt"].split("Review: ", 1)[1]
        if kind == "eval_leak_exact":
            leak = dict(rec)
        elif kind == "eval_leak_normalized":
            leak = {**rec, "prompt": rec["prompt"].upper().replace(".", " !")}
        elif kind == "eval_leak_prompt":
            label = json.loads(rec["completion"])["label"]
            other = LABELS[(LABELS.index(label) + 1) % 3]
            leak = {**rec, "completion": json.dumps({"label": other, "score": 3, "aspects": []})}
        else:
            words = review.split()
            leak = _record("totally different start " + " ".join(words[:15]) + " and another ending", "neutral", 3)
        evals[slot] = leak
        counts[kind] += 1
    with (folder / "eval.jsonl").open("w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in evals)
    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    return counts


def baseline(paths: list[Path]) -> tuple[float, float]:
    """(wall, CPU) seconds of a loop that only ``json.loads`` every line."""
    start, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                json.loads(line)
    return time.perf_counter() - start, time.process_time() - cpu


def make_chat(folder: Path, n: int, seed: int = 2) -> Path:
    import numpy as np

    rng = np.random.default_rng(seed)
    words = CHAT_WORDS.split()
    path = folder / "chat.jsonl"
    with path.open("w") as fh:
        for i in range(n):
            def text(k: int) -> str:
                return " ".join(words[j] for j in rng.integers(0, len(words), k).tolist())
            msgs = [{"role": "user", "content": text(int(rng.integers(20, 80)))},
                    {"role": "assistant", "content": text(int(rng.integers(10, 60)))}]
            if i % 3 == 0:
                msgs += [{"role": "user", "content": text(15)}, {"role": "assistant", "content": text(25)}]
            fh.write(json.dumps({"messages": msgs}) + "\n")
    return path


def settings(requested: int | None) -> list[int | None]:
    """The worker settings to compare: one process, sftgate's own choice, and one per CPU."""
    if requested is not None:
        return [requested]
    return [1, None, len(os.sched_getaffinity(0))]


def run_settings(argv: list[str], requested: int | None, label: str) -> list[dict[str, object]]:
    """``argv`` under each worker setting, side by side: time, CPU, memory of all its processes."""
    from proc_memory import measure

    rows = []
    for workers in settings(requested):
        run = measure([*argv, *(["--workers", str(workers)] if workers else [])], cwd=ROOT)
        report = json.loads(run["out"]) if run["out"].strip() else {"gates": []}
        gate = report["gates"][0] if report["gates"] else {"metrics": {}}
        run["setting"] = "default" if workers is None else f"--workers {workers}"
        run["workers"] = gate["metrics"].get("train", {}).get("workers", 1)
        run["report"] = report
        rows.append(run)
    base = rows[0]
    print(f"{label}:")
    for run in rows:
        extra = ""
        if run["workers"] > 1 and base["workers"] == 1:
            per = (run["peak_pss_mib"] - base["peak_pss_mib"]) / (run["workers"] - 1)
            extra = f"; {per:+.0f} MiB per extra worker"
        print(f"  {run['setting']:12s} -> {run['workers']} worker(s): {run['wall']:7.2f}s wall "
              f"({base['wall'] / run['wall']:.2f}x one process), CPU {run['cpu']:6.1f}s, memory of all processes: "
              f"RSS {run['peak_rss_mib']} MiB, PSS {run['peak_pss_mib']} MiB, private {run['peak_private_mib']} MiB"
              f"{extra}; {run['processes']} processes; exit {run['exit']}; load {run['load']}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--eval-records", type=int, default=100_000)
    parser.add_argument("--chat-records", type=int, default=220_000)
    parser.add_argument("--workers", type=int, help="only this --workers N (default: 1, sftgate's choice, one per CPU)")
    parser.add_argument("--skip-tokenizer", action="store_true")
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR (reused when it has the files)")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="sftgate-bench-")
    folder = Path(args.keep) if args.keep else Path(tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"cpus: {len(os.sched_getaffinity(0))}, python {sys.version.split()[0]}, data in {folder}, "
          f"load average {os.getloadavg()}")
    start = time.perf_counter()
    planted = make_data(folder, args.records, args.eval_records)
    train, evals = folder / "train.jsonl", folder / "eval.jsonl"
    size = (train.stat().st_size + evals.stat().st_size) / 1e6
    print(f"generated {args.records:,} + {args.eval_records:,} records, {size:.0f} MB, "
          f"in {time.perf_counter() - start:.1f}s; planted {planted}")

    argv = [sys.executable, "-m", "sftgate.runners.cli.main", "data", str(train), "--eval", str(evals),
            "--output-schema", str(folder / "schema.json"), "--format", "json", "--quiet"]
    base, base_cpu = baseline([train, evals])
    rows = run_settings(argv, args.workers, "sftgate data (no tokenizer)")
    base2, base_cpu2 = baseline([train, evals])
    base, base_cpu = min(base, base2), min(base_cpu, base_cpu2)
    print(f"baseline json.loads loop: {base:.2f}s wall, {base_cpu:.2f}s CPU")
    ok_leaks = True
    for run in rows:
        gates = {g["gate"]: g for g in run["report"]["gates"]}
        leaks = gates["split-isolation"]["metrics"].get("leaks", {})
        found = all(leaks.get(rule, 0) == n for rule, n in planted.items())
        ok_leaks = ok_leaks and found
        print(f"  {run['setting']:12s}: {run['wall'] / base:.2f}x the baseline's time (target <= 3x), "
              f"peak RSS {run['peak_rss_mib']} MiB (target < 1024); leaks {'all found' if found else leaks}")

    if not args.skip_tokenizer:
        tok = folder / "mistral-v3"  # built in a child: this process stays small (no transformers)
        if not (tok / "tokenizer.json").is_file():
            from proc_memory import build_mistral_v3_in_child

            build_mistral_v3_in_child(tok)
        chat = make_chat(folder, args.chat_records)
        argv = [sys.executable, "-m", "sftgate.runners.cli.main", "data", str(chat), "--tokenizer", str(tok),
                "--max-seq-len", "160", "--format", "json", "--quiet"]
        for run in run_settings(argv, args.workers, f"sftgate data --tokenizer (Mistral v3, {args.chat_records:,} chat records)"):
            gate = run["report"]["gates"][0]
            metrics = gate["metrics"]
            print(f"  {run['setting']:12s}: {args.chat_records / run['wall']:,.0f} records/s with start-up; gate "
                  f"{gate['seconds']:.2f}s = {args.chat_records / gate['seconds']:,.0f} records/s; path "
                  f"{metrics['train'].get('token_path')}; too_long {metrics.get('too_long')}")
    tmp.cleanup()
    return 0 if ok_leaks else 1


if __name__ == "__main__":
    raise SystemExit(main())
