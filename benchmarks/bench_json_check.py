"""Benchmark: ``sftgate json-check`` on 100k outputs against a plain ``json.loads`` loop, and its memory.

Part 1 (time): the baseline is what a naive checker does: read the file, ``json.loads`` every line
and then every output (no schema, no classification). json-check does all of that strictly,
classifies every failure, validates against the schema, diffs expected values and renders the
report. Both run in the same process on the same file. Target: json-check at most 3x the baseline.

Part 2 (memory): 1M outputs that ALL fail, ``sftgate json-check`` in a fresh process, its peak
resident memory sampled from ``/proc`` (``proc_memory.measure``) next to the baseline loop's in its
own process. Target: under 500 MB (each rule lists 100 findings, the others are counted).

    .venv/bin/python benchmarks/bench_json_check.py            # 100k outputs, 5% failing; 1M failing
    .venv/bin/python benchmarks/bench_json_check.py --n 20000 --fail-rate 0.3 --repeat 5 --memory-n 0
    .venv/bin/python benchmarks/bench_json_check.py --memory-n 1000000 --repeat 0
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "status": {"enum": ["active", "inactive"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city"],
        },
    },
    "required": ["name", "age", "status"],
    "additionalProperties": False,
}

BROKEN = [
    lambda s: f"```json\n{s}\n```",
    lambda s: s[: len(s) // 2],
    lambda s: s + " Hope this helps!",
    lambda s: s.replace('"', "'"),
    lambda s: s.replace('"age": ', '"age": NaN, "x": '),
    lambda s: s.replace('"active"', '"Active"'),
    lambda s: s.replace('"age": ', '"age": "'),
    lambda s: "Sure! " + s,
]


def make_outputs(path: Path, n: int, fail_rate: float, seed: int = 0) -> None:
    rng = random.Random(seed)
    names = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John"]
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            value = {
                "name": rng.choice(names),
                "age": rng.randint(0, 120),
                "status": rng.choice(["active", "inactive"]),
                "tags": rng.sample(["x", "y", "z", "w"], rng.randint(0, 3)),
                "address": {
                    "city": rng.choice(["Paris", "Oslo", "Lima"]),
                    "zip": f"{rng.randint(0, 99999):05d}",
                },
            }
            text = json.dumps(value)
            stop = "eos"
            if rng.random() < fail_rate:
                text = rng.choice(BROKEN)(text)
                stop = rng.choice(["eos", "length"])
            record = {"id": f"case-{i}", "output": text, "stop_reason": stop}
            if i % 4 == 0:
                record["expected"] = value
            out.write(json.dumps(record) + "\n")


def baseline(path: Path) -> int:
    """A plain json.loads loop: parse each line, then each output."""
    ok = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            try:
                json.loads(record["output"])
                ok += 1
            except ValueError:
                pass
    return ok


def json_check(outputs: Path, schema: Path) -> int:
    from sftgate.runners.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    return main(
        ["json-check", str(outputs), "--schema", str(schema), "--format", "json", "--min-pass-rate", "0"],
        stdout=out,
        stderr=err,
        env={},
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--fail-rate", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-n", type=int, default=1_000_000, help="outputs of the memory part (0: skip it)")
    parser.add_argument("--baseline-of", type=Path, help=argparse.SUPPRESS)  # the memory part's baseline process
    args = parser.parse_args()
    if args.baseline_of:
        print(baseline(args.baseline_of))
        return 0
    if args.repeat:
        timing(args)
    if args.memory_n:
        memory(args.memory_n)
    return 0


def memory(n: int) -> None:
    """Part 2: peak memory of json-check on ``n`` outputs that all fail, in its own process."""
    from proc_memory import measure

    with tempfile.TemporaryDirectory() as tmp:
        outputs, schema = Path(tmp) / "outputs.jsonl", Path(tmp) / "schema.json"
        start = time.perf_counter()
        make_outputs(outputs, n, 1.0)
        schema.write_text(json.dumps(SCHEMA))
        size = outputs.stat().st_size / 1e6
        print(f"\nmemory: {n:,} outputs, all failing ({size:.0f} MB, written in {time.perf_counter() - start:.0f} s)")
        base = measure([sys.executable, __file__, "--baseline-of", str(outputs)])  # baseline() alone
        run = measure([sys.executable, "-m", "sftgate.runners.cli.main", "json-check", str(outputs), "--schema",
                       str(schema), "--format", "json", "--min-pass-rate", "0"], cwd=ROOT)
    report = json.loads(run["out"])
    gate = report["gates"][0]
    listed = len(gate["findings"])
    print(f"json.loads loop   : {base['wall']:.1f} s, peak RSS {base['peak_rss_mib']} MiB "
          f"(private {base['peak_private_mib']} MiB), load {base['load']}")
    print(f"sftgate json-check: {run['wall']:.1f} s (exit {run['exit']}), peak RSS {run['peak_rss_mib']} MiB "
          f"(private {run['peak_private_mib']} MiB; target < 500 MB), load {run['load']}")
    print(f"  {gate['metrics']['failed']:,} failed cases, {listed} findings listed, "
          f"{gate['metrics'].get('findings_not_listed', 0):,} counted and not listed; "
          f"report {len(run['out']) / 1e6:.1f} MB")


def timing(args: argparse.Namespace) -> None:
    """Part 1: json-check against the json.loads loop, in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        outputs, schema = Path(tmp) / "outputs.jsonl", Path(tmp) / "schema.json"
        make_outputs(outputs, args.n, args.fail_rate)
        schema.write_text(json.dumps(SCHEMA))
        json_check(outputs, schema)  # warm up imports and caches
        base_t, gate_t = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            baseline(outputs)
            base_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            code = json_check(outputs, schema)
            gate_t.append(time.perf_counter() - start)
        assert code == 0, code
    base, gate = statistics.median(base_t), statistics.median(gate_t)
    print(f"outputs: {args.n:,} ({args.fail_rate:.0%} broken), median of {args.repeat}")
    print(f"json.loads loop : {base:.3f} s  ({base / args.n * 1e6:.2f} us/output)")
    print(f"sftgate json-check: {gate:.3f} s  ({gate / args.n * 1e6:.2f} us/output)")
    print(f"ratio: {gate / base:.2f}x (target <= 3x)")


if __name__ == "__main__":
    raise SystemExit(main())
