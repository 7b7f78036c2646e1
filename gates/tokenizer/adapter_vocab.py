"""At release: does an adapter's vocabulary fit its base? (``vocab_mismatch`` for adapter folders).

An adapter trained after ``resize_token_embeddings`` carries embedding tensors sized to the new
vocabulary (``modules_to_save`` copies, a LoRA's ``lora_embedding_A`` / lm_head ``lora_B``): they
do not load onto the base it names (a size mismatch, 128320 vs 128256: LlamaFactory #7997), and
vLLM refuses them. An adapter without those tensors whose tokenizer has more tokens than the
base has rows needs a resized base it does not ship. ``trainable_token_indices`` past the base's
rows cannot be applied either.

The base is ``base_model_name_or_path`` of ``adapter_config.json``: a local folder or a Hub ID in
the local cache; when it is neither, nothing is checked (no download). Only headers are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, InputError
from sftgate.gates.readers.safetensors_rows import TensorRef, WeightFiles

PREFIX = "base_model.model."
NOT_VOCAB = ("lora_A.weight", "lora_embedding_B", "trainable_tokens_delta")


def base_folder(adapter_dir: Path, base: Any) -> Path | None:
    """The adapter's base as a local folder with weights: a path, or a cached Hub snapshot."""
    if not isinstance(base, str) or not base:
        return None
    for candidate in (Path(base).expanduser(), adapter_dir / base):
        if (candidate / "config.json").is_file():
            return candidate
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(base, "config.json")
    except Exception:  # not a Hub ID, no huggingface_hub, a broken cache
        return None
    return Path(found).parent if isinstance(found, str) else None


def vocab_rows(name: str, ref: TensorRef, module: str) -> int | None:
    """The vocabulary size an adapter tensor of ``module`` is built for, or None when it has none."""
    key = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if not key.startswith(module + ".") or len(ref.shape) < 2:
        return None
    suffix = key[len(module) + 1:]
    if any(suffix.endswith(s) or f"{s}." in suffix for s in NOT_VOCAB):
        return None
    return ref.shape[1] if "lora_embedding_A" in suffix else ref.shape[0]


def adapter_vocab_findings(adapter_dir: str | Path) -> Iterator[Finding]:
    """``vocab_mismatch`` for an adapter folder whose embedding tensors, trainable token ids or
    tokenizer do not fit the rows of its base."""
    from sftgate.gates.tokenizer.embeddings import VOCAB_MISMATCH

    folder = Path(adapter_dir)
    try:
        config = json.loads((folder / "adapter_config.json").read_text("utf-8"))
        base_dir = base_folder(folder, config.get("base_model_name_or_path")) if isinstance(config, dict) else None
        if base_dir is None:
            return
        base, adapter = WeightFiles.open(base_dir), WeightFiles.open(folder)
    except (OSError, ValueError, InputError):  # unreadable files are the artifacts gate's own findings
        return
    embed = base.find_embedding()
    if embed is None:
        return
    head = base.find_head(embed.rows)
    modules = [embed.module] + ([head.module] if head is not None and head.name != embed.name else ["lm_head"])
    sized = False
    for module in modules:  # one finding per module: peft saves several copies (modules_to_save, original)
        wrong = {}
        for name, ref in sorted(adapter.tensors.items()):
            rows = vocab_rows(name, ref, module)
            sized |= rows is not None
            if rows is not None and rows != embed.rows:
                wrong[name] = (ref, rows)
        if wrong:
            name, (ref, rows) = next(iter(wrong.items()))
            yield VOCAB_MISMATCH.finding(
                f"the adapter's {module} is built for {rows} tokens but its base {base_dir} has {embed.rows}: "
                "it does not load onto that base (size mismatch), and vLLM refuses it",
                f"{ref.file}:{name}", suggestion="ship the merged model, or the resized base with the adapter",
                evidence={"tensors": sorted(wrong), "adapter_rows": rows, "base_rows": embed.rows, "base": str(base_dir)},
            )
    yield from _token_indices(config, embed.rows, folder, VOCAB_MISMATCH)
    if not sized:
        yield from _tokenizer(folder, embed.rows, base_dir, VOCAB_MISMATCH)


def _token_indices(config: dict[str, Any], rows: int, folder: Path, rule: Any) -> Iterator[Finding]:
    tokens = config.get("trainable_token_indices")
    ids = [i for v in tokens.values() for i in v] if isinstance(tokens, dict) else list(tokens or [])
    beyond = sorted(i for i in ids if isinstance(i, int) and i >= rows)
    if beyond:
        yield rule.finding(
            f"trainable_token_indices {beyond[:5]} are past the base's {rows} embedding rows",
            f"{folder / 'adapter_config.json'}:trainable_token_indices",
            evidence={"indices": beyond[:20], "base_rows": rows},
        )


def _tokenizer(folder: Path, rows: int, base_dir: Path, rule: Any) -> Iterator[Finding]:
    from sftgate.gates.readers import tokenizer_io

    if not tokenizer_io.tokenizer_files(folder):
        return
    try:
        size = len(tokenizer_io.load_tokenizer_cached(folder))
    except InputError:  # a tokenizer that does not load, or no transformers here
        return
    if size > rows:
        yield rule.finding(
            f"the adapter's tokenizer has {size} tokens but its base {base_dir} has {rows} embedding rows and the "
            "adapter carries no resized embeddings: token ids past the rows crash generation",
            str(folder), suggestion="ship the resized base (or the merged model) with this tokenizer",
            evidence={"tokenizer_tokens": size, "base_rows": rows},
        )
