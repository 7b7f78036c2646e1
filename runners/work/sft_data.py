"""The data side of LoRA SFT: the training records as a ``datasets.Dataset``, encoded, and batched.

The labels and the batches come from the same functions the gates checked
(:func:`sftgate.gates.tokenizer.rendering.encode_many` and
:func:`sftgate.gates.tokenizer.rendering.collate`): prompt tokens are ``-100``, the completion
and its final EOS / end-of-turn token are trained. :func:`choose_pad_id` picks a pad id distinct
from EOS unless the config asks for the classic bug (``train.collator: mask_pad``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import InputError


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


def clean_record(value: Any) -> Any:
    """Drop the ``None`` fields ``datasets`` adds for keys other records have (``tool_calls``...)."""
    if isinstance(value, dict):
        return {k: clean_record(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean_record(v) for v in value]
    return value


def dataset_fingerprint(train_path: Any, tokenizer_dir: Any, spec: Any, max_seq_len: int | None) -> str:
    """The datasets-cache name of the encoded data: the data file, tokenizer files, spec and length."""
    from sftgate.gates.readers.tokenizer_io import file_signature

    digest = hashlib.sha256()
    digest.update(repr(file_signature(train_path)).encode())
    folder = Path(tokenizer_dir)
    for name in ("tokenizer.json", "tokenizer.model", "tekken.json", "tokenizer_config.json", "chat_template.jinja"):
        if (folder / name).is_file():
            digest.update(name.encode() + (folder / name).read_bytes())
    digest.update(repr((spec, max_seq_len, "sftgate-encode-1")).encode())
    return digest.hexdigest()[:32]
