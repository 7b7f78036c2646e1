"""LoRA supervised fine-tuning: transformers ``Trainer`` + peft, labels from :mod:`sftgate.gates.tokenizer.rendering`.

The labels and the batches come from the same functions the gates checked
(:func:`sftgate.gates.tokenizer.rendering.encode_many` and :func:`sftgate.gates.tokenizer.rendering.collate`): prompt tokens are
``-100``, the completion and its final EOS / end-of-turn token are trained. The pad id is
distinct from EOS (the tokenizer's pad, else ``<unk>``, else another non-stop id) unless the
config asks for the classic bug (``train.collator: mask_pad``), which pads with the tokenizer's
pad id and masks every label equal to it.

- the training data is read through ``datasets`` (Arrow, memory-mapped): JSONL/JSON, Parquet or a
  ``save_to_disk`` folder; it is tokenized once with ``Dataset.map`` into a cache folder;
- ``max_seq_len``, seed, gradient accumulation; bf16 on a GPU that supports it, fp32 on CPU;
- before training the model is wrapped with peft and generates a few tokens, so a PEFT or
  generation incompatibility fails in seconds, not after training;
- the adapter is the artifact (``adapter_config.json`` + ``adapter_model.safetensors``, with the
  tokenizer files and chat template next to it); loss and progress are logged.

It runs unchanged under ``accelerate launch`` and ``torchrun`` (the Trainer speaks both)::

    sftgate train sftgate.yaml
    torchrun --nproc-per-node 4 -m sftgate.runners.work.sft sftgate.yaml
    accelerate launch -m sftgate.runners.work.sft sftgate.yaml

From Python::

    from sftgate.runners.work.sft import TrainSettings, train
    result = train("models/base", "data/train.jsonl", "runs/x/adapter",
                   settings=TrainSettings(max_steps=200, lr=2e-4, batch_size=8))
    print(result.tokens_per_second, result.final_loss)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError, SftgateError

Say = Callable[[str], Any]

DEFAULT_TARGETS = "all-linear"


class TrainError(SftgateError):
    """Training could not start or run (a PEFT/generation incompatibility, a failed step)."""

    exit_code = 3


class SmokeTestFailed(TrainError):
    """The PEFT-wrapped model could not generate a few tokens before training."""


@dataclass
class TrainSettings:
    """The training knobs of a config (``train.*`` and ``lora.*``)."""

    max_seq_len: int | None = 512
    epochs: float = 1.0
    max_steps: int | None = None
    lr: float = 2e-4
    batch_size: int = 8
    grad_accum: int = 1
    seed: int = 0
    collator: str = "completion_only"
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    target_modules: list[str] | str | None = None
    warmup: float = 0.05
    scheduler: str = "linear"
    weight_decay: float = 0.0
    logging_steps: int = 10
    full: bool = False  # full fine-tune instead of LoRA (the demo's base-training step)

    @classmethod
    def from_config(cls, config: Any) -> TrainSettings:
        def pick(key: str, default: Any) -> Any:
            value = config.get(key)
            return default if value is None else value

        d = cls()
        return cls(
            max_seq_len=pick("train.max_seq_len", d.max_seq_len),
            epochs=float(pick("train.epochs", d.epochs)),
            max_steps=pick("train.max_steps", d.max_steps),
            lr=float(pick("train.lr", d.lr)),
            batch_size=int(pick("train.batch_size", d.batch_size)),
            grad_accum=int(pick("train.grad_accum", d.grad_accum)),
            seed=int(pick("train.seed", d.seed)),
            collator=str(pick("train.collator", d.collator)),
            lora_r=int(pick("lora.r", d.lora_r)),
            lora_alpha=float(pick("lora.alpha", d.lora_alpha)),
            lora_dropout=float(pick("lora.dropout", d.lora_dropout)),
            target_modules=pick("lora.target_modules", d.target_modules),
        )

    def lora_dict(self) -> dict[str, Any]:
        targets = self.target_modules if self.target_modules is not None else DEFAULT_TARGETS
        return {"r": self.lora_r, "alpha": self.lora_alpha, "dropout": self.lora_dropout, "target_modules": targets}


@dataclass
class TrainResult:
    """What a training run did: where the artifact is, the loss curve and the throughput."""

    output_dir: Path
    steps: int
    examples: int
    truncated: int
    tokens: int  # non-pad tokens the model saw
    supervised_tokens: int
    seconds: float
    losses: list[dict[str, float]] = field(default_factory=list)
    trainable_params: int = 0
    total_params: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    pad_id: int = 0
    smoke: dict[str, Any] = field(default_factory=dict)
    full: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1]["loss"] if self.losses else None

    @property
    def first_loss(self) -> float | None:
        return self.losses[0]["loss"] if self.losses else None

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "steps": self.steps,
            "examples": self.examples,
            "truncated": self.truncated,
            "tokens": self.tokens,
            "supervised_tokens": self.supervised_tokens,
            "train_seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "device": self.device,
            "dtype": self.dtype,
        }
        if self.losses:
            out["first_loss"] = round(self.losses[0]["loss"], 4)
            out["final_loss"] = round(self.losses[-1]["loss"], 4)
        return out

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["output_dir"] = str(self.output_dir)
        out["tokens_per_second"] = self.tokens_per_second
        return out


# --------------------------------------------------------------------------- data


def load_train_dataset(path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None) -> Any:
    """The training records as a ``datasets.Dataset`` (Arrow, memory-mapped, not held in RAM).

    JSONL/JSON, Parquet, or a ``save_to_disk`` folder. A missing or unreadable file raises
    :class:`InputError` naming it.
    """
    import datasets

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: training data does not exist", hint="data.train is relative to the config file")
    try:
        if p.is_dir():
            if (p / "dataset_info.json").is_file() or (p / "state.json").is_file():
                loaded = datasets.load_from_disk(str(p))
                if isinstance(loaded, datasets.DatasetDict):
                    loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
                return loaded
            raise InputError(f"{p}: a folder but not a `datasets.save_to_disk` folder",
                             hint="pass a JSONL or Parquet file, or a folder written by Dataset.save_to_disk")
        kind = "parquet" if p.suffix.lower() in (".parquet", ".pq") else "json"
        return datasets.load_dataset(kind, data_files=str(p), split="train",
                                     cache_dir=str(cache_dir) if cache_dir else None)
    except InputError:
        raise
    except Exception as exc:  # pyarrow/datasets raise many types for unreadable data
        detail = " ".join(str(exc).split())[:300]
        raise InputError(f"{p}: cannot read the training data: {type(exc).__name__}: {detail}",
                         hint="`sftgate data FILE` finds the bad records") from None


def choose_pad_id(tokenizer: Any, collator: str = "completion_only") -> int:
    """The pad id training uses: distinct from every stop id, unless ``collator == "mask_pad"``.

    ``mask_pad`` reproduces what many scripts do (``pad_token = eos_token`` and a collator that
    masks pad labels): the tokenizer's pad id, whatever it is.
    """
    from sftgate.gates.tokenizer.rendering import end_of_turn_ids, pad_id_for

    if collator == "mask_pad":
        return pad_id_for(tokenizer)
    stops = set(end_of_turn_ids(tokenizer))
    for attr in ("pad_token_id", "unk_token_id"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, int) and value not in stops:
            return value
    for candidate in range(len(tokenizer)):
        if candidate not in stops and candidate != getattr(tokenizer, "bos_token_id", None):
            return candidate
    return 0


def encode_dataset(dataset: Any, tokenizer: Any, spec: Any, *, max_seq_len: int | None,
                   fingerprint: str, progress: bool = False) -> Any:
    """Tokenize ``dataset`` with :func:`sftgate.gates.tokenizer.rendering.encode_many`: columns input_ids, labels, ...

    ``fingerprint`` names the result in the datasets cache (the tokenizer object cannot be hashed
    reliably), so a rerun with the same data, tokenizer and settings reuses it.
    """
    from sftgate.gates.tokenizer.rendering import IGNORE_INDEX, RenderError, encode_many

    def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        rows = [clean_record(dict(zip(batch, values, strict=True))) for values in zip(*batch.values(), strict=True)]
        try:
            encoded = encode_many(tokenizer, rows, spec, max_seq_len=max_seq_len)
        except RenderError as exc:
            raise InputError(f"a training record cannot be rendered: {exc}",
                             hint="`sftgate data TRAIN --tokenizer DIR` names the record") from None
        return {
            "input_ids": [e.input_ids for _, e in encoded],
            "labels": [e.labels for _, e in encoded],
            "truncated": [e.truncated for _, e in encoded],
            "supervised": [sum(1 for x in e.labels if x != IGNORE_INDEX) for _, e in encoded],
        }

    return dataset.map(
        encode, batched=True, batch_size=256, remove_columns=list(dataset.column_names),
        new_fingerprint=fingerprint, desc="tokenizing" if progress else None,
    )


class Collator:
    """Batches of encoded rows -> right-padded tensors through :func:`sftgate.gates.tokenizer.rendering.collate`."""

    def __init__(self, pad_id: int, *, mask_pad_labels: bool = False) -> None:
        self.pad_id = pad_id
        self.mask_pad_labels = mask_pad_labels
        self.tokens = 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        from sftgate.gates.tokenizer.rendering import Encoded, collate

        batch = [Encoded(list(f["input_ids"]), list(f["labels"]), 0, (), bool(f.get("truncated", False)))
                 for f in features]
        out = collate(batch, self.pad_id, mask_pad_labels=self.mask_pad_labels)
        self.tokens += sum(len(e.input_ids) for e in batch)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}


# --------------------------------------------------------------------------- model


def pick_device() -> tuple[str, str]:
    """(device, dtype): bf16 on a GPU that supports it (else fp32), fp32 on CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda", "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "cpu", "float32"


