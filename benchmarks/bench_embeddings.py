"""Benchmark: the embeddings gate on a Llama-3-8B-shaped base, against loading the matrices.

Writes a model folder whose ``model.safetensors`` holds a 128256 x HIDDEN embedding and lm_head
(bf16; HIDDEN 4096 by default: 2 x 1.05 GB, the shapes of Meta-Llama-3-8B) with the rows of
``<|start_header_id|>``, ``<|end_header_id|>`` and ``<|eot_id|>`` zeroed, and the Llama 3
tokenizer that llama-models ships (converted offline). Then, each in a fresh process:

- the anchor: ``safetensors.safe_open(...).get_tensor`` of both matrices and the norm of every
  row (what a check over the whole matrix costs, unsloth's ``fix_untrained_tokens`` style);
- ``embeddings.check`` (the gate: headers, 512 sampled rows per matrix, the checked rows), with
  the import, the tokenizer load and the chat-template probe timed apart (``sftgate check`` does
  them once for every tokenizer gate), and the peak RSS reset (``/proc/self/clear_refs``) before
  the gate reads its rows.

It prints the seconds and the peak RSS (``VmHWM``) of each, and the bytes of the matrices. The
target: the gate's peak RSS does not grow with the matrices (a few MB of rows, not 2 GB). The
page cache is warm for both (the files were just written).

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

PEAK = """
def peak_mb():  # VmHWM: this process's own high-water mark (ru_maxrss would carry the parent's over exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

ANCHOR = PEAK + """
import json, sys, time
start = time.perf_counter()
from safetensors import safe_open
with safe_open(sys.argv[1] + "/model.safetensors", "pt") as f:
    embed, head = f.get_tensor("model.embed_tokens.weight"), f.get_tensor("lm_head.weight")
norms = embed.float().norm(dim=1), head.float().norm(dim=1)  # every row, as a check that loads them does
print(json.dumps({"seconds": time.perf_counter() - start, "zero_rows": int((norms[0] == 0).sum()),
                  "peak_rss_mb": peak_mb()}))
"""

GATE = PEAK + """
import json, sys, time
start = time.perf_counter()
from sftgate.gates.readers.tokenizer_io import load_tokenizer_cached
from sftgate.gates.tokenizer import embeddings, vocab
from sftgate.gates.tokenizer.prompt_spec import PromptSpec
vocab.template_tokens(load_tokenizer_cached(sys.argv[1]), PromptSpec())  # shared with the other tokenizer gates
ready = time.perf_counter()
before = peak_mb()
with open("/proc/self/clear_refs", "w") as fh:  # reset VmHWM: measure the gate's own rows from here
    fh.write("5")
findings = list(embeddings.check(model_dir=sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - start, "gate_seconds": time.perf_counter() - ready,
                  "import_tokenizer_and_probe_seconds": ready - start, "findings": sorted({f.rule for f in findings}),
                  "untrained": sorted(f.evidence.get("id") for f in findings if f.rule == "untrained_token"),
                  "peak_rss_mb_before_the_rows": before, "peak_rss_mb": peak_mb()}))
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
    parser.add_argument("--build", metavar="DIR", help=argparse.SUPPRESS)  # the child that writes the folder
    args = parser.parse_args()
    if args.build:
        print(build(Path(args.build), args.hidden))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-embeddings-") as tmp:
        folder = Path(tmp)
        matrix_bytes = int(subprocess.run(
            [sys.executable, __file__, "--build", str(folder), "--hidden", str(args.hidden)],
            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        figures = {"vocab": VOCAB, "hidden": args.hidden, "matrix_mb": round(matrix_bytes / 2**20, 1),
                   "load_matrices": timed(ANCHOR, folder / "model"), "embeddings_gate": timed(GATE, folder / "model")}
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
