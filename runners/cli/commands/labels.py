"""sftgate labels DATA --tokenizer DIR: the label gate on tokenized data from any trainer."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sftgate.gates.frame import registry
from sftgate.gates.frame.core import InputError
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.report import Report
from sftgate.gates.readers.textfile import PATH_HINT
from sftgate.runners.cli.commands.argtypes import positive_int, rate

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

TORCH_FREE = True  # the script loads the tokenizer without torch (tokenizer_io.without_torch)
HELP = "check the labels another trainer built (TRL, axolotl, LLaMA-Factory): tokenized data, no weights"
DESCRIPTION = """\
Check tokenized training data as a trainer holds it after preprocessing: a datasets save_to_disk
folder (axolotl's dataset_prepared_path, LLaMA-Factory's tokenized_path, TRL's prepared dataset),
Parquet, Arrow or JSONL with input_ids and labels (attention_mask, position_ids, completion_mask /
assistant_masks and seq_lengths are read when present; without labels they are built as TRL
builds them). The roles are found from the ids alone: the tokenizer's chat template is rendered on
probe conversations to learn each role's header tokens. Millions of rows, constant memory.

  nothing_trained       a row (or packed example) whose labels are all -100
  prompt_trained        system/user/tool tokens supervised (--allow-prompt-training: a warning)
  labels_shifted        labels already shifted by one (the model shifts them again)
  pad_trained           labels on attention_mask 0 or trailing pad positions
  packing_leak          several examples in a row, position_ids not reset between them
  completion_truncated  a row cut at max length inside a trained span (the EOS is gone)
  token_out_of_range    an id or label beyond the vocabulary (--model: config.json vocab_size)
  eos_masked, eos_not_appended   an assistant turn whose end-of-turn token is masked / missing
--show K prints the first K rows with a problem token by token (trained or masked).

examples:
  sftgate labels ./last_run_prepared/3d1f5c --tokenizer ./base                # axolotl preprocess
  sftgate labels ./tokenized --tokenizer ./base --split train --show 2        # LLaMA-Factory
  sftgate labels train.parquet --tokenizer ./base --model ./base --max-seq-len 2048
  sftgate labels dumped.jsonl --tokenizer ./base --format json --junit-xml labels.xml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="tokenized data: save_to_disk folder, .parquet, .arrow or .jsonl")
    parser.add_argument("--tokenizer", required=True, metavar="DIR", help="the local tokenizer folder the data was made with")
    parser.add_argument("--model", metavar="DIR", help="the base model folder (config.json vocab_size bounds the ids)")
    parser.add_argument("--show", type=positive_int, metavar="K", help="print the first K rows with a problem token by token")
    parser.add_argument("--max-tokens", type=positive_int, default=120, metavar="N",
                        help="tokens per row in --show (default 120; the end is always shown)")
    parser.add_argument("--split", metavar="SPLIT", help="the split of a DatasetDict folder (default: train)")
    parser.add_argument("--chat-template", metavar="FILE", help="the .jinja template the trainer used, if not the folder's")
    parser.add_argument("--max-seq-len", type=positive_int, metavar="N",
                        help="the trainer's max length (default: the longest row), for completion_truncated")
    parser.add_argument("--max-truncated-share", type=rate, default=0.0, metavar="R",
                        help="share of truncated rows tolerated as a warning (default 0)")
    parser.add_argument("--allow-prompt-training", action="store_true",
                        help="training on prompts is intended (train_on_inputs): prompt_trained is a warning")
    parser.add_argument("--max-rows", type=positive_int, metavar="N", help="check only the first N rows")


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.gates.readers import tokenizer_io
    from sftgate.gates.tokenizer import labels
    from sftgate.gates.tokenizer.prompt_spec import PromptSpec, read_template_file

    folder = Path(args.tokenizer)
    if not folder.exists():
        raise InputError(f"{args.tokenizer}: no such tokenizer folder (--tokenizer)", hint=PATH_HINT)
    tokenizer = tokenizer_io.load_tokenizer_cached(folder)  # a bad folder is exit 2 before the gate runs
    model = Path(args.model) if args.model else None
    if model is not None and not model.is_dir():
        raise InputError(f"{args.model}: no such model folder (--model)", hint=PATH_HINT)
    spec = PromptSpec(chat_template=read_template_file(args.chat_template) if args.chat_template else None)
    kept: dict[int, tuple[list[int], list[int]]] = {}
    report = Report(command=f"labels {args.data}")
    gate = registry.get("labels")
    result = report.add(run_gate(
        gate.name, gate.stage, labels.check, required=gate.required,
        data=args.data, tokenizer=folder, model=model, spec=spec, split=args.split, max_seq_len=args.max_seq_len,
        max_truncated_share=args.max_truncated_share, allow_prompt_training=args.allow_prompt_training,
        max_rows=args.max_rows, keep_rows=args.show or 0, kept=kept, progress=io.progress_enabled(args.quiet),
    ))
    if args.show:
        stream = io.stdout if args.format == "table" else io.stderr
        color = bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in io.env
        stream.write(_view(tokenizer, spec, kept, result.findings, args.data, color, args.max_tokens) + "\n")
    return report


def _view(tokenizer: object, spec: object, kept: dict[int, tuple[list[int], list[int]]], findings: list,  # type: ignore[type-arg]
          source: str, color: bool, max_tokens: int) -> str:
    """The token view of the kept problem rows, each titled with the rules that name it."""
    from sftgate.gates.tokenizer.label_building import Encoded
    from sftgate.gates.tokenizer.token_view import format_encoded
    from sftgate.gates.tokenizer.turn_markers import learn_markers
    from sftgate.gates.tokenizer.turn_regions import assistant_spans

    if not kept:
        return "no rows with a problem to show"
    markers = learn_markers(tokenizer, spec)  # type: ignore[arg-type]
    parts = []
    for row, (ids, row_labels) in kept.items():
        rules = sorted({f.rule for f in findings if row in (f.evidence or {}).get("first_rows", [])})
        title = f"{source}:{row}  {', '.join(rules) or 'row with a problem'}"
        spans = assistant_spans(ids, markers)  # the assistant turns, when the roles are known
        encoded = (Encoded(ids, row_labels, 0, markers.end_of_turn, False) if spans is None
                   else Encoded(ids, row_labels, len(ids), markers.end_of_turn, False, spans))
        parts.append(format_encoded(tokenizer, encoded, title=title, color=color, max_tokens=max_tokens))
    return "\n".join(parts)