def load_model(model_dir: str | os.PathLike[str], dtype: str, *, revision: str | None = None) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from sftgate.runners.demo.tiny_model import quiet_transformers

    try:
        with quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(
                str(model_dir), dtype=getattr(torch, dtype), revision=revision, trust_remote_code=False,
            )
    except Exception as exc:  # OSError for a missing folder, ValueError for an unknown architecture, ...
        detail = " ".join(str(exc).split())[:300]
        raise InputError(f"{model_dir}: cannot load the model: {type(exc).__name__}: {detail}",
                         hint="model.id must be a local model folder (config.json + safetensors) "
                              "or a Hub ID in the local cache") from None


def wrap_lora(model: Any, settings: TrainSettings, *, base_id: str | None = None) -> Any:
    """``get_peft_model`` with the settings' LoRA hyperparameters (``all-linear`` by default)."""
    from peft import LoraConfig, get_peft_model

    targets: Any = settings.target_modules if settings.target_modules is not None else DEFAULT_TARGETS
    config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,  # type: ignore[arg-type]  # peft takes a float too
        lora_dropout=settings.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    from sftgate.runners.demo.tiny_model import quiet_transformers

    try:
        with quiet_transformers():
            peft_model = get_peft_model(model, config)
    except ValueError as exc:  # "Target modules {...} not found in the base model"
        raise InputError(f"LoRA cannot wrap the model: {' '.join(str(exc).split())[:300]}",
                         hint="`sftgate rules unknown_target_module`; fix lora.target_modules") from None
    if base_id is not None:
        for cfg in peft_model.peft_config.values():
            cfg.base_model_name_or_path = base_id
    return peft_model


