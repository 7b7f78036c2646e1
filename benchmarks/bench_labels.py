"""Benchmark: the labels gate on 1M tokenized rows of ~300 tokens, against a plain pyarrow read.

Builds the Mistral v3 SentencePiece tokenizer offline (mistral-common's package data), renders a
few hundred real chat records with sftgate's own labels (every assistant turn trained), and writes
them (one batch of 1000 distinct rows, repeated) to N rows as a ``datasets.save_to_disk`` folder
(Arrow stream, int64 lists, batches of 1000 rows, as ``datasets`` writes them). Then, each in a fresh process so peak RSS is its own:

- baseline: read the same columns with pyarrow and touch every value (``to_numpy``), after a
  first read that warms the page cache;
- labels: ``sftgate.gates.tokenizer.labels.check`` on the folder, as ``sftgate labels`` runs it
  (imports, tokenizer load and turn-marker learning included).

    .venv/bin/python benchmarks/bench_labels.py                    # 1M rows
    .venv/bin/python benchmarks/bench_labels.py --rows 100000 --json bench.json
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

WORDS = ["the", "model", "answer", "question", "data", "training", "prompt", "token", "label", "value", "name", "city", "capital", "river", "number", "list"]


def _records(rng: random.Random, n: int) -> list[dict[str, object]]:
    out = []
    for _ in range(n):
        messages = [{"role": "system", "content": "You are a careful assistant."}] if rng.random() < 0.3 else []
        for _ in range(rng.choice([1, 2])):
            messages.append({"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(70, 150)))})
            messages.append({"role": "assistant", "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 120)))})
        out.append({"messages": messages})
    return out


def build(out: Path, rows: int, seed: int) -> tuple[Path, float]:
    """The tokenizer folder and the dataset folder; returns (tokenizer dir, mean tokens per row)."""
    import numpy as np
    import pyarrow as pa

    from fixtures.tokenizers import build_mistral_v3
    from sftgate.gates.readers.tokenizer_io import load_tokenizer
    from sftgate.gates.tokenizer.rendering import PromptSpec, encode_example

    tok_dir = build_mistral_v3(out / "tokenizer")
    tok = load_tokenizer(tok_dir)
    encoded = [encode_example(tok, r, PromptSpec()) for r in _records(random.Random(seed), 1000)]
    ids = [e.input_ids for e in encoded]
    labels = [e.labels for e in encoded]
    data = out / "prepared"
    data.mkdir()
    schema = pa.schema([("input_ids", pa.list_(pa.int64())), ("labels", pa.list_(pa.int64()))])
    batch_rows = 1000
    pick = [i % len(ids) for i in range(batch_rows)]
    block = pa.record_batch([pa.array([ids[i] for i in pick], pa.list_(pa.int64())),
                             pa.array([labels[i] for i in pick], pa.list_(pa.int64()))], schema=schema)
    written = 0
    with pa.OSFile(str(data / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        while written < rows:
            take = min(batch_rows, rows - written)
            writer.write_batch(block.slice(0, take))
            written += take
    (data / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (data / "dataset_info.json").write_text(json.dumps({"features": {}}))
    return tok_dir, float(np.mean([len(x) for x in ids]))


BASELINE = """
import sys, time, resource, json
import pyarrow as pa
start = time.perf_counter(); rows = tokens = 0
with pa.OSFile(sys.argv[1]) as f:
    for batch in pa.ipc.open_stream(f):
        for name in ("input_ids", "labels"):
            values = batch.column(name).flatten().to_numpy()
            tokens += len(values) if name == "input_ids" else 0
        rows += batch.num_rows
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows, "tokens": tokens,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime}))
"""

GATE = """
import sys, time, resource, json
from sftgate.gates.readers.tokenizer_io import without_torch
without_torch()  # as the `sftgate labels` script runs
from sftgate.gates.tokenizer import labels
metrics = {}
start = time.perf_counter()
findings = list(labels.check(data=sys.argv[1], tokenizer=sys.argv[2], metrics=metrics))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - start, "rows": metrics["rows"], "tokens": metrics["tokens"],
                  "findings": [f.rule for f in findings], "cpu_seconds": usage.ru_utime + usage.ru_stime}))
"""


def _run(code: str, *args: str) -> dict[str, object]:
    """The child's own figures, and its peak RSS sampled from /proc (proc_memory: ``ru_maxrss`` of a child
    carries this process's high-water mark over fork and exec)."""
    from proc_memory import measure

    run = measure([sys.executable, "-c", code, *args], cwd=ROOT)
    if run["exit"]:
        raise SystemExit(f"the benchmark child failed (exit {run['exit']})")
    result: dict[str, object] = json.loads(run["out"].strip().splitlines()[-1])
    result["peak_rss_mb"] = run["peak_rss_mib"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-labels-") as tmp:
        t0 = time.perf_counter()
        tok_dir, mean = build(Path(tmp), args.rows, args.seed)
        data = Path(tmp) / "prepared"
        size = (data / "data-00000-of-00001.arrow").stat().st_size
        print(f"data: {args.rows} rows, {mean:.0f} tokens/row, {size / 1e9:.2f} GB Arrow "
              f"(built in {time.perf_counter() - t0:.1f}s)")
        os.sync()  # the file is on disk, not being written back while the timed reads run
        _run(BASELINE, str(data / "data-00000-of-00001.arrow"))  # warm the page cache
        base = _run(BASELINE, str(data / "data-00000-of-00001.arrow"))
        gate = _run(GATE, str(data), str(tok_dir))
    results = {"rows": args.rows, "tokens_per_row": round(mean, 1), "cpus": os.cpu_count(),
               "python": platform.python_version(), "baseline": base, "labels": gate,
               "ratio": round(float(gate["seconds"]) / max(float(base["seconds"]), 1e-9), 2)}  # type: ignore[arg-type]
    for name in ("baseline", "labels"):
        r = results[name]
        print(f"{name:9s} {r['seconds']:7.2f} s  {r['rows'] / r['seconds']:>10,.0f} rows/s  "  # type: ignore[index,operator]
              f"CPU {r['cpu_seconds']:6.2f} s  peak RSS {r['peak_rss_mb']:.0f} MB")  # type: ignore[index]
    print(f"labels / baseline: {results['ratio']}x; findings: {gate['findings']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
