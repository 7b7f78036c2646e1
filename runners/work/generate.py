"""Batched greedy generation on fixed cases, shared by ``sftgate eval`` and the pipeline.

Each case's prompt is tokenized by :func:`sftgate.gates.tokenizer.rendering.encode_prompt`, exactly as in training.
Prompts are sorted by length, left-padded into batches and decoded greedily. A generation stops
at the first stop id (the model's ``generation_config`` EOS ids plus the chat template's
end-of-turn tokens, :func:`sftgate.gates.tokenizer.rendering.end_of_turn_ids`): its ``stop_reason`` is ``eos``;
one that reaches ``max_new_tokens`` first is ``length``. The output text is the decoded tokens
before the stop token, special tokens kept (a stray ``<|im_start|>`` is the model's fault, and
the strict-JSON gate should see it).

::

    from sftgate.runners.work.generate import generate_cases, load_for_generation, write_outputs
    model, tokenizer = load_for_generation("runs/x/merged")              # or adapter="runs/x/adapter"
    records = generate_cases(model, tokenizer, load_cases("cases.jsonl"), PromptSpec(), max_new_tokens=64)
    write_outputs("runs/x/outputs.jsonl", records)                        # `sftgate json-check` reads it
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sftgate.gates.adapter.output_records import OutputRecord
from sftgate.gates.frame.core import InputError
from sftgate.gates.readers import atomic
from sftgate.gates.readers.cases import FixedCase


def stop_ids_for(model: Any, tokenizer: Any, spec: Any = None) -> list[int]:
    """The ids that end a generation: ``generation_config`` EOS ids + the template's end of turn."""
    from sftgate.gates.tokenizer.rendering import end_of_turn_ids

    ids: list[int] = []
    gen = getattr(model, "generation_config", None)
    configured = getattr(gen, "eos_token_id", None)
    for value in (configured, *end_of_turn_ids(tokenizer, spec)):
        for i in value if isinstance(value, list | tuple) else [value]:
            if isinstance(i, int) and i not in ids:
                ids.append(i)
    return ids


def generate_cases(
    model: Any,
    tokenizer: Any,
    cases: list[FixedCase],
    spec: Any,
    *,
    max_new_tokens: int,
    batch_size: int = 8,
    stop_ids: Sequence[int] | None = None,
    stats: dict[str, Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> list[OutputRecord]:
    """Greedy generations for ``cases``, in the order given; ``stats`` gets tokens and seconds."""
    import torch

    from sftgate.gates.tokenizer.rendering import encode_prompt, pad_id_for

    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    stops = list(stop_ids) if stop_ids is not None else stop_ids_for(model, tokenizer, spec)
    pad = pad_id_for(tokenizer)
    device = next(model.parameters()).device
    prompts = [encode_prompt(tokenizer, case.as_example(), spec) for case in cases]
    order = sorted(range(len(cases)), key=lambda i: len(prompts[i]))
    results: dict[int, OutputRecord] = {}
    generated = 0
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        for lo in range(0, len(order), max(1, batch_size)):
            chunk = order[lo:lo + max(1, batch_size)]
            width = max(len(prompts[i]) for i in chunk)
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in chunk], device=device)
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in chunk], device=device)
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                    eos_token_id=stops or None, pad_token_id=pad,
                    num_beams=1, temperature=None, top_p=None, top_k=None,
                )
            for row, i in enumerate(chunk):
                new = out[row, width:].tolist()
                cut = next((k for k, t in enumerate(new) if t in stops), None)
                reason = "eos" if cut is not None else "length"
                kept = new if cut is None else new[:cut]
                generated += len(kept) + (1 if cut is not None else 0)
                text = tokenizer.decode(kept, skip_special_tokens=False, clean_up_tokenization_spaces=False)
                results[i] = OutputRecord(id=cases[i].id, output=text, stop_reason=reason, expected=cases[i].expected)
            if progress is not None:
                progress(len(results), len(cases))
    finally:
        model.train(was_training)
    if stats is not None:
        seconds = time.perf_counter() - start
        stats.update(cases=len(cases), generated_tokens=generated, generation_seconds=round(seconds, 3),
                     tokens_per_second=round(generated / seconds, 1) if seconds > 0 else 0.0,
                     max_new_tokens=max_new_tokens, batch_size=batch_size)
    return [results[i] for i in range(len(cases))]


def load_for_generation(
    model_dir: str | os.PathLike[str],
    *,
    adapter: str | os.PathLike[str] | None = None,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    chat_template: str | None = None,
) -> tuple[Any, Any]:
    """(model, tokenizer) for generation: a model folder, optionally with a peft adapter on top.

    The tokenizer comes from ``tokenizer_dir``, else the adapter folder when it holds one, else
    the model folder. fp32 on CPU, bf16 on a GPU that supports it. Missing folders and an adapter
    that does not fit the model raise :class:`InputError`.
    """
    from sftgate.gates.readers.tokenizer_io import load_tokenizer, tokenizer_files
    from sftgate.runners.demo.tiny_model import quiet_transformers, require_model_dir
    from sftgate.runners.work.sft_model import load_model, pick_device

    base = require_model_dir(model_dir)
    device, dtype = pick_device()
    model = load_model(base, dtype)
    tok_dir: Path = Path(tokenizer_dir) if tokenizer_dir else base
    if adapter is not None:
        adapter_dir = Path(adapter)
        if not (adapter_dir / "adapter_config.json").is_file():
            raise InputError(f"{adapter_dir}: no adapter_config.json, not a peft adapter folder",
                             hint="pass the folder `sftgate train` saved (it holds adapter_config.json)")
        from peft import PeftModel

        try:
            with quiet_transformers():
                model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        except Exception as exc:  # size mismatches, missing keys, a corrupt file
            detail = " ".join(str(exc).split())[:300]
            raise InputError(f"{adapter_dir}: the adapter does not fit the model {base}: {type(exc).__name__}: {detail}",
                             hint="use the base model the adapter was trained on") from None
        if tokenizer_dir is None and tokenizer_files(adapter_dir):
            tok_dir = adapter_dir
    model.to(device)
    model.eval()
    tokenizer = load_tokenizer(tok_dir, chat_template=chat_template)
    return model, tokenizer


def write_outputs(path: str | os.PathLike[str], records: Sequence[OutputRecord]) -> Path:
    """Write generations as an outputs JSONL file (``sftgate json-check`` reads it), atomically."""
    from sftgate.gates.readers.cases import MISSING

    lines = []
    for r in records:
        row: dict[str, Any] = {"id": r.id, "output": r.output, "stop_reason": r.stop_reason}
        if r.expected is not MISSING:
            row["expected"] = r.expected
        lines.append(json.dumps(row, ensure_ascii=False))
    target = Path(path)
    atomic.write_text(target, "\n".join(lines) + ("\n" if lines else ""))
    return target


def with_lines(records: Sequence[OutputRecord]) -> list[OutputRecord]:
    """Records numbered 1..n as the lines of the outputs file they were written to."""
    return [OutputRecord(r.id, r.output, r.stop_reason, r.expected, n) for n, r in enumerate(records, start=1)]
