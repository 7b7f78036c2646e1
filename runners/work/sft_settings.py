"""The knobs of a LoRA (or full) fine-tune: ``TrainSettings``, from a config's ``train.*`` and ``lora.*``.

::

    from sftgate.runners.work.sft_settings import TrainSettings
    settings = TrainSettings(max_steps=200, lr=2e-4, batch_size=8)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_TARGETS = "all-linear"


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
    modules_to_save: list[str] | None = None  # trained in full (e.g. embed_tokens, lm_head)
    trainable_token_indices: list[int] | dict[str, list[int]] | None = None  # embedding rows only
    target_parameters: list[str] | None = None  # fused parameters (MoE experts) adapted with LoRA
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
            modules_to_save=pick("lora.modules_to_save", d.modules_to_save),
            trainable_token_indices=pick("lora.trainable_token_indices", d.trainable_token_indices),
            target_parameters=pick("lora.target_parameters", d.target_parameters),
        )

    def lora_dict(self) -> dict[str, Any]:
        targets = self.target_modules if self.target_modules is not None else DEFAULT_TARGETS
        out: dict[str, Any] = {"r": self.lora_r, "alpha": self.lora_alpha, "dropout": self.lora_dropout,
                               "target_modules": targets}
        for key in ("modules_to_save", "trainable_token_indices", "target_parameters"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out
