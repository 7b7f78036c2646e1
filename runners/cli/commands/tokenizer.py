"""sftgate tokenizer DIR: the prompt-alignment and EOS gates on a local tokenizer folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sftgate.gates.frame import registry
from sftgate.gates.frame.core import InputError
from sftgate.gates.frame.execute import run_gate
from sftgate.gates.frame.report import Report
from sftgate.gates.readers.textfile import PATH_HINT
from sftgate.runners.cli.commands.argtypes import json_object, positive_int

if TYPE_CHECKING:
    from sftgate.runners.cli.streams import IO

TORCH_FREE = True  # the script loads tokenizers without torch (tokenizer_io.without_torch)
HELP = "check prompt alignment and EOS handling with a local tokenizer (no weights)"
DESCRIPTION = """\
Run the prompt-alignment and eos gates on a LOCAL tokenizer folder (tokenizer.json /
tokenizer.model / tekken.json, tokenizer_config.json, chat_template.jinja and
generation_config.json when present; chat_template.jinja wins over tokenizer_config.json, as in
transformers). Nothing is downloaded, no remote code runs, no weights are loaded.

Every example of --data is rendered and labelled by the same module the trainer uses
(gates/tokenizer/rendering.py): messages through the chat template, prompt/completion as given (+ EOS);
prompt tokens masked, completion and final EOS/end-of-turn trained. The gates then check:
  prompt_not_prefix  the prompt's tokens are not a prefix of prompt + completion (trailing space)
  double_bos         BOS twice at the start
  template_mismatch  --cases render differently at inference (--inference-system,
                     --inference-chat-template), or the template ignores add_generation_prompt
  implicit_system_prompt  the template adds a system prompt the data did not give
  template_kwargs_mismatch  --template-kwargs and --inference-template-kwargs differ (enable_thinking)
  template_tokens_trained   the template inserts tokens before the reply that get trained (Qwen3's
                     empty <think></think>); the suggestion names the template_kwargs that fix it
  special_token_in_content  message text holds '<|im_end|>', '</s>', '[INST]'...: tokenized as the
                     control token (--split-special-tokens tokenizes message text as text)
  missing_bos        the template never writes BOS but the tokenizer expects one (Gemma)
  record_not_rendered  records the template cannot render or with nothing to train: not a pass
  no_eos_token, eos_not_appended, eos_masked (pad == eos with --collator mask_pad),
  eos_truncated (--max-seq-len), eos_not_in_stop_ids (generation_config.json),
  stop_token_not_trained (user/assistant/user probe)
Without --data, the chat template itself is probed. --show K prints the first K examples token
by token (id, trained or masked): the view to read when a gate fails.

examples:
  sftgate tokenizer ./my-tokenizer
  sftgate tokenizer ./my-tokenizer --data train.jsonl --max-seq-len 2048
  sftgate tokenizer ./my-tokenizer --data train.jsonl --show 2
  sftgate tokenizer ./my-tokenizer --cases cases.jsonl --system "Answer in JSON." --no-inference-system
  sftgate tokenizer ./my-tokenizer --cases cases.jsonl --inference-chat-template serving.jinja
  sftgate tokenizer ./my-tokenizer --data train.jsonl --collator mask_pad --format json
  sftgate tokenizer ./qwen3 --data train.jsonl --template-kwargs '{"enable_thinking": false}'
  sftgate tokenizer ./my-tokenizer --data train.jsonl --split-special-tokens
