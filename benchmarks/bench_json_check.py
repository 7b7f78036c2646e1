"""Benchmark: ``sftgate json-check`` on 100k outputs against a plain ``json.loads`` loop.

The baseline is what a naive checker does: read the file, ``json.loads`` every line and then
every output (no schema, no classification). json-check does all of that strictly, classifies
every failure, validates against the schema, diffs expected values and renders the report.
Both run in the same process on the same file. Target: json-check at most 3x the baseline.

    .venv/bin/python benchmarks/bench_json_check.py            # 100k outputs, 5% failing
    .venv/bin/python benchmarks/bench_json_check.py --n 20000 --fail-rate 0.3 --repeat 5
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
    args = parser.parse_args()
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