def smoke_generate(model: Any, tokenizer: Any, prompt_ids: list[int], *, pad_id: int, new_tokens: int = 4) -> dict[str, Any]:
    """Generate a few tokens with the wrapped model: fail in seconds, not after training."""
    import torch

    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=False, pad_token_id=pad_id)
    except Exception as exc:
        raise SmokeTestFailed(
            f"the PEFT-wrapped model cannot generate ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})",
            hint="a peft/transformers incompatibility for this architecture (e.g. prepare_inputs_for_generation); "
                 "upgrade peft/transformers or pin versions that work together",
        ) from None
    finally:
        model.train(was_training)
    new = out[0, ids.shape[1]:].tolist()
    if len(new) != new_tokens:
        raise SmokeTestFailed(f"the PEFT-wrapped model generated {len(new)} tokens instead of {new_tokens}")
    return {"new_tokens": len(new), "seconds": round(time.perf_counter() - start, 3)}


# --------------------------------------------------------------------------- training


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
        fingerprint = _fingerprint(train_path, tokenizer_dir or base_dir, spec, settings.max_seq_len)
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
        with quiet_transformers(progress):
            trainer.train()
    except torch.OutOfMemoryError as exc:
        raise TrainError(f"out of memory during training ({exc})",
                         hint="lower train.batch_size and raise train.grad_accum, or lower train.max_seq_len") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - start
    steps = int(trainer.state.global_step)
    trained = trainer.model
    result = TrainResult(
        output_dir=out, steps=steps, examples=len(data), truncated=truncated, tokens=collator.tokens,
        supervised_tokens=supervised, seconds=seconds, losses=losses,
        trainable_params=parameter_count(trained, trainable_only=True), total_params=parameter_count(trained),
        device=device, dtype=dtype, pad_id=pad_id, smoke=smoke, full=settings.full,
    )
    if trainer.is_world_process_zero():
        _save(trained, tokenizer, out, settings, result, spec, full=settings.full, base_dir=Path(base_dir))
    say(f"trained {steps} steps in {seconds:.1f}s ({result.tokens_per_second:.0f} tokens/s); "
        f"loss {_fmt_loss(result.first_loss)} -> {_fmt_loss(result.final_loss)}; saved {out}")
    return result


