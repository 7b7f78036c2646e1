"""sftgate merge CONFIG: merge the trained adapter into its base and run the merge stage's gates."""

from __future__ import annotations

import argparse
import contextlib
from typing import TYPE_CHECKING

from sftgate.gates.frame.report import Report

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

HELP = "merge the LoRA adapter into its full-precision base and prove it (merge-equivalence, artifacts, merge-dtype)"
DESCRIPTION = """\
Merge the adapter that `sftgate train CONFIG` saved (train.output_dir) into the base model
(model.id, a local folder or a Hub ID at model.revision) with peft's merge_and_unload, in the
base's own dtype unless --dtype or model.dtype says otherwise, and save a complete model
folder: safetensors weights, tokenizer files, the chat template, and a generation_config.json
whose eos_token_id includes the template's end-of-turn token.
The folder is written to a temp folder and renamed into place: never half-written.

A quantized base (4-bit / 8-bit) is refused: merging into rounded weights changes behaviour.
Merge onto the full-precision base; serve the adapter on the quantized base otherwise.

Then the merge stage's gates run:
  merge-equivalence  merged vs base + adapter on the fixed cases (data.cases): logits within
                     fp32 atol 1e-4 (bf16: atol 5e-2 + rtol 1.6e-2) and identical greedy
                     outputs (merge_mismatch); merged equal to base (merge_no_effect); NaN/Inf
                     weights (nan_weights)
  artifacts          config, safetensors, tokenizer, chat template, generation_config present;
                     no pickle weights, no remote code
  merge-dtype        the merged tensors keep the base's dtype (or --dtype) and the base's tensor
                     set: a bf16 base is not saved as fp32 twice its size (merge_dtype_drift)

examples:
  sftgate merge sftgate.yaml
  sftgate merge sftgate.yaml --adapter runs/x/adapter --out runs/x/merged
  sftgate merge sftgate.yaml --dtype bfloat16 --format json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="sftgate.yaml")
    parser.add_argument("--adapter", metavar="DIR",
                        help="the adapter folder (default: train.output_dir/adapter, or train.output_dir)")
    parser.add_argument("--out", metavar="DIR", help="where the merged model goes (default: train.output_dir/merged)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"),
                        help="dtype of the merge and of the saved weights (default: model.dtype, else the base's own dtype)")


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.gates.readers import config as config_mod
    from sftgate.runners.pipeline.layout import run_dir_for
    from sftgate.runners.pipeline.run_lock import run_lock
    from sftgate.runners.work.merge import merge_stage

    cfg = config_mod.load(args.config)
    report = Report(command=f"merge {args.config}")
    say = None if args.quiet else io.say
    run_dir = run_dir_for(cfg)
    held = run_lock(run_dir, command=report.command) if run_dir.is_dir() else contextlib.nullcontext()
    with held:  # one writer per run folder
        merge_stage(cfg, report, adapter=args.adapter, out=args.out, dtype=args.dtype, say=say,
                    progress=io.progress_enabled(args.quiet))
    return report