"""




def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="local tokenizer folder")
    parser.add_argument("--data", metavar="TRAIN.jsonl", help="training data (JSONL, JSON array, Parquet, save_to_disk folder)")
    parser.add_argument("--cases", metavar="CASES.jsonl", help="fixed eval cases, rendered the training and the inference way")
    parser.add_argument("--max-seq-len", type=positive_int, metavar="N", help="training max_seq_len (for eos_truncated)")
    parser.add_argument("--show", type=positive_int, metavar="K", help="print the first K examples token by token")
    parser.add_argument("--max-tokens", type=positive_int, default=120, metavar="N",
                        help="tokens per example in --show (default 120; the end is always shown)")
    prompt = parser.add_argument_group("prompt (config prompt.*)")
    prompt.add_argument("--system", metavar="S", help="system prompt used in training (prompt.system)")
    prompt.add_argument("--chat-template", metavar="FILE", help="a .jinja template used in training instead of the folder's")
    prompt.add_argument("--template", metavar="T", help="a {prompt} template for prompt/completion data (prompt.template)")
    inference = prompt.add_mutually_exclusive_group()
    inference.add_argument("--inference-system", metavar="S", help="system prompt used at inference, if it differs")
    inference.add_argument("--no-inference-system", action="store_true", help="inference uses no system prompt")
    prompt.add_argument("--inference-chat-template", metavar="FILE", help="the .jinja template serving uses, if it differs")
    prompt.add_argument("--template-kwargs", type=json_object, metavar="JSON",
                        help="chat-template variables used in training (prompt.template_kwargs), e.g. '{\"enable_thinking\": false}'")
    prompt.add_argument("--inference-template-kwargs", type=json_object, metavar="JSON",
                        help="the template variables serving passes, if they differ (prompt.inference_template_kwargs)")
    prompt.add_argument("--split-special-tokens", action="store_true",
                        help="tokenize message text as text: a control token's string in content stays text "
                             "(prompt.split_special_tokens)")
    train = parser.add_argument_group("training")
    train.add_argument("--collator", choices=("completion_only", "mask_pad"), default="completion_only",
                       help="label masking of the trainer's collator (mask_pad: every pad label, EOS too when pad == eos)")
    train.add_argument("--generation-config", metavar="FILE", help="the served generation_config.json (default: DIR's)")
    train.add_argument("--max-records", type=positive_int, metavar="N", help="check only the first N records of --data")
    parser.add_argument("--fail-fast", action="store_true", help="stop each gate at its first error")


def _existing(path: str | None, what: str) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file ({what})", hint=PATH_HINT)
    return p


def run(args: argparse.Namespace, io: IO) -> Report:
    from sftgate.gates.readers import tokenizer_io
    from sftgate.gates.tokenizer import eos, prompt_alignment, rendering
    from sftgate.gates.tokenizer.prompt_spec import kwargs_items
    from sftgate.gates.tokenizer.token_view import show_examples

    folder = Path(args.dir)
    tokenizer = tokenizer_io.load_tokenizer_cached(folder)  # a bad folder is exit 2 before any gate runs
    data = _existing(args.data, "--data")
    cases = _existing(args.cases, "--cases")
    generation = _existing(args.generation_config, "--generation-config")
    chat = rendering.read_template_file(args.chat_template) if args.chat_template else None
    kwargs = kwargs_items(args.template_kwargs, "--template-kwargs")
    spec = rendering.PromptSpec(system=args.system, template=args.template, chat_template=chat, template_kwargs=kwargs,
                                split_special_tokens=args.split_special_tokens)
    inference_chat = rendering.read_template_file(args.inference_chat_template) if args.inference_chat_template else chat
    inference_system = None if args.no_inference_system else (args.inference_system if args.inference_system is not None else args.system)
    if args.inference_template_kwargs is not None:
        kwargs = kwargs_items(args.inference_template_kwargs, "--inference-template-kwargs")
    inference = rendering.PromptSpec(system=inference_system, template=args.template, chat_template=inference_chat,
                                     template_kwargs=kwargs, split_special_tokens=args.split_special_tokens)
    source = args.chat_template or eos.template_location(folder)
    progress = io.progress_enabled(args.quiet)

    report = Report(command=f"tokenizer {args.dir}")
    common = {"tokenizer": folder, "data": data, "spec": spec, "max_seq_len": args.max_seq_len,
              "template_source": source, "max_records": args.max_records, "progress": progress}
    gate = registry.get("prompt-alignment")
    report.add(run_gate(gate.name, gate.stage, prompt_alignment.check, required=gate.required, fail_fast=args.fail_fast,
                        cases=cases, inference_spec=inference,
                        inference_template_source=args.inference_chat_template,
                        kwargs_source="--inference-template-kwargs", **common))
    gate = registry.get("eos")
    report.add(run_gate(gate.name, gate.stage, eos.check, required=gate.required, fail_fast=args.fail_fast,
                        collator=args.collator, generation_config=generation, **common))

    if args.show:
        to_stdout = args.format == "table"
        stream = io.stdout if to_stdout else io.stderr
        color = bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in io.env
        if data is not None:
            view = show_examples(tokenizer, data, spec, args.show, max_seq_len=args.max_seq_len, collator=args.collator,
                                 color=color, max_tokens=args.max_tokens)
        else:
            view = _probe_view(tokenizer, spec, args.collator, color, args.max_tokens)
        stream.write(view + "\n")
    return report


def _probe_view(tokenizer: object, spec: object, collator: str, color: bool, max_tokens: int) -> str:
    """Without --data: the user/assistant probe, so the template's labels can still be read."""
    from sftgate.gates.tokenizer import rendering
    from sftgate.gates.tokenizer.token_view import format_encoded

    example = {"messages": [{"role": "user", "content": "What is the capital of France?"},
                            {"role": "assistant", "content": "Paris."}]}
    try:
        enc = rendering.encode_example(tokenizer, example, spec)  # type: ignore[arg-type]
    except rendering.RenderError as exc:
        return f"probe example not shown: {exc}\n"
    labels = rendering.collate([enc], rendering.pad_id_for(tokenizer), mask_pad_labels=collator == "mask_pad")["labels"][0]
    return format_encoded(tokenizer, enc, labels=labels, title="probe (no --data)  messages", color=color, max_tokens=max_tokens)