def clean_record(value: Any) -> Any:
    """Drop the ``None`` fields ``datasets`` adds for keys other records have (``tool_calls``...)."""
    if isinstance(value, dict):
        return {k: clean_record(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean_record(v) for v in value]
    return value


def _quiet_callbacks(trainer: Any, progress: bool) -> None:
    """stdout carries the report: drop the Trainer's log printer (and its bar unless progress is on)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    if not progress:
        trainer.remove_callback(ProgressCallback)


def is_main_process() -> bool:
    """True on rank 0 (or without a launcher): only it writes the adapter, reports and the ledger."""
    return int(os.environ.get("RANK", "0")) == 0


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fingerprint(train_path: Any, tokenizer_dir: Any, spec: Any, max_seq_len: int | None) -> str:
    from sftgate.gates.readers.tokenizer_io import file_signature

    digest = hashlib.sha256()
    digest.update(repr(file_signature(train_path)).encode())
    folder = Path(tokenizer_dir)
    for name in ("tokenizer.json", "tokenizer.model", "tekken.json", "tokenizer_config.json", "chat_template.jinja"):
        if (folder / name).is_file():
            digest.update(name.encode() + (folder / name).read_bytes())
    digest.update(repr((spec, max_seq_len, "sftgate-encode-1")).encode())
    return digest.hexdigest()[:32]


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


def _save(model: Any, tokenizer: Any, out: Path, settings: TrainSettings, result: TrainResult, spec: Any,
          *, full: bool, base_dir: Path) -> None:
    """Save the adapter (or full model) with tokenizer files, atomically (temp folder, rename)."""
    from sftgate.runners.demo.tiny_model import quiet_transformers
    from sftgate.runners.pipeline.release import replace_dir, temp_dir_for
    from sftgate.runners.work.merge import drop_pickles

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_for(out)
    tmp.mkdir()
    try:
        with quiet_transformers():
            if full:
                model.save_pretrained(tmp)
            else:  # the vocabulary is never resized: no full embedding copy (and no Hub lookup to decide it)
                model.save_pretrained(tmp, save_embedding_layers=False)
            tokenizer.save_pretrained(tmp)
        template = getattr(spec, "chat_template", None)
        if template:
            (tmp / "chat_template.jinja").write_text(template, encoding="utf-8")
        if full and (base_dir / "generation_config.json").is_file() and not (tmp / "generation_config.json").is_file():
            shutil.copy2(base_dir / "generation_config.json", tmp / "generation_config.json")
        summary = {
            "sftgate_train": 1,
            "settings": asdict(settings),
            "result": {k: v for k, v in result.to_dict().items() if k not in ("losses", "output_dir")},
            "losses": result.losses,
        }
        (tmp / "sftgate-train.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        drop_pickles(tmp)  # safetensors only: no training_args.bin or other pickles
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_losses(folder: str | os.PathLike[str]) -> list[dict[str, float]]:
    """The loss curve a training run saved in its output folder (``sftgate-train.json``)."""
    path = Path(folder) / "sftgate-train.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    losses = data.get("losses") if isinstance(data, dict) else None
    return losses if isinstance(losses, list) else []


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m sftgate.runners.work.sft CONFIG`` for ``torchrun`` / ``accelerate launch``: the train stage only."""
    from sftgate.runners.cli.main import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    return cli_main(["train", *args])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


def _fmt_loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
