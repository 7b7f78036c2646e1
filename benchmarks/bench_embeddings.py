"""Benchmark: the embeddings gate on a Llama-3-8B-shaped base, against loading the matrices.

Writes a model folder whose ``model.safetensors`` holds a 128256 x HIDDEN embedding and lm_head
(bf16; HIDDEN 4096 by default: 2 x 1.05 GB, the shapes of Meta-Llama-3-8B) with the rows of
``<|start_header_id|>``, ``<|end_header_id|>`` and ``<|eot_id|>`` zeroed, and the Llama 3
tokenizer that llama-models ships (converted offline). Then, each in a fresh process:

- the anchor: ``safetensors.safe_open(...).get_tensor`` of both matrices and the row norms of
  the same tokens (what a check that loads the weights costs);
- ``embeddings.check`` (the gate: headers, 512 sampled rows per matrix, the checked rows).

It prints the seconds and the peak RSS of each, and the bytes of the matrices. The target: the
gate's peak RSS does not grow with the matrices (a few MB of rows, not 2 GB).

    .venv/bin/python benchmarks/bench_embeddings.py                 # hidden 4096 (2.1 GB written)
    .venv/bin/python benchmarks/bench_embeddings.py --hidden 1024 --json bench.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOCAB = 128256
UNTRAINED = [128006, 128007, 128009]

ANCHOR = """
import json, resource, sys, time
start = time.perf_counter()
from safetensors import safe_open
with safe_open(sys.argv[1] + "/model.safetensors", "pt") as f:
    embed, head = f.get_tensor("model.embed_tokens.weight"), f.get_tensor("lm_head.weight")
norms = [embed[i].float().norm().item() for i in (128006, 128007, 128009)]
print(json.dumps({"seconds": time.perf_counter() - start, "zero_rows": sum(n == 0 for n in norms),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

GATE = """
import json, resource, sys, time
start = time.perf_counter()
from sftgate.gates.tokenizer import embeddings
findings = list(embeddings.check(model_dir=sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - start, "findings": sorted({f.rule for f in findings}),
                  "untrained": sorted(f.evidence.get("id") for f in findings if f.rule == "untrained_token"),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build(folder: Path, hidden: int) -> int:
    import torch
    from safetensors.torch import save_file

    from fixtures.embeddings import embedding_folder
    from fixtures.tokenizers import tokenizer_folders

    tok = tokenizer_folders(folder / "tokenizers").base("llama3")
    model = embedding_folder(folder / "model", vocab_size=VOCAB, tokenizer_dir=tok, hidden=8)  # config + tokenizer
    gen = torch.Generator().manual_seed(0)
    tensors = {name: (torch.randn((VOCAB, hidden), generator=gen) * 0.02).to(torch.bfloat16)
               for name in ("model.embed_tokens.weight", "lm_head.weight")}
    for matrix in tensors.values():
        matrix[UNTRAINED] = 0
    save_file(tensors, str(model / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((model / "config.json").read_text())
    config.update(hidden_size=hidden, dtype="bfloat16")
    (model / "config.json").write_text(json.dumps(config))
    return sum(t.numel() * 2 for t in tensors.values())


def timed(code: str, model: Path) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - start, 3)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--json", metavar="PATH", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-embeddings-") as tmp:
        folder = Path(tmp)
        matrix_bytes = build(folder, args.hidden)
        figures = {"vocab": VOCAB, "hidden": args.hidden, "matrix_mb": round(matrix_bytes / 2**20, 1),
                   "load_matrices": timed(ANCHOR, folder / "model"), "embeddings_gate": timed(GATE, folder / "model")}
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
