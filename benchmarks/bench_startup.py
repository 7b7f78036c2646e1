"""Start-up time of ``sftgate model-id`` against ``python -c pass``.

``sftgate model-id`` runs before every job is queued, often on a bare CI runner, so its start-up
must stay close to the interpreter's own: stdlib only, no torch, no transformers (the tests in
``tests/runners/test_cli_model_id.py`` assert the imports; this measures the time).

    python benchmarks/bench_startup.py             # 20 runs each, medians and the ratio
    python benchmarks/bench_startup.py --runs 50
    python benchmarks/bench_startup.py --importtime   # the slowest imports of model-id

Each run is a fresh process (``subprocess.run``); the first run of each command is a warm-up
and is not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ID = "mistralai/Mistral-7B-Instruct-v0.3"


def _time(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    subprocess.run(cmd, capture_output=True, cwd=REPO, env=env, check=False)  # warm-up
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, cwd=REPO, env=env, check=False)
        out.append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--importtime", action="store_true", help="print the 10 slowest imports of model-id")
    args = parser.parse_args(argv)
    env = {**os.environ, "HF_HUB_CACHE": str(REPO / ".no-hf-cache")}
    py = sys.executable
    if args.importtime:
        proc = subprocess.run([py, "-X", "importtime", "-m", "sftgate.runners.cli.main", "model-id", ID],
                              capture_output=True, text=True, cwd=REPO, env=env, check=False)
        rows = []
        for line in proc.stderr.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[1].strip().isdigit():
                rows.append((int(parts[1]), parts[2].rstrip()))
        for cumulative, name in sorted(rows, reverse=True)[:10]:
            print(f"{cumulative / 1000:8.1f} ms  {name}")
        return 0
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "sftgate --help": [py, "-m", "sftgate.runners.cli.main", "--help"],
        f"sftgate model-id {ID}": [py, "-m", "sftgate.runners.cli.main", "model-id", ID],
    }
    medians = {}
    for label, cmd in commands.items():
        times = _time(cmd, args.runs, env)
        medians[label] = statistics.median(times)
        print(f"{label:<55} median {medians[label] * 1000:7.1f} ms   min {min(times) * 1000:7.1f} ms   ({args.runs} runs)")
    base = medians["python -c pass"]
    model_id = medians[f"sftgate model-id {ID}"]
    print(f"ratio model-id / python -c pass: {model_id / base:.1f}x  (+{(model_id - base) * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
