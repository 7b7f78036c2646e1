"""Gate ``merge-dtype``: the merged model keeps the base's dtype and size.

From the safetensors headers of both folders (no weight is loaded), tensor by tensor:

- ``merge_dtype_drift``: a tensor saved in another dtype than the base's (or than the dtype the
  merge was asked for): a bf16 run merged and saved as fp32 doubles the model (LlamaFactory
  #7998, peft #906); ``config.json``'s ``dtype`` that is not the weights' dtype; tensors the merge
  added or dropped (a total size that is not the base's).

It also reports ``tied_embeddings_broken`` for a merged model whose config says tied while the
saved head differs from the embedding (a LoRA merged into one side of a tied pair).

Example::

    check(base="models/base", merged="runs/x/merged")                  # the base's dtype expected
    check(base="models/base", merged="runs/x/merged-fp32", expected_dtype="float32")
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftgate.gates.frame.core import Finding, Rule, Severity
from sftgate.gates.readers.safetensors_rows import TORCH_NAMES, WeightFiles

GATE = "merge-dtype"
FLOATS = {"F64", "F32", "F16", "BF16"}
SAFETENSORS_NAMES = {torch: st for st, torch in TORCH_NAMES.items()}

MERGE_DTYPE_DRIFT = Rule(
    "MRG004", "merge_dtype_drift", Severity.ERROR, GATE,
    "the merged model's dtype or total size differs from the base's",
    "A merge loads the base in some dtype and saves what it holds: a bf16 base loaded in fp32 (the old "
    "default) is saved as fp32, twice the bytes to download and serve, and a config.json whose dtype is "
    "not the weights' makes dtype='auto' loaders pick the wrong one (LlamaFactory #7998: bf16 run, fp32 "
    "merge; peft #906: the model size doubles after merge_and_unload). Added or dropped tensors change "
    "the size too.",
    "Merge in the base's dtype (sftgate merge does by default; --dtype or model.dtype to choose another) and "
    "save with save_pretrained; compare the tensor lists when tensors were added or dropped.",
    "merged: 291 tensors F32 (14.5 GB), base: BF16 (7.2 GB)",
)

RULES = (MERGE_DTYPE_DRIFT,)


def check(
    *,
    base: str | Path,
    merged: str | Path,
    expected_dtype: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> Iterator[Finding]:
    """Compare the merged folder's tensors with the base's; ``expected_dtype`` (``bfloat16``...) is
    the dtype the merge was asked for, default the base's own."""
    from sftgate.gates.tokenizer.model_facts import ModelFacts

    metrics = metrics if metrics is not None else {}
    base_dir, merged_dir = Path(base), Path(merged)
    base_w, merged_w = WeightFiles.open(base_dir), WeightFiles.open(merged_dir)
    base_float = base_w.float_dtype()
    want = SAFETENSORS_NAMES.get(expected_dtype or "") if expected_dtype else base_float
    merged_float = merged_w.float_dtype()
    metrics.update(base_dtype=TORCH_NAMES.get(base_float or "", base_float), merged_dtype=TORCH_NAMES.get(merged_float or "", merged_float),
                   expected_dtype=TORCH_NAMES.get(want or "", want), base_bytes=base_w.total_bytes,
                   merged_bytes=merged_w.total_bytes,
                   size_ratio=round(merged_w.total_bytes / base_w.total_bytes, 4) if base_w.total_bytes else None)

    changed = []
    for name, ref in merged_w.tensors.items():
        before = base_w.tensors.get(name)
        if before is None:
            continue
        target = want if before.dtype in FLOATS and want is not None else before.dtype
        if ref.dtype != target:
            changed.append((name, before.dtype, ref.dtype))
    if changed:
        name, was, now = changed[0]
        yield MERGE_DTYPE_DRIFT.finding(
            f"{len(changed)} of {len(merged_w.tensors)} merged tensors are {now} where {TORCH_NAMES.get(want or '', want)} "
            f"was expected (e.g. {name!r}, {was} in the base): {_gb(merged_w.total_bytes)} vs the base's "
            f"{_gb(base_w.total_bytes)} ({metrics['size_ratio']}x)",
            f"{merged_dir}", suggestion=f"--dtype {TORCH_NAMES.get(base_float or '', 'float32')}",
            evidence={"tensors": len(changed), "samples": [{"tensor": n, "base": b, "merged": m} for n, b, m in changed[:20]],
                      "base_bytes": base_w.total_bytes, "merged_bytes": merged_w.total_bytes},
        )

    facts = ModelFacts.read(merged_dir)
    declared = SAFETENSORS_NAMES.get(facts.dtype or "")
    if merged_float is not None and declared is not None and declared != merged_float:
        yield MERGE_DTYPE_DRIFT.finding(
            f"config.json says dtype {facts.dtype} but the merged weights are {TORCH_NAMES.get(merged_float)}: "
            "loaders with dtype='auto' convert every tensor on load",
            f"{facts.path}:dtype", suggestion=f'"dtype": "{TORCH_NAMES.get(merged_float)}"',
            evidence={"config_dtype": facts.dtype, "weights_dtype": TORCH_NAMES.get(merged_float)},
        )

    added = sorted(set(merged_w.tensors) - set(base_w.tensors))
    dropped = sorted(set(base_w.tensors) - set(merged_w.tensors))
    if added or dropped:
        extra = sum(merged_w.tensors[n].elements for n in added) - sum(base_w.tensors[n].elements for n in dropped)
        yield MERGE_DTYPE_DRIFT.finding(
            f"the merge added {len(added)} and dropped {len(dropped)} tensors of the base "
            f"({'+' if extra >= 0 else ''}{extra} parameters), e.g. "
            f"{(added or dropped)[0]!r}: the merged model is not the base's architecture",
            f"{merged_dir}", evidence={"added": added[:20], "dropped": dropped[:20], "parameters": extra},
        )
    yield from _tied(merged_w, facts)


def _tied(weights: WeightFiles, facts: Any) -> Iterator[Finding]:
    from sftgate.gates.tokenizer.embeddings import tied_weights_findings

    embed = weights.find_embedding(facts.vocab_size)
    if embed is None:
        return
    head = weights.find_head(embed.rows)
    yield from tied_weights_findings(weights, facts, embed, None if head is not None and head.name == embed.name else head)


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.2f} MB"
