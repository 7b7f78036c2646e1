"""sftgate eval --model DIR [--adapter DIR] --cases CASES.jsonl --schema SCHEMA.json: generate and gate."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sftgate.gates.frame.core import Stage
from sftgate.gates.frame.report import Report
from sftgate.runners.cli.commands.argtypes import json_object, positive_int, rate

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

HELP = "generate on fixed cases (batched greedy) and run strict-json and eos-behaviour"
DESCRIPTION = """\
Generate greedily on every fixed case with a local model (optionally base + a peft adapter),
in batches, with the prompt rendered and tokenized exactly as in training (sftgate.gates.tokenizer.rendering),
then gate the generations:

  strict-json    every output is strict JSON, valid against SCHEMA, equal to the case's
                 "expected" value when it has one; pass rate against --min-pass-rate
  eos-behaviour  the share of cases that stopped with EOS / end-of-turn before
                 --max-new-tokens, against --min-eos-rate
  provenance     with --adapter: the adapter's base_model_name_or_path names --model

The generations are written to --out (default: outputs.jsonl next to CASES), one line per case
({"id", "output", "stop_reason", "expected"}), so `sftgate json-check` re-runs on them.
CASES.jsonl: {"id": "c1", "prompt": "..."} or {"id": "c1", "messages": [...]}, "expected" optional.
No download: --model is a local folder. fp32 on CPU, bf16 on a GPU.

examples:
  sftgate eval --model runs/x/merged --cases cases.jsonl --schema schema.json
  sftgate eval --model models/base --adapter runs/x/adapter --cases cases.jsonl --schema schema.json \\
      --max-new-tokens 96 --out runs/x/outputs.jsonl --format json
  sftgate json-check runs/x/outputs.jsonl --schema schema.json
"""






def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR", help="local model folder (the base, or a merged model)")
    parser.add_argument("--adapter", metavar="DIR", help="a peft adapter folder to apply on --model")
    parser.add_argument("--cases", required=True, metavar="CASES.jsonl", help="fixed cases, one JSON object per line")
    parser.add_argument("--schema", required=True, metavar="SCHEMA.json", help="JSON Schema every output must satisfy")
    parser.add_argument("--max-new-tokens", type=positive_int, default=128, metavar="N", help="token limit per case (default 128)")
    parser.add_argument("--batch-size", type=positive_int, default=8, metavar="N", help="cases per batch (default 8)")
    parser.add_argument("--out", metavar="OUTPUTS.jsonl", help="where the generations go (default: outputs.jsonl next to CASES)")
    parser.add_argument("--min-pass-rate", type=rate, default=1.0, metavar="R", help="strict-json minimum pass rate (default 1.0)")
    parser.add_argument("--min-eos-rate", type=rate, default=1.0, metavar="R", help="minimum share of cases stopping with EOS (default 1.0)")
    parser.add_argument("--system", metavar="TEXT", help="system prompt, as prompt.system in training")
    parser.add_argument("--chat-template", metavar="FILE", help="a .jinja chat template overriding the tokenizer's")
    parser.add_argument("--template-kwargs", type=json_object, metavar="JSON",
                        help="chat-template variables, as prompt.template_kwargs in training, e.g. '{\"enable_thinking\": false}'")
    parser.add_argument("--exact-keys", action="store_true", help="objects must have exactly the schema's properties")


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.gates.adapter import eos_behaviour, strict_json
    from sftgate.gates.adapter.output_schema import OutputSchema
    from sftgate.gates.frame.execute import run_gate
    from sftgate.gates.readers.cases import load_cases
    from sftgate.gates.readers.roles import accepted_roles, folder_template_text
    from sftgate.gates.tokenizer.prompt_spec import kwargs_items
    from sftgate.gates.tokenizer.rendering import PromptSpec, read_template_file
    from sftgate.gates.train import provenance
    from sftgate.runners.demo.tiny_model import require_model_dir
    from sftgate.runners.work.generate import generate_cases, load_for_generation, with_lines, write_outputs

    say = (lambda _m: None) if args.quiet else io.say
    report = Report(command="eval " + " ".join(_argv(args)))
    model_dir = require_model_dir(args.model)
    spec = PromptSpec(system=args.system,
                      chat_template=read_template_file(args.chat_template) if args.chat_template else None,
                      template_kwargs=kwargs_items(args.template_kwargs, "--template-kwargs"))
    cases = load_cases(args.cases, roles=accepted_roles(spec.chat_template or folder_template_text(model_dir)))
    schema = OutputSchema.load(args.schema, exact_keys=args.exact_keys)
    out = Path(args.out) if args.out else Path(args.cases).with_name("outputs.jsonl")
    if args.adapter:
        result = report.add(run_gate(provenance.GATE, Stage.ADAPTER, _adapter_base, adapter=Path(args.adapter),
                                     model=model_dir))
        if result.blocks:
            return report
    say(f"loading {model_dir}" + (f" + adapter {args.adapter}" if args.adapter else ""))
    model, tokenizer = load_for_generation(model_dir, adapter=args.adapter)
    stats: dict[str, Any] = {}
    say(f"generating on {len(cases)} cases (batch {args.batch_size}, max_new_tokens {args.max_new_tokens})")
    records = generate_cases(model, tokenizer, cases, spec, max_new_tokens=args.max_new_tokens,
                             batch_size=args.batch_size, stats=stats)
    write_outputs(out, records)
    report.artifacts["outputs"] = str(out)
    numbered = with_lines(records)
    strict = report.add(run_gate(strict_json.GATE, Stage.ADAPTER, strict_json.check_records, records=numbered,
                                 schema=schema, source=str(out), min_pass_rate=args.min_pass_rate))
    strict.metrics.update({k if k.startswith("generat") else f"generation_{k}": v for k, v in stats.items()
                           if k in ("generation_seconds", "tokens_per_second", "generated_tokens")})
    report.add(run_gate(eos_behaviour.GATE, Stage.ADAPTER, eos_behaviour.check, records=numbered,
                        max_new_tokens=args.max_new_tokens, min_eos_rate=args.min_eos_rate, source=str(out)))
    say(f"outputs written to {out}")
    return report


def _adapter_base(*, adapter: Path, model: Path, metrics: dict[str, Any]) -> Any:
    """The provenance gate's adapter-base rule: the adapter was trained on --model."""
    from sftgate.gates.train import provenance

    return provenance.adapter_base_findings(adapter, str(model.resolve()), metrics=metrics)


def _argv(args: argparse.Namespace) -> list[str]:
    out = ["--model", str(args.model)]
    if args.adapter:
        out += ["--adapter", str(args.adapter)]
    return [*out, "--cases", str(args.cases), "--schema", str(args.schema)]
