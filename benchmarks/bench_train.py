"""Training throughput of sftgate's runner vs TRL's SFTTrainer, and the gates' share of a pipeline run.

Both trainers get the same tiny Mistral-architecture model, the same data (the demo's synthetic
strict-JSON extraction set, as chat prompt/completion pairs), the same LoRA (r 16, all-linear),
batch size, learning rate, schedule, sequence length, seed and number of steps, on CPU, in one
process, alternating (runner, TRL, runner, TRL...) so that machine load hits both alike. Tokens
are the non-pad input tokens each trainer fed the model; time is the ``trainer.train()`` call.

Then the whole pipeline (``sftgate run``) runs once on a tiny project and the seconds spent in
gates are compared with the wall time of the run (training, generation and merging are not gates).

trl is a bench-only dependency: ``pip install trl`` (it must not pull another torch).

    python benchmarks/bench_train.py
    python benchmarks/bench_train.py --steps 60 --rounds 3 --json results.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `fixtures` when run as a script

SYSTEM = "Reply with JSON: name, age, city, job."


def build(root: Path, n_train: int, hidden: int) -> dict[str, Path]:
    from sftgate.runners.demo.example_data import make_data, write_jsonl
    from sftgate.runners.demo.tiny_model import build_tiny_model
    from sftgate.runners.demo.tiny_tokenizer import build_tiny_tokenizer

    data = make_data(0, n_train=n_train)
    train = write_jsonl(root / "train.jsonl", data.train)
    tok = build_tiny_tokenizer(root / "tok", corpus=data.corpus(), vocab_size=1000)
    model = build_tiny_model(root / "model", tok, hidden_size=hidden, layers=2)
    # the same records for TRL, as conversational prompt/completion (completion-only loss, its default)
    rows = [{"prompt": [{"role": "system", "content": SYSTEM}, row["messages"][0]], "completion": [row["messages"][1]]}
            for row in data.train]
    trl_train = write_jsonl(root / "trl-train.jsonl", rows)
    return {"train": train, "trl_train": trl_train, "model": model, "tokenizer": tok}


def run_runner(paths: dict[str, Path], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from sftgate.gates.tokenizer.rendering import PromptSpec
    from sftgate.runners.work.sft import train
    from sftgate.runners.work.sft_settings import TrainSettings

    settings = TrainSettings(max_steps=args.steps, lr=1e-2, batch_size=args.batch_size, lora_r=16, lora_alpha=32,
                             target_modules="all-linear", max_seq_len=128, seed=0, logging_steps=10)
    result = train(paths["model"], paths["train"], out, settings=settings, spec=PromptSpec(system=SYSTEM),
                   cache_dir=out.parent / "cache")
    return {"tokens": result.tokens, "seconds": result.seconds, "final_loss": result.final_loss}


def run_trl(paths: dict[str, Path], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from sftgate.gates.readers.tokenizer_io import load_tokenizer
    from sftgate.runners.demo.tiny_model import quiet_transformers

    tokenizer = load_tokenizer(paths["tokenizer"])
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(str(paths["model"]))
    data = datasets.load_dataset("json", data_files=str(paths["trl_train"]), split="train",
                                 cache_dir=str(out.parent / "cache"))
    config = SFTConfig(
        output_dir=str(out), max_length=128, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
        learning_rate=1e-2, lr_scheduler_type="linear", warmup_steps=0.05, logging_steps=10, save_strategy="no",
        report_to="none", seed=0, data_seed=0, use_cpu=True, bf16=False, packing=False,
        include_num_input_tokens_seen="non_padding", disable_tqdm=True, dataloader_num_workers=0,
        optim="adamw_torch",
    )
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    with quiet_transformers():
        trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                             peft_config=lora)
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"tokens": int(trainer.state.num_input_tokens_seen), "seconds": seconds,
            "final_loss": losses[-1] if losses else None}


def pipeline_share(root: Path, steps: int) -> dict[str, Any]:
    """Wall time of `sftgate run` on a tiny project vs the seconds its gates took."""
    from fixtures.runner import tiny_config, tiny_project
    from sftgate.runners.pipeline.run import run_pipeline

    project = tiny_project(root / "pipeline", n_train=400, n_cases=20, hidden_size=64,
                           config=tiny_config(steps=steps, max_new_tokens=32))
    start = time.perf_counter()
    report = run_pipeline(project.config, resume=False)
    wall = time.perf_counter() - start
    steps = {"sft", "merge", "generate"}
    gates = sum(g.seconds for g in report.gates if g.gate not in steps)
    work = sum(g.seconds for g in report.gates if g.gate in steps)
    generation = sum(g.metrics.get("generation_seconds", 0.0) for g in report.gates if g.gate == "strict-json")
    per_gate: dict[str, float] = {}
    for g in report.gates:
        key = f"{g.stage.value}/{g.gate}"
        per_gate[key] = round(per_gate.get(key, 0.0) + g.seconds, 3)
    return {"passed": report.passed, "wall_seconds": round(wall, 2), "gate_seconds": round(gates, 2),
            "train_merge_seconds": round(work, 2), "generation_seconds": round(generation, 2), "gate_share": round(gates / wall, 3) if wall else None,
            "per_gate": per_gate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=800)
    parser.add_argument("--no-pipeline", action="store_true", help="skip the pipeline share measurement")
    parser.add_argument("--pipeline-steps", type=int, default=100, help="LoRA steps of the pipeline run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    import datasets
    import torch

    datasets.disable_progress_bars()
    results: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "steps": args.steps,
                               "batch_size": args.batch_size, "hidden": args.hidden}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        paths = build(root, args.n_train, args.hidden)
        runs: dict[str, list[dict[str, Any]]] = {"runner": [], "trl": []}
        for r in range(args.rounds):
            for name, fn in (("runner", run_runner), ("trl", run_trl)):
                res = fn(paths, root / f"{name}-{r}", args)
                res["tokens_per_second"] = res["tokens"] / res["seconds"]
                runs[name].append(res)
                print(f"round {r + 1} {name:6s}: {res['tokens']} tokens in {res['seconds']:.2f}s = "
                      f"{res['tokens_per_second']:.0f} tokens/s, final loss {res['final_loss']}", flush=True)
        for name, items in runs.items():
            results[name] = {
                "tokens_per_second_median": statistics.median(x["tokens_per_second"] for x in items),
                "tokens_per_second_best": max(x["tokens_per_second"] for x in items),
                "tokens": items[0]["tokens"],
                "final_loss": [x["final_loss"] for x in items],
            }
        ratio = results["runner"]["tokens_per_second_median"] / results["trl"]["tokens_per_second_median"]
        results["runner_vs_trl"] = round(ratio, 3)
        print(f"runner {results['runner']['tokens_per_second_median']:.0f} tokens/s vs TRL SFTTrainer "
              f"{results['trl']['tokens_per_second_median']:.0f} tokens/s (median of {args.rounds}): ratio {ratio:.2f}")
        if not args.no_pipeline:
            share = pipeline_share(root, args.pipeline_steps)
            results["pipeline"] = share
            print(f"pipeline: {share['wall_seconds']}s wall, gates {share['gate_seconds']}s "
                  f"({100 * (share['gate_share'] or 0):.0f}%), training+merge {share['train_merge_seconds']}s, "
                  f"generation {share['generation_seconds']}s")
            for key, seconds in share["per_gate"].items():
                print(f"  {key:32s} {seconds:8.3f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
