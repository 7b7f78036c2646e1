"""Benchmark: the prompt-alignment and eos gates on 220k chat records with the Mistral v3 tokenizer.

Builds the Mistral v3 SentencePiece tokenizer from mistral-common's package data (offline),
writes N synthetic chat records (1-3 turns, a system prompt in 30%, prose and JSON answers,
about 200 tokens each), then times both gates the way ``sftgate tokenizer DIR --data FILE``
runs them: prompt-alignment first (it encodes every record: render, tokenize prompt and
prompt + completion, labels, collate), then eos (which reuses that scan).

    .venv/bin/python benchmarks/bench_tokenizer.py                 # 220k records
    .venv/bin/python benchmarks/bench_tokenizer.py --records 20000 --json bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ["the", "model", "answer", "question", "data", "training", "prompt", "token", "label", "system", "user", "assistant", "value", "name", "city", "France", "Paris", "capital", "river", "mountain", "number", "list", "order", "JSON", "field", "schema", "result", "because", "however", "therefore", "quickly", "carefully", "simple", "complex", "example", "first", "second", "third", "last", "also", "only", "which", "where", "when", "what", "who", "how", "many", "much", "more", "less", "than", "about", "between", "under", "over", "through"]


def sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize() + rng.choice([".", "?", "!", "."])


def record(rng: random.Random) -> dict[str, object]:
    messages: list[dict[str, str]] = []
    if rng.random() < 0.3:
        messages.append({"role": "system", "content": "You are a careful assistant. Answer in JSON when asked."})
    for _ in range(rng.choice([1, 1, 2, 3])):
        messages.append({"role": "user", "content": " ".join(sentence(rng, 6, 20) for _ in range(rng.randint(1, 4)))})
        if rng.random() < 0.3:
            answer = json.dumps({"name": rng.choice(WORDS), "count": rng.randint(0, 999), "tags": rng.sample(WORDS, 3)})
        else:
            answer = " ".join(sentence(rng, 5, 18) for _ in range(rng.randint(1, 5)))
        messages.append({"role": "assistant", "content": answer})
    return {"messages": messages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=220_000)
    parser.add_argument("--max-seq-len", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, help="scan processes (default: one per CPU for large files)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    import resource

    from fixtures.tokenizers import build_mistral_v3
    from sftgate.gates.frame.core import Stage
    from sftgate.gates.frame.execute import run_gate
    from sftgate.gates.tokenizer import data_scan, eos, prompt_alignment

    if args.workers is not None:
        os.environ["SFTGATE_WORKERS"] = str(args.workers)
    with tempfile.TemporaryDirectory(prefix="sftgate-bench-") as tmp:
        folder = build_mistral_v3(Path(tmp) / "mistral_v3")
        data = Path(tmp) / "train.jsonl"
        rng = random.Random(args.seed)
        start = time.perf_counter()
        with data.open("w", encoding="utf-8") as handle:
            for _ in range(args.records):
                handle.write(json.dumps(record(rng)) + "\n")
        write_s = time.perf_counter() - start
        workers = data_scan.worker_count(data, args.workers)

        common = {"tokenizer": folder, "data": data, "max_seq_len": args.max_seq_len}
        cpu_start = time.process_time()
        start = time.perf_counter()
        alignment = run_gate("prompt-alignment", Stage.TOKENIZER, prompt_alignment.check, **common)
        alignment_s = time.perf_counter() - start
        start = time.perf_counter()
        eos_result = run_gate("eos", Stage.TOKENIZER, eos.check, **common)
        eos_s = time.perf_counter() - start
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = time.process_time() - cpu_start + children.ru_utime + children.ru_stime
        data_mb = data.stat().st_size / 1e6

    total = alignment_s + eos_s
    records = alignment.metrics.get("records", 0)
    results = {
        "records": records,
        "data_mb": round(data_mb, 1),
        "write_seconds": round(write_s, 2),
        "prompt_alignment_seconds": round(alignment_s, 2),
        "eos_seconds": round(eos_s, 2),
        "total_seconds": round(total, 2),
        "records_per_second": round(records / total, 1) if total else None,
        "cpu_seconds": round(cpu_s, 2),  # this process and its scan workers, all threads
        "workers": workers,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "scan_seconds": alignment.metrics.get("scan_seconds"),
        "max_tokens": eos_result.metrics.get("max_tokens"),
        "statuses": {"prompt-alignment": alignment.status.value, "eos": eos_result.status.value},
        "findings": [f.rule for f in alignment.findings + eos_result.findings],
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
