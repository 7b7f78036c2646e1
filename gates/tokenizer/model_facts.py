"""What the embedding and model-config gates need from a model's ``config.json``, read offline.

``ModelFacts.read(folder)`` loads the config with ``AutoConfig`` (local files only, no remote
code), so class defaults apply (``tie_word_embeddings`` is true for Gemma when the file omits
it, false for Llama), and takes the text part of a multimodal config. A config transformers
cannot read (an unknown ``model_type``) falls back to the raw JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError

# Names of the context length in configs of the families transformers ships.
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


@dataclass(frozen=True)
class ModelFacts:
    """The facts of a model config the gates use; ``raw`` is the file's JSON."""

    path: Path
    model_type: str | None = None
    vocab_size: int | None = None
    tie_word_embeddings: bool = False
    max_positions: int | None = None
    positions_key: str | None = None
    rope: dict[str, Any] = field(default_factory=dict)
    sliding_window: int | None = None
    layer_types: tuple[str, ...] = ()
    dtype: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: str | Path) -> ModelFacts:
        path = Path(folder) / "config.json"
        try:
            raw = json.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise InputError(f"{path}: cannot read the model config ({exc.strerror})",
                             hint="model.id must be a model folder with config.json") from None
        except ValueError as exc:
            raise InputError(f"{path}: not JSON ({exc})", hint="fix or re-download config.json") from None
        if not isinstance(raw, dict):
            raise InputError(f"{path}: the model config must be a JSON object")
        config = _auto_config(path.parent)
        text = _text_config(config) if config is not None else None
        return cls._from(path, raw, config, text)

    @classmethod
    def _from(cls, path: Path, raw: dict[str, Any], config: Any, text: Any) -> ModelFacts:
        nested = raw.get("text_config")
        raw_text: dict[str, Any] = nested if isinstance(nested, dict) else raw

        def pick(name: str) -> Any:
            for source in (text, config):
                if source is not None and getattr(source, name, None) is not None:
                    return getattr(source, name)
            return raw_text.get(name, raw.get(name))

        key = next((k for k in POSITION_KEYS if isinstance(pick(k), int)), None)
        rope = pick("rope_parameters") or pick("rope_scaling") or {}
        sliding = pick("sliding_window")
        if pick("use_sliding_window") is False:
            sliding = None
        # The top-level flag decides, as in transformers' loading (a text_config's own flag does not
        # tie a multimodal model's head: transformers #43429); None is false.
        tie = getattr(config, "tie_word_embeddings", None) if config is not None else raw.get("tie_word_embeddings")
        dtype = raw.get("dtype") or raw.get("torch_dtype") or raw_text.get("dtype") or raw_text.get("torch_dtype")
        return cls(
            path=path,
            model_type=raw.get("model_type"),
            vocab_size=pick("vocab_size") if isinstance(pick("vocab_size"), int) else None,
            tie_word_embeddings=bool(tie),
            max_positions=pick(key) if key else None,
            positions_key=key,
            rope=dict(rope) if isinstance(rope, dict) else {},
            sliding_window=sliding if isinstance(sliding, int) and sliding > 0 else None,
            layer_types=tuple(str(t) for t in (pick("layer_types") or ())),
            dtype=str(dtype) if dtype else None,
            raw=raw,
        )


def _auto_config(folder: Path) -> Any:
    try:
        from transformers import AutoConfig
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - the tokenizer extra brings transformers
        return None
    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return AutoConfig.from_pretrained(str(folder), trust_remote_code=False, local_files_only=True)
    except Exception:  # an unknown model_type or remote code: the raw JSON still says enough
        return None
    finally:
        hf_logging.set_verbosity(before)


def _text_config(config: Any) -> Any:
    try:
        return config.get_text_config(decoder=True)
    except (AttributeError, TypeError, ValueError):
        return config
