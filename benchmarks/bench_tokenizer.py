"""Benchmark: the tokenizer path against a mistral-common v3 tokenization loop, in the same run.

Builds the Mistral v3 SentencePiece tokenizer from mistral-common's package data (converted
offline by ``fixtures.tokenizers``), writes N synthetic chat records (1-3 turns, a system prompt
in 30%, prose and JSON answers, about 140 tokens each) and times, each in a fresh process
(start-up included, as a user sees it):

- the anchor: mistral-finetune's ``utils/validate_data.py`` loop with mistral-common
  (``MistralTokenizer.v3()``): parse the line, build the ``InstructRequest`` (system prompt,
  user and assistant messages), ``encode_instruct`` it;
- ``sftgate tokenizer DIR --data TRAIN.jsonl`` (prompt-alignment and eos: every record rendered
  through the chat template, prompt and every turn tokenized, labels built and checked);
- ``sftgate data TRAIN.jsonl --tokenizer DIR --max-seq-len 4096`` (dataset-schema with token
  lengths and ``too_long``).

It prints records/s of each and the ratio against the anchor (the target: >= 3x at 220k records,
and >= 1x at 20k where start-up weighs), the CPU seconds of each (all processes), the workers
used and the load average around each run (other processes share the CPUs: every timing scales
with it; the ratios compare runs made one after the other).

    .venv/bin/python benchmarks/bench_tokenizer.py                    # 220k and 20k records
    .venv/bin/python benchmarks/bench_tokenizer.py --records 20000    # one size
    .venv/bin/python benchmarks/bench_tokenizer.py --workers 1 --json bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ["the", "model", "answer", "question", "data", "training", "prompt", "token", "label", "system", "user", "assistant", "value", "name", "city", "France", "Paris", "capital", "river", "mountain", "number", "list", "order", "JSON", "field", "schema", "result", "because", "however", "therefore", "quickly", "carefully", "simple", "complex", "example", "first", "second", "third", "last", "also", "only", "which", "where", "when", "what", "who", "how", "many", "much", "more", "less", "than", "about", "between", "under", "over", "through"]

ANCHOR = """
import json, sys, time
start = time.perf_counter()
from mistral_common.protocol.instruct.messages import AssistantMessage, UserMessage
from mistral_common.protocol.instruct.request import InstructRequest
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

tokenizer = MistralTokenizer.v3().instruct_tokenizer
loaded = time.perf_counter()
records = tokens = 0
with open(sys.argv[1], encoding="utf-8") as fh:
    for line in fh:
        data = json.loads(line)
        system, messages = None, []
        for message in data["messages"]:
            if message["role"] == "system":
                system = message["content"]
            elif message["role"] == "user":
                messages.append(UserMessage(content=message["content"]))
            else:
                messages.append(AssistantMessage(content=message["content"]))
        tokens += len(tokenizer.encode_instruct(InstructRequest(messages=messages, system_prompt=system)).tokens)
        records += 1
print(json.dumps({"records": records, "tokens": tokens, "startup_seconds": loaded - start}))
"""


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


def write_records(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(n):
            handle.write(json.dumps(record(rng)) + "\n")


def timed(argv: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    """Wall and CPU seconds (the child and its workers), peak memory of all its processes, stdout, exit, load."""
    from proc_memory import measure

    run = measure(argv, cwd=ROOT, env=env)
    return {"wall": run["wall"], "cpu": run["cpu"], "rss_mb": run["peak_rss_mib"], "pss_mb": run["peak_pss_mib"],
            "out": run["out"], "code": run["exit"], "load": run["load"]}


def sftgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "sftgate.runners.cli.main", *args, "--format", "json", "--quiet"]


def bench(folder: Path, tokenizer: Path, n: int, workers: int | None) -> dict[str, object]:
    data = folder / f"train-{n}.jsonl"
    write_records(data, n)
    extra = ["--workers", str(workers)] if workers is not None else []
    env = dict(os.environ)
    if workers is not None:
        env["SFTGATE_WORKERS"] = str(workers)
    anchor = timed([sys.executable, "-c", ANCHOR, str(data)])
    tok = timed(sftgate("tokenizer", str(tokenizer), "--data", str(data)), env)
    dat = timed(sftgate("data", str(data), "--tokenizer", str(tokenizer), "--max-seq-len", "4096", *extra), env)
    anchor_info = json.loads(anchor["out"])
    assert anchor_info["records"] == n, anchor_info
    result: dict[str, object] = {"records": n, "data_mb": round(data.stat().st_size / 1e6, 1),
                                 "anchor": _row(anchor, n, anchor["wall"])}
    result["anchor"]["startup_seconds"] = round(anchor_info["startup_seconds"], 2)  # type: ignore[index]
    for name, run in (("sftgate tokenizer --data", tok), ("sftgate data --tokenizer", dat)):
        row = _row(run, n, anchor["wall"])
        report = json.loads(run["out"]) if run["out"] else {"gates": []}
        row["gates"] = {g["gate"]: g["status"] for g in report["gates"]}
        metrics = report["gates"][0].get("metrics", {}) if report["gates"] else {}
        row["workers"] = metrics.get("scan_workers") or metrics.get("train", {}).get("workers", 1)
        result[name] = row
    data.unlink()
    return result


def _row(run: dict[str, object], n: int, anchor_wall: float) -> dict[str, object]:
    wall = float(run["wall"])  # type: ignore[arg-type]
    return {"seconds": round(wall, 2), "records_per_second": round(n / wall), "cpu_seconds": round(float(run["cpu"]), 2),  # type: ignore[arg-type]
            "peak_rss_mb": round(float(run["rss_mb"])), "peak_pss_mb": round(float(run["pss_mb"])), "exit": run["code"], "load_average_1m": run["load"],  # type: ignore[arg-type]
            "ratio_vs_anchor": round(anchor_wall / wall, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, action="append", help="records per run (default: 220000 and 20000)")
    parser.add_argument("--workers", type=int, help="scan processes for both commands (default: their own choice)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    sizes = args.records or [220_000, 20_000]
    results = {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(), "runs": []}
    print(f"cpus: {results['cpus']}, python {results['python']}, load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="sftgate-bench-") as tmp:
        tokenizer = Path(tmp) / "mistral_v3"  # built in a child: this process stays small
        from proc_memory import build_mistral_v3_in_child

        build_mistral_v3_in_child(tokenizer)
        for n in sizes:
            run = bench(Path(tmp), tokenizer, n, args.workers)
            results["runs"].append(run)  # type: ignore[attr-defined]
            print(f"\n{n:,} records ({run['data_mb']} MB):")
            for name in ("anchor", "sftgate tokenizer --data", "sftgate data --tokenizer"):
                row = run[name]
                label = "anchor (mistral-common v3 loop)" if name == "anchor" else name
                extra = f", workers {row['workers']}, gates {row['gates']}" if name != "anchor" else \
                    f", start-up {row['startup_seconds']}s"
                print(f"  {label:34s} {row['seconds']:7.2f}s  {row['records_per_second']:7,} records/s  "
                      f"{row['ratio_vs_anchor']:5.2f}x the anchor  CPU {row['cpu_seconds']:.1f}s  "
                      f"memory RSS {row['peak_rss_mb']} / PSS {row['peak_pss_mb']} MiB  load {row['load_average_1m']}{extra}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
