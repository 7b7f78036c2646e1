"""LoRA supervised fine-tuning: transformers ``Trainer`` + peft, labels from :mod:`sftgate.gates.tokenizer.rendering`.

The labels and the batches come from the same functions the gates checked
(:func:`sftgate.gates.tokenizer.rendering.encode_many` and :func:`sftgate.gates.tokenizer.rendering.collate`): prompt tokens are
``-100``, the completion and its final EOS / end-of-turn token are trained. The pad id is
distinct from EOS (the tokenizer's pad, else ``<unk>``, else another non-stop id) unless the
config asks for the classic bug (``train.collator: mask_pad``), which pads with the tokenizer's
pad id and masks every label equal to it.

- the training data is read through ``datasets`` (Arrow, memory-mapped): JSONL/JSON, Parquet or a
  ``save_to_disk`` folder; it is tokenized once with ``Dataset.map`` into a cache folder
  (:mod:`sftgate.runners.work.sft_data`);
- ``max_seq_len``, seed, gradient accumulation; bf16 on a GPU that supports it, fp32 on CPU
  (the knobs: :mod:`sftgate.runners.work.sft_settings`);
- before training the model is wrapped with peft and generates a few tokens, so a PEFT or
  generation incompatibility fails in seconds, not after training (:mod:`sftgate.runners.work.sft_model`);
- the adapter is the artifact (``adapter_config.json`` + ``adapter_model.safetensors``, with the
  tokenizer files and chat template next to it); loss and progress are logged
  (:mod:`sftgate.runners.work.sft_record`).

This module sets up the ``Trainer`` and runs it.

It runs unchanged under ``accelerate launch`` and ``torchrun`` (the Trainer speaks both)::

    sftgate train sftgate.yaml
    torchrun --nproc-per-node 4 -m sftgate.runners.work.sft sftgate.yaml
    accelerate launch -m sftgate.runners.work.sft sftgate.yaml

From Python::

    from sftgate.runners.work.sft import train
    from sftgate.runners.work.sft_settings import TrainSettings
    result = train("models/base", "data/train.jsonl", "runs/x/adapter",
                   settings=TrainSettings(max_steps=200, lr=2e-4, batch_size=8))
    print(result.tokens_per_second, result.final_loss)
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError
from sftgate.runners.work.cpu_threads import governed_threads, governor_callback
from sftgate.runners.work.sft_data import (
    Collator,
    choose_pad_id,
    clean_record,
    dataset_fingerprint,
    encode_dataset,
    load_train_dataset,
)
from sftgate.runners.work.sft_model import TrainError, load_model, pick_device, smoke_generate, wrap_lora
from sftgate.runners.work.sft_record import TrainResult, save_trained
from sftgate.runners.work.sft_settings import TrainSettings

Say = Callable[[str], Any]


def train(
    base_dir: str | os.PathLike[str],
    train_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    settings: TrainSettings | None = None,
    spec: Any = None,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    base_id: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    say: Say | None = None,
    progress: bool = False,
) -> TrainResult:
    """Fine-tune ``base_dir`` on ``train_path`` and save the adapter (or, ``settings.full``, the model).

    ``spec`` is the :class:`sftgate.gates.tokenizer.rendering.PromptSpec` of the config (system prompt, template).
    ``base_id`` is written as the adapter's ``base_model_name_or_path`` (the config's model ID).
    The output folder is written to a temp folder and renamed into place.
    """
    import datasets
    import torch
    from transformers import Trainer, TrainingArguments, set_seed

    from sftgate.gates.readers.tokenizer_io import load_tokenizer
    from sftgate.gates.tokenizer.rendering import PromptSpec, encode_prompt
    from sftgate.runners.demo.tiny_model import parameter_count, quiet_transformers, require_model_dir

    settings = settings or TrainSettings()
    spec = spec or PromptSpec()
    say = say or (lambda _msg: None)
    out = Path(out_dir)
    base_path = Path(base_dir)
    if base_path.exists() or not base_id:
        require_model_dir(base_path, "base model")
    if settings.collator not in ("completion_only", "mask_pad"):
        raise InputError(f"unknown collator {settings.collator!r}", hint="completion_only or mask_pad")
    set_seed(settings.seed)
    tokenizer = load_tokenizer(tokenizer_dir or base_dir)
    pad_id = choose_pad_id(tokenizer, settings.collator)
    device, dtype = pick_device()

    cache = Path(cache_dir) if cache_dir else out.parent / ".sftgate-cache"
    if not progress:
        datasets.disable_progress_bars()
    try:
        raw = load_train_dataset(train_path, cache_dir=cache / "datasets")
        if len(raw) == 0:
            raise InputError(f"{train_path}: no training records", hint="the training file is empty")
        fingerprint = dataset_fingerprint(train_path, tokenizer_dir or base_dir, spec, settings.max_seq_len)
        data = encode_dataset(raw, tokenizer, spec, max_seq_len=settings.max_seq_len,
                              fingerprint=fingerprint, progress=progress)
        data = data.filter(lambda row: row["supervised"] > 0, new_fingerprint=fingerprint + "-nonempty")
    finally:
        if not progress:
            datasets.enable_progress_bars()
    if len(data) == 0:
        raise InputError(f"{train_path}: no record has a trained token (all completions truncated away?)",
                         hint="raise train.max_seq_len or shorten the prompts")
    truncated = int(sum(data["truncated"]))
    supervised = int(sum(data["supervised"]))
    say(f"training data: {len(data)} examples, {supervised} supervised tokens, {truncated} truncated "
        f"(max_seq_len {settings.max_seq_len})")

    model = load_model(base_dir, dtype, revision=revision)
    if settings.full:
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        model = wrap_lora(model, settings, base_id=base_id)
    if device == "cuda":  # under torchrun / accelerate launch each process takes its LOCAL_RANK's GPU
        model.to(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
    prompt_ids = encode_prompt(tokenizer, clean_record(raw[0]), spec)  # a final assistant turn is excluded
    if not prompt_ids:  # raw text (an empty prompt): start from its first token
        prompt_ids = list(data[0]["input_ids"][:1])
    smoke = smoke_generate(model, tokenizer, prompt_ids, pad_id=pad_id)
    say(f"smoke test: the {'model' if settings.full else 'PEFT-wrapped model'} generated "
        f"{smoke['new_tokens']} tokens in {smoke['seconds']}s")

    collator = Collator(pad_id, mask_pad_labels=settings.collator == "mask_pad")
    losses: list[dict[str, float]] = []
    work = Path(tempfile.mkdtemp(prefix=".trainer-", dir=_mkdir(cache)))
    args = TrainingArguments(
        output_dir=str(work),
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.lr,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps if settings.max_steps else -1,
        lr_scheduler_type=settings.scheduler,
        warmup_steps=settings.warmup,
        weight_decay=settings.weight_decay,
        logging_steps=settings.logging_steps,
        logging_first_step=True,
        save_strategy="no",
        report_to="none",
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=dtype == "bfloat16",
        use_cpu=device == "cpu",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=not progress,
        ddp_find_unused_parameters=False,
        optim="adamw_torch",
    )
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=data.remove_columns(["truncated", "supervised"]),
        callbacks=[_loss_logger(losses, say)],
    )
    _quiet_callbacks(trainer, progress)
    start = time.perf_counter()
    try:
        with quiet_transformers(progress), governed_threads(device) as governor:
            if governor is not None:  # on CPU: torch's threads follow the CPUs other processes leave free
                trainer.add_callback(governor_callback(governor))
            trainer.train()
    except torch.OutOfMemoryError as exc:
        raise TrainError(f"out of memory during training ({exc})",
                         hint="lower train.batch_size and raise train.grad_accum, or lower train.max_seq_len") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - start
    steps = int(trainer.state.global_step)
    trained = trainer.model
    processes = int(args.world_size)
    result = TrainResult(
        output_dir=out, steps=steps, examples=len(data), truncated=truncated, tokens=_all_ranks(collator.tokens),
        supervised_tokens=supervised, seconds=seconds, losses=losses,
        trainable_params=parameter_count(trained, trainable_only=True), total_params=parameter_count(trained),
        device=device, dtype=dtype, pad_id=pad_id, smoke=smoke, full=settings.full, processes=processes,
    )
    if trainer.is_world_process_zero():
        save_trained(trained, tokenizer, out, settings, result, spec, full=settings.full, base_dir=Path(base_dir))
    say(f"trained {steps} steps in {seconds:.1f}s ({result.tokens_per_second:.0f} tokens/s); "
        f"loss {_fmt_loss(result.first_loss)} -> {_fmt_loss(result.final_loss)}; saved {out}")
    return result


def _quiet_callbacks(trainer: Any, progress: bool) -> None:
    """stdout carries the report: drop the Trainer's log printer (and its bar unless progress is on)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    if not progress:
        trainer.remove_callback(ProgressCallback)


def _all_ranks(count: int) -> int:
    """``count`` summed over the processes of a distributed run (every rank calls this), else itself."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return count
    import torch

    total = torch.tensor([count], dtype=torch.long)
    if dist.get_backend() == "nccl":
        total = total.cuda()
    dist.all_reduce(total)
    return int(total.item())


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _loss_logger(losses: list[dict[str, float]], say: Say) -> Any:
    """A TrainerCallback that records the loss curve and reports progress."""
    from transformers import TrainerCallback

    class LossLogger(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return
            loss = float(logs["loss"])
            entry = {"step": int(state.global_step), "loss": loss}
            if "learning_rate" in logs:
                entry["lr"] = float(logs["learning_rate"])
            losses.append(entry)
            shown = f"{loss:.4f}" if math.isfinite(loss) else str(loss)
            say(f"  step {state.global_step}/{state.max_steps or 0}  loss {shown}")

    return LossLogger()


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m sftgate.runners.work.sft CONFIG`` for ``torchrun`` / ``accelerate launch``: the train stage only."""
    from sftgate.runners.cli.main import main as cli_main
    from sftgate.runners.work.ranks import close_process_group

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return cli_main(["train", *args])
    finally:
        close_process_group()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


def _fmt_loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
