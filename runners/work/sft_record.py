"""What a training run did, and its record on disk: the saved artifact and ``sftgate-train.json``.

:class:`TrainResult` holds the loss curve and the throughput; :func:`save_trained` writes the
adapter (or full model) with its tokenizer files and the summary, atomically;
:func:`read_losses` reads the loss curve back.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sftgate.runners.work.sft_settings import TrainSettings


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
    processes: int = 1  # the ranks of a torchrun / accelerate launch run (tokens counts them all)

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
        if self.processes > 1:
            out["processes"] = self.processes
        if self.losses:
            out["first_loss"] = round(self.losses[0]["loss"], 4)
            out["final_loss"] = round(self.losses[-1]["loss"], 4)
        return out

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["output_dir"] = str(self.output_dir)
        out["tokens_per_second"] = self.tokens_per_second
        return out


def save_trained(model: Any, tokenizer: Any, out: Path, settings: TrainSettings, result: TrainResult, spec: Any,
                 *, full: bool, base_dir: Path) -> None:
    """Save the adapter (or full model) with tokenizer files, atomically (temp folder, rename)."""
    from sftgate.runners.demo.tiny_model import quiet_transformers
    from sftgate.runners.pipeline.folder_swap import replace_dir, temp_dir_for
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
